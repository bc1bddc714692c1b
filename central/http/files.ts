/** Stream a file (already authorised and resolved by the caller) with the given headers. */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { HttpError } from './errors.js';

export async function sendFile(
  req: IncomingMessage,
  res: ServerResponse,
  file: string,
  type: string,
  // Default for stored images: content-addressed and immutable, but only for this user.
  headers: Record<string, string> = { 'Cache-Control': 'private, max-age=3600', 'Content-Disposition': 'inline' },
): Promise<void> {
  const st = await stat(file).catch(() => null);
  if (!st || !st.isFile()) throw new HttpError(404, 'not_found');
  res.writeHead(200, { 'Content-Type': type, 'Content-Length': st.size, ...headers });
  if (req.method === 'HEAD') {
    res.end();
    return;
  }
  await new Promise<void>((resolve, reject) => {
    const s = createReadStream(file);
    s.on('error', reject);
    res.on('close', () => {
      s.destroy();
      resolve();
    });
    s.pipe(res);
  });
}

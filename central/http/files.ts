/**
 * Stream a file (already authorised and resolved by the caller) with the given headers. A single
 * `Range: bytes=a-b` is answered 206 (video players seek with it); anything else gets the whole file.
 */
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
  const range = byteRange(req.headers.range, st.size);
  if (range === 'unsatisfiable') {
    res.writeHead(416, { 'Content-Range': `bytes */${st.size}` });
    res.end();
    return;
  }
  if (range) {
    res.writeHead(206, { 'Content-Type': type, 'Content-Length': range.end - range.start + 1, 'Content-Range': `bytes ${range.start}-${range.end}/${st.size}`, 'Accept-Ranges': 'bytes', ...headers });
  } else res.writeHead(200, { 'Content-Type': type, 'Content-Length': st.size, 'Accept-Ranges': 'bytes', ...headers });
  if (req.method === 'HEAD') {
    res.end();
    return;
  }
  await new Promise<void>((resolve, reject) => {
    const s = createReadStream(file, range ?? {});
    s.on('error', reject);
    res.on('close', () => {
      s.destroy();
      resolve();
    });
    s.pipe(res);
  });
}

/** One `bytes=a-b`, `bytes=a-` or `bytes=-n` range; null for none or a form not served partially. */
export function byteRange(header: string | undefined, size: number): { start: number; end: number } | 'unsatisfiable' | null {
  const m = header ? /^bytes=(\d{0,15})-(\d{0,15})$/.exec(header.trim()) : null;
  if (!m || (m[1] === '' && m[2] === '')) return null;
  let start: number;
  let end: number;
  if (m[1] === '') {
    start = Math.max(0, size - Number(m[2]));
    end = size - 1;
  } else {
    start = Number(m[1]);
    end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
  }
  if (start >= size || start > end) return 'unsatisfiable';
  return { start, end };
}

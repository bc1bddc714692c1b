/**
 * Static files of the dashboard, served only from one root folder. The URL path is decoded once;
 * any `..` segment, backslash, NUL or leftover `%` (double encoding) is refused, and the resolved
 * real path must still lie under the root (this also stops symlinks pointing outside).
 */
import { realpath } from 'node:fs/promises';
import path from 'node:path';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { HttpError } from './errors.js';
import { sendFile } from './files.js';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.ico': 'image/x-icon',
  '.webmanifest': 'application/manifest+json',
};

/** Maps a raw URL pathname to a file path under root, or throws 404 (400 for malformed). */
export async function resolveStatic(root: string, rawPathname: string): Promise<string> {
  let decoded: string;
  try {
    decoded = decodeURIComponent(rawPathname);
  } catch {
    throw new HttpError(400, 'bad_request', 'path');
  }
  if (decoded.includes('\0') || decoded.includes('\\') || decoded.includes('%')) throw new HttpError(404, 'not_found');
  const segments = decoded.split('/');
  if (segments.some((s) => s === '..' || s === '.')) throw new HttpError(404, 'not_found');
  if (decoded.endsWith('/')) decoded += 'index.html';
  const rootReal = await realpath(root);
  const candidate = path.resolve(rootReal, '.' + path.posix.normalize('/' + decoded));
  if (!candidate.startsWith(rootReal + path.sep)) throw new HttpError(404, 'not_found');
  let real: string;
  try {
    real = await realpath(candidate);
  } catch {
    throw new HttpError(404, 'not_found');
  }
  if (!real.startsWith(rootReal + path.sep)) throw new HttpError(404, 'not_found');
  return real;
}

export async function serveStatic(root: string, req: IncomingMessage, res: ServerResponse, pathname: string): Promise<void> {
  const file = await resolveStatic(root, pathname);
  const type = TYPES[path.extname(file).toLowerCase()] ?? 'application/octet-stream';
  await sendFile(req, res, file, type, { 'Cache-Control': type.startsWith('text/html') ? 'no-store' : 'no-cache' });
}

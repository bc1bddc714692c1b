/**
 * Request bodies and queries: bounded reads (413 past the limit), JSON only, zod-validated with
 * the failing field named in the answer.
 */
import type { IncomingMessage } from 'node:http';
import type { z } from 'zod';
import { formatPath } from '../../protocol/index.js';
import { HttpError } from './errors.js';

export const DEFAULT_BODY_LIMIT = 64 * 1024;
/** Rectification photos: ≤ 5 MB of image → ~6.7 MB of base64 plus the note. */
export const PHOTO_BODY_LIMIT = 7 * 1024 * 1024;
/** Voice audio: protocol allows 4,000,000 base64 chars. */
export const AUDIO_BODY_LIMIT = 4_200_000;

/** Read the whole body, at most `limit` bytes; past it → 413 (the rest is discarded, not buffered). */
export async function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) {
    req.resume(); // discard, so the client can read the 413
    throw new HttpError(413, 'too_large', undefined, `> ${limit} bytes`, { Connection: 'close' });
  }
  return await new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let over = false;
    req.on('data', (chunk: Buffer) => {
      if (over) return;
      size += chunk.length;
      if (size > limit) {
        over = true;
        chunks.length = 0;
        reject(new HttpError(413, 'too_large', undefined, `> ${limit} bytes`, { Connection: 'close' }));
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => {
      if (!over) resolve(Buffer.concat(chunks));
    });
    req.on('error', (err) => {
      if (!over) reject(new HttpError(400, 'bad_request', undefined, err.message));
    });
  });
}

export function firstIssue(error: z.ZodError): { field: string; detail: string } {
  const issue = error.issues[0];
  const field = issue ? formatPath(issue.path) || '(root)' : '(root)';
  return { field, detail: issue?.message ?? 'invalid' };
}

export function validate<T extends z.ZodType>(schema: T, value: unknown): z.infer<T> {
  const r = schema.safeParse(value);
  if (r.success) return r.data;
  const { field, detail } = firstIssue(r.error);
  throw new HttpError(400, 'invalid', field, detail);
}

/** JSON body → schema. Empty body counts as `{}` (so `POST /ack` without a body works). */
export async function jsonBody<T extends z.ZodType>(req: IncomingMessage, schema: T, limit = DEFAULT_BODY_LIMIT): Promise<z.infer<T>> {
  const raw = await readBody(req, limit);
  if (raw.length === 0) return validate(schema, {});
  const type = String(req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  if (type !== 'application/json') throw new HttpError(415, 'unsupported_media_type');
  let json: unknown;
  try {
    json = JSON.parse(raw.toString('utf8'));
  } catch (err) {
    throw new HttpError(400, 'bad_json', undefined, (err as Error).message);
  }
  return validate(schema, json);
}

/** Query string → plain object (last value wins) → schema. */
export function queryOf<T extends z.ZodType>(url: URL, schema: T): z.infer<T> {
  const obj: Record<string, string> = {};
  for (const [k, v] of url.searchParams) obj[k] = v;
  return validate(schema, obj);
}

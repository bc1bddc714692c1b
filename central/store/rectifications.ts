/**
 * Rectifications: what a site did about an event, with an optional photo. The photo is checked whole
 * before it is kept (by its sha256, under photos/) and served only within the event's scope.
 */
import path from 'node:path';
import { existsSync } from 'node:fs';
import sharp, { type Metadata } from 'sharp';
import type { Sql } from './sql.js';
import { sha256Hex, writeOnce, type Row } from './rows.js';
import type { Scopes } from './scope.js';
import { CoreError, type RectificationView, type RectifyInput, type Scope } from './types.js';

export type PhotoMime = 'image/jpeg' | 'image/png';

/** Image bytes a rectification photo may carry. */
function imageMime(bytes: Buffer): PhotoMime | null {
  if (bytes.length > 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) return 'image/jpeg';
  if (bytes.length > 8 && bytes.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]))) return 'image/png';
  return null;
}

/** A rectification photo may have at most this many pixels (48 MP phone cameras fit; decompression bombs do not). */
export const MAX_PHOTO_PIXELS = 50_000_000;

/**
 * Decodes the whole photo (header and every pixel) so that only a real, complete JPEG / PNG is stored
 * and served: magic bytes alone let truncated files and garbage between valid markers through.
 * Throws CoreError 'invalid' naming `photoBase64`.
 */
async function decodePhoto(bytes: Buffer, mime: PhotoMime): Promise<{ width: number; height: number }> {
  const kind = mime === 'image/jpeg' ? 'JPEG' : 'PNG';
  const opts = { failOn: 'error' as const, limitInputPixels: MAX_PHOTO_PIXELS };
  const why = (err: unknown) => String((err as Error)?.message ?? err).split('\n')[0]!.slice(0, 200);
  let meta: Metadata;
  try {
    meta = await sharp(bytes, opts).metadata();
  } catch (err) {
    const msg = why(err);
    if (/pixel limit/i.test(msg)) throw new CoreError('invalid', `photo has more than ${MAX_PHOTO_PIXELS / 1e6} megapixels`, 'photoBase64');
    throw new CoreError('invalid', `photo is not a decodable ${kind} (${msg})`, 'photoBase64');
  }
  if (meta.format !== (mime === 'image/jpeg' ? 'jpeg' : 'png') || !meta.width || !meta.height) {
    throw new CoreError('invalid', `photo is not a decodable ${kind} (decoded as ${meta.format ?? 'nothing'})`, 'photoBase64');
  }
  if (meta.width * meta.height > MAX_PHOTO_PIXELS) throw new CoreError('invalid', `photo has more than ${MAX_PHOTO_PIXELS / 1e6} megapixels (${meta.width}×${meta.height})`, 'photoBase64');
  try {
    await sharp(bytes, opts).stats(); // decodes every pixel: truncated or corrupt image data fails here
  } catch (err) {
    throw new CoreError('invalid', `photo is not a decodable ${kind}: its image data is corrupt or truncated (${why(err)})`, 'photoBase64');
  }
  return { width: meta.width, height: meta.height };
}

/**
 * The checks that need no decode (size, magic bytes, the declared type), so that a caller can run its
 * cheap checks before paying for decodePhoto. Returns the type. Throws CoreError 'invalid'.
 */
export function checkPhoto({ bytes, mime }: NonNullable<RectifyInput['photo']>): PhotoMime {
  if (bytes.length > 5 * 1024 * 1024) throw new CoreError('invalid', `photo too large (${bytes.length} bytes > 5 MB)`, 'photoBase64');
  const actual = imageMime(bytes);
  if (!actual) throw new CoreError('invalid', 'photo is neither a JPEG nor a PNG', 'photoBase64');
  if (actual !== mime) throw new CoreError('invalid', `photo bytes are ${actual}, not ${mime}`, 'photoMime');
  return actual;
}

export class Rectifications {
  constructor(private readonly sql: Sql, private readonly dataDir: string, private readonly scopes: Scopes) {}

  private photoPath(sha: string, mime: string): string {
    return path.join(this.dataDir, 'photos', sha.slice(0, 2), `${sha}.${mime === 'image/png' ? 'png' : 'jpg'}`);
  }
  /** Decodes the photo (checkPhoto first) and keeps it by its hash (idempotent). */
  async savePhoto(bytes: Buffer, mime: PhotoMime): Promise<{ sha: string; mime: PhotoMime }> {
    await decodePhoto(bytes, mime);
    const sha = sha256Hex(bytes);
    writeOnce(this.photoPath(sha, mime), bytes);
    return { sha, mime };
  }
  async insert(eventId: string, by: string, at: number, note: string, photo: { sha: string; mime: string } | null): Promise<void> {
    await this.sql.run('INSERT INTO rectifications (event_id, by, at, note, photo_sha256, photo_mime) VALUES (?, ?, ?, ?, ?, ?)', [eventId, by, at, note, photo?.sha ?? null, photo?.mime ?? null]);
  }
  async ofEvent(eventId: string): Promise<RectificationView[]> {
    return ((await this.sql.all(`SELECT r.*, u.name AS by_name FROM rectifications r LEFT JOIN users u ON u.id = r.by WHERE r.event_id = ? ORDER BY r.id`, [eventId])) as Row[])
    .map((x): RectificationView => ({
      id: x.id as number, eventId, by: x.by as string, byName: (x.by_name as string) ?? (x.by as string), at: x.at as number, note: x.note as string,
      photoSha256: (x.photo_sha256 as string) ?? null, photoMime: (x.photo_mime as string) ?? null,
      photoUrl: x.photo_sha256 ? `/api/rectifications/${x.id}/photo` : null,
    }));
  }
  async rectificationPhoto(scope: Scope, id: number): Promise<{ path: string; mime: string } | null> {
    const r = (await this.sql.get('SELECT r.photo_sha256, r.photo_mime, e.site_id FROM rectifications r JOIN events e ON e.id = r.event_id WHERE r.id = ?', [id])) as Row | undefined;
    if (!r || !r.photo_sha256 || !await this.scopes.siteInScope(scope, r.site_id as string)) return null;
    const file = this.photoPath(r.photo_sha256 as string, r.photo_mime as string);
    return existsSync(file) ? { path: file, mime: r.photo_mime as string } : null;
  }
}

/**
 * Snapshots for the simulated sites: a few real JPEGs made once (kitchen-like photos from the shared
 * data set when it is there, resized to the agent's frame width at quality 80, the annotated one with a
 * red box as the agent draws it), then made unique per event by a JPEG comment segment (FFFE) carrying
 * the event id right after the start marker: still a valid JPEG, a different sha256 for every event.
 */
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const PHOTOS = path.resolve(ROOT, '../shared/data/masks/images');

export interface SnapshotSet {
  /** [annotated, clean] pairs. */
  pairs: [Buffer, Buffer][];
  source: 'photos' | 'synthetic';
  width: number;
  height: number;
  meanBytesPerEvent: number;
}

async function synthetic(width: number, height: number, i: number): Promise<Buffer> {
  // Noise compresses like a busy frame rather than like a flat colour.
  const noise = await sharp({ create: { width, height, channels: 3, background: '#6e6e6e', noise: { type: 'gaussian', mean: 110 + i * 10, sigma: 40 } } }).png().toBuffer();
  return sharp(noise).blur(1.2).jpeg({ quality: 80 }).toBuffer();
}

export async function makeSnapshots(width: number, count = 4): Promise<SnapshotSet> {
  const height = Math.round((width * 9) / 16 / 2) * 2;
  const photos = existsSync(PHOTOS) ? readdirSync(PHOTOS).filter((f) => /\.jpe?g$/i.test(f)).sort().slice(0, count) : [];
  const box = [Math.round(width * 0.35), Math.round(height * 0.25), Math.round(width * 0.6), Math.round(height * 0.8)] as const;
  const svg = Buffer.from(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}">
    <rect x="${box[0]}" y="${box[1]}" width="${box[2] - box[0]}" height="${box[3] - box[1]}" fill="none" stroke="#ff2d2d" stroke-width="3"/></svg>`);
  const pairs: [Buffer, Buffer][] = [];
  for (let i = 0; i < Math.max(1, count); i++) {
    const base = photos[i]
      ? await sharp(path.join(PHOTOS, photos[i]!)).resize(width, height, { fit: 'cover' }).removeAlpha().jpeg({ quality: 80 }).toBuffer()
      : await synthetic(width, height, i);
    const annotated = await sharp(base).composite([{ input: svg, top: 0, left: 0 }]).jpeg({ quality: 80 }).toBuffer();
    pairs.push([annotated, base]);
  }
  const mean = pairs.reduce((s, [a, c]) => s + a.length + c.length, 0) / pairs.length;
  return { pairs, source: photos.length ? 'photos' : 'synthetic', width, height, meanBytesPerEvent: Math.round(mean) };
}

/** The JPEG with a comment segment holding `tag` after its SOI marker (unique bytes, same picture). */
export function tagJpeg(jpeg: Buffer, tag: string): Buffer {
  const text = Buffer.from(tag, 'utf8');
  const seg = Buffer.alloc(4 + text.length);
  seg[0] = 0xff;
  seg[1] = 0xfe;
  seg.writeUInt16BE(text.length + 2, 2);
  text.copy(seg, 4);
  return Buffer.concat([jpeg.subarray(0, 2), seg, jpeg.subarray(2)]);
}

/** Still images for the CLIs and tests: decode JPEG/PNG/... to RGB24 with sharp, honouring EXIF orientation. */
import sharp from 'sharp';
import type { RgbImage } from './types.js';

export const IMAGE_EXTENSIONS = ['.jpg', '.jpeg', '.png', '.webp', '.bmp', '.tif', '.tiff', '.gif'];

export function isImageFile(file: string): boolean {
  const lower = file.toLowerCase();
  return IMAGE_EXTENSIONS.some((e) => lower.endsWith(e));
}

/**
 * Decode an image file (or encoded bytes) into RGB24. Alpha is dropped (not blended), 16-bit and
 * grey images become 8-bit sRGB, EXIF orientation is applied.
 */
export async function loadImage(input: string | Buffer): Promise<RgbImage> {
  const what = typeof input === 'string' ? input : 'image buffer';
  try {
    const { data, info } = await sharp(input, { failOn: 'error' })
      .rotate()
      .removeAlpha()
      .toColourspace('srgb')
      .raw({ depth: 'uchar' })
      .toBuffer({ resolveWithObject: true });
    if (info.channels !== 3) throw new Error(`decoded to ${info.channels} channels, expected 3`);
    return { width: info.width, height: info.height, data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) };
  } catch (err) {
    throw new Error(`${what}: cannot decode image (${(err as Error).message})`);
  }
}

/** Types shared by the detection stage. */

/** An RGB24 image, row-major, 3 bytes per pixel, no row padding. */
export interface RgbImage {
  width: number;
  height: number;
  data: Uint8Array;
}

export type BoxXYXY = [number, number, number, number];

/** One detection in source-image pixels. */
export interface Detection {
  /** Canonical label (protocol/labels.ts). */
  label: string;
  score: number;
  /** [x1, y1, x2, y2] in source-image pixels, clipped to the image. */
  box: BoxXYXY;
  /** Name of the model (manifest) that produced it. */
  model: string;
  /** Head regions (classifier.ts): where the head was found. */
  source?: 'face' | 'person';
  /** Head regions: the classifier's judgement of each attribute on this crop. */
  attributes?: HeadAttribute[];
}

/** One attribute of a head crop: its probability and the label it gives when believed (or not). */
export interface HeadAttribute {
  name: string;
  p: number;
  threshold: number;
  /** Label of a head with the attribute (chef_hat, cigarette, masked_face). */
  positive: string;
  /** Label of a head without it (head = bare head, face = bare face), if that means something. */
  negative?: string;
}

/** A detection candidate before NMS, box in model-input pixels. */
export interface Candidate {
  label: string;
  score: number;
  box: BoxXYXY;
}

export function checkImage(img: RgbImage, what = 'image'): void {
  if (!Number.isInteger(img.width) || !Number.isInteger(img.height) || img.width <= 0 || img.height <= 0)
    throw new Error(`${what}: invalid size ${img.width}x${img.height}`);
  if (img.data.length !== img.width * img.height * 3)
    throw new Error(`${what}: expected ${img.width * img.height * 3} bytes of RGB24 for ${img.width}x${img.height}, got ${img.data.length}`);
}

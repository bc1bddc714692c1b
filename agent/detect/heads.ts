/**
 * Head regions for the head-attribute classifier: one square region per worker, derived from what
 * the face and person models already found, and the crops cut from them.
 *
 * - A face box is grown upward (a chef hat sits above the brow) and downward (mouth, a cigarette, a
 *   hand at the mouth), then made square around its centre.
 * - A person with no face in the upper part of its box (a worker seen from behind or from above)
 *   gives a square at the top of its box.
 * The numbers are the classifier manifest's `crop` recipe: crops at run time and in training are cut
 * by this one function, so the model sees at work what it saw in training.
 */
import { z } from 'zod';
import { LABELS } from '../../protocol/labels.js';
import type { BoxXYXY, Detection, RgbImage } from './types.js';

const Canonical = z.enum(LABELS, { error: `expected a canonical label (${LABELS.join(', ')})` });
const Frac = z.number().min(0).max(4);

export const CropRecipeSchema = z.strictObject({
  /** Faces: the box is grown by these fractions of its width (left, right) and height (top, bottom). */
  face: z.strictObject({
    labels: z.array(Canonical).min(1),
    minScore: z.number().min(0).max(1).default(0.5),
    grow: z.strictObject({ left: Frac, right: Frac, top: Frac, bottom: Frac }),
    /**
     * Only faces whose centre lies in a person box (when the frame has people): the face model also
     * fires on round things on a counter (trays of meat), which are never on a person.
     */
    onPerson: z.boolean().default(false),
  }),
  /**
   * People without a face: a square of side `side` x person width (at most the box height), centred
   * horizontally, its top `above` x side above the person box's top.
   */
  person: z
    .strictObject({
      labels: z.array(Canonical).min(1),
      minScore: z.number().min(0).max(1).default(0.5),
      side: z.number().gt(0).max(1.5),
      above: z.number().min(0).max(1).default(0),
      /** Skip people whose box starts at the frame's top edge: their head is (partly) out of view. */
      skipTopEdge: z.boolean().default(true),
    })
    .optional(),
  /**
   * Close-ups: a face larger than the face model's largest anchors is missed (a worker leaning into
   * the camera, a photo). A person box at least `personHeight` of the frame's height with no face
   * in its upper half sends the frame to the face model again, shrunk `zoomOut` times into the
   * middle of a grey frame of the same size; faces found there inside such a person count.
   * `faceHeight`: a frame in which the face model found no face at all is looked at too (a face so
   * close that the person model sees no person either); a face found there counts without a person
   * when it is at least this part of the frame's height.
   */
  closeUp: z
    .strictObject({
      personHeight: z.number().gt(0).max(1),
      zoomOut: z.number().int().min(2).max(8),
      faceHeight: z.number().gt(0).max(1).optional(),
    })
    .optional(),
  /** Regions with a side below this (source pixels) are not judged: too few pixels to tell. */
  minSide: z.number().min(1).default(16),
  /** At most this many heads per frame (the largest first): bounds the cost of a crowded frame. */
  maxHeads: z.number().int().min(1).max(256).default(24),
  /** Grey level (0..255) of crop pixels outside the frame. */
  pad: z.number().min(0).max(255).default(114),
});
export type CropRecipe = z.infer<typeof CropRecipeSchema>;

export type HeadSource = 'face' | 'person';

/** One head region: a square in source pixels (it may extend past the frame's edge). */
export interface HeadRegion {
  box: BoxXYXY;
  source: HeadSource;
  /** The detection it was derived from. */
  from: Detection;
}

function square(cx: number, cy: number, side: number): BoxXYXY {
  return [cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2];
}

/** Head regions of one frame from its detections, largest first, at most `recipe.maxHeads`. */
export function headRegions(dets: readonly Detection[], recipe: CropRecipe): HeadRegion[] {
  const out: HeadRegion[] = [];
  const p = recipe.person;
  const people = p ? dets.filter((d) => (p.labels as readonly string[]).includes(d.label) && d.score >= p.minScore) : [];
  const onSomeone = (f: Detection) => {
    const cx = (f.box[0] + f.box[2]) / 2;
    const cy = (f.box[1] + f.box[3]) / 2;
    return people.some((d) => cx >= d.box[0] && cx <= d.box[2] && cy >= d.box[1] && cy <= d.box[3]);
  };
  const faces = dets.filter(
    (d) => (recipe.face.labels as readonly string[]).includes(d.label) && d.score >= recipe.face.minScore && (!recipe.face.onPerson || people.length === 0 || onSomeone(d)),
  );
  const g = recipe.face.grow;
  for (const f of faces) {
    const [x1, y1, x2, y2] = f.box;
    const w = x2 - x1;
    const h = y2 - y1;
    const gx1 = x1 - g.left * w;
    const gx2 = x2 + g.right * w;
    const gy1 = y1 - g.top * h;
    const gy2 = y2 + g.bottom * h;
    const side = Math.max(gx2 - gx1, gy2 - gy1);
    out.push({ box: square((gx1 + gx2) / 2, (gy1 + gy2) / 2, side), source: 'face', from: f });
  }
  if (p) {
    for (const d of people) {
      const [x1, y1, x2, y2] = d.box;
      if (p.skipTopEdge && y1 <= 1) continue;
      // Same worker as a face when a face centre lies in the upper half of the person box.
      if (faces.some((f) => inUpperHalf(f, d))) continue;
      const side = Math.min(p.side * (x2 - x1), y2 - y1);
      const top = y1 - p.above * side;
      out.push({ box: [(x1 + x2) / 2 - side / 2, top, (x1 + x2) / 2 + side / 2, top + side], source: 'person', from: d });
    }
  }
  return out
    .filter((r) => r.box[2] - r.box[0] >= recipe.minSide)
    .sort((a, b) => b.box[2] - b.box[0] - (a.box[2] - a.box[0]))
    .slice(0, recipe.maxHeads);
}

const centre = (b: BoxXYXY) => [(b[0] + b[2]) / 2, (b[1] + b[3]) / 2] as const;
const inUpperHalf = (f: Detection, p: Detection) => {
  const [cx, cy] = centre(f.box);
  return cx >= p.box[0] && cx <= p.box[2] && cy >= p.box[1] && cy <= p.box[1] + 0.5 * (p.box[3] - p.box[1]);
};

/** People of a close-up (recipe.closeUp) whose face the face model did not find; empty when there are none. */
export function closeUpPeople(dets: readonly Detection[], recipe: CropRecipe, frameHeight: number): Detection[] {
  const c = recipe.closeUp;
  const p = recipe.person;
  if (!c || !p) return [];
  const faces = dets.filter((d) => (recipe.face.labels as readonly string[]).includes(d.label) && d.score >= recipe.face.minScore);
  return dets.filter((d) => (p.labels as readonly string[]).includes(d.label) && d.score >= p.minScore
    && d.box[3] - d.box[1] >= c.personHeight * frameHeight && !faces.some((f) => inUpperHalf(f, d)));
}

/**
 * The frame in the middle of a `pad` grey frame `f` times its size, as an image at most `maxWidth`
 * wide (the face model's input width: more would be shrunk away again; a small photo keeps its
 * pixels), and the map from boxes found in it back to the frame.
 */
export function zoomOut(img: RgbImage, f: number, pad = 114, maxWidth = 640): { image: RgbImage; unmap(box: BoxXYXY): BoxXYXY } {
  const W = img.width, H = img.height;
  const s = Math.min(1, maxWidth / (f * W));
  const cw = Math.max(1, Math.round(f * W * s)), ch = Math.max(1, Math.round(f * H * s));
  const iw = Math.max(1, Math.round(W * s)), ih = Math.max(1, Math.round(H * s));
  const ox = Math.floor((cw - iw) / 2), oy = Math.floor((ch - ih) / 2);
  // grey everywhere, the frame resampled only where it goes
  const data = new Uint8Array(cw * ch * 3).fill(pad);
  const inner = cropResize(img, [0, 0, W, H], iw, pad, new Uint8Array(iw * ih * 3), ih);
  for (let y = 0; y < ih; y++) data.set(inner.subarray(y * iw * 3, (y + 1) * iw * 3), ((oy + y) * cw + ox) * 3);
  const kx = W / iw, ky = H / ih;
  return {
    image: { width: cw, height: ch, data },
    unmap: (b) => [(b[0] - ox) * kx, (b[1] - oy) * ky, (b[2] - ox) * kx, (b[3] - oy) * ky],
  };
}

/** Whether a close-up look is due on a frame in which the face model found no face at all (recipe.closeUp.faceHeight). */
export function facelessCloseUp(dets: readonly Detection[], recipe: CropRecipe): boolean {
  const labels = recipe.face.labels as readonly string[];
  return recipe.closeUp?.faceHeight !== undefined && !dets.some((d) => labels.includes(d.label));
}

/**
 * Faces found on the zoomed-out frame, mapped back, kept when they belong to one of `people` or
 * are at least `minHeight` source pixels tall (a faceless frame's look; Infinity: never).
 */
export function closeUpFaces(found: readonly Detection[], unmap: (box: BoxXYXY) => BoxXYXY, people: readonly Detection[], recipe: CropRecipe, minHeight = Infinity): Detection[] {
  const labels = recipe.face.labels as readonly string[];
  return found
    .filter((d) => labels.includes(d.label))
    .map((d) => ({ ...d, box: unmap(d.box) }))
    .filter((d) => people.some((p) => inUpperHalf(d, p)) || d.box[3] - d.box[1] >= minHeight);
}

/** The region clipped to the frame (what is reported and tracked). */
export function clipBox(box: BoxXYXY, width: number, height: number): BoxXYXY {
  return [Math.max(0, box[0]), Math.max(0, box[1]), Math.min(width, box[2]), Math.min(height, box[3])];
}

/**
 * Cut `box` out of `img` and scale it to size x size RGB24 (size x height when given) (bilinear, cv2 INTER_LINEAR sampling;
 * when shrinking by more than 2x, the average of a 2x2 sample grid per pixel, so small details such
 * as a cigarette do not vanish between samples). Pixels outside the frame are `pad` grey.
 */
export function cropResize(img: RgbImage, box: BoxXYXY, size: number, pad = 114, out: Uint8Array = new Uint8Array(size * size * 3), height = size): Uint8Array {
  const [x1, y1, x2, y2] = box;
  const sx = Math.max(1e-6, x2 - x1) / size;
  const sy = Math.max(1e-6, y2 - y1) / height;
  const taps = sx > 2 || sy > 2 ? 2 : 1;
  const W = img.width;
  const H = img.height;
  const src = img.data;
  let o = 0;
  for (let oy = 0; oy < height; oy++) {
    for (let ox = 0; ox < size; ox++) {
      let r = 0;
      let gch = 0;
      let b = 0;
      for (let ty = 0; ty < taps; ty++) {
        for (let tx = 0; tx < taps; tx++) {
          const fx = x1 + (ox + (tx + 0.5) / taps) * sx - 0.5;
          const fy = y1 + (oy + (ty + 0.5) / taps) * sy - 0.5;
          if (fx < -0.5 || fy < -0.5 || fx > W - 0.5 || fy > H - 0.5) {
            r += pad;
            gch += pad;
            b += pad;
            continue;
          }
          const cx = Math.min(W - 1, Math.max(0, fx));
          const cy = Math.min(H - 1, Math.max(0, fy));
          const x0 = Math.floor(cx);
          const y0 = Math.floor(cy);
          const ax = cx - x0;
          const ay = cy - y0;
          const x1i = Math.min(W - 1, x0 + 1);
          const y1i = Math.min(H - 1, y0 + 1);
          const p00 = (y0 * W + x0) * 3;
          const p01 = (y0 * W + x1i) * 3;
          const p10 = (y1i * W + x0) * 3;
          const p11 = (y1i * W + x1i) * 3;
          const w00 = (1 - ax) * (1 - ay);
          const w01 = ax * (1 - ay);
          const w10 = (1 - ax) * ay;
          const w11 = ax * ay;
          r += src[p00]! * w00 + src[p01]! * w01 + src[p10]! * w10 + src[p11]! * w11;
          gch += src[p00 + 1]! * w00 + src[p01 + 1]! * w01 + src[p10 + 1]! * w10 + src[p11 + 1]! * w11;
          b += src[p00 + 2]! * w00 + src[p01 + 2]! * w01 + src[p10 + 2]! * w10 + src[p11 + 2]! * w11;
        }
      }
      const n = taps * taps;
      out[o++] = Math.round(r / n);
      out[o++] = Math.round(gch / n);
      out[o++] = Math.round(b / n);
    }
  }
  return out;
}

/**
 * The per-frame hot path: RGB24 image → Float32 NCHW tensor in one pass (resize + letterbox + colour
 * order + normalisation), into a Float32Array reused between calls (the preprocessor's own, or one
 * the caller passes: WorkerPack keeps a few per model, filled on the main thread while the model's
 * worker runs the previous frame). No intermediate images.
 *
 * Measured (640x360 frame → RFB-640 input, 1 thread): 2.4 ms here; the same steps as an onnxruntime
 * graph (Cast, Transpose, Resize, Sub, Mul) take 3.3 ms, so this stays in JavaScript.
 *
 * Resizing is bilinear with cv2.resize INTER_LINEAR semantics: output pixel o samples source
 * coordinate (o + 0.5) * (src / dst) - 0.5, clamped at the borders (no area averaging when shrinking).
 */
import type { InputSpec } from './manifest.js';
import { checkImage, type BoxXYXY, type RgbImage } from './types.js';

/** How a source image sits in the model input: content region and scale. */
export interface Placement {
  srcWidth: number;
  srcHeight: number;
  /** Size of the resized image inside the input tensor. */
  contentWidth: number;
  contentHeight: number;
  /** Top-left of the content inside the input tensor (letterbox padding). */
  padX: number;
  padY: number;
  /** Source pixels per input pixel. */
  scaleX: number;
  scaleY: number;
}

/** Where a `srcWidth x srcHeight` image goes in the model input described by `spec`. */
export function placement(spec: InputSpec, srcWidth: number, srcHeight: number): Placement {
  const W = spec.width;
  const H = spec.height;
  if (spec.resize.mode === 'stretch') {
    return { srcWidth, srcHeight, contentWidth: W, contentHeight: H, padX: 0, padY: 0, scaleX: srcWidth / W, scaleY: srcHeight / H };
  }
  const r = Math.min(W / srcWidth, H / srcHeight);
  // As the YOLOX reference: int(w * r) (tolerating float noise such as 415.99999).
  const cw = Math.min(W, Math.max(1, Math.floor(srcWidth * r + 1e-6)));
  const ch = Math.min(H, Math.max(1, Math.floor(srcHeight * r + 1e-6)));
  const center = spec.resize.align === 'center';
  const padX = center ? Math.floor((W - cw) / 2) : 0;
  const padY = center ? Math.floor((H - ch) / 2) : 0;
  return { srcWidth, srcHeight, contentWidth: cw, contentHeight: ch, padX, padY, scaleX: srcWidth / cw, scaleY: srcHeight / ch };
}

/** Map a box from model-input pixels back to source pixels, clipped to the image. */
export function toSource(box: BoxXYXY, p: Placement): BoxXYXY {
  const cx = (v: number) => Math.min(p.srcWidth, Math.max(0, v));
  const cy = (v: number) => Math.min(p.srcHeight, Math.max(0, v));
  return [
    cx((box[0] - p.padX) * p.scaleX),
    cy((box[1] - p.padY) * p.scaleY),
    cx((box[2] - p.padX) * p.scaleX),
    cy((box[3] - p.padY) * p.scaleY),
  ];
}

/** Source indices and weights for bilinear sampling along one axis (cv2 INTER_LINEAR). */
function axisTable(src: number, dst: number, stride: number): { i0: Int32Array; i1: Int32Array; w: Float32Array } {
  const i0 = new Int32Array(dst);
  const i1 = new Int32Array(dst);
  const w = new Float32Array(dst);
  const scale = src / dst;
  for (let o = 0; o < dst; o++) {
    const f = (o + 0.5) * scale - 0.5;
    let s = Math.floor(f);
    let a = f - s;
    if (s < 0) {
      s = 0;
      a = 0;
    }
    if (s >= src - 1) {
      s = src - 1;
      a = 0;
    }
    i0[o] = s * stride;
    i1[o] = Math.min(s + 1, src - 1) * stride;
    w[o] = a;
  }
  return { i0, i1, w };
}

interface Plan extends Placement {
  xs: ReturnType<typeof axisTable>;
  ys: ReturnType<typeof axisTable>;
}

export class Preprocessor {
  /** The reused input tensor, NCHW [1, 3, H, W]. */
  readonly tensor: Float32Array;
  readonly dims: readonly [1, 3, number, number];
  /** Per source size "WxH" (a site's cameras may differ: 16:9 and 4:3). */
  private readonly plans = new Map<string, Plan>();
  /** The plan whose letterbox padding each tensor holds. */
  private readonly paddedFor = new WeakMap<Float32Array, Plan>();
  /** Per source channel (R, G, B): offset of its plane in the tensor, and normalisation. */
  private readonly planeOf: [number, number, number];
  private readonly mul: [number, number, number];
  private readonly add: [number, number, number];

  constructor(readonly spec: InputSpec) {
    const plane = spec.width * spec.height;
    this.tensor = new Float32Array(3 * plane);
    this.dims = [1, 3, spec.height, spec.width];
    // Tensor channel k holds source channel order[k].
    const order = spec.colorOrder === 'RGB' ? [0, 1, 2] : [2, 1, 0];
    const planeOf: number[] = [0, 0, 0];
    const mul: number[] = [0, 0, 0];
    const add: number[] = [0, 0, 0];
    order.forEach((srcCh, k) => {
      planeOf[srcCh] = k * plane;
      mul[srcCh] = 1 / spec.std[k]!;
      add[srcCh] = -spec.mean[k]! / spec.std[k]!;
    });
    this.planeOf = planeOf as [number, number, number];
    this.mul = mul as [number, number, number];
    this.add = add as [number, number, number];
  }

  private planFor(w: number, h: number): Plan {
    const key = `${w}x${h}`;
    let p = this.plans.get(key);
    if (!p) {
      if (this.plans.size >= 16) this.plans.clear(); // a stream that keeps changing size
      const pl = placement(this.spec, w, h);
      p = { ...pl, xs: axisTable(w, pl.contentWidth, 3), ys: axisTable(h, pl.contentHeight, w * 3) };
      this.plans.set(key, p);
    }
    return p;
  }

  /** Elements of one input tensor (3 x H x W). */
  get size(): number {
    return this.tensor.length;
  }

  /** Fill `out` (default: this.tensor) from `img`; returns where the image sits in the input. */
  run(img: RgbImage, out: Float32Array = this.tensor): Placement {
    checkImage(img);
    if (out.length !== this.tensor.length) throw new Error(`input tensor has ${out.length} elements, expected ${this.tensor.length}`);
    const p = this.planFor(img.width, img.height);
    // Padding is constant for a given placement: fill it once per tensor, content overwrites its part.
    if (this.spec.resize.mode === 'letterbox' && this.paddedFor.get(out) !== p) {
      const pad = this.spec.resize.pad;
      const plane = this.spec.width * this.spec.height;
      for (let c = 0; c < 3; c++) out.fill(pad * this.mul[c]! + this.add[c]!, this.planeOf[c]!, this.planeOf[c]! + plane);
      this.paddedFor.set(out, p);
    }
    const src = img.data;
    const W = this.spec.width;
    const [pR, pG, pB] = this.planeOf;
    const [mR, mG, mB] = this.mul;
    const [aR, aG, aB] = this.add;
    const cw = p.contentWidth;
    const ch = p.contentHeight;
    if (cw === img.width && ch === img.height) {
      // Same size (ffmpeg already scaled the frame): straight conversion.
      let s = 0;
      for (let y = 0; y < ch; y++) {
        let o = (y + p.padY) * W + p.padX;
        for (let x = 0; x < cw; x++, o++, s += 3) {
          out[pR + o] = src[s]! * mR + aR;
          out[pG + o] = src[s + 1]! * mG + aG;
          out[pB + o] = src[s + 2]! * mB + aB;
        }
      }
      return p;
    }
    const { i0: x0, i1: x1, w: wx } = p.xs;
    const { i0: y0, i1: y1, w: wy } = p.ys;
    if (cw === img.width) {
      // Same width (e.g. a 640x360 frame stretched to 640x480): vertical interpolation only.
      for (let y = 0; y < ch; y++) {
        const ra = y0[y]!;
        const rb = y1[y]!;
        const fy = wy[y]!;
        let o = (y + p.padY) * W + p.padX;
        for (let x = 0, a = ra, c = rb; x < cw; x++, o++, a += 3, c += 3) {
          let t = src[a]!;
          out[pR + o] = (t + (src[c]! - t) * fy) * mR + aR;
          t = src[a + 1]!;
          out[pG + o] = (t + (src[c + 1]! - t) * fy) * mG + aG;
          t = src[a + 2]!;
          out[pB + o] = (t + (src[c + 2]! - t) * fy) * mB + aB;
        }
      }
      return p;
    }
    for (let y = 0; y < ch; y++) {
      const ra = y0[y]!;
      const rb = y1[y]!;
      const fy = wy[y]!;
      let o = (y + p.padY) * W + p.padX;
      for (let x = 0; x < cw; x++, o++) {
        const a = ra + x0[x]!;
        const b = ra + x1[x]!;
        const c = rb + x0[x]!;
        const d = rb + x1[x]!;
        const fx = wx[x]!;
        let t = src[a]! + (src[b]! - src[a]!) * fx;
        let u = src[c]! + (src[d]! - src[c]!) * fx;
        out[pR + o] = (t + (u - t) * fy) * mR + aR;
        t = src[a + 1]! + (src[b + 1]! - src[a + 1]!) * fx;
        u = src[c + 1]! + (src[d + 1]! - src[c + 1]!) * fx;
        out[pG + o] = (t + (u - t) * fy) * mG + aG;
        t = src[a + 2]! + (src[b + 2]! - src[a + 2]!) * fx;
        u = src[c + 2]! + (src[d + 2]! - src[c + 2]!) * fx;
        out[pB + o] = (t + (u - t) * fy) * mB + aB;
      }
    }
    return p;
  }
}

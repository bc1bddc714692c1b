/**
 * Motion gate: skip detection on frames that look like the last detected one.
 *
 * A kitchen camera at night or between services shows the same picture for hours; running the
 * models on it is wasted CPU. The gate compares a coarse luma grid (GRID_W x GRID_H samples, a few
 * hundred reads per frame) with the grid of the last frame that went through detection. When the
 * mean absolute difference stays under `threshold` the frame is skipped and the previous
 * detections stand for it, so tracks and rule episodes continue: a worker standing still without a
 * mask is still caught. Every `recheckMs` a frame is detected regardless, which also catches slow
 * changes (a rat under a table moves little between two frames).
 *
 * `stillForMs` says how long the picture has not changed; the pipeline uses it to switch a camera
 * that has been still for a while to keyframes-only decoding (decoding is then the camera's main cost).
 */
export interface MotionGateOptions {
  /** Mean absolute luma difference (0..255) below which a frame counts as still. Default 4. */
  threshold?: number;
  /** Detect at least this often even on a still scene (ms). Default 5000. */
  recheckMs?: number;
}

export interface GateFrame {
  width: number;
  height: number;
  data: Uint8Array;
}

const GRID_W = 32;
const GRID_H = 18;

export class MotionGate {
  private readonly threshold: number;
  private readonly recheckMs: number;
  private ref: Float32Array | null = null;
  private refAt = -Infinity;
  /** Time of the last frame that differed from its reference (or the first frame). */
  private changedAt = -Infinity;
  /** Whether the last frame given to shouldDetect differed from the reference. */
  moved = false;
  private readonly cur = new Float32Array(GRID_W * GRID_H);
  /** Detections of the last detected frame, reused for skipped ones. */
  lastDetections: readonly unknown[] = [];

  constructor(opts: MotionGateOptions = {}) {
    this.threshold = opts.threshold ?? 4;
    this.recheckMs = opts.recheckMs ?? 5000;
  }

  /** True when this frame should go through detection (and becomes the new reference). */
  shouldDetect(frame: GateFrame, ts: number): boolean {
    sampleLuma(frame, this.cur);
    const ref = this.ref;
    let diff = Infinity;
    if (ref) {
      let sum = 0;
      for (let i = 0; i < ref.length; i++) sum += Math.abs(ref[i]! - this.cur[i]!);
      diff = sum / ref.length;
    }
    this.moved = diff >= this.threshold;
    if (this.moved) this.changedAt = ts;
    if (!this.moved && ts - this.refAt < this.recheckMs) return false;
    this.ref = Float32Array.from(this.cur);
    this.refAt = ts;
    return true;
  }

  /** How long (ms, up to `ts`) the picture has not changed; 0 right after a change. */
  stillForMs(ts: number): number {
    return this.changedAt === -Infinity ? 0 : Math.max(0, ts - this.changedAt);
  }

  remember(detections: readonly unknown[]): void {
    this.lastDetections = detections;
  }
}

/** Luma (BT.601) at the centre of each grid cell of an RGB24 frame. */
export function sampleLuma(frame: GateFrame, out: Float32Array): void {
  const { width, height, data } = frame;
  for (let gy = 0; gy < GRID_H; gy++) {
    const y = Math.min(height - 1, Math.floor(((gy + 0.5) * height) / GRID_H));
    for (let gx = 0; gx < GRID_W; gx++) {
      const x = Math.min(width - 1, Math.floor(((gx + 0.5) * width) / GRID_W));
      const o = (y * width + x) * 3;
      out[gy * GRID_W + gx] = 0.299 * data[o]! + 0.587 * data[o + 1]! + 0.114 * data[o + 2]!;
    }
  }
}

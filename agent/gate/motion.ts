/**
 * Motion gate: skip detection on frames that look like the last detected one.
 *
 * A kitchen camera at night or between services shows the same picture for hours; running the
 * models on it is wasted CPU. The gate reduces each frame to a coarse luma grid (GRID_W x GRID_H
 * cells, each the mean of a sparse lattice of pixels inside it: ~15 000 reads for a 640x360 frame)
 * and compares it with the grid of the last frame that went through detection. The frame counts as
 * changed when the mean absolute difference reaches `threshold` (a person walking, lights on) or
 * any one cell's difference reaches `cellThreshold` (a rat crossing the floor: a few percent of one
 * cell). Averaging inside a cell keeps sensor noise far below that. A still frame is skipped and the
 * previous detections stand for it, so tracks and rule episodes continue: a worker standing still
 * without a mask is still caught. Every `recheckMs` a frame is detected regardless (slow changes,
 * a subject that stopped in the picture).
 *
 * `cut` says much of the picture changed at once (a third of the cells by a lot: a new scene, a camera turned, a
 * test camera's next photo): what was tracked before is not what is seen now.
 *
 * `stillForMs` says how long the picture has not changed; the pipeline uses it to switch a camera
 * that has been still for a while to sampling a keyframe now and then (decoding is then the camera's main cost).
 */
export interface MotionGateOptions {
  /** Mean absolute luma difference over the grid (0..255) from which a frame counts as changed. Default 4. */
  threshold?: number;
  /** Luma difference of a single cell (0..255) from which a frame counts as changed. Default 10. */
  cellThreshold?: number;
  /** Detect at least this often even on a still scene (ms). Default 10000. */
  recheckMs?: number;
  /** A cut: at least `cutShare` of the cells that are not black in both frames differ by `cutCellThreshold` or more, however the reference is shifted by up to 2 cells. Defaults 0.3, 24: a new photo of masks/ letterboxed into 960x540 changes 50-81 % of its picture cells (p5-median; 24-40 % of all cells, 14 of 100 changes under 0.3 when the black borders counted); not yet measured on fixed CCTV footage, where a person close to the lens may count as a cut (one extra alert at worst). */
  cutShare?: number;
  cutCellThreshold?: number;
}

export interface GateFrame {
  width: number;
  height: number;
  data: Uint8Array;
}

const GRID_W = 32;
const GRID_H = 18;
/** Mean luma under which a cell is black (letterbox borders decode to 0-2). */
const BLACK = 8;
/**
 * Cells the reference is shifted by, each way, before a change counts as a cut. On the bench's
 * slowly panning footage, frames 1 s apart are a cut at 32 of 59 pairs unshifted and at 9 (its
 * photo changes) with shifts of up to 2 cells; a new masks/ photo stays a cut (100 of 100).
 */
const CUT_SHIFT = 2;

export class MotionGate {
  private readonly threshold: number;
  private readonly cellThreshold: number;
  private readonly recheckMs: number;
  private ref: Float32Array | null = null;
  private refAt = -Infinity;
  /** Time of the last frame that differed from its reference (or the first frame). */
  private changedAt = -Infinity;
  /** Whether the last frame given to shouldDetect differed from the reference. */
  moved = false;
  /** Whether it differed everywhere (a cut). */
  cut = false;
  private readonly cutShare: number;
  private readonly cutCellThreshold: number;
  private readonly cur = new Float32Array(GRID_W * GRID_H);
  /** Detections of the last detected frame, reused for skipped ones. */
  lastDetections: readonly unknown[] = [];

  constructor(opts: MotionGateOptions = {}) {
    this.threshold = opts.threshold ?? 4;
    this.cellThreshold = opts.cellThreshold ?? 10;
    this.recheckMs = opts.recheckMs ?? 10_000;
    this.cutShare = opts.cutShare ?? 0.3;
    this.cutCellThreshold = opts.cutCellThreshold ?? 24;
  }

  /** True when this frame should go through detection (and becomes the new reference). */
  shouldDetect(frame: GateFrame, ts: number): boolean {
    sampleLuma(frame, this.cur);
    const ref = this.ref;
    let moved = true;
    let cut = false;
    if (ref) {
      let sum = 0;
      let max = 0;
      for (let i = 0; i < ref.length; i++) {
        const d = Math.abs(ref[i]! - this.cur[i]!);
        sum += d;
        if (d > max) max = d;
      }
      moved = sum / ref.length >= this.threshold || max >= this.cellThreshold;
      // A picture that moved as a whole (a pan, a shaken camera) is no cut: the least share over
      // shifts of the reference by up to CUT_SHIFT cells decides.
      cut = moved;
      for (let dy = -CUT_SHIFT; cut && dy <= CUT_SHIFT; dy++)
        for (let dx = -CUT_SHIFT; cut && dx <= CUT_SHIFT; dx++) cut = this.changedShare(ref, dx, dy) >= this.cutShare;
    }
    this.moved = moved;
    this.cut = cut;
    if (this.moved) this.changedAt = ts;
    if (!this.moved && ts - this.refAt < this.recheckMs) return false;
    this.ref = Float32Array.from(this.cur);
    this.refAt = ts;
    return true;
  }

  /**
   * Share of the cells that differ by cutCellThreshold or more from the reference shifted by
   * (dx, dy) cells. Black in both is no picture (the borders of a letterboxed one): the share is
   * of the rest, unless that is under a quarter of the cells compared (a dark scene: then of all).
   */
  private changedShare(ref: Float32Array, dx: number, dy: number): number {
    let big = 0;
    let picture = 0;
    let n = 0;
    for (let y = Math.max(0, -dy); y < Math.min(GRID_H, GRID_H - dy); y++)
      for (let x = Math.max(0, -dx); x < Math.min(GRID_W, GRID_W - dx); x++) {
        const r = ref[(y + dy) * GRID_W + x + dx]!;
        const c = this.cur[y * GRID_W + x]!;
        n++;
        if (r >= BLACK || c >= BLACK) picture++;
        if (Math.abs(r - c) >= this.cutCellThreshold) big++;
      }
    return big / (picture >= n / 4 ? picture : n);
  }

  /** How long (ms, up to `ts`) the picture has not changed; 0 right after a change. */
  stillForMs(ts: number): number {
    return this.changedAt === -Infinity ? 0 : Math.max(0, ts - this.changedAt);
  }

  remember(detections: readonly unknown[]): void {
    this.lastDetections = detections;
  }
}

/** Source pixels between two samples of a cell (both axes). */
const STEP = 4;

/** First sample of the span [a, b): half a step in, or `a` when the span is shorter. */
const firstSample = (a: number, b: number): number => Math.min(a + (STEP >> 1), b - 1);

/**
 * Mean luma (BT.601) of each grid cell of an RGB24 frame, from every STEP-th pixel of every STEP-th
 * row inside the cell (at least one sample per cell on tiny frames).
 */
export function sampleLuma(frame: GateFrame, out: Float32Array): void {
  const { width, height, data } = frame;
  for (let gy = 0; gy < GRID_H; gy++) {
    const y0 = Math.floor((gy * height) / GRID_H);
    const y1 = Math.max(y0 + 1, Math.floor(((gy + 1) * height) / GRID_H));
    for (let gx = 0; gx < GRID_W; gx++) {
      const x0 = Math.floor((gx * width) / GRID_W);
      const x1 = Math.max(x0 + 1, Math.floor(((gx + 1) * width) / GRID_W));
      let sum = 0;
      let n = 0;
      for (let y = firstSample(y0, y1); y < y1; y += STEP) {
        const end = (y * width + x1) * 3;
        for (let o = (y * width + firstSample(x0, x1)) * 3; o < end; o += STEP * 3) {
          sum += 0.299 * data[o]! + 0.587 * data[o + 1]! + 0.114 * data[o + 2]!;
          n++;
        }
      }
      out[gy * GRID_W + gx] = sum / n;
    }
  }
}

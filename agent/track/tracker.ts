/**
 * Per-camera multi-object tracker: gives detections stable integer ids across frames.
 *
 * Detection runs at 1-5 fps, so between two frames a walking person can move by more than their
 * own box width and plain IoU matching loses them. Association therefore uses, per label:
 *  - a constant-velocity prediction of each track's box to the current timestamp,
 *  - a pair is admissible when IoU(predicted, detection) >= iouThreshold OR the centre distance,
 *    relative to the boxes' mean side length, is within a gate that widens with the time since the
 *    track was last seen (and the two boxes are of comparable size),
 *  - admissible pairs are matched greedily by cost (1 - IoU + relative distance), lowest first.
 * A track survives missed frames for `maxAgeMs` of wall time (not a frame count, since the frame
 * rate varies) and is then deleted; ids are never reused within one tracker.
 */
import { center, iou, type BoxXYXY } from '../../common/geometry.js';

/** What the tracker needs from a detection; any extra fields (model, ...) are carried through. */
export interface TrackInput {
  label: string;
  score: number;
  box: BoxXYXY;
}

export type Tracked<D extends TrackInput> = D & { trackId: number };

export interface TrackerOptions {
  /** A track not matched for longer than this is deleted (ms). Default 2000. */
  maxAgeMs?: number;
  /** IoU (against the predicted box) that always admits a pair. Default 0.2. */
  iouThreshold?: number;
  /**
   * Centre distance, in units of the boxes' mean side length, that admits a pair one frame apart.
   * It widens by 50 % per second since the track was last seen. Default 1.5.
   */
  maxCenterDist?: number;
  /** Largest ratio between the two boxes' areas for a distance-gated pair. Default 4. */
  maxAreaRatio?: number;
  /** Predict the box with a constant-velocity model. Default true. */
  predict?: boolean;
}

interface Track {
  id: number;
  label: string;
  box: [number, number, number, number];
  /** centre velocity, px per ms */
  vx: number;
  vy: number;
  lastSeen: number;
  hits: number;
}

export interface TrackSnapshot {
  id: number;
  label: string;
  box: [number, number, number, number];
  lastSeen: number;
  hits: number;
}

export class Tracker {
  private readonly maxAgeMs: number;
  private readonly iouThreshold: number;
  private readonly maxCenterDist: number;
  private readonly maxAreaRatio: number;
  private readonly predict: boolean;
  private tracks: Track[] = [];
  private nextId = 1;
  private lastTs: number | null = null;

  constructor(opts: TrackerOptions = {}) {
    this.maxAgeMs = opts.maxAgeMs ?? 2000;
    this.iouThreshold = opts.iouThreshold ?? 0.2;
    this.maxCenterDist = opts.maxCenterDist ?? 1.5;
    this.maxAreaRatio = opts.maxAreaRatio ?? 4;
    this.predict = opts.predict ?? true;
    for (const [k, v] of Object.entries({ maxAgeMs: this.maxAgeMs, iouThreshold: this.iouThreshold, maxCenterDist: this.maxCenterDist, maxAreaRatio: this.maxAreaRatio })) {
      if (!Number.isFinite(v) || v < 0) throw new Error(`Tracker option ${k} must be a non-negative number, got ${v}`);
    }
  }

  /**
   * Associates one frame's detections with the live tracks. Returns new objects (the input is not
   * mutated), in input order, each with its `trackId`. `ts` is the frame time in ms; a timestamp
   * earlier than the previous one (camera reconnect, clock step) is treated as no time passing.
   */
  update<D extends TrackInput>(detections: readonly D[], ts: number): Tracked<D>[] {
    if (!Number.isFinite(ts)) throw new Error(`Tracker.update: timestamp must be a finite number of ms, got ${ts}`);
    const now = this.lastTs !== null && ts < this.lastTs ? this.lastTs : ts;
    this.lastTs = now;

    // Expire tracks first so that a long-gone track cannot grab a new object.
    this.tracks = this.tracks.filter((t) => now - t.lastSeen <= this.maxAgeMs);

    const assigned = new Array<number>(detections.length).fill(-1);
    const pairs: { cost: number; t: number; d: number }[] = [];
    for (let ti = 0; ti < this.tracks.length; ti++) {
      const t = this.tracks[ti]!;
      const dt = now - t.lastSeen;
      const p = this.predicted(t, dt);
      const gate = this.maxCenterDist * (1 + (0.5 * dt) / 1000);
      for (let di = 0; di < detections.length; di++) {
        const d = detections[di]!;
        if (d.label !== t.label) continue;
        const ov = iou(p, d.box);
        const dist = relDistance(p, d.box);
        const ar = areaRatio(p, d.box);
        const admissible = ov >= this.iouThreshold || (dist <= gate && ar <= this.maxAreaRatio);
        if (!admissible) continue;
        pairs.push({ cost: 1 - ov + dist, t: ti, d: di });
      }
    }
    pairs.sort((a, b) => a.cost - b.cost);
    const trackUsed = new Array<boolean>(this.tracks.length).fill(false);
    for (const p of pairs) {
      if (trackUsed[p.t] || assigned[p.d] !== -1) continue;
      trackUsed[p.t] = true;
      assigned[p.d] = p.t;
    }

    const out: Tracked<D>[] = [];
    for (let di = 0; di < detections.length; di++) {
      const d = detections[di]!;
      const ti = assigned[di]!;
      let id: number;
      if (ti >= 0) {
        const t = this.tracks[ti]!;
        this.observe(t, d.box, now);
        id = t.id;
      } else {
        const t: Track = { id: this.nextId++, label: d.label, box: [...d.box], vx: 0, vy: 0, lastSeen: now, hits: 1 };
        this.tracks.push(t);
        id = t.id;
      }
      out.push({ ...d, trackId: id });
    }
    return out;
  }

  /** Live tracks (for status pages and tests). */
  get tracksSnapshot(): TrackSnapshot[] {
    return this.tracks.map((t) => ({ id: t.id, label: t.label, box: [...t.box], lastSeen: t.lastSeen, hits: t.hits }));
  }

  get size(): number {
    return this.tracks.length;
  }

  reset(): void {
    this.tracks = [];
    this.lastTs = null;
  }

  private predicted(t: Track, dt: number): [number, number, number, number] {
    if (!this.predict || t.hits < 2) return t.box;
    const h = Math.min(dt, this.maxAgeMs);
    const dx = t.vx * h;
    const dy = t.vy * h;
    return [t.box[0] + dx, t.box[1] + dy, t.box[2] + dx, t.box[3] + dy];
  }

  private observe(t: Track, box: BoxXYXY, now: number): void {
    const dt = now - t.lastSeen;
    if (dt > 0) {
      const [cx0, cy0] = center(t.box);
      const [cx1, cy1] = center(box);
      const vx = (cx1 - cx0) / dt;
      const vy = (cy1 - cy0) / dt;
      // First velocity estimate is taken as is; later ones are smoothed against detector jitter.
      const a = t.hits < 2 ? 1 : 0.6;
      t.vx = a * vx + (1 - a) * t.vx;
      t.vy = a * vy + (1 - a) * t.vy;
    }
    t.box = [box[0], box[1], box[2], box[3]];
    t.lastSeen = now;
    t.hits++;
  }
}

/** Centre distance in units of the two boxes' mean side length. */
function relDistance(a: BoxXYXY, b: BoxXYXY): number {
  const [ax, ay] = center(a);
  const [bx, by] = center(b);
  const side = (a[2] - a[0] + (a[3] - a[1]) + (b[2] - b[0]) + (b[3] - b[1])) / 4;
  if (side <= 0) return Infinity;
  return Math.hypot(ax - bx, ay - by) / side;
}

function areaRatio(a: BoxXYXY, b: BoxXYXY): number {
  const aa = Math.max(1e-9, (a[2] - a[0]) * (a[3] - a[1]));
  const bb = Math.max(1e-9, (b[2] - b[0]) * (b[3] - b[1]));
  return aa > bb ? aa / bb : bb / aa;
}

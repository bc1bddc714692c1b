/**
 * Per-track agreement for head attributes: turns the classifier's head crops (label `head` with
 * `attributes`, agent/detect/classifier.ts) into the labels the rules act on, once a track's recent
 * crops agree.
 *
 * Each frame a head is detected adds one look per attribute (probability >= threshold or not) to its
 * track's window of the last `window` looks. The attribute is believed when the window holds at least
 * `minLooks` looks and at least `agreement` of them say the same; then the head is reported as the
 * attribute's `positive` label (chef_hat, cigarette, masked_face) or its `negative` one (head = bare
 * head, face = bare face), with the head's box and track id, so the rules' persistence and cooldown
 * follow the worker. Until then nothing is reported for it, and a belief changes only when the
 * window decides otherwise: one blurred crop neither raises nor clears an alert. Deployed systems use
 * 3 looks and ~60 %; a still image is one look (`minLooks: 1`, or judgeOnce).
 *
 * Frames the motion gate skips repeat the last detections (`fresh: false`): they are not new looks.
 * The picture is still then, so the crops would not differ either; a track with no belief yet takes
 * its looks as they are (one is enough), so a worker standing still is judged as a still photo is
 * instead of waiting for motion that never comes.
 */
import type { HeadAttribute } from '../detect/types.js';
import type { Tracked, TrackInput } from './tracker.js';

export interface VoteOptions {
  /** Looks kept per track and attribute. Default 5. */
  window?: number;
  /** Looks needed before anything is believed. Default 3. */
  minLooks?: number;
  /** Share of the window that must agree. Default 0.6. */
  agreement?: number;
  /** A track not seen for this long is forgotten (ms). Default 10000. */
  forgetMs?: number;
}

interface HeadInput extends TrackInput {
  attributes?: HeadAttribute[];
}

interface Votes {
  looks: Map<string, boolean[]>;
  believed: Map<string, boolean>;
  /** Probabilities of the looks, for the reported score. */
  probs: Map<string, number[]>;
  lastSeen: number;
}

export class AttributeVoter {
  private readonly window: number;
  private readonly minLooks: number;
  private readonly agreement: number;
  private readonly forgetMs: number;
  private readonly tracks = new Map<number, Votes>();

  constructor(opts: VoteOptions = {}) {
    this.window = opts.window ?? 5;
    this.minLooks = opts.minLooks ?? 3;
    this.agreement = opts.agreement ?? 0.6;
    this.forgetMs = opts.forgetMs ?? 10_000;
    if (!(this.minLooks >= 1 && this.minLooks <= this.window)) throw new Error(`AttributeVoter: minLooks ${this.minLooks} must be between 1 and window ${this.window}`);
    if (!(this.agreement > 0.5 && this.agreement <= 1)) throw new Error(`AttributeVoter: agreement ${this.agreement} must be in (0.5, 1]`);
  }

  /**
   * Replace every head with the labels its track's votes support; other detections pass through.
   * `fresh`: these detections come from a new inference (false when the motion gate repeats the last ones).
   */
  update<D extends HeadInput>(tracked: readonly Tracked<D>[], now: number, fresh = true): Tracked<D>[] {
    const out: Tracked<D>[] = [];
    for (const d of tracked) {
      if (!d.attributes) {
        out.push(d);
        continue;
      }
      let v = this.tracks.get(d.trackId);
      if (!v) this.tracks.set(d.trackId, (v = { looks: new Map(), believed: new Map(), probs: new Map(), lastSeen: now }));
      v.lastSeen = now;
      for (const a of d.attributes) {
        const looks = v.looks.get(a.name) ?? [];
        const probs = v.probs.get(a.name) ?? [];
        if (fresh || looks.length === 0) {
          looks.push(a.p >= a.threshold);
          probs.push(a.p);
          if (looks.length > this.window) {
            looks.shift();
            probs.shift();
          }
          v.looks.set(a.name, looks);
          v.probs.set(a.name, probs);
        }
        const decided = this.belief(looks, fresh ? this.minLooks : 1);
        if (decided !== undefined) v.believed.set(a.name, decided);
        const belief = v.believed.get(a.name);
        if (belief === undefined) continue;
        const label = belief ? a.positive : a.negative;
        if (!label) continue;
        const mean = probs.reduce((s, p) => s + p, 0) / probs.length;
        out.push({ ...d, label, score: belief ? mean : 1 - mean, attributes: undefined });
      }
    }
    for (const [id, v] of this.tracks) if (now - v.lastSeen > this.forgetMs) this.tracks.delete(id);
    return out;
  }

  /** true / false when enough looks agree, undefined while they do not. */
  private belief(looks: readonly boolean[], minLooks: number): boolean | undefined {
    if (looks.length < minLooks) return undefined;
    const yes = looks.filter(Boolean).length;
    if (yes >= this.agreement * looks.length) return true;
    if (looks.length - yes >= this.agreement * looks.length) return false;
    return undefined;
  }
}

/**
 * A still image: every head judged on its one crop (probability >= threshold), reported like a
 * believed track (the `positive` or `negative` label per attribute); other detections pass through.
 */
export function judgeOnce<D extends HeadInput>(dets: readonly D[]): D[] {
  const out: D[] = [];
  for (const d of dets) {
    if (!d.attributes) {
      out.push(d);
      continue;
    }
    for (const a of d.attributes) {
      const yes = a.p >= a.threshold;
      const label = yes ? a.positive : a.negative;
      if (label) out.push({ ...d, label, score: yes ? a.p : 1 - a.p, attributes: undefined });
    }
  }
  return out;
}

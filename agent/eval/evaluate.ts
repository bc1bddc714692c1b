/**
 * Detection metrics over a labelled image set: per label (and per label group, matched
 * class-agnostically) precision and recall at the operating point, average precision over the
 * ranked detections, and for groups the share of matches whose label is right (mask / no mask).
 */
import { iou } from '../../common/geometry.js';
import type { GroundTruth } from './datasets.js';
import type { Detection } from '../detect/types.js';

export interface EvalImage {
  gt: GroundTruth[];
  /** Every detection down to a low score floor (for AP); `operating` marks those the pipeline reports. */
  detections: (Detection & { operating: boolean })[];
}

export interface EvalTarget {
  /** "face" or, for a group, "face+masked_face". */
  name: string;
  labels: string[];
}

export interface Metric {
  name: string;
  labels: string[];
  iou: number;
  /** Ground-truth objects (not difficult). */
  gt: number;
  /** At the operating point. */
  tp: number;
  fp: number;
  fn: number;
  precision: number;
  recall: number;
  /** Average precision (all-point interpolation) over all detections down to the score floor. */
  ap: number;
  /** Groups only: matched objects whose label is right, and their share. */
  labelCorrect?: number;
  labelAccuracy?: number;
  /** Recall at the operating point by object size (COCO areas in the image's pixels). */
  bySize: SizeRecall[];
}

/** COCO's object sizes: small < 32², medium < 96², large above (area in the image's own pixels). */
export const SIZES = [
  { size: 'small', maxArea: 32 * 32 },
  { size: 'medium', maxArea: 96 * 96 },
  { size: 'large', maxArea: Infinity },
] as const;
export type SizeName = (typeof SIZES)[number]['size'];
export interface SizeRecall {
  size: SizeName;
  gt: number;
  tp: number;
  recall: number;
}

export function sizeOf(box: readonly [number, number, number, number]): SizeName {
  const area = Math.max(0, box[2] - box[0]) * Math.max(0, box[3] - box[1]);
  return SIZES.find((s) => area < s.maxArea)!.size;
}

interface MatchResult {
  /** Per detection, best first: true positive, false positive, or ignored (matched a difficult / unmapped object). */
  ranked: { score: number; tp: boolean }[];
  labelCorrect: number;
  tp: number;
  fp: number;
  /** Per image, the ground-truth objects matched by a detection. */
  matched: Uint8Array[];
}

function match(images: EvalImage[], t: EvalTarget, thr: number, operatingOnly: boolean): MatchResult {
  const want = new Set(t.labels);
  const all: { img: number; det: Detection }[] = [];
  images.forEach((im, i) => {
    for (const d of im.detections) if (want.has(d.label) && (!operatingOnly || d.operating)) all.push({ img: i, det: d });
  });
  all.sort((a, b) => b.det.score - a.det.score);
  const used = images.map((im) => new Uint8Array(im.gt.length));
  const ranked: MatchResult['ranked'] = [];
  let labelCorrect = 0;
  let tp = 0;
  let fp = 0;
  for (const { img, det } of all) {
    const gts = images[img]!.gt;
    let best = -1;
    let bestIou = thr;
    let ignored = false;
    for (let j = 0; j < gts.length; j++) {
      const g = gts[j]!;
      const o = iou(det.box, g.box);
      if (o < thr) continue;
      // Difficult or unmapped objects: a detection on them is neither right nor wrong.
      if (g.difficult || g.label === undefined) {
        ignored = true;
        continue;
      }
      if (!want.has(g.label) || used[img]![j]) continue;
      if (o >= bestIou) {
        bestIou = o;
        best = j;
      }
    }
    if (best >= 0) {
      used[img]![best] = 1;
      tp++;
      if (gts[best]!.label === det.label) labelCorrect++;
      ranked.push({ score: det.score, tp: true });
    } else if (!ignored) {
      fp++;
      ranked.push({ score: det.score, tp: false });
    }
  }
  return { ranked, labelCorrect, tp, fp, matched: used };
}

function recallBySize(images: EvalImage[], want: Set<string>, matched: Uint8Array[]): SizeRecall[] {
  const counts = new Map<SizeName, { gt: number; tp: number }>(SIZES.map((s) => [s.size, { gt: 0, tp: 0 }]));
  images.forEach((im, i) =>
    im.gt.forEach((g, j) => {
      if (g.difficult || g.label === undefined || !want.has(g.label)) return;
      const c = counts.get(sizeOf(g.box))!;
      c.gt++;
      c.tp += matched[i]![j]!;
    }),
  );
  return [...counts].map(([size, c]) => ({ size, ...c, recall: c.gt > 0 ? c.tp / c.gt : 0 }));
}

/** All-point interpolated average precision (VOC 2010+). */
export function averagePrecision(ranked: readonly { tp: boolean }[], nGt: number): number {
  if (nGt === 0) return 0;
  const prec: number[] = [];
  const rec: number[] = [];
  let tp = 0;
  ranked.forEach((r, i) => {
    if (r.tp) tp++;
    prec.push(tp / (i + 1));
    rec.push(tp / nGt);
  });
  for (let i = prec.length - 2; i >= 0; i--) prec[i] = Math.max(prec[i]!, prec[i + 1]!);
  let ap = 0;
  let prevR = 0;
  for (let i = 0; i < prec.length; i++) {
    if (rec[i]! > prevR) {
      ap += (rec[i]! - prevR) * prec[i]!;
      prevR = rec[i]!;
    }
  }
  return ap;
}

export function evaluate(images: EvalImage[], targets: EvalTarget[], iouThresholds: number[]): Metric[] {
  const out: Metric[] = [];
  for (const t of targets) {
    const want = new Set(t.labels);
    const nGt = images.reduce((s, im) => s + im.gt.filter((g) => !g.difficult && g.label !== undefined && want.has(g.label)).length, 0);
    for (const thr of iouThresholds) {
      const full = match(images, t, thr, false);
      const op = match(images, t, thr, true);
      const m: Metric = {
        name: t.name,
        labels: t.labels,
        iou: thr,
        gt: nGt,
        tp: op.tp,
        fp: op.fp,
        fn: nGt - op.tp,
        precision: op.tp + op.fp > 0 ? op.tp / (op.tp + op.fp) : 0,
        recall: nGt > 0 ? op.tp / nGt : 0,
        ap: averagePrecision(full.ranked, nGt),
        bySize: recallBySize(images, want, op.matched),
      };
      if (t.labels.length > 1) {
        m.labelCorrect = op.labelCorrect;
        m.labelAccuracy = op.tp > 0 ? op.labelCorrect / op.tp : 0;
      }
      out.push(m);
    }
  }
  return out;
}

/** Per-label targets plus groups of related labels (face + masked_face) when both are evaluated. */
export function defaultTargets(labels: Iterable<string>): EvalTarget[] {
  const ls = [...new Set(labels)].sort();
  const targets: EvalTarget[] = ls.map((l) => ({ name: l, labels: [l] }));
  if (ls.includes('face') && ls.includes('masked_face')) targets.unshift({ name: 'face+masked_face', labels: ['face', 'masked_face'] });
  return targets;
}

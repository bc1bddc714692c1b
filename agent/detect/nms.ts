/** Greedy non-maximum suppression, per label (or across labels). */
import { iou } from '../../common/geometry.js';
import type { BoxXYXY } from './types.js';

export interface Scored {
  label: string;
  score: number;
  box: BoxXYXY;
}

/**
 * Keep the best-scoring box, drop every box of the same label (any label when `classAgnostic`)
 * overlapping it by IoU > `iouThreshold`, repeat. Returns the kept items, best first.
 */
export function nms<T extends Scored>(items: readonly T[], iouThreshold: number, classAgnostic = false): T[] {
  const sorted = [...items].sort((a, b) => b.score - a.score);
  const kept: T[] = [];
  const suppressed = new Uint8Array(sorted.length);
  for (let i = 0; i < sorted.length; i++) {
    if (suppressed[i]) continue;
    const a = sorted[i]!;
    kept.push(a);
    for (let j = i + 1; j < sorted.length; j++) {
      if (suppressed[j]) continue;
      const b = sorted[j]!;
      if (!classAgnostic && b.label !== a.label) continue;
      if (iou(a.box, b.box) > iouThreshold) suppressed[j] = 1;
    }
  }
  return kept;
}

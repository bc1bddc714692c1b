/** Greedy NMS, per label and class-agnostic. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { iou } from '../../common/geometry.js';
import { nms, type Scored } from '../../agent/detect/nms.js';

const d = (label: string, score: number, box: [number, number, number, number]): Scored => ({ label, score, box });

describe('nms', () => {
  it('keeps the best box, drops same-label boxes above the IoU threshold, keeps other labels', () => {
    const items = [
      d('face', 0.6, [1, 0, 11, 10]), // IoU 0.818 with the 0.9 face → dropped
      d('face', 0.9, [0, 0, 10, 10]),
      d('masked_face', 0.8, [0, 0, 10, 10]), // other label → kept
      d('face', 0.7, [20, 20, 30, 30]), // no overlap → kept
      d('face', 0.5, [5, 0, 15, 10]), // IoU 0.333 with the 0.9 face → kept at 0.45
    ];
    expect(nms(items, 0.45).map((x) => [x.label, x.score])).toEqual([
      ['face', 0.9],
      ['masked_face', 0.8],
      ['face', 0.7],
      ['face', 0.5],
    ]);
    expect(nms(items, 0.3).map((x) => x.score)).toEqual([0.9, 0.8, 0.7]);
  });

  it('class-agnostic: one box per object whatever the label', () => {
    const items = [d('face', 0.85, [0, 0, 10, 10]), d('masked_face', 0.9, [0, 0, 10, 11])];
    expect(nms(items, 0.3, true).map((x) => x.label)).toEqual(['masked_face']);
  });

  it('a box suppressed by a suppressed box can survive (greedy, not transitive)', () => {
    const items = [d('a', 0.9, [0, 0, 10, 10]), d('a', 0.8, [4, 0, 14, 10]), d('a', 0.7, [8, 0, 18, 10])];
    // 0.8 overlaps 0.9 by 0.43 → dropped; 0.7 overlaps 0.9 by 0.11 → kept
    expect(nms(items, 0.4).map((x) => x.score)).toEqual([0.9, 0.7]);
  });

  it('property: kept boxes of one label never overlap above the threshold; every dropped box overlaps a better kept one', () => {
    const box = fc
      .tuple(fc.integer({ min: 0, max: 50 }), fc.integer({ min: 0, max: 50 }), fc.integer({ min: 1, max: 30 }), fc.integer({ min: 1, max: 30 }))
      .map(([x, y, w, h]) => [x, y, x + w, y + h] as [number, number, number, number]);
    const item = fc.record({ label: fc.constantFrom('a', 'b'), score: fc.double({ min: 0, max: 1, noNaN: true }), box });
    fc.assert(
      fc.property(fc.array(item, { maxLength: 40 }), fc.double({ min: 0.1, max: 0.9, noNaN: true }), (items, thr) => {
        const kept = nms(items, thr);
        for (let i = 0; i < kept.length; i++) {
          if (i > 0) expect(kept[i]!.score).toBeLessThanOrEqual(kept[i - 1]!.score);
          for (let j = i + 1; j < kept.length; j++)
            if (kept[i]!.label === kept[j]!.label) expect(iou(kept[i]!.box, kept[j]!.box)).toBeLessThanOrEqual(thr);
        }
        for (const x of items)
          if (!kept.includes(x)) expect(kept.some((k) => k.label === x.label && k.score >= x.score && iou(k.box, x.box) > thr)).toBe(true);
      }),
    );
  });
});

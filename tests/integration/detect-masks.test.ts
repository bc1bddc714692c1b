/**
 * Real models on real images: the face-mask evaluation targets on ../shared/data/masks, and the
 * pipeline against reference numbers from an independent Python pipeline (cv2 + onnxruntime).
 */
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runEval, type EvalReport } from '../../agent/cli/eval.js';
import { DEFAULT_PACK, loadImage, ModelPack, REPO_ROOT } from '../../agent/detect/index.js';
import { iou } from '../../common/geometry.js';
import { installModels } from '../../scripts/install-models.js';

const DATA = path.resolve(REPO_ROOT, '../shared/data');

beforeAll(async () => {
  await installModels();
});

describe('eval on ../shared/data/masks', () => {
  let report: EvalReport;
  beforeAll(async () => {
    report = await runEval({ dir: path.join(DATA, 'masks'), iou: [0.3, 0.5], floor: 0.05 });
  }, 120_000);

  it('counts the dataset and runs only the face model', () => {
    expect(report.dataset).toMatchObject({ format: 'voc', images: 101, objects: { face: 47, masked_face: 65 } });
    expect(report.models).toEqual([{ name: 'rfb640_masked_face', minScore: 0.5 }]);
  });

  it('faces at IoU 0.3: recall >= 0.72, precision >= 0.95, mask / no-mask label accuracy >= 95%', () => {
    const g = report.metrics.find((m) => m.name === 'face+masked_face' && m.iou === 0.3)!;
    expect(g.gt).toBe(112);
    expect(g.recall).toBeGreaterThanOrEqual(0.72);
    expect(g.precision).toBeGreaterThanOrEqual(0.95);
    expect(g.labelAccuracy!).toBeGreaterThanOrEqual(0.95);
    expect(g.ap).toBeGreaterThan(0.7);
  });
});

describe('pipeline vs an independent reference (cv2.resize + onnxruntime in Python)', () => {
  let pack: ModelPack;
  beforeAll(async () => {
    pack = await ModelPack.load({ pack: DEFAULT_PACK, threads: 1 });
  });
  afterAll(() => pack.close());

  const near = (dets: { label: string; score: number; box: number[] }[], label: string, score: number, box: number[]) =>
    dets.some((d) => d.label === label && Math.abs(d.score - score) < 0.03 && iou(d.box as never, box as never) > 0.95);

  it('yolox_nano (letterbox top-left, BGR 0..255) on a COCO photo', async () => {
    const dets = await pack.detect(await loadImage(path.join(DATA, 'coco-sample/000000001000.jpg')));
    // Reference: best boxes after obj*cls > 0.3 (source pixels).
    expect(near(dets, 'person', 0.89, [261, 91, 357, 423])).toBe(true);
    expect(near(dets, 'person', 0.87, [511, 191, 639, 472])).toBe(true);
    expect(dets.every((d) => d.box[0] >= 0 && d.box[1] >= 0 && d.box[2] <= 640 && d.box[3] <= 480)).toBe(true);
  });

  it('rfb640_masked_face (stretch, RGB, (v-127)/128) on a 16-bit RGBA PNG', async () => {
    const dets = await pack.detect(await loadImage(path.join(DATA, 'masks/images/maksssksksss66.png')));
    expect(near(dets, 'masked_face', 0.992, [177.5, 75.3, 268.3, 169.9])).toBe(true);
    expect(dets.filter((d) => d.label === 'face')).toEqual([]);
  });
});

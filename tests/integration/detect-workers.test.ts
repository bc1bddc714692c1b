/** WorkerPack: the same detections as ModelPack, computed in worker threads (one per model). */
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_PACK, loadImage, ModelPack, type RgbImage } from '../../agent/detect/index.js';
import { WorkerPack } from '../../agent/detect/workers.js';

const BARE_FACE = path.resolve(__dirname, '../../../shared/data/masks/images/11-photo.jpg');

describe('WorkerPack', () => {
  let img: RgbImage;
  let workers: WorkerPack;
  let pack: ModelPack;
  beforeAll(async () => {
    img = await loadImage(BARE_FACE);
    [workers, pack] = await Promise.all([WorkerPack.load({ pack: DEFAULT_PACK, threads: 1 }), ModelPack.load({ pack: DEFAULT_PACK, threads: 1 })]);
  });
  afterAll(async () => {
    await Promise.all([workers?.close(), pack?.close()]);
  });

  it('returns what ModelPack returns, in pack order, also for overlapping calls', async () => {
    const expected = await pack.detect(img);
    expect(expected.some((d) => d.label === 'face')).toBe(true);
    expect(workers.models).toEqual([...pack.models.map((m) => m.name), pack.classifier!.name]);
    const [a, b] = await Promise.all([workers.detect(img), workers.detect(img)]);
    for (const got of [a, b]) {
      expect(got.map((d) => [d.model, d.label])).toEqual(expected.map((d) => [d.model, d.label]));
      got.forEach((d, i) => expect(d.score).toBeCloseTo(expected[i]!.score, 5));
    }
  });

  it('runs only the models that can produce a wanted label (both packs)', async () => {
    expect(workers.models).toEqual(['rfb640_masked_face', 'yolox_nano', 'rodent_yolox', 'head_attrs']);
    // faces (no_mask) bring the people a close-up look needs (models/head_attrs.md), unless it is off
    expect(workers.modelsFor(new Set(['face']))).toEqual(['rfb640_masked_face', 'yolox_nano']);
    // the head cascade needs its detectors: faces and people, then the classifier
    expect(workers.modelsFor(new Set(['cigarette']))).toEqual(['rfb640_masked_face', 'yolox_nano', 'head_attrs']);
    expect(workers.modelsFor(new Set(['rodent', 'cat']))).toEqual(['yolox_nano', 'rodent_yolox']);
    for (const p of [workers, pack]) {
      const faces = await p.detect(img, { labels: new Set(['face']), closeUp: false });
      expect(faces.length).toBeGreaterThan(0);
      expect(new Set(faces.map((d) => d.model))).toEqual(new Set(['rfb640_masked_face']));
      expect(await p.detect(img, { labels: new Set() })).toEqual([]);
    }
  });

  it('rejects a bad image with a clear error and keeps working', async () => {
    await expect(workers.detect({ width: 10, height: 10, data: new Uint8Array(5) })).rejects.toThrow(/expected 300 bytes/);
    expect((await workers.detect(img)).length).toBeGreaterThan(0);
  });

  it('fails to load with the model error', async () => {
    await expect(WorkerPack.load({ pack: [{ manifest: 'no_such_model' }] })).rejects.toThrow(/no_such_model/);
  });
});

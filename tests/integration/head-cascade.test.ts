/**
 * The head cascade on real images with the real models: face and person boxes → head crops → the
 * project's head classifier (models/head_attrs.onnx) → labels the rules act on.
 */
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parse, stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_MANIFESTS_DIR, DEFAULT_PACK, loadImage, ModelPack, REPO_ROOT, type Detection } from '../../agent/detect/index.js';
import { WorkerPack } from '../../agent/detect/workers.js';
import { evaluateStill } from '../../agent/rules/index.js';
import { judgeOnce } from '../../agent/track/attributes.js';
import { installModels } from '../../scripts/install-models.js';
import { tempDir } from '../unit/detect-fixtures.js';

const DATA = path.resolve(REPO_ROOT, '../shared/data');
const KITCHEN = path.join(DATA, 'hats/kitchen/images');
// Looked at: bare-headed cooks (kitchenB), chefs who all wear toques (kitchenA), a smoker from the
// smoking set's val split (never trained on), a bare face with no cigarette.
export const BARE_FRAMES = ['kitchenB_000480.jpg', 'kitchenB_004110.jpg'].map((f) => path.join(KITCHEN, f));
export const HAT_FRAMES = ['kitchenA_000870.jpg', 'kitchenA_006150.jpg'].map((f) => path.join(KITCHEN, f));
const SMOKER = path.join(DATA, 'smoking/images/val', '000118_jpg.rf.48626c4208990f7ad2916cb1128a1368.jpg');
const NO_SMOKE = path.join(DATA, 'masks/images/11-photo.jpg');

let pack: ModelPack;

beforeAll(async () => {
  await installModels();
  pack = await ModelPack.load({ pack: DEFAULT_PACK, threads: 2 });
});
afterAll(async () => {
  await pack?.close();
});

async function still(file: string): Promise<{ dets: Detection[]; kinds: string[] }> {
  const img = await loadImage(file);
  const dets = await pack.detect(img);
  return { dets, kinds: evaluateStill(judgeOnce(dets), img).map((v) => v.kind) };
}

describe('head cascade (default pack)', () => {
  it('bare-headed cooks raise no_hat on their head boxes; chefs in toques raise none', async () => {
    for (const f of BARE_FRAMES) {
      const { dets, kinds } = await still(f);
      const heads = dets.filter((d) => d.attributes);
      expect(heads.length, f).toBeGreaterThan(0);
      expect(heads.every((h) => h.label === 'head' && h.model === 'head_attrs' && (h.source === 'face' || h.source === 'person')), f).toBe(true);
      expect(kinds, f).toContain('no_hat');
    }
    for (const f of HAT_FRAMES) {
      const { dets, kinds } = await still(f);
      expect(dets.some((d) => d.attributes), f).toBe(true);
      expect(kinds, f).not.toContain('no_hat');
      expect(judgeOnce(dets).some((d) => d.label === 'chef_hat'), f).toBe(true);
    }
  });

  it('a person smoking raises smoking, tied to a head box; a bare face without one does not', async () => {
    const smoker = await still(SMOKER);
    expect(smoker.kinds).toContain('smoking');
    const cig = judgeOnce(smoker.dets).find((d) => d.label === 'cigarette')!;
    expect(smoker.dets.some((d) => d.attributes && d.box.every((v, i) => v === cig.box[i]))).toBe(true);
    expect((await still(NO_SMOKE)).kinds).not.toContain('smoking');
  });

  it('a selfie close-up whose face is too large for the face model raises no_mask through the close-up look, in both packs', async () => {
    // looked at: one young man filling the photo, no mask; the face model alone finds no face
    const file = path.join(DATA, 'masks/images/maksssksksss299.png');
    const img = await loadImage(file);
    expect((await pack.model('rfb640_masked_face').infer(img)).filter((d) => d.label === 'face')).toEqual([]);
    const { dets, kinds } = await still(file);
    const face = dets.find((d) => d.label === 'face')!;
    expect(face.box[0]).toBeLessThan(120); // on his face (x 55-180, y 130-320 of 301 x 400)
    expect(face.box[3]).toBeGreaterThan(250);
    expect(kinds).toContain('no_mask');
    const workers = await WorkerPack.load({ pack: DEFAULT_PACK, threads: 1 });
    try {
      expect((await workers.detect(img)).filter((d) => d.label === 'face').map((d) => d.box)).toEqual([face.box]);
    } finally {
      await workers.close();
    }
  });

  it('a face so close that the person model sees no person raises no_mask through the faceless look (closeUp.faceHeight)', async () => {
    // looked at: a young woman with glasses in a dim room, no mask; neither the face nor the person model sees her
    const file = path.join(DATA, 'masks/images/u11-photo.jpg');
    const img = await loadImage(file);
    expect((await pack.model('rfb640_masked_face').infer(img)).filter((d) => d.label === 'face')).toEqual([]);
    const { dets, kinds } = await still(file);
    expect(dets.filter((d) => d.label === 'person')).toEqual([]);
    const face = dets.find((d) => d.label === 'face')!;
    expect(face.box[2]).toBeLessThan(130); // on her face (x 30-110, y 50-140 of 240 x 240)
    expect(face.box[3] - face.box[1]).toBeGreaterThan(0.25 * 240);
    expect(kinds).toContain('no_mask');
  });

  it('the worker pack reports the same heads as the in-thread pack', async () => {
    const workers = await WorkerPack.load({ pack: DEFAULT_PACK, threads: 1 });
    try {
      const img = await loadImage(BARE_FRAMES[0]!);
      const [a, b] = await Promise.all([workers.detect(img), pack.detect(img)]);
      const heads = (ds: Detection[]) => ds.filter((d) => d.attributes).map((d) => ({ box: d.box, p: d.attributes!.map((x) => Number(x.p.toFixed(4))) }));
      expect(heads(a)).toEqual(heads(b));
      expect(heads(a).length).toBeGreaterThan(0);
    } finally {
      await workers.close();
    }
  });
});

describe('head classifier errors name the file and the field', () => {
  const manifest = () => parse(readFileSync(path.join(DEFAULT_MANIFESTS_DIR, 'head_attrs.model.yaml'), 'utf8')) as Record<string, unknown>;
  function folder(edit: (m: Record<string, unknown>) => void): string {
    const dir = tempDir('bk-cls-');
    for (const f of ['rfb640_masked_face.model.yaml', 'yolox_nano.model.yaml']) copyFileSync(path.join(DEFAULT_MANIFESTS_DIR, f), path.join(dir, f));
    copyFileSync(path.join(DEFAULT_MANIFESTS_DIR, 'head_attrs.onnx'), path.join(dir, 'head_attrs.onnx'));
    const m = manifest();
    edit(m);
    writeFileSync(path.join(dir, 'head_attrs.model.yaml'), stringify(m));
    return dir;
  }
  const load = (dir: string, refs = [{ manifest: 'rfb640_masked_face' }, { manifest: 'head_attrs' }]) => ModelPack.load({ pack: refs, manifests: dir, threads: 1 });

  it('an attribute column the model does not have', async () => {
    const dir = folder((m) => ((m.attributes as { index: number }[])[1]!.index = 7));
    await expect(load(dir)).rejects.toThrow(/head_attrs\.model\.yaml does not match .*head_attrs\.onnx: output "probs" has 3 columns, attributes\[\]\.index goes up to 7/);
  });

  it('an output name the model does not have, a column used twice', async () => {
    await expect(load(folder((m) => ((m.decoder as { output: string }).output = 'scores')))).rejects.toThrow(/decoder\.output "scores" not found \(model outputs: probs\)/);
    await expect(load(folder((m) => ((m.attributes as { index: number }[])[2]!.index = 0)))).rejects.toThrow(/head_attrs\.model\.yaml: attributes\[2\]\.index: output column 0 is used twice/);
  });

  it('a classifier with no detector to cut its crops from', async () => {
    await expect(load(folder(() => {}), [{ manifest: 'head_attrs' }])).rejects.toThrow(/classifier "head_attrs" cuts its crops from face, masked_face, person, which no detector of the pack produces/);
  });
});

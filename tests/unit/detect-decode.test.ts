/**
 * Decoders end to end through a real onnxruntime session: tiny ONNX graphs whose outputs are
 * constants we wrote, so every expected box (mapped back to source pixels) is known exactly.
 */
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadDetectorManifest, loadManifest, Model, ModelLoadError, type Detection } from '../../agent/detect/index.js';
import { constantModel, sha256, solidImage, tempDir, writeBundled } from './detect-fixtures.js';

const dir = tempDir();
const loaded: Model[] = [];
afterAll(async () => {
  await Promise.all(loaded.map((m) => m.release()));
});

async function load(manifestFile: string): Promise<Model> {
  const m = await Model.load(loadDetectorManifest(manifestFile), { modelsDir: '/nonexistent', threads: 1 });
  loaded.push(m);
  return m;
}

const round = (d: Detection[]) => d.map((x) => ({ label: x.label, score: +x.score.toFixed(5), box: x.box.map((v) => +v.toFixed(4)) }));

const input = (w: number, h: number, extra: Record<string, unknown> = {}) => ({
  name: 'images',
  width: w,
  height: h,
  layout: 'NCHW',
  colorOrder: 'RGB',
  resize: { mode: 'letterbox', align: 'top-left', pad: 114 },
  ...extra,
});

describe('yolov5 decoder', () => {
  // 64x64 input, letterbox top-left; a 128x64 source has r = 0.5 (content 64x32): source = input * 2.
  const rows = [
    [32, 16, 20, 10, 0.9, 0.1, 0.8, 0.05], // cat 0.72 → [22,11,42,21] → [44,22,84,42]
    [33, 16, 20, 10, 0.9, 0.1, 0.7, 0.05], // cat 0.63, IoU ~0.9 with row 0 → suppressed
    [10, 10, 8, 8, 0.95, 0.0, 0.0, 0.99], // class 2 is unmapped → dropped
    [10, 20, 8, 8, 0.2, 0.9, 0.1, 0.1], // 0.18 < 0.3 → dropped
    [60, 30, 20, 10, 0.8, 0.9, 0.1, 0.0], // person 0.72, runs past the image → clipped to 128x64
    [33, 16, 20, 10, 0.9, 0.8, 0.1, 0.05], // person 0.72 over the cat: NMS is per label → kept
  ];
  const file = writeBundled(
    dir,
    'v5',
    constantModel('images', 64, 64, [{ name: 'out', dims: [1, rows.length, 8], data: rows.flat() }]),
    {
      input: input(64, 64),
      decoder: { family: 'yolov5', output: 'out' },
      scoreThreshold: 0.3,
      nmsIou: 0.45,
      classNames: ['person', 'cat', 'toaster'],
      classes: { 0: 'person', 1: 'cat' },
    },
  );

  it('decodes cx,cy,w,h,obj,cls rows, drops unmapped and low classes, NMS per label, maps to source pixels', async () => {
    const m = await load(file);
    const dets = await m.infer(solidImage(128, 64, [1, 2, 3]));
    expect(round(dets)).toEqual([
      { label: 'cat', score: 0.72, box: [44, 22, 84, 42] },
      { label: 'person', score: 0.72, box: [100, 50, 128, 64] },
      { label: 'person', score: 0.72, box: [46, 22, 86, 42] },
    ]);
  });

  it('honours the minScore override and the labels filter', async () => {
    const all = await load(file);
    const low = await all.infer(solidImage(128, 64, [0, 0, 0]), { minScore: 0.1 });
    expect(low.map((d) => d.label).sort()).toEqual(['cat', 'person', 'person', 'person']);
    const cats = await Model.load(loadDetectorManifest(file), { modelsDir: '/x', labels: ['cat'] });
    loaded.push(cats);
    expect((await cats.infer(solidImage(128, 64, [0, 0, 0]))).map((d) => d.label)).toEqual(['cat']);
    await expect(Model.load(loadDetectorManifest(file), { modelsDir: '/x', labels: ['rodent'] })).rejects.toThrow(/rodent.*not produced by this model/);
  });
});

describe('yolov8 decoder', () => {
  // [1, 4+C, N] channels first. Centre letterbox: a 64x128 source in 64x64 → r = 0.5, content 32x64, padX 16.
  const boxes = [
    [32, 32, 16, 8, 0.1, 0.85], // dog 0.85: input [24,28,40,36] → source [(24-16)*2, 56, 48, 72] = [16,56,48,72]
    [20, 10, 4, 4, 0.6, 0.2], // person 0.6 → input [18,8,22,12] → [4,16,12,24]
    [40, 40, 4, 4, 0.2, 0.25], // below 0.3 → dropped
  ];
  const n = boxes.length;
  const data: number[] = [];
  for (let c = 0; c < 6; c++) for (let i = 0; i < n; i++) data.push(boxes[i]![c]!);
  const file = writeBundled(dir, 'v8', constantModel('images', 64, 64, [{ name: 'output0', dims: [1, 6, n], data }]), {
    input: input(64, 64, { resize: { mode: 'letterbox', align: 'center', pad: 114 } }),
    decoder: { family: 'yolov8', output: 'output0' },
    scoreThreshold: 0.3,
    nmsIou: 0.5,
    classes: { 0: 'person', 1: 'dog' },
  });

  it('reads the transposed layout without objectness and undoes a centred letterbox', async () => {
    const m = await load(file);
    const dets = await m.infer(solidImage(64, 128, [9, 9, 9]));
    expect(round(dets)).toEqual([
      { label: 'dog', score: 0.85, box: [16, 56, 48, 72] },
      { label: 'person', score: 0.6, box: [4, 16, 12, 24] },
    ]);
  });
});

describe('yolox decoder', () => {
  // 64x64 input: strides 8, 16, 32 → 8x8 + 4x4 + 2x2 = 84 rows of [x, y, w, h, obj, 2 classes].
  const rows = new Float32Array(84 * 7);
  const set = (row: number, v: number[]) => rows.set(v, row * 7);
  // stride 16, gx 2, gy 1 → row 64 + 1*4 + 2 = 70: cx = (0.25 + 2) * 16 = 36, cy = (0.5 + 1) * 16 = 24, w = 2 * 16, h = 16
  set(70, [0.25, 0.5, Math.log(2), 0, 0.9, 0.2, 0.5]);
  // stride 8, gx 1, gy 0 → row 1, objectness too low
  set(1, [0, 0, 0, 0, 0.1, 1, 1]);
  // stride 32, gx 1, gy 1 → row 80 + 3 = 83: cx = 32 + 0 = 32, cy = 32, w = h = 32; person 0.8 * 0.9
  set(83, [0, 0, 0, 0, 0.8, 0.9, 0.1]);
  const manifest = (gridOffset: number) => ({
    input: input(64, 64, { colorOrder: 'BGR' }),
    decoder: { family: 'yolox', output: 'output', strides: [8, 16, 32], gridOffset },
    scoreThreshold: 0.3,
    nmsIou: 0.45,
    classes: { 0: 'person', 1: 'knife' },
  });
  const bytes = constantModel('images', 64, 64, [{ name: 'output', dims: [1, 84, 7], data: rows }]);

  it('decodes grid cells from their top-left corner (gridOffset 0) and maps through an upscaling letterbox', async () => {
    const m = await load(writeBundled(dir, 'yx0', bytes, manifest(0)));
    // 32x32 source → r = 2: source = input / 2
    const dets = await m.infer(solidImage(32, 32, [5, 5, 5]));
    expect(round(dets)).toEqual([
      { label: 'person', score: 0.72, box: [8, 8, 24, 24] },
      { label: 'knife', score: 0.45, box: [10, 8, 26, 16] },
    ]);
  });

  it('gridOffset 0.5 shifts by half a cell', async () => {
    const m = await load(writeBundled(dir, 'yx5', bytes, manifest(0.5)));
    const dets = await m.infer(solidImage(64, 64, [5, 5, 5]));
    const knife = dets.find((d) => d.label === 'knife')!;
    expect(knife.box.map((v) => +v.toFixed(4))).toEqual([28, 24, 60, 40]); // cx 44, cy 32 at scale 1
  });

  it('rejects an output whose row count does not fit the strides', async () => {
    const bad = constantModel('images', 64, 64, [{ name: 'output', dims: [1, 80, 7], data: new Float32Array(560) }]);
    const m = await load(writeBundled(dir, 'yxbad', bad, manifest(0)));
    await expect(m.infer(solidImage(64, 64, [0, 0, 0]))).rejects.toThrow(/yxbad.*80 rows.*give 84/);
  });
});

describe('ultraface decoder', () => {
  const scores = [
    [0.1, 0.2, 0.7], // score 0.9, masked_face
    [0.4, 0.35, 0.25], // score 0.6, face
    [0.8, 0.1, 0.1], // 0.2 → dropped
    [0.15, 0.8, 0.05], // score 0.85, face, same place as row 0
  ];
  const boxes = [
    [0.1, 0.2, 0.5, 0.6],
    [0.7, 0.1, 0.9, 0.3],
    [0, 0, 1, 1],
    [0.11, 0.2, 0.5, 0.61],
  ];
  const bytes = constantModel('input', 64, 32, [
    { name: 'scores', dims: [1, 4, 3], data: scores.flat() },
    { name: 'boxes', dims: [1, 4, 4], data: boxes.flat() },
  ]);
  const manifest = (nmsClassAgnostic: boolean) => ({
    input: { name: 'input', width: 64, height: 32, layout: 'NCHW', colorOrder: 'RGB', mean: [127, 127, 127], std: [128, 128, 128], resize: { mode: 'stretch' } },
    decoder: { family: 'ultraface', scores: 'scores', boxes: 'boxes' },
    scoreThreshold: 0.5,
    nmsIou: 0.3,
    nmsClassAgnostic,
    classNames: ['background', 'face', 'masked_face'],
    classes: { 1: 'face', 2: 'masked_face' },
  });

  it('face score = 1 - background, label = best non-background class, class-agnostic NMS, normalised boxes to source pixels', async () => {
    const m = await load(writeBundled(dir, 'uf', bytes, manifest(true)));
    const dets = await m.infer(solidImage(200, 100, [0, 0, 0]));
    expect(round(dets)).toEqual([
      { label: 'masked_face', score: 0.9, box: [20, 20, 100, 60] },
      { label: 'face', score: 0.6, box: [140, 10, 180, 30] },
    ]);
  });

  it('per-label NMS keeps a face box over a masked_face box', async () => {
    const m = await load(writeBundled(dir, 'uf2', bytes, manifest(false)));
    const dets = await m.infer(solidImage(200, 100, [0, 0, 0]));
    expect(dets.map((d) => d.label)).toEqual(['masked_face', 'face', 'face']);
  });

  it('rejects a class count that differs from classNames', async () => {
    const m = await load(writeBundled(dir, 'uf3', bytes, { ...manifest(true), classNames: ['background', 'face'], classes: { 1: 'face' } }));
    await expect(m.infer(solidImage(20, 20, [0, 0, 0]))).rejects.toThrow(/uf3.*"scores" has 3 classes.*classNames list 2/);
  });
});

describe('bare inference and the reused input tensor', () => {
  it('prepare() fills the tensor the session sees; runBare returns the raw outputs', async () => {
    const bytes = constantModel('images', 8, 8, [{ name: 'out', dims: [1, 1, 6], data: [0, 0, 0, 0, 0, 0] }]);
    const file = writeBundled(dir, 'echo', bytes, {
      input: input(8, 8, { colorOrder: 'BGR', mean: [10, 20, 30], std: [2, 4, 5], resize: { mode: 'stretch' } }),
      decoder: { family: 'yolov5', output: 'out' },
      scoreThreshold: 0.5,
      nmsIou: 0.5,
      classes: { 0: 'person' },
    });
    const m = await load(file);
    const { tensor } = m.prepare(solidImage(16, 8, [100, 150, 200]));
    const outs = await m.runBare(tensor, ['echo']);
    const echo = outs.echo!;
    expect(echo.dims).toEqual([1, 3, 8, 8]);
    // BGR planes: (200-10)/2, (150-20)/4, (100-30)/5
    expect([echo.data[0], echo.data[64], echo.data[128]]).toEqual([95, 32.5, 14]);
    expect(new Set(echo.data.subarray(0, 64))).toEqual(new Set([95]));
    expect(Array.from(echo.data)).toEqual(Array.from(tensor.data as Float32Array));
    expect(Object.keys(await m.runBare())).toEqual(['out']);
  });
});

describe('model file errors', () => {
  const bytes = constantModel('images', 8, 8, [{ name: 'out', dims: [1, 1, 6], data: [0, 0, 0, 0, 0, 0] }]);
  const base = {
    input: input(8, 8),
    decoder: { family: 'yolov5', output: 'out' },
    scoreThreshold: 0.5,
    nmsIou: 0.5,
    classes: { 0: 'person' },
  };

  it('missing file', async () => {
    const f = writeBundled(dir, 'gone', bytes, base);
    const onnxFile = path.join(dir, 'gone.onnx');
    rmSync(onnxFile);
    const err = await Model.load(loadDetectorManifest(f), { modelsDir: dir }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ModelLoadError);
    expect(String(err)).toMatch(new RegExp(`${onnxFile.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}.*missing`));
  });

  it('sha256 mismatch (corrupt file)', async () => {
    const f = writeBundled(dir, 'corrupt', bytes, base);
    const onnxFile = path.join(dir, 'corrupt.onnx');
    const b = readFileSync(onnxFile);
    b[b.length - 1] = b[b.length - 1]! ^ 0xff;
    writeFileSync(onnxFile, b);
    await expect(Model.load(loadDetectorManifest(f), { modelsDir: dir })).rejects.toThrow(/corrupt\.onnx: sha256 mismatch: expected [0-9a-f]{64}, got [0-9a-f]{64}/);
  });

  it('not an ONNX model (right hash, wrong content)', async () => {
    const junk = new TextEncoder().encode('this is not a protobuf model at all');
    const f = writeBundled(dir, 'junk', junk, base);
    expect(sha256(junk)).toHaveLength(64);
    await expect(Model.load(loadDetectorManifest(f), { modelsDir: dir })).rejects.toThrow(/junk\.onnx: not an ONNX model/);
  });

  it('manifest that does not match the model (input name, input size, output name)', async () => {
    await expect(Model.load(loadDetectorManifest(writeBundled(dir, 'm1', bytes, { ...base, input: { ...input(8, 8), name: 'data' } })), { modelsDir: dir })).rejects.toThrow(
      /m1\.onnx: .*m1\.model\.yaml does not match .*input "data" not found \(model inputs: images\)/,
    );
    await expect(Model.load(loadDetectorManifest(writeBundled(dir, 'm2', bytes, { ...base, input: input(16, 8) })), { modelsDir: dir })).rejects.toThrow(
      /input "images" has shape \[1, 3, 8, 8\], manifest says \[1, 3, 8, 16\]/,
    );
    await expect(
      Model.load(loadDetectorManifest(writeBundled(dir, 'm3', bytes, { ...base, decoder: { family: 'yolov5', output: 'output0' } })), { modelsDir: dir }),
    ).rejects.toThrow(/output "output0" not found \(model outputs: out, echo\)/);
  });
});

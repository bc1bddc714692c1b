/**
 * The training pipeline (training/, Python) end to end on a tiny slice, as CI can afford it:
 * setup.sh makes the venv, train.sh loads the COCO yolox_nano weights (and checks the loader against
 * onnxruntime), runs one iteration on 8 rat images at 160x160, exports ONNX + manifest + model card
 * into a temp dir; the export must load in onnxruntime-node with yolox_nano's I/O layout and pass the
 * agent's own manifest schema. A second run resumes from last.pt. `train.sh heads` cuts, trains and
 * exports the head classifier on 6 images per data set. The shipped models in models/
 * (rodent_yolox; head_attrs in head-cascade.test.ts) are checked against their manifests too.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadManifest, modelFilePath, type LoadedManifest } from '../../agent/detect/manifest.js';
import { REPO_ROOT } from '../../agent/detect/pack.js';

const run = promisify(execFile);
const RATS = path.resolve(REPO_ROOT, '../shared/data/rats');
const INIT = path.resolve(REPO_ROOT, '../shared/models/yolox_nano.onnx');
const NEGATIVES = path.resolve(REPO_ROOT, '../shared/data/masks/images');

async function bash(args: string[], timeoutMs: number) {
  try {
    const r = await run('bash', args, { cwd: REPO_ROOT, timeout: timeoutMs, maxBuffer: 32 << 20 });
    return { code: 0, out: r.stdout + r.stderr };
  } catch (e) {
    const err = e as { code: number | string; stdout?: string; stderr?: string; message: string };
    return { code: err.code, out: `${err.stdout ?? ''}${err.stderr ?? ''}\n${err.message}` };
  }
}

const sha256 = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');

/** Run a model on a mid-grey image; returns the output tensor. */
async function runModel(file: string, m: Pick<LoadedManifest, 'input'>) {
  const session = await ort.InferenceSession.create(file, { intraOpNumThreads: 1 });
  try {
    expect(session.inputNames).toEqual([m.input.name]);
    expect(session.outputNames).toEqual(['output']);
    const { width: W, height: H } = m.input;
    const x = new ort.Tensor('float32', new Float32Array(3 * W * H).fill(114), [1, 3, H, W]);
    const out = (await session.run({ [m.input.name]: x })).output!;
    return { dims: [...out.dims], data: out.data as Float32Array };
  } finally {
    await session.release();
  }
}

function rowsFor(size: number) {
  return [8, 16, 32].reduce((s, st) => s + Math.floor(size / st) ** 2, 0);
}

function checkYoloxOutput(o: { dims: number[]; data: Float32Array }, size: number) {
  expect(o.dims).toEqual([1, rowsFor(size), 6]);
  for (let r = 0; r < o.dims[1]!; r++) {
    for (let c = 0; c < 6; c++) expect(Number.isFinite(o.data[r * 6 + c]!)).toBe(true);
    for (const c of [4, 5]) {
      const v = o.data[r * 6 + c]!;
      expect(v >= 0 && v <= 1).toBe(true); // objectness and class score are sigmoided in the graph
    }
  }
}

describe('training pipeline (tiny slice)', () => {
  let tmp = '';
  beforeAll(() => {
    tmp = mkdtempSync(path.join(os.tmpdir(), 'bk-train-'));
  });
  afterAll(() => {
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it('setup.sh makes the venv (idempotent) and train.sh exports a model the agent can load', { timeout: 15 * 60_000 }, async () => {
    expect(existsSync(RATS), `${RATS} (shared data) is missing`).toBe(true);
    expect(existsSync(INIT), `${INIT} (initial weights) is missing`).toBe(true);
    const setup = await bash(['training/setup.sh'], 10 * 60_000);
    expect(setup.code, setup.out).toBe(0);
    expect(setup.out).toContain('training venv ready');

    const exportDir = path.join(tmp, 'models');
    const train = await bash(
      ['training/train.sh', RATS, '--max-images', '8', '--epochs', '1', '--imgsz', '160', '--batch', '8',
        '--name', 'ci', '--project', path.join(tmp, 'runs'), '--export', exportDir, '--bench-runs', '5',
        '--negatives', `${NEGATIVES}:4`],
      5 * 60_000,
    );
    expect(train.code, train.out).toBe(0);
    // The loader check ran against onnxruntime before training, and the export was compared to torch.
    expect(train.out).toMatch(/113 conv tensors loaded .* max abs diff \d/);
    // 8 rat photos + 4 photos of people as background (hard negatives, no boxes) = 12 images, batch 8.
    expect(train.out).toContain(`negatives: 4 images from ${NEGATIVES}`);
    expect(train.out).toMatch(/epoch 1\/1 iter 2\/2 loss \d/);
    expect(train.out).toMatch(/val AP50 \d/);
    expect(train.out).toMatch(/onnxruntime vs torch max abs diff \d/);
    expect(existsSync(path.join(tmp, 'runs/ci/last.pt'))).toBe(true);

    // The manifest passes the agent's schema and points at the exported file.
    const m = loadManifest(path.join(exportDir, 'rodent_yolox.model.yaml'));
    expect(m).toMatchObject({
      name: 'rodent_yolox', file: 'rodent_yolox.onnx', bundled: true, classes: { '0': 'rodent' },
      input: { name: 'images', width: 160, height: 160, colorOrder: 'BGR', resize: { mode: 'letterbox', align: 'top-left', pad: 114 } },
      decoder: { family: 'yolox', output: 'output', strides: [8, 16, 32], gridOffset: 0 },
    });
    const file = modelFilePath(m, path.join(tmp, 'unused'));
    expect(file).toBe(path.join(exportDir, 'rodent_yolox.onnx'));
    expect(sha256(file)).toBe(m.sha256);
    const card = readFileSync(path.join(exportDir, 'rodent_yolox.md'), 'utf8');
    expect(card).toMatch(/## Dev-val figures[\s\S]*## Licenses/);
    expect(card).toContain(`--negatives ${NEGATIVES}:4`);
    expect(card).toMatch(/: 8 train images \(\d+ boxes\)/); // the rat photos; the 4 negatives are listed apart
    expect(card).toContain(`Background (hard negatives, no boxes): 4 photos from \`${NEGATIVES}:4\``);

    checkYoloxOutput(await runModel(file, m), 160);
  });

  it('--resume continues the run from last.pt', { timeout: 5 * 60_000 }, async () => {
    const r = await bash(
      ['training/train.sh', RATS, '--max-images', '8', '--epochs', '2', '--imgsz', '160', '--batch', '8',
        '--name', 'ci', '--project', path.join(tmp, 'runs'), '--resume'],
      5 * 60_000,
    );
    expect(r.code, r.out).toBe(0);
    expect(r.out).toMatch(/resumed .*last\.pt: epoch 1 /);
    expect(r.out).toMatch(/epoch 2\/2 iter 1\/1/);
    expect(r.out).not.toMatch(/epoch 1\/2 iter/);
  });

  it('train.sh heads cuts crops with the project\'s detectors, trains, and exports a classifier onnxruntime-node runs', { timeout: 15 * 60_000 }, async () => {
    const exportDir = path.join(tmp, 'models');
    const r = await bash(
      ['training/train.sh', 'heads', '--cache', path.join(tmp, 'crops'), '--max-images', '6', '--size', '64', '--holdout', 'none',
        '--epochs', '1', '--batch', '16', '--name', 'ci-heads', '--project', path.join(tmp, 'runs'), '--export', exportDir],
      12 * 60_000,
    );
    expect(r.code, r.out).toBe(0);
    expect(r.out).toMatch(/crops of 64 px \(cut 75 with context\)/);
    expect(r.out).toMatch(/epoch 1\/1 loss \d/);
    expect(r.out).toMatch(/onnxruntime vs torch on \d+ real crops: max abs diff/);
    const meta = JSON.parse(readFileSync(path.join(tmp, 'crops/meta.json'), 'utf8')) as { size: number; crops: number };
    expect(meta.size).toBe(64);
    expect(meta.crops).toBeGreaterThan(10);
    const session = await ort.InferenceSession.create(path.join(exportDir, 'head_attrs.onnx'), { intraOpNumThreads: 1 });
    try {
      expect([session.inputNames, session.outputNames]).toEqual([['crops'], ['probs']]);
      const out = (await session.run({ crops: new ort.Tensor('float32', new Float32Array(3 * 3 * 64 * 64).fill(114), [3, 3, 64, 64]) })).probs!;
      expect(out.dims).toEqual([3, 3]); // dynamic batch, three attributes
      for (const v of out.data as Float32Array) expect(v >= 0 && v <= 1).toBe(true);
    } finally {
      await session.release();
    }
  });
});

describe('shipped project-trained models', () => {
  for (const name of ['rodent_yolox']) {
    const manifest = path.join(REPO_ROOT, 'models', `${name}.model.yaml`);
    it.skipIf(!existsSync(manifest))(`${name}: bundled file matches its manifest and runs`, async () => {
      const m = loadManifest(manifest);
      expect(m.bundled).toBe(true);
      expect(m.decoder.family).toBe('yolox');
      const file = modelFilePath(m, path.join(REPO_ROOT, 'var/models'));
      expect(sha256(file)).toBe(m.sha256);
      expect(readFileSync(file).length).toBeLessThanOrEqual(5 * 1024 * 1024);
      checkYoloxOutput(await runModel(file, m), m.input.width);
    });
  }
});

/** Model manifests: the shipped ones validate; bad ones fail naming the file and the field. */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { ConfigError } from '../../agent/config/load.js';
import { classTable, DEFAULT_MANIFESTS_DIR, loadDetectorManifest, loadManifest, loadManifests, modelFilePath, type LoadedManifest } from '../../agent/detect/index.js';
import { tempDir } from './detect-fixtures.js';

const good = {
  name: 'm',
  file: 'm.onnx',
  sha256: 'a'.repeat(64),
  source: 'https://example.org/m.onnx',
  license: 'MIT',
  input: { name: 'images', width: 416, height: 416, layout: 'NCHW', colorOrder: 'BGR', resize: { mode: 'letterbox', pad: 114 } },
  decoder: { family: 'yolox', output: 'output' },
  scoreThreshold: 0.3,
  nmsIou: 0.45,
  classes: { 0: 'person', 15: 'cat' },
};

function write(data: unknown, name = 'm'): string {
  const f = path.join(tempDir(), `${name}.model.yaml`);
  writeFileSync(f, typeof data === 'string' ? data : stringify(data));
  return f;
}

function problems(f: string): string {
  try {
    loadManifest(f);
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return (e as Error).message;
  }
  throw new Error('expected a ConfigError');
}

describe('shipped manifests', () => {
  it('validate and describe what MODELS.md says', () => {
    const ms = loadManifests(DEFAULT_MANIFESTS_DIR);
    const by = Object.fromEntries(ms.map((m) => [m.name, m]));
    expect(Object.keys(by)).toEqual(expect.arrayContaining(['yolox_nano', 'rfb640_masked_face', 'rfb320_face']));
    const y = by.yolox_nano as LoadedManifest;
    expect(y.input).toMatchObject({ name: 'images', width: 416, height: 416, colorOrder: 'BGR', mean: [0, 0, 0], std: [1, 1, 1], resize: { mode: 'letterbox', align: 'top-left', pad: 114 } });
    expect(y.decoder).toEqual({ family: 'yolox', output: 'output', strides: [8, 16, 32], gridOffset: 0 });
    expect(y.classNames).toHaveLength(80);
    const t = classTable(y);
    expect([t[0], t[15], t[16], t[43], t[64]]).toEqual(['person', 'cat', 'dog', 'knife', undefined]);
    const f = by.rfb640_masked_face as LoadedManifest;
    expect(f.input).toMatchObject({ width: 640, height: 480, colorOrder: 'RGB', mean: [127, 127, 127], std: [128, 128, 128], resize: { mode: 'stretch' } });
    expect(f.classes).toEqual({ 1: 'face', 2: 'masked_face' });
    expect(modelFilePath(f, '/opt/models')).toBe('/opt/models/rfb640_masked_face.onnx');
  });
});

describe('manifest errors name file and field', () => {
  it('a good manifest loads with defaults', () => {
    const m = loadDetectorManifest(write(good));
    expect(m.bundled).toBe(false);
    expect(m.nmsClassAgnostic).toBe(false);
  });

  it.each([
    [{ ...good, input: { ...good.input, colorOrder: 'BRG' } }, /m\.model\.yaml: input\.colorOrder: .*\(got "BRG"\)/],
    [{ ...good, classes: { 0: 'persn' } }, /classes\.0: expected a canonical label \(person, face, .*\) \(got "persn"\)/],
    [{ ...good, classes: { zero: 'person' } }, /classes\.zero: expected a class index/],
    [{ ...good, extra: 1 }, /\(top level\): Unrecognized key: "extra"/],
    [{ ...good, sha256: 'abc' }, /sha256: expected a lower-case hex sha256/],
    [{ ...good, file: '../m.onnx' }, /file: expected a relative path without "\.\."/],
    [{ ...good, decoder: { family: 'yolov9', output: 'o' } }, /decoder\.family/],
    [{ ...good, decoder: { family: 'ultraface', scores: 's', boxes: 'b' }, classes: { 0: 'face' } }, /classes\.0: ultraface class 0 is the background/],
    [{ ...good, classNames: ['person'], classes: { 0: 'person', 15: 'cat' } }, /classes\.15: class index 15 is beyond classNames \(1 classes\)/],
    [{ ...good, input: { ...good.input, std: [1, 0, 1] } }, /input\.std: std must not contain 0/],
    [{ ...good, name: 'other' }, /name: expected "m" to match the file name \(got "other"\)/],
  ])('%#', (data, re) => {
    expect(problems(write(data))).toMatch(re);
  });

  it('YAML syntax and missing files', () => {
    expect(problems(write('name: [unclosed'))).toMatch(/m\.model\.yaml: YAML syntax/);
    expect(() => loadManifest('/nonexistent/x.model.yaml')).toThrow(/\/nonexistent\/x\.model\.yaml: cannot read file: ENOENT/);
  });

  it('bundled files resolve next to the manifest', () => {
    const f = write({ ...good, bundled: true, file: 'files/m.onnx' });
    expect(modelFilePath(loadManifest(f), '/elsewhere')).toBe(path.join(path.dirname(f), 'files/m.onnx'));
  });
});

/** Evaluation: dataset readers (VOC, YOLO), matching, precision / recall / AP, label accuracy. */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { parseClassMap, parseVocXml, readDataset, resolveGroundTruth, type GroundTruth } from '../../agent/eval/datasets.js';
import { averagePrecision, defaultTargets, evaluate, sizeOf, type EvalImage } from '../../agent/eval/evaluate.js';
import type { BoxXYXY } from '../../agent/detect/types.js';
import { tempDir } from './detect-fixtures.js';

const gt = (label: string | undefined, box: BoxXYXY, difficult = false): GroundTruth => ({ label, raw: label ?? 'other', box, difficult });
const det = (label: string, score: number, box: BoxXYXY, operating = score >= 0.5) => ({ label, score, box, model: 'm', operating });

describe('averagePrecision', () => {
  it('all-point interpolation', () => {
    expect(averagePrecision([{ tp: true }, { tp: true }], 2)).toBe(1);
    // TP, FP, TP over 2 GT: recall 0.5 at precision 1, recall 1 at precision 2/3
    expect(averagePrecision([{ tp: true }, { tp: false }, { tp: true }], 2)).toBeCloseTo(0.5 + 0.5 * (2 / 3), 10);
    // FP first: precision envelope at recall 0.5 is 0.5
    expect(averagePrecision([{ tp: false }, { tp: true }], 2)).toBe(0.25);
    expect(averagePrecision([], 3)).toBe(0);
  });
});

describe('evaluate', () => {
  const images: EvalImage[] = [
    {
      gt: [gt('face', [0, 0, 10, 10]), gt('masked_face', [20, 0, 30, 10]), gt('masked_face', [40, 0, 50, 10])],
      detections: [
        det('face', 0.9, [0, 0, 10, 10]), // right label
        det('face', 0.8, [21, 0, 31, 10]), // wrong label (it is masked)
        det('masked_face', 0.3, [40, 0, 50, 10]), // below the operating point: counts for AP only
        det('face', 0.7, [60, 60, 70, 70]), // false positive
      ],
    },
    {
      gt: [gt('masked_face', [0, 0, 20, 20]), gt(undefined, [50, 50, 60, 60]), gt('face', [80, 80, 90, 90], true)],
      detections: [
        det('masked_face', 0.95, [0, 0, 20, 10]), // IoU 0.5 exactly with its object
        det('face', 0.6, [50, 50, 60, 60]), // on an unmapped object: ignored
        det('face', 0.6, [80, 80, 90, 90]), // on a difficult object: ignored
      ],
    },
  ];
  const ms = evaluate(images, defaultTargets(['face', 'masked_face']), [0.3, 0.6]);
  const get = (name: string, iou: number) => ms.find((m) => m.name === name && m.iou === iou)!;

  it('groups face+masked_face class-agnostically and scores the label', () => {
    const g = get('face+masked_face', 0.3);
    expect(g).toMatchObject({ gt: 4, tp: 3, fp: 1, fn: 1, labelCorrect: 2 });
    expect(g.precision).toBe(0.75);
    expect(g.recall).toBe(0.75);
    expect(g.labelAccuracy).toBeCloseTo(2 / 3, 10);
    // ranked: 0.95 TP, 0.9 TP, 0.8 TP, 0.7 FP, 0.3 TP → AP = 0.75*1 + 0.25*0.8
    expect(g.ap).toBeCloseTo(0.95, 10);
  });

  it('per label, a wrong label is a false positive; a stricter IoU drops the 0.5-overlap match', () => {
    expect(get('face', 0.3)).toMatchObject({ gt: 1, tp: 1, fp: 2, fn: 0 });
    expect(get('masked_face', 0.3)).toMatchObject({ gt: 3, tp: 1, fp: 0, fn: 2 });
    expect(get('masked_face', 0.6)).toMatchObject({ tp: 0, fp: 1 });
    expect(get('face', 0.3).labelAccuracy).toBeUndefined();
  });

  it('splits recall by object size (all test boxes are small; a 40x40 one is medium)', () => {
    expect(get('face+masked_face', 0.3).bySize).toEqual([
      { size: 'small', gt: 4, tp: 3, recall: 0.75 },
      { size: 'medium', gt: 0, tp: 0, recall: 0 },
      { size: 'large', gt: 0, tp: 0, recall: 0 },
    ]);
    expect([sizeOf([0, 0, 32, 33]), sizeOf([0, 0, 40, 40]), sizeOf([0, 0, 96, 96])]).toEqual(['medium', 'medium', 'large']);
    expect(sizeOf([0, 0, 31, 31])).toBe('small');
  });
});

describe('datasets', () => {
  it('parses a VOC annotation with the class map', () => {
    const x = `<annotation><filename>a.png</filename><object><name>with_mask</name><difficult>0</difficult><bndbox><xmin>1</xmin><ymin>2</ymin><xmax>30</xmax><ymax>40</ymax></bndbox></object>
      <object><name>mask_weared_incorrect</name><bndbox><xmin>5</xmin><ymin>5</ymin><xmax>9</xmax><ymax>9</ymax></bndbox></object></annotation>`;
    const r = parseVocXml(x, 'a.xml', parseClassMap('with_mask=masked_face,without_mask=face'));
    expect(r.filename).toBe('a.png');
    expect(r.gt).toEqual([
      { label: 'masked_face', raw: 'with_mask', box: [1, 2, 30, 40], difficult: false },
      { label: undefined, raw: 'mask_weared_incorrect', box: [5, 5, 9, 9], difficult: false },
    ]);
    expect(() => parseVocXml('<annotation></annotation>', 'b.xml', new Map())).toThrow(/b\.xml: no <filename>/);
  });

  it('class map errors', () => {
    expect(() => parseClassMap('0rodent')).toThrow(/--map: expected "datasetClass=label".*"0rodent"/);
    expect(() => parseClassMap('0=a,0=b')).toThrow(/class "0" mapped twice/);
  });

  it('reads a YOLO folder with splits, resolves normalised boxes to pixels', async () => {
    const root = tempDir();
    for (const split of ['train', 'val']) {
      mkdirSync(path.join(root, 'images', split), { recursive: true });
      mkdirSync(path.join(root, 'labels', split), { recursive: true });
    }
    await sharp({ create: { width: 200, height: 100, channels: 3, background: '#808080' } }).jpeg().toFile(path.join(root, 'images/val/r1.jpg'));
    writeFileSync(path.join(root, 'labels/val/r1.txt'), '0 0.5 0.5 0.2 0.4\n1 0.1 0.1 0.1 0.1\n');
    const ds = readDataset(root, { map: parseClassMap('0=rodent') });
    expect(ds.format).toBe('yolo');
    expect(ds.samples).toHaveLength(1);
    const g = resolveGroundTruth(ds.samples[0]!, 200, 100);
    expect(g.map((x) => [x.label, x.box.map((v) => +v.toFixed(6))])).toEqual([
      ['rodent', [80, 30, 120, 70]],
      [undefined, [10, 5, 30, 15]],
    ]);
    expect(() => readDataset(root, { map: parseClassMap('0=rodent'), split: 'test' })).toThrow(/no split "test" \(have: train, val\)/);
    expect(() => readDataset(root)).toThrow(/YOLO folder needs --map/);
    writeFileSync(path.join(root, 'labels/val/r1.txt'), '0 0.5 0.5\n');
    expect(() => readDataset(root, { map: parseClassMap('0=rodent') })).toThrow(/r1\.txt:1: expected "class cx cy w h"/);
  });

  it('VOC: an annotation whose image is missing is named', () => {
    const root = tempDir();
    mkdirSync(path.join(root, 'annotations'));
    mkdirSync(path.join(root, 'images'));
    writeFileSync(path.join(root, 'annotations/x.xml'), '<annotation><filename>nope.jpg</filename></annotation>');
    expect(() => readDataset(root)).toThrow(/x\.xml: image .*nope\.jpg \(from <filename>\) not found/);
  });
});

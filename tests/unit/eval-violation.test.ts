/** Violation eval at image level: kinds, judging one photo, scoring, and reading folders / labels CSVs. */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { RuleSchema } from '../../agent/config/schema.js';
import { REPO_ROOT } from '../../agent/detect/pack.js';
import { folderImages, imagesFromFolders, mergeImageSets, parseColumnTest, parseCsv, readLabelsCsv } from '../../agent/eval/image-sets.js';
import { judge, parseViolationKind, rulesOfKind, scoreViolations, type ViolationOutcome } from '../../agent/eval/violations.js';
import { rulesForSite, type StillViolation } from '../../agent/rules/index.js';
import { tempDir } from './detect-fixtures.js';

const DATA = path.resolve(REPO_ROOT, '../shared/data');

const v = (kind: StillViolation['kind'], score: number): StillViolation => ({ kind, ruleId: kind, label: 'face', score, box: [0, 0, 1, 1], severity: 2 });
const out = (file: string, positive: boolean, raised: boolean, source = positive ? 'pos' : 'neg'): ViolationOutcome => ({
  file,
  positive,
  raised,
  source,
  score: raised ? 0.9 : null,
  count: raised ? 1 : 0,
});

describe('violation kinds and rules', () => {
  it('a bad kind is named with the valid ones', () => {
    expect(parseViolationKind('no_mask')).toBe('no_mask');
    expect(parseViolationKind(' rodent ')).toBe('rodent');
    expect(() => parseViolationKind('no_masks')).toThrow('--violation: unknown violation kind "no_masks" (valid: no_hat, no_mask, smoking, mixed_boards, rodent)');
    expect(() => parseViolationKind('')).toThrow(/unknown violation kind ""/);
  });

  it('rulesOfKind: the enabled rules of the kind and every label they look at', () => {
    const mixed = rulesOfKind(rulesForSite(), 'mixed_boards');
    expect(mixed.rules.map((r) => r.id)).toEqual(['mixed_boards', 'mixed_boards_raw_in_cooked', 'mixed_boards_cooked_in_raw']);
    expect(mixed.subjects).toEqual(new Set(['raw_board', 'raw_knife', 'cooked_board', 'cooked_knife']));
    const hat = rulesOfKind(rulesForSite(), 'no_hat');
    expect([...hat.labels].sort()).toEqual(['chef_hat', 'head']);
    expect([...hat.subjects]).toEqual(['head']);
    // A site that switches the rule off has no rule of the kind left.
    const off = RuleSchema.parse({ id: 'no_mask', kind: 'no_mask', labels: ['face'], enabled: false });
    expect(rulesOfKind(rulesForSite([off]), 'no_mask').rules).toEqual([]);
  });

  it('judge: raised when a violation of the kind is in the photo; score is the highest', () => {
    expect(judge([], 'no_mask')).toEqual({ raised: false, score: null, count: 0 });
    expect(judge([v('smoking', 0.99)], 'no_mask')).toEqual({ raised: false, score: null, count: 0 });
    expect(judge([v('no_mask', 0.7), v('smoking', 0.99), v('no_mask', 0.8)], 'no_mask')).toEqual({ raised: true, score: 0.8, count: 2 });
  });
});

describe('scoreViolations', () => {
  it('recall on positives, false-alarm rate on negatives, precision over raised photos, per source', () => {
    const m = scoreViolations([
      out('p1', true, true),
      out('p2', true, false),
      out('p3', true, true),
      out('p4', true, true, 'pos2'),
      out('n1', false, false),
      out('n2', false, true),
      out('n3', false, false),
      out('n4', false, false),
      out('n5', false, false),
    ]);
    expect(m).toMatchObject({ positives: 4, truePositives: 3, misses: 1, recall: 0.75, negatives: 5, falseAlarms: 1, falseAlarmRate: 0.2, precision: 0.75 });
    expect(m.sources).toEqual([
      { source: 'pos', positive: true, images: 3, raised: 2 },
      { source: 'pos2', positive: true, images: 1, raised: 1 },
      { source: 'neg', positive: false, images: 5, raised: 1 },
    ]);
  });

  it('a source with positives and negatives (a CSV) is counted apart for each', () => {
    const m = scoreViolations([out('a', true, true, 'l.csv'), out('b', false, true, 'l.csv'), out('c', false, false, 'l.csv')]);
    expect(m.sources).toEqual([
      { source: 'l.csv', positive: true, images: 1, raised: 1 },
      { source: 'l.csv', positive: false, images: 2, raised: 1 },
    ]);
  });

  it('undefined ratios are null, not 0 or NaN', () => {
    expect(scoreViolations([])).toMatchObject({ positives: 0, negatives: 0, recall: null, falseAlarmRate: null, precision: null });
    const onlyNeg = scoreViolations([out('n', false, false)]);
    expect(onlyNeg).toMatchObject({ recall: null, falseAlarmRate: 0, precision: null });
    const onlyMissed = scoreViolations([out('p', true, false)]);
    expect(onlyMissed).toMatchObject({ recall: 0, precision: null, falseAlarmRate: null });
  });
});

describe('folders', () => {
  it('image files of a folder, sorted; a missing, non-folder or empty folder is named with its flag', () => {
    const d = tempDir('bk-vfold-');
    writeFileSync(path.join(d, 'b.jpg'), '');
    writeFileSync(path.join(d, 'a.PNG'), '');
    writeFileSync(path.join(d, 'notes.txt'), '');
    expect(folderImages(d, '--positives')).toEqual([path.join(d, 'a.PNG'), path.join(d, 'b.jpg')]);
    expect(() => folderImages(path.join(d, 'nope'), '--positives')).toThrow(`--positives ${path.join(d, 'nope')}: no such folder`);
    expect(() => folderImages(path.join(d, 'b.jpg'), '--negatives')).toThrow(`--negatives ${path.join(d, 'b.jpg')}: not a folder`);
    const empty = tempDir('bk-vempty-');
    expect(() => folderImages(empty, '--negatives')).toThrow(`--negatives ${empty}: no images in this folder`);
    const both = imagesFromFolders([d], []);
    expect(both.map((x) => [path.basename(x.file), x.positive, x.source])).toEqual([
      ['a.PNG', true, d],
      ['b.jpg', true, d],
    ]);
  });

  it('an image listed twice is an error naming it and both labels', () => {
    const d = tempDir('bk-vdup-');
    writeFileSync(path.join(d, 'a.jpg'), '');
    expect(() => mergeImageSets([imagesFromFolders([d], [d])])).toThrow(`${path.join(d, 'a.jpg')}: listed twice (a positive in ${d}, a negative in ${d})`);
  });
});

describe('labels CSV', () => {
  it('parseCsv: quotes, embedded commas / quotes / newlines, CRLF, BOM, blank lines', () => {
    const c = parseCsv('\ufefffile,note\r\n"a,1.jpg","say ""hi"""\r\n\r\nb.jpg,"two\nlines"\nc.jpg,\n', 'x.csv');
    expect(c.header).toEqual(['file', 'note']);
    expect(c.rows).toEqual([
      { line: 2, fields: ['a,1.jpg', 'say "hi"'] },
      { line: 4, fields: ['b.jpg', 'two\nlines'] },
      { line: 6, fields: ['c.jpg', ''] },
    ]);
  });

  it('parseCsv errors name the file and line', () => {
    expect(() => parseCsv('file,has_hat\na.jpg,1\nb.jpg\n', 'l.csv')).toThrow('l.csv:3: 1 fields, the header has 2 (file, has_hat)');
    expect(() => parseCsv('file\n"a.jpg\n', 'l.csv')).toThrow('l.csv:2: unterminated quoted field');
    expect(() => parseCsv('file\na"b\n', 'l.csv')).toThrow('l.csv:2: a quote inside an unquoted field');
    expect(() => parseCsv('', 'l.csv')).toThrow('l.csv: empty CSV (no header row)');
    expect(() => parseCsv('file,file\n', 'l.csv')).toThrow('l.csv: column "file" appears twice');
  });

  it('parseColumnTest', () => {
    expect(parseColumnTest('has_hat=0', '--positive-when')).toEqual({ column: 'has_hat', value: '0' });
    expect(parseColumnTest('note=a=b', '--where')).toEqual({ column: 'note', value: 'a=b' });
    expect(() => parseColumnTest('has_hat', '--positive-when')).toThrow('--positive-when: expected COLUMN=VALUE, got "has_hat"');
    expect(() => parseColumnTest('=0', '--where')).toThrow('--where: expected COLUMN=VALUE, got "=0"');
  });

  function csvFixture(body: string): string {
    const root = tempDir('bk-vcsv-');
    mkdirSync(path.join(root, 'images'));
    for (const f of ['a1.jpg', 'a2.jpg', 'b1.jpg']) writeFileSync(path.join(root, 'images', f), '');
    writeFileSync(path.join(root, 'top.jpg'), '');
    const file = path.join(root, 'labels.csv');
    writeFileSync(file, body);
    return file;
  }

  it('positives by a column value, rows filtered by --where; images next to the CSV or in images/', () => {
    const csv = csvFixture('file,video,has_hat\na1.jpg,A,1\na2.jpg,A,0\nb1.jpg,B,0\ntop.jpg,B,1\n');
    const root = path.dirname(csv);
    const all = readLabelsCsv(csv, { positiveWhen: { column: 'has_hat', value: '0' } });
    expect(all.map((x) => [path.relative(root, x.file), x.positive, x.source])).toEqual([
      ['images/a1.jpg', false, csv],
      ['images/a2.jpg', true, csv],
      ['images/b1.jpg', true, csv],
      ['top.jpg', false, csv],
    ]);
    const b = readLabelsCsv(csv, { positiveWhen: { column: 'has_hat', value: '0' }, where: [{ column: 'video', value: 'B' }] });
    expect(b.map((x) => [path.basename(x.file), x.positive])).toEqual([
      ['b1.jpg', true],
      ['top.jpg', false],
    ]);
    const two = readLabelsCsv(csv, { positiveWhen: { column: 'has_hat', value: '0' }, where: [{ column: 'video', value: 'A' }, { column: 'has_hat', value: '1' }] });
    expect(two.map((x) => path.basename(x.file))).toEqual(['a1.jpg']);
  });

  it('errors name the file, the column or line, and the bad value', () => {
    const csv = csvFixture('file,video,has_hat\na1.jpg,A,1\nb1.jpg,B,0\n');
    const pw = { column: 'has_hat', value: '0' };
    expect(() => readLabelsCsv(csv, { positiveWhen: { column: 'hat', value: '0' } })).toThrow(`${csv}: no column "hat" (named by --positive-when; columns: file, video, has_hat)`);
    expect(() => readLabelsCsv(csv, { positiveWhen: pw, where: [{ column: 'camera', value: 'A' }] })).toThrow(`${csv}: no column "camera" (named by --where; columns: file, video, has_hat)`);
    expect(() => readLabelsCsv(csv, { positiveWhen: { column: 'has_hat', value: 'no' } })).toThrow(`${csv}: --positive-when has_hat=no: no row has that value (column "has_hat" has: 0, 1)`);
    expect(() => readLabelsCsv(csv, { positiveWhen: pw, where: [{ column: 'video', value: 'C' }] })).toThrow(`${csv}: --where video=C: no row matches (column "video" has: A, B)`);
    const noFile = csvFixture('image,has_hat\na1.jpg,0\n');
    expect(() => readLabelsCsv(noFile, { positiveWhen: pw })).toThrow(`${noFile}: no column "file" (named by the image column; columns: image, has_hat)`);
    const missing = csvFixture('file,has_hat\na1.jpg,0\ngone.jpg,1\n');
    const root = path.dirname(missing);
    expect(() => readLabelsCsv(missing, { positiveWhen: pw })).toThrow(`${missing}:3: image "gone.jpg" not found (looked for ${path.join(root, 'gone.jpg')}, ${path.join(root, 'images/gone.jpg')})`);
    expect(() => readLabelsCsv(path.join(root, 'nope.csv'), { positiveWhen: pw })).toThrow(`--labels ${path.join(root, 'nope.csv')}: cannot read file (ENOENT)`);
  });

  it('reads the hats/kitchen labels: a validation split by video', () => {
    const csv = path.join(DATA, 'hats/kitchen/labels.csv');
    const b = readLabelsCsv(csv, { positiveWhen: { column: 'has_hat', value: '0' }, where: [{ column: 'video', value: 'kitchenB' }] });
    expect(b).toHaveLength(144);
    expect(b.every((x) => x.positive && x.file.startsWith(path.join(DATA, 'hats/kitchen/images/kitchenB_')))).toBe(true);
    const a = readLabelsCsv(csv, { positiveWhen: { column: 'has_hat', value: '0' }, where: [{ column: 'video', value: 'kitchenA' }] });
    expect([a.length, a.filter((x) => x.positive).length]).toEqual([212, 0]);
  });
});

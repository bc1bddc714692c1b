/**
 * `npm run eval -- --violation no_mask` on real photos of the masks set, checked against what
 * `npm run detect --json` says of the same files (the still rules both apply).
 */
import { copyFileSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../agent/detect/index.js';
import { DEFAULT_VOC_MAP, parseClassMap, parseVocXml } from '../../agent/eval/datasets.js';
import { installModels } from '../../scripts/install-models.js';
import { agentCli } from '../helpers/process.js';
import { tempDir } from '../unit/detect-fixtures.js';

const MASKS = path.resolve(REPO_ROOT, '../shared/data/masks');

const cli = agentCli;

interface Img {
  file: string;
  positive: boolean;
  raised: boolean;
  score: number | null;
  count: number;
}

/** Photos with a bare face (positives) and photos whose faces are all masked (negatives), by their VOC annotations. */
function pickByAnnotations(nPos: number, nNeg: number): { pos: string[]; neg: string[] } {
  const map = parseClassMap(DEFAULT_VOC_MAP);
  const pos: string[] = [];
  const neg: string[] = [];
  for (const f of readdirSync(path.join(MASKS, 'annotations')).filter((x) => x.endsWith('.xml')).sort()) {
    const { filename, gt } = parseVocXml(readFileSync(path.join(MASKS, 'annotations', f), 'utf8'), f, map);
    if (gt.some((g) => g.raw === 'without_mask')) pos.push(filename);
    else if (gt.length > 0 && gt.every((g) => g.raw === 'with_mask')) neg.push(filename);
  }
  return { pos: pos.slice(0, nPos), neg: neg.slice(0, nNeg) };
}

let root: string;
let pos: string[];
let neg: string[];

beforeAll(async () => {
  await installModels();
  ({ pos, neg } = pickByAnnotations(12, 10));
  root = tempDir('bk-veval-');
  for (const [dir, files] of [['pos', pos], ['neg', neg]] as const) {
    mkdirSync(path.join(root, dir));
    for (const f of files) copyFileSync(path.join(MASKS, 'images', f), path.join(root, dir, f));
  }
});

describe('eval CLI --violation', () => {
  it('no_mask on masks photos: counts and per-photo outcomes agree with npm run detect --json', async () => {
    const [ev, det] = [
      await cli('eval.ts', ['--violation', 'no_mask', '--positives', path.join(root, 'pos'), '--negatives', path.join(root, 'neg'), '--json']),
      await cli('detect.ts', ['--json', path.join(root, 'pos'), path.join(root, 'neg')]),
    ];
    expect(ev.code, ev.stderr).toBe(0);
    expect(det.code, det.stderr).toBe(0);
    // 22 photos: one progress line on stderr at 20 and one at the end; stdout is the JSON alone.
    expect(ev.stderr).toMatch(/eval: 20\/22 photos[\s\S]*eval: 22\/22 photos/);
    const rep = JSON.parse(ev.stdout) as { kind: string; metrics: Record<string, unknown>; images: Img[] };
    expect(rep.kind).toBe('no_mask');

    // What detect says: a photo raises no_mask when one of its violations is no_mask.
    const fromDetect = new Map<string, { raised: boolean; score: number | null; count: number }>();
    for (const line of det.stdout.trim().split('\n')) {
      const r = JSON.parse(line) as { file: string; violations: { kind: string; score: number }[] };
      const nm = r.violations.filter((v) => v.kind === 'no_mask');
      fromDetect.set(path.resolve(r.file), { raised: nm.length > 0, score: nm.length ? Math.max(...nm.map((v) => v.score)) : null, count: nm.length });
    }
    expect(fromDetect.size).toBe(pos.length + neg.length);
    expect(rep.images).toHaveLength(pos.length + neg.length);
    for (const im of rep.images) {
      const d = fromDetect.get(path.resolve(im.file));
      expect(d, im.file).toBeDefined();
      expect({ file: im.file, raised: im.raised, score: im.score, count: im.count }).toEqual({ file: im.file, ...d });
      expect(im.positive).toBe(path.dirname(im.file) === path.join(root, 'pos'));
    }

    const tp = [...fromDetect].filter(([f, d]) => d.raised && path.dirname(f) === path.join(root, 'pos')).length;
    const fa = [...fromDetect].filter(([f, d]) => d.raised && path.dirname(f) === path.join(root, 'neg')).length;
    expect(rep.metrics).toMatchObject({
      positives: pos.length,
      truePositives: tp,
      misses: pos.length - tp,
      recall: tp / pos.length,
      negatives: neg.length,
      falseAlarms: fa,
      falseAlarmRate: fa / neg.length,
      precision: tp + fa > 0 ? tp / (tp + fa) : null,
    });
    // The eval sees violations at all (a regression that never raises one would pass the rest).
    expect(tp).toBeGreaterThan(0);

    // The table with --list: the same counts, one line per photo.
    const table = await cli('eval.ts', ['--violation', 'no_mask', '--positives', path.join(root, 'pos'), '--negatives', path.join(root, 'neg'), '--list']);
    expect(table.code, table.stderr).toBe(0);
    expect(table.stdout).toMatch(new RegExp(`positives\\s+${pos.length} photos\\s+${tp} raised\\s+recall\\s+${(tp / pos.length).toFixed(3)}`));
    expect(table.stdout).toMatch(new RegExp(`negatives\\s+${neg.length} photos\\s+${fa} false alarms\\s+false-alarm rate\\s+${(fa / neg.length).toFixed(3)}`));
    expect(table.stdout.match(/^ {2}MISS /gm) ?? []).toHaveLength(pos.length - tp);
    expect(table.stdout.match(/^ {2}(TP|MISS|FA|ok) /gm) ?? []).toHaveLength(pos.length + neg.length);

    // The same photos through a labels CSV, one split kept by --where: the outcomes of that split.
    const rows = rep.images.map((im, i) => ({ rel: path.relative(root, im.file), bare: im.positive ? 1 : 0, split: i % 2 ? 'b' : 'a' }));
    writeFileSync(path.join(root, 'labels.csv'), `file,bare,split\n${rows.map((r) => `${r.rel},${r.bare},${r.split}`).join('\n')}\n`);
    const csv = await cli('eval.ts', ['--violation', 'no_mask', '--labels', path.join(root, 'labels.csv'), '--positive-when', 'bare=1', '--where', 'split=a', '--json']);
    expect(csv.code, csv.stderr).toBe(0);
    const c = JSON.parse(csv.stdout) as { metrics: Record<string, unknown>; images: Img[] };
    const want = rep.images.filter((_, i) => i % 2 === 0);
    expect(c.images.map((im) => [im.file, im.positive, im.raised])).toEqual(want.map((im) => [im.file, im.positive, im.raised]));
    expect(c.metrics).toMatchObject({ positives: want.filter((x) => x.positive).length, truePositives: want.filter((x) => x.positive && x.raised).length });
  });

  it('clear errors: a bad kind, a missing folder, a CSV without the column, mixed-up options', async () => {
    const bad = await cli('eval.ts', ['--violation', 'no_masks', '--positives', path.join(root, 'pos')]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--violation: unknown violation kind "no_masks" (valid: no_hat, no_mask, smoking, mixed_boards, rodent)');
    const missing = await cli('eval.ts', ['--violation', 'no_mask', '--positives', path.join(root, 'nope')]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain(`--positives ${path.join(root, 'nope')}: no such folder`);
    writeFileSync(path.join(root, 'l2.csv'), `file,has_hat\npos/${pos[0]},0\n`);
    const col = await cli('eval.ts', ['--violation', 'no_hat', '--labels', path.join(root, 'l2.csv'), '--positive-when', 'hat=0']);
    expect(col.code).toBe(1);
    expect(col.stderr).toContain(`${path.join(root, 'l2.csv')}: no column "hat" (named by --positive-when; columns: file, has_hat)`);
    const noWhen = await cli('eval.ts', ['--violation', 'no_hat', '--labels', path.join(root, 'l2.csv')]);
    expect([noWhen.code, noWhen.stderr]).toEqual([2, expect.stringContaining('--labels needs --positive-when COLUMN=VALUE')]);
    const mixed = await cli('eval.ts', ['--violation', 'no_mask', '--iou', '0.5', '--positives', path.join(root, 'pos')]);
    expect([mixed.code, mixed.stderr]).toEqual([2, expect.stringContaining('--iou: options of the detection eval, not of --violation')]);
    const other = await cli('eval.ts', [MASKS, '--list']);
    expect([other.code, other.stderr]).toEqual([2, expect.stringContaining('--list: options of the violation eval, only with --violation KIND')]);
    // A kind no model of the pack can see is refused rather than scored as recall 0.
    const boards = await cli('eval.ts', ['--violation', 'mixed_boards', '--positives', path.join(root, 'pos')]);
    expect(boards.code).toBe(1);
    expect(boards.stderr).toMatch(/--violation mixed_boards: no model in the pack produces raw_board, raw_knife/);
  });
});

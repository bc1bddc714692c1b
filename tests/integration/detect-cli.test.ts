/** The detect and eval CLIs as a user runs them. */
import { copyFileSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../agent/detect/index.js';
import { installModels } from '../../scripts/install-models.js';
import { agentCli } from '../helpers/process.js';
import { tempDir } from '../unit/detect-fixtures.js';

const DATA = path.resolve(REPO_ROOT, '../shared/data');

const cli = agentCli;

beforeAll(async () => {
  await installModels();
});

describe('detect CLI', () => {
  it('--json: one line per image with boxes in source pixels; --annotate writes JPEGs', async () => {
    const out = tempDir('bk-annot-');
    const imgs = ['000000001000.jpg', '000000000785.jpg'].map((f) => path.join(DATA, 'coco-sample', f));
    const r = await cli('detect.ts', ['--json', '--annotate', out, ...imgs]);
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l));
    expect(lines).toHaveLength(2);
    expect(Object.keys(lines[0])).toEqual(['file', 'width', 'height', 'detections', 'heads', 'violations']);
    expect(lines[0]).toMatchObject({ file: imgs[0], width: 640, height: 480 });
    const labels = new Set(lines[0].detections.map((d: { label: string }) => d.label));
    expect(labels).toContain('person');
    expect(labels).toContain('face');
    expect([...labels].every((l) => ['person', 'face', 'head', 'chef_hat'].includes(l as string))).toBe(true);
    // Heads: one per worker, with the classifier's attributes and the labels they give.
    expect(lines[0].heads.length).toBeGreaterThan(0);
    for (const h of lines[0].heads) {
      expect(Object.keys(h.attributes)).toEqual(expect.arrayContaining(['covered', 'cigarette']));
      expect(h.labels).toContain(h.attributes.covered >= 0.4 ? 'chef_hat' : 'head');
    }
    // Still-image violations: every bare face is a no_mask violation at its own box, every bare head
    // a no_hat one (at most: a chef_hat overlapping it clears it), nothing else.
    const at = (label: string) => lines[0].detections.filter((d: { label: string }) => d.label === label).map((d: { box: number[] }) => d.box);
    const v = (kind: string) => lines[0].violations.filter((x: { kind: string }) => x.kind === kind).map((x: { box: number[] }) => x.box);
    expect(v('no_mask')).toEqual(at('face'));
    expect(at('head')).toEqual(expect.arrayContaining(v('no_hat')));
    expect(lines[0].violations.every((x: { kind: string }) => ['no_mask', 'no_hat'].includes(x.kind))).toBe(true);
    for (const l of lines)
      for (const d of l.detections) {
        expect(Object.keys(d)).toEqual(['label', 'score', 'box']);
        expect(d.box[0]).toBeGreaterThanOrEqual(0);
        expect(d.box[2]).toBeLessThanOrEqual(l.width);
        expect(d.box[3]).toBeLessThanOrEqual(l.height);
      }
    expect(readdirSync(out).sort()).toEqual(['000000000785.jpg', '000000001000.jpg']);
    const meta = await sharp(path.join(out, '000000001000.jpg')).metadata();
    expect([meta.format, meta.width, meta.height]).toEqual(['jpeg', 640, 480]);
  });

  it('honours EXIF orientation: a rotated JPEG reports the displayed size and boxes', async () => {
    const dir = tempDir('bk-exif-');
    const src = path.join(DATA, 'coco-sample/000000001000.jpg');
    // Store the photo rotated 90° clockwise with EXIF orientation 8 (display: rotate back).
    await sharp(src).rotate(90).withMetadata({ orientation: 8 }).jpeg().toFile(path.join(dir, 'rot.jpg'));
    const r = await cli('detect.ts', ['--json', path.join(dir, 'rot.jpg'), src]);
    const [rot, orig] = r.stdout.trim().split('\n').map((l) => JSON.parse(l));
    expect([rot.width, rot.height]).toEqual([640, 480]);
    expect(rot.detections.filter((d: { label: string }) => d.label === 'face').length).toBe(orig.detections.filter((d: { label: string }) => d.label === 'face').length);
  });

  it('a folder of images, a table without --json, and clear errors', async () => {
    const dir = tempDir('bk-in-');
    await sharp({ create: { width: 64, height: 48, channels: 3, background: '#202020' } }).png().toFile(path.join(dir, 'blank.png'));
    writeFileSync(path.join(dir, 'broken.jpg'), 'not a jpeg');
    const r = await cli('detect.ts', [dir]);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/blank\.png {2}64x48 {2}0 detections/);
    expect(r.stderr).toMatch(/broken\.jpg: cannot decode image/);
    const cfg = path.join(dir, 'site.yaml');
    writeFileSync(cfg, 'site: {id: s1, name: S}\ncameras: [{id: c1, name: C, url: "rtsp://x/y"}]\nmodels: {pack: [{manifest: nosuch}]}\n');
    const r2 = await cli('detect.ts', ['--config', cfg, dir]);
    expect(r2.code).toBe(1);
    expect(r2.stderr).toMatch(/nosuch\.model\.yaml: cannot read file: ENOENT/);
    const h = await cli('detect.ts', ['--help']);
    expect(h.stdout).toMatch(/--annotate DIR/);
  });
});

describe('eval CLI', () => {
  it('--json on a slice of the masks folder', async () => {
    const r = await cli('eval.ts', [path.join(DATA, 'masks'), '--json', '--limit', '10', '--iou', '0.3']);
    expect(r.code).toBe(0);
    const rep = JSON.parse(r.stdout);
    expect(rep.dataset.images).toBe(10);
    expect(rep.metrics.map((m: { name: string }) => m.name)).toEqual(['face+masked_face', 'face', 'masked_face']);
  });

  it('--negatives counts false alarms on photos without the object, and names a bad folder', async () => {
    const neg = tempDir('bk-neg-');
    for (const f of readdirSync(path.join(DATA, 'masks/images')).sort().slice(0, 2)) copyFileSync(path.join(DATA, 'masks/images', f), path.join(neg, f));
    const args = [path.join(DATA, 'rats'), '--split', 'val', '--map', '0=rodent', '--limit', '3'];
    const r = await cli('eval.ts', [...args, '--json', '--negatives', neg]);
    expect(r.code, r.stderr).toBe(0);
    const rep = JSON.parse(r.stdout);
    expect(rep.negatives).toHaveLength(1);
    const n = rep.negatives[0];
    expect(n).toMatchObject({ dir: neg, images: 2, label: 'rodent' });
    expect(n.imagesWithFalseAlarm).toBeLessThanOrEqual(2);
    expect(n.falseAlarms).toBeGreaterThanOrEqual(n.imagesWithFalseAlarm);
    const table = await cli('eval.ts', [...args, '--negatives', neg]);
    expect(table.stdout).toMatch(/false alarms on photos without the object[\s\S]*rodent .*: \d of 2 images/);
    const empty = tempDir('bk-neg-empty-');
    const bad = await cli('eval.ts', [...args, '--negatives', empty]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain(`--negatives ${empty}: no images in this folder`);
  });

  it('a table by default; a bad --iou is named', async () => {
    const r = await cli('eval.ts', [path.join(DATA, 'masks'), '--limit', '3']);
    expect(r.stdout).toMatch(/face\+masked_face\s+0\.30/);
    const bad = await cli('eval.ts', [path.join(DATA, 'masks'), '--iou', '0.3,1.5']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--iou: expected numbers between 0 and 1.*"0\.3,1\.5"/);
  });
});

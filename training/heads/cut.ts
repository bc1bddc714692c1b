/**
 * Cuts the head-attribute classifier's training crops out of the development data with the project's
 * own detectors and the classifier manifest's crop recipe (agent/detect/heads.ts), so training sees
 * exactly the crops the agent will judge. Each crop gets labels where the data says them, -1 where it
 * does not (the loss skips those):
 *   hats/kitchen   covered = has_hat (kitchenA toques 1, kitchenB bare 0), one group per video
 *   hats/helmets   covered from the head box a region contains (helmet 1, no_helmet 0)
 *   masks          mask from the face box (with_mask 1, without_mask 0)
 *   smoking        cigarette 1 when the region holds most of a smoking box, 0 when it meets none
 *   coco-sample    cigarette 0, mask 0 (everyday photos)
 * covered is unknown outside hats/: the contact sheet of masks, smoking and coco crops shows caps,
 * hats and hoods among the bare heads, and a cap counts as covered.
 * Output (cached; a second run with the same recipe and detectors reuses it):
 *   <out>/crops.u8   N x S x S x 3 RGB bytes (S = size x context: crops carry a margin for jitter)
 *   <out>/index.csv  one row per crop: set, group, split, image, source, region box, labels
 *
 *   tsx training/heads/cut.ts [--data ../shared/data] [--out var/train/heads] [--size PX] [--max-images N]
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, writeFileSync, openSync, writeSync, closeSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { readYaml } from '../../agent/config/load.js';
import { cropResize, CropRecipeSchema, headRegions, type CropRecipe, type HeadRegion } from '../../agent/detect/heads.js';
import { loadImage } from '../../agent/detect/image.js';
import { ModelPack, REPO_ROOT } from '../../agent/detect/pack.js';
import type { BoxXYXY } from '../../agent/detect/types.js';
import { readDataset, resolveGroundTruth, type GroundTruth } from '../../agent/eval/datasets.js';
import { parseCsv } from '../../agent/eval/image-sets.js';

/** The context cut around a crop for training-time jitter (crops are `--size` px, default the manifest's input width). */
export const CONTEXT = 112 / 96;

export interface CropLabels {
  covered: number;
  cigarette: number;
  mask: number;
}

interface Source {
  set: string;
  image: string;
  group: string;
  /** Fixed split when the data set gives one. */
  split?: 'train' | 'val';
  labelRegion: (r: HeadRegion, gt: GroundTruth[]) => CropLabels;
  gt: (w: number, h: number) => GroundTruth[];
}

function area(b: BoxXYXY): number {
  return Math.max(0, b[2] - b[0]) * Math.max(0, b[3] - b[1]);
}
function inter(a: BoxXYXY, b: BoxXYXY): number {
  return area([Math.max(a[0], b[0]), Math.max(a[1], b[1]), Math.min(a[2], b[2]), Math.min(a[3], b[3])]);
}
function iou(a: BoxXYXY, b: BoxXYXY): number {
  const i = inter(a, b);
  return i / (area(a) + area(b) - i || 1);
}
function centreIn(b: BoxXYXY, r: BoxXYXY): boolean {
  const cx = (b[0] + b[2]) / 2;
  const cy = (b[1] + b[3]) / 2;
  return cx >= r[0] && cx <= r[2] && cy >= r[1] && cy <= r[3];
}

/** The head box (helmet / no_helmet) a region is about: mostly inside it and not tiny beside it. */
function headOf(r: HeadRegion, gt: GroundTruth[]): GroundTruth[] {
  const side = r.box[2] - r.box[0];
  return gt.filter((g) => g.label && centreIn(g.box, r.box) && inter(g.box, r.box) >= 0.5 * area(g.box) && g.box[2] - g.box[0] >= 0.25 * side);
}

/** The annotated face of a region: the face detection it came from overlaps it, or (person heads) its centre is inside. */
function faceOf(r: HeadRegion, gt: GroundTruth[]): GroundTruth[] {
  return gt.filter((g) => g.label && (r.source === 'face' ? iou(g.box, r.from.box) >= 0.3 : centreIn(g.box, r.box)));
}

function one(matches: GroundTruth[], positive: string): number {
  const kinds = new Set(matches.map((g) => g.label));
  if (kinds.size !== 1) return -1; // none, or two heads of different kinds: unknown
  return kinds.has(positive) ? 1 : 0;
}

function sources(data: string, maxImages: number | undefined): Source[] {
  const out: Source[] = [];
  const take = <T>(xs: T[]) => (maxImages ? xs.slice(0, maxImages) : xs);
  const none = () => [] as GroundTruth[];

  const kitchenDir = path.join(data, 'hats/kitchen');
  const csvFile = path.join(kitchenDir, 'labels.csv');
  const csv = parseCsv(readFileSync(csvFile, 'utf8'), csvFile);
  const col = (n: string) => {
    const i = csv.header.indexOf(n);
    if (i < 0) throw new Error(`${csvFile}: no column "${n}"`);
    return i;
  };
  const [fi, vi, hi] = [col('file'), col('video'), col('has_hat')];
  for (const { fields } of take(csv.rows)) {
    const covered = fields[hi] === '1' ? 1 : 0;
    out.push({ set: 'kitchen', image: path.join(kitchenDir, 'images', fields[fi]!), group: fields[vi]!, labelRegion: () => ({ covered, cigarette: 0, mask: -1 }), gt: none });
  }

  const helmets = readDataset(path.join(data, 'hats/helmets'), { map: new Map([['0', 'covered'], ['1', 'bare']]) });
  for (const s of take(helmets.samples)) {
    // Roboflow exports: "<original>_jpg.rf.<hash>.jpg"; augmented copies share the original's name.
    const group = path.basename(s.image).replace(/_(jpg|jpeg|png)\.rf\..*$/i, '');
    out.push({
      set: 'helmets', image: s.image, group,
      gt: (w, h) => resolveGroundTruth(s, w, h),
      labelRegion: (r, gt) => ({ covered: one(headOf(r, gt), 'covered'), cigarette: 0, mask: -1 }),
    });
  }

  const masks = readDataset(path.join(data, 'masks'));
  for (const s of take(masks.samples)) {
    out.push({
      set: 'masks', image: s.image, group: path.basename(s.image),
      gt: () => s.gt,
      labelRegion: (r, gt) => ({ covered: -1, cigarette: 0, mask: one(faceOf(r, gt), 'masked_face') }),
    });
  }

  for (const split of ['train', 'val'] as const) {
    const smoking = readDataset(path.join(data, 'smoking'), { map: new Map([['0', 'cigarette']]), split });
    for (const s of take(smoking.samples)) {
      out.push({
        set: 'smoking', image: s.image, group: path.basename(s.image), split,
        gt: (w, h) => resolveGroundTruth(s, w, h),
        labelRegion: (r, gt) => {
          const boxes = gt.filter((g) => g.label === 'cigarette').map((g) => g.box);
          const held = boxes.some((b) => inter(b, r.box) >= 0.4 * area(b));
          const touched = boxes.some((b) => inter(b, r.box) > 0);
          return { covered: -1, cigarette: held ? 1 : touched ? -1 : 0, mask: 0 };
        },
      });
    }
  }

  const coco = path.join(data, 'coco-sample');
  for (const f of take(readdirSync(coco).filter((x) => /\.(jpe?g|png)$/i.test(x)).sort())) {
    out.push({ set: 'coco', image: path.join(coco, f), group: f, gt: none, labelRegion: () => ({ covered: -1, cigarette: 0, mask: 0 }) });
  }
  return out;
}

/** Held-out fifth of each photo set, by a hash of its group (never by frame); kitchen splits by video later. */
function splitOf(s: Source): string {
  if (s.set === 'kitchen') return s.group;
  if (s.split) return s.split;
  const h = createHash('sha1').update(`${s.set}/${s.group}`).digest();
  return h[0]! % 5 === 0 ? 'val' : 'train';
}

export function readRecipe(manifestFile: string): CropRecipe {
  const raw = readYaml(manifestFile) as { crop?: unknown };
  const r = CropRecipeSchema.safeParse(raw?.crop);
  if (!r.success) throw new Error(`${manifestFile}: crop: ${r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  return r.data;
}

/** Region grown by the training context around its centre. */
function withContext(b: BoxXYXY): BoxXYXY {
  const cx = (b[0] + b[2]) / 2;
  const cy = (b[1] + b[3]) / 2;
  const h = ((b[2] - b[0]) * CONTEXT) / 2;
  return [cx - h, cy - h, cx + h, cy + h];
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      data: { type: 'string', default: path.resolve(REPO_ROOT, '../shared/data') },
      out: { type: 'string', default: path.join(REPO_ROOT, 'var/train/heads') },
      manifest: { type: 'string', default: path.join(REPO_ROOT, 'models/head_attrs.model.yaml') },
      'max-images': { type: 'string' },
      size: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write('usage: tsx training/heads/cut.ts [--data DIR] [--out DIR] [--manifest FILE] [--size PX] [--max-images N]\n');
    return;
  }
  const recipe = readRecipe(values.manifest);
  const SIZE = values.size ? Number(values.size) : (readYaml(values.manifest) as { input: { width: number } }).input.width;
  if (!Number.isInteger(SIZE) || SIZE < 32 || SIZE > 512) throw new Error(`--size: expected a crop side of 32..512 px, got "${values.size}"`);
  const maxImages = values['max-images'] ? Number(values['max-images']) : undefined;
  const detectors = [{ manifest: 'rfb640_masked_face' }, { manifest: 'yolox_nano', labels: ['person'] }];
  const key = createHash('sha1').update(JSON.stringify({ recipe, detectors, maxImages, SIZE, CONTEXT, v: 1 })).digest('hex').slice(0, 12);
  const out = path.resolve(values.out);
  const index = path.join(out, 'index.csv');
  if (existsSync(path.join(out, `done-${key}`))) {
    process.stderr.write(`crops cached in ${out} (recipe ${key})\n`);
    return;
  }
  mkdirSync(out, { recursive: true });
  const pack = await ModelPack.load({ pack: detectors, threads: 2 });
  const list = sources(path.resolve(values.data), maxImages);
  const S = Math.round(SIZE * CONTEXT);
  const fd = openSync(path.join(out, 'crops.u8.tmp'), 'w');
  const rows = ['i,set,group,split,image,source,x1,y1,x2,y2,score,covered,cigarette,mask'];
  const buf = new Uint8Array(S * S * 3);
  let n = 0;
  const t0 = Date.now();
  for (const [k, s] of list.entries()) {
    const img = await loadImage(s.image);
    const dets = await pack.detect(img);
    const gt = s.gt(img.width, img.height);
    const split = splitOf(s);
    for (const r of headRegions(dets, recipe)) {
      const l = s.labelRegion(r, gt);
      cropResize(img, withContext(r.box), S, recipe.pad, buf);
      writeSync(fd, buf);
      const b = r.box.map((v) => v.toFixed(1)).join(',');
      rows.push(`${n},${s.set},${s.group},${split},${path.relative(values.data, s.image)},${r.source},${b},${r.from.score.toFixed(3)},${l.covered},${l.cigarette},${l.mask}`);
      n++;
    }
    if ((k + 1) % 200 === 0 || k + 1 === list.length)
      process.stderr.write(`cut ${k + 1}/${list.length} images, ${n} crops, ${((Date.now() - t0) / 1000).toFixed(0)} s\n`);
  }
  closeSync(fd);
  await pack.close();
  renameSync(path.join(out, 'crops.u8.tmp'), path.join(out, 'crops.u8'));
  writeFileSync(index, rows.join('\n') + '\n');
  writeFileSync(path.join(out, 'meta.json'), JSON.stringify({ size: SIZE, cut: S, crops: n, recipe, detectors, key }, null, 1));
  for (const f of readdirSync(out)) if (f.startsWith('done-')) renameSync(path.join(out, f), path.join(out, `old-${f}`));
  writeFileSync(path.join(out, `done-${key}`), '');
}

main().catch((err: Error) => {
  process.stderr.write(`cut.ts: ${err.message}\n`);
  process.exit(1);
});

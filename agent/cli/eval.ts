/**
 * Evaluate the model pack on a labelled folder (Pascal VOC or YOLO).
 *   npm run eval -- <dir> [--map with_mask=masked_face,without_mask=face] [--iou 0.3,0.5] [--json] [--config site.yaml]
 *                       [--negatives DIR,...]
 */
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { DEFAULT_VOC_MAP, parseClassMap, readDataset, resolveGroundTruth, type Dataset } from '../detect/datasets.js';
import { defaultTargets, evaluate, type EvalImage, type Metric } from '../detect/evaluate.js';
import { isImageFile, loadImage } from '../detect/image.js';
import { loadManifest, manifestPath } from '../detect/manifest.js';
import { ModelPack, modelsSection } from '../detect/pack.js';

const HELP = `Evaluate detection on a labelled image folder.

Usage: npm run eval -- <dir> [options]

  <dir>                 Pascal VOC folder (annotations/*.xml + images/; <filename> names the image)
                        or YOLO folder (images/{train,val}/ + labels/{train,val}/, or images/ + labels/)
  --map A=label,...     dataset class → canonical label; VOC default: ${DEFAULT_VOC_MAP};
                        YOLO: class indices, required (e.g. --map 0=rodent). Unmapped classes are ignored
  --split NAME          YOLO split folder (default: val when images/ has splits)
  --iou T1,T2           IoU thresholds for a match (default: 0.3,0.5)
  --floor S             lowest score kept for average precision (default: 0.05); precision and recall
                        are reported at each model's operating threshold (manifest or config minScore)
  --config FILE         site config whose models section gives the pack (default: rfb640_masked_face + yolox_nano;
                        config/detect-kitchen.yaml adds rodent_yolox + cigarette_yolox)
  --negatives DIR,...   folders of photos that show none of the evaluated labels (people, kitchens):
                        false alarms at the operating threshold per label (images with one, detections)
  --limit N             evaluate the first N images only
  --json                one JSON object instead of the table
  -h, --help            this text

Reported per label (and for face+masked_face matched regardless of mask, with "label acc" = share of
matched faces whose mask / no-mask label is right): precision, recall, AP at each IoU threshold.`;

export interface EvalReport {
  dataset: { dir: string; format: Dataset['format']; images: number; objects: Record<string, number>; ignored: Record<string, number> };
  models: { name: string; minScore: number }[];
  scoreFloor: number;
  iou: number[];
  metrics: Metric[];
  /** Per negative folder and label: false alarms at the operating threshold. */
  negatives: { dir: string; images: number; label: string; imagesWithFalseAlarm: number; falseAlarms: number }[];
  seconds: number;
}

function fail(msg: string, code = 1): never {
  process.stderr.write(`eval: ${msg}\n`);
  process.exit(code);
}

function parseList(name: string, s: string): number[] {
  const v = s.split(',').map((x) => Number(x.trim()));
  if (v.length === 0 || v.some((x) => !Number.isFinite(x) || x <= 0 || x >= 1)) fail(`--${name}: expected numbers between 0 and 1 separated by commas, got "${s}"`, 2);
  return v;
}

export async function runEval(opts: {
  dir: string;
  map?: Map<string, string>;
  split?: string;
  iou: number[];
  floor: number;
  config?: string;
  limit?: number;
  negatives?: string[];
}): Promise<EvalReport> {
  const t0 = performance.now();
  const ds = readDataset(opts.dir, { map: opts.map, split: opts.split });
  const samples = opts.limit ? ds.samples.slice(0, opts.limit) : ds.samples;
  const objects: Record<string, number> = {};
  const ignored: Record<string, number> = {};
  for (const s of samples)
    for (const g of s.gt) {
      if (g.label === undefined || g.difficult) ignored[g.raw] = (ignored[g.raw] ?? 0) + 1;
      else objects[g.label] = (objects[g.label] ?? 0) + 1;
    }
  const labels = new Set([...Object.keys(objects), ...ds.map.values()]);
  if (Object.keys(objects).length === 0) throw new Error(`${ds.root}: no labelled objects after the class map (ignored classes: ${Object.keys(ignored).join(', ') || 'none'})`);

  // Only the models that can produce an evaluated label.
  const section = modelsSection(opts.config);
  const pack = section.pack.filter((ref) => {
    const m = loadManifest(manifestPath(path.resolve(section.manifests), ref.manifest));
    const produced = Object.values(m.classes).filter((l) => !ref.labels || ref.labels.includes(l));
    return produced.some((l) => labels.has(l));
  });
  if (pack.length === 0) throw new Error(`no model in the pack produces ${[...labels].join(', ')}`);
  const models = await ModelPack.load({ ...section, pack });
  try {
    const floor = Math.min(opts.floor, ...models.models.map((m) => m.minScore));
    const images: EvalImage[] = [];
    for (const s of samples) {
      const img = await loadImage(s.image);
      const dets = await models.detect(img, { minScore: floor });
      images.push({
        gt: resolveGroundTruth(s, img.width, img.height),
        detections: dets.map((d) => ({ ...d, operating: d.score >= models.model(d.model).minScore })),
      });
    }
    const metrics = evaluate(images, defaultTargets(labels), opts.iou);
    const negatives: EvalReport['negatives'] = [];
    for (const dir of opts.negatives ?? []) {
      let files: string[];
      try {
        files = readdirSync(dir).filter(isImageFile).sort();
      } catch (err) {
        throw new Error(`--negatives ${dir}: ${(err as Error).message}`);
      }
      if (files.length === 0) throw new Error(`--negatives ${dir}: no images in this folder`);
      const counts = new Map([...labels].map((l) => [l, { imagesWithFalseAlarm: 0, falseAlarms: 0 }]));
      for (const f of files) {
        const dets = await models.detect(await loadImage(path.join(dir, f)));
        for (const [label, c] of counts) {
          const n = dets.filter((d) => d.label === label).length;
          c.falseAlarms += n;
          if (n > 0) c.imagesWithFalseAlarm++;
        }
      }
      for (const [label, c] of counts) negatives.push({ dir, images: files.length, label, ...c });
    }
    return {
      dataset: { dir: ds.root, format: ds.format, images: samples.length, objects, ignored },
      models: models.models.map((m) => ({ name: m.name, minScore: m.minScore })),
      scoreFloor: floor,
      iou: opts.iou,
      metrics,
      negatives,
      seconds: (performance.now() - t0) / 1000,
    };
  } finally {
    await models.close();
  }
}

export function formatTable(r: EvalReport): string {
  const f = (x: number) => x.toFixed(3);
  const lines = [
    `dataset  ${r.dataset.dir} (${r.dataset.format}, ${r.dataset.images} images; ${Object.entries(r.dataset.objects)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ')}${Object.keys(r.dataset.ignored).length ? `; ignored ${Object.entries(r.dataset.ignored).map(([k, v]) => `${k} ${v}`).join(', ')}` : ''})`,
    `models   ${r.models.map((m) => `${m.name} (min score ${m.minScore})`).join(', ')}; AP down to score ${r.scoreFloor}`,
    '',
    `${'label'.padEnd(18)} ${'IoU'.padStart(4)} ${'GT'.padStart(5)} ${'TP'.padStart(5)} ${'FP'.padStart(5)} ${'FN'.padStart(5)} ${'precision'.padStart(9)} ${'recall'.padStart(7)} ${'AP'.padStart(6)} ${'label acc'.padStart(9)}`,
  ];
  for (const m of r.metrics)
    lines.push(
      `${m.name.padEnd(18)} ${m.iou.toFixed(2).padStart(4)} ${String(m.gt).padStart(5)} ${String(m.tp).padStart(5)} ${String(m.fp).padStart(5)} ${String(m.fn).padStart(5)} ${f(m.precision).padStart(9)} ${f(m.recall).padStart(7)} ${f(m.ap).padStart(6)} ${(m.labelAccuracy === undefined ? '' : f(m.labelAccuracy)).padStart(9)}`,
    );
  if (r.negatives.length) {
    lines.push('', 'false alarms on photos without the object (operating threshold):');
    for (const n of r.negatives)
      lines.push(`  ${n.label.padEnd(16)} ${n.dir}: ${n.imagesWithFalseAlarm} of ${n.images} images (${f(n.imagesWithFalseAlarm / n.images)}), ${n.falseAlarms} detections`);
  }
  lines.push('', `${r.dataset.images} images in ${r.seconds.toFixed(1)} s`);
  return lines.join('\n');
}

async function main(): Promise<void> {
  let parsed;
  try {
    parsed = parseArgs({
      options: {
        map: { type: 'string' },
        split: { type: 'string' },
        iou: { type: 'string', default: '0.3,0.5' },
        floor: { type: 'string', default: '0.05' },
        config: { type: 'string' },
        limit: { type: 'string' },
        negatives: { type: 'string' },
        json: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
      allowPositionals: true,
    });
  } catch (err) {
    fail(`${(err as Error).message}\n\n${HELP}`, 2);
  }
  const { values: a, positionals } = parsed;
  if (a.help) {
    process.stdout.write(`${HELP}\n`);
    return;
  }
  if (positionals.length !== 1) fail(`expected one dataset folder, got ${positionals.length}\n\n${HELP}`, 2);
  const floor = Number(a.floor);
  if (!(floor >= 0 && floor <= 1)) fail(`--floor: expected a score between 0 and 1, got "${a.floor}"`, 2);
  const limit = a.limit === undefined ? undefined : Number(a.limit);
  if (limit !== undefined && !(Number.isInteger(limit) && limit > 0)) fail(`--limit: expected a positive integer, got "${a.limit}"`, 2);
  try {
    const report = await runEval({
      dir: positionals[0]!,
      map: a.map ? parseClassMap(a.map) : undefined,
      split: a.split,
      iou: parseList('iou', a.iou!),
      floor,
      config: a.config,
      limit,
      negatives: a.negatives ? a.negatives.split(',').map((x) => x.trim()).filter(Boolean) : undefined,
    });
    process.stdout.write(`${a.json ? JSON.stringify(report) : formatTable(report)}\n`);
  } catch (err) {
    fail((err as Error).message);
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === path.resolve(new URL(import.meta.url).pathname)) await main();

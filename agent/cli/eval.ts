/**
 * Evaluate the model pack on labelled photos.
 *   Detections on a labelled folder (Pascal VOC or YOLO):
 *     npm run eval -- <dir> [--map with_mask=masked_face,without_mask=face] [--iou 0.3,0.5] [--json] [--config site.yaml]
 *                         [--negatives DIR,...]
 *   Violations at image level (the still rules of `npm run detect`):
 *     npm run eval -- --violation KIND [--positives DIR,...] [--negatives DIR,...]
 *                         [--labels CSV --positive-when COLUMN=VALUE [--where COLUMN=VALUE ...]] [--list] [--json] [--config site.yaml]
 */
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { VIOLATION_KINDS, VIOLATION_TEXT, type ViolationKind } from '../../protocol/violations.js';
import { loadSiteConfig } from '../config/load.js';
import { isImageFile, loadImage } from '../detect/image.js';
import { isClassifier, loadManifest, manifestPath } from '../detect/manifest.js';
import { ModelPack, modelsSection } from '../detect/pack.js';
import { isWanted } from '../detect/model.js';
import { DEFAULT_VOC_MAP, parseClassMap, readDataset, resolveGroundTruth, type Dataset } from '../eval/datasets.js';
import { defaultTargets, evaluate, type EvalImage, type Metric } from '../eval/evaluate.js';
import { imagesFromFolders, mergeImageSets, parseColumnTest, readLabelsCsv, type LabelledImage } from '../eval/image-sets.js';
import { judge, parseViolationKind, rulesOfKind, scoreViolations, type ViolationMetrics, type ViolationOutcome } from '../eval/violations.js';
import { evaluateStill, rulesForSite } from '../rules/index.js';
import { judgeOnce } from '../track/attributes.js';

const HELP = `Evaluate the model pack on labelled photos: detections on a labelled folder, or violations at image level.

Usage: npm run eval -- <dir> [options]                                     detections (boxes)
       npm run eval -- --violation KIND [--positives DIR,...] [--negatives DIR,...]
                       [--labels CSV --positive-when C=V [--where C=V]] [options]  violations (yes / no per photo)

Detections:
  <dir>                 Pascal VOC folder (annotations/*.xml + images/; <filename> names the image)
                        or YOLO folder (images/{train,val}/ + labels/{train,val}/, or images/ + labels/)
  --map A=label,...     dataset class → canonical label; VOC default: ${DEFAULT_VOC_MAP};
                        YOLO: class indices, required (e.g. --map 0=rodent). Unmapped classes are ignored
  --split NAME          YOLO split folder (default: val when images/ has splits)
  --iou T1,T2           IoU thresholds for a match (default: 0.3,0.5)
  --floor S             lowest score kept for average precision (default: 0.05); precision and recall
                        are reported at each model's operating threshold (manifest or config minScore)
  --negatives DIR,...   folders of photos that show none of the evaluated labels (people, kitchens):
                        false alarms at the operating threshold per label (images with one, detections)
  --limit N             evaluate the first N images only

  Reported per label (and for face+masked_face matched regardless of mask, with "label acc" = share of
  matched faces whose mask / no-mask label is right): precision, recall, AP at each IoU threshold, and
  recall by object size (small < 32², medium < 96² px, large).

Violations (each photo: the pack, then the still-image rules exactly as \`npm run detect\` applies them,
ignoring persistence and schedule; the photo "raises" KIND when a rule of that kind fires):
  --violation KIND      ${VIOLATION_KINDS.join(', ')}
  --positives DIR,...   folders of photos that show the violation (not recursive)
  --negatives DIR,...   folders of photos that do not
  --labels CSV          or / and a labels CSV, one row per image; its "file" column names the image,
                        relative to the CSV's folder or its images/ subfolder (or absolute)
  --positive-when C=V   with --labels: rows whose column C is V are positives, the others negatives
                        (e.g. --positive-when has_hat=0)
  --where C=V           with --labels: keep only rows whose column C is V (repeatable, all must hold;
                        e.g. --where video=kitchenB to score one video as a validation split)
  --list                also print every photo's outcome (TP, MISS, FA, ok), misses and false alarms first
  Reported: positives, raised (true positives), recall; negatives, false alarms, false-alarm rate;
  precision = TP / (TP + false alarms); the same per folder / CSV. Progress goes to stderr every 20 photos.

Both:
  --config FILE         site config whose models section gives the pack and (violations) whose rules apply
                        (default: the default pack — rfb640_masked_face, yolox_nano, rodent_yolox,
                        head_attrs — and the built-in rules)
  --json                one JSON object instead of the table (violations: with every photo's outcome)
  -h, --help            this text

Exit status: 2 for a bad option, 1 for a bad input (folder, CSV, model, image).`;

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
    if (isClassifier(m)) return false; // the head cascade is scored per violation (--violation), not by box AP
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
  lines.push('', 'recall by object size (COCO areas in the image\'s pixels: small < 32², medium < 96², large), operating threshold:');
  for (const m of r.metrics)
    lines.push(`  ${m.name.padEnd(16)} IoU ${m.iou.toFixed(2)}  ${m.bySize.map((b) => `${b.size} ${b.tp}/${b.gt}${b.gt ? ` (${f(b.recall)})` : ''}`).join(', ')}`);
  if (r.negatives.length) {
    lines.push('', 'false alarms on photos without the object (operating threshold):');
    for (const n of r.negatives)
      lines.push(`  ${n.label.padEnd(16)} ${n.dir}: ${n.imagesWithFalseAlarm} of ${n.images} images (${f(n.imagesWithFalseAlarm / n.images)}), ${n.falseAlarms} detections`);
  }
  lines.push('', `${r.dataset.images} images in ${r.seconds.toFixed(1)} s`);
  return lines.join('\n');
}

export interface ViolationImage extends ViolationOutcome {
  /** Highest score per detected label (what the pack saw: why a miss is a miss). */
  detections: Record<string, number>;
}

export interface ViolationReport {
  kind: ViolationKind;
  /** The enabled rules of the kind and what they look at. */
  rules: { id: string; labels: string[]; unless: string[]; with: string[]; minScore: number; zones: string[] }[];
  models: { name: string; minScore: number | null }[];
  metrics: ViolationMetrics;
  images: ViolationImage[];
  seconds: number;
}

const round4 = (v: number) => Math.round(v * 1e4) / 1e4;

/**
 * Run the pack and the still rules on every photo; `progress(done, total)` after each. Only models
 * that can produce a label the kind's rules look at are run (the rest cannot change the outcome).
 */
export async function runViolationEval(opts: {
  kind: ViolationKind;
  images: LabelledImage[];
  config?: string;
  progress?: (done: number, total: number) => void;
}): Promise<ViolationReport> {
  const t0 = performance.now();
  if (opts.images.length === 0) throw new Error('no images to evaluate');
  const siteRules = rulesForSite(opts.config ? loadSiteConfig(opts.config).rules : []);
  const of = rulesOfKind(siteRules, opts.kind);
  if (of.rules.length === 0) throw new Error(`--violation ${opts.kind}: no enabled rule of this kind${opts.config ? ` in ${opts.config}` : ' among the built-in rules'}`);
  const pack = await ModelPack.fromConfig(modelsSection(opts.config));
  try {
    const produced = pack.labels;
    if (![...of.subjects].some((l) => produced.has(l)))
      throw new Error(
        `--violation ${opts.kind}: no model in the pack produces ${[...of.subjects].join(', ')} (the subjects of rule ${of.rules.map((r) => r.id).join(', ')}); ` +
          `the pack produces ${[...produced].sort().join(', ')}${opts.config ? '' : ' (choose a pack with --config)'}`,
      );
    const images: ViolationImage[] = [];
    for (const im of opts.images) {
      const img = await loadImage(im.file);
      const dets = judgeOnce(await pack.detect(img, { labels: of.labels }));
      const j = judge(evaluateStill(dets, img, { rules: of.rules }), opts.kind);
      const best: Record<string, number> = {};
      for (const d of dets) best[d.label] = round4(Math.max(best[d.label] ?? 0, d.score));
      images.push({ ...im, ...j, score: j.score === null ? null : round4(j.score), detections: best });
      opts.progress?.(images.length, opts.images.length);
    }
    return {
      kind: opts.kind,
      rules: of.rules.map((r) => ({ id: r.id, labels: r.labels, unless: r.unless, with: r.with, minScore: r.minScore, zones: r.zones })),
      models: [
        ...pack.models.filter((m) => isWanted(m.labels, pack.classifier?.cascade.detectorLabels(of.labels) ?? of.labels)).map((m) => ({ name: m.name, minScore: m.minScore })),
        ...(pack.classifier?.cascade.wanted(of.labels) ? [{ name: pack.classifier.name, minScore: null }] : []),
      ],
      metrics: scoreViolations(images),
      images,
      seconds: (performance.now() - t0) / 1000,
    };
  } finally {
    await pack.close();
  }
}

const OUTCOME_ORDER = { MISS: 0, FA: 1, TP: 2, ok: 3 } as const;
export function outcomeOf(o: { positive: boolean; raised: boolean }): keyof typeof OUTCOME_ORDER {
  return o.positive ? (o.raised ? 'TP' : 'MISS') : o.raised ? 'FA' : 'ok';
}

export function formatViolationTable(r: ViolationReport, list: boolean): string {
  const f = (x: number | null) => (x === null ? 'n/a' : x.toFixed(3));
  const m = r.metrics;
  const rules = r.rules
    .map((x) => `${x.id} (${x.labels.join('/')} >= ${x.minScore}${x.unless.length ? `, unless ${x.unless.join('/')}` : ''}${x.with.length ? `, with ${x.with.join('/')}` : ''}${x.zones.length ? `, zones ${x.zones.join('/')}: never in a still photo` : ''})`)
    .join(', ');
  const lines = [
    `violation  ${r.kind} (${VIOLATION_TEXT[r.kind].en}, ${VIOLATION_TEXT[r.kind].zh}): rules ${rules}`,
    `models     ${r.models.map((x) => `${x.name} (${x.minScore === null ? 'head classifier' : `min score ${x.minScore}`})`).join(', ')}`,
    '',
    `positives  ${String(m.positives).padStart(5)} photos  ${String(m.truePositives).padStart(5)} raised        recall           ${f(m.recall)}`,
    `negatives  ${String(m.negatives).padStart(5)} photos  ${String(m.falseAlarms).padStart(5)} false alarms  false-alarm rate ${f(m.falseAlarmRate)}${m.falseAlarmRate === null ? '' : ` (${(m.falseAlarmRate * 1000).toFixed(1)} per 1,000 frames)`}`,
    `precision  ${f(m.precision)} (${m.truePositives} of ${m.truePositives + m.falseAlarms} raised photos are positives)`,
  ];
  if (m.sources.length > 1) {
    lines.push('', 'per source:');
    for (const s of m.sources)
      lines.push(`  ${(s.positive ? 'positives' : 'negatives').padEnd(9)} ${s.source}: ${s.raised} of ${s.images} raised (${f(s.raised / s.images)})`);
  }
  if (list) {
    lines.push('', 'photos (MISS: positive not raised, FA: negative raised; score: the highest violation, then the best score per detected label):');
    const sorted = [...r.images].sort((a, b) => OUTCOME_ORDER[outcomeOf(a)] - OUTCOME_ORDER[outcomeOf(b)]);
    for (const im of sorted) {
      const dets = Object.entries(im.detections)
        .map(([l, v]) => `${l} ${v.toFixed(2)}`)
        .join(', ');
      lines.push(`  ${outcomeOf(im).padEnd(4)} ${(im.score === null ? '-' : im.score.toFixed(3)).padStart(5)}  ${im.file}${dets ? `  [${dets}]` : ''}`);
    }
  }
  lines.push('', `${r.images.length} photos in ${r.seconds.toFixed(1)} s`);
  return lines.join('\n');
}

const splitList = (s: string | undefined): string[] => (s ? s.split(',').map((x) => x.trim()).filter(Boolean) : []);

async function main(): Promise<void> {
  let parsed;
  try {
    parsed = parseArgs({
      options: {
        // detections
        map: { type: 'string' },
        split: { type: 'string' },
        iou: { type: 'string' },
        floor: { type: 'string' },
        limit: { type: 'string' },
        // violations
        violation: { type: 'string' },
        positives: { type: 'string' },
        labels: { type: 'string' },
        'positive-when': { type: 'string' },
        where: { type: 'string', multiple: true },
        list: { type: 'boolean', default: false },
        // both
        negatives: { type: 'string' },
        config: { type: 'string' },
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
  const given = (names: readonly (keyof typeof a)[]) => names.filter((n) => a[n] !== undefined && a[n] !== false).map((n) => `--${n}`);
  if (a.violation !== undefined) {
    const other = given(['map', 'split', 'iou', 'floor', 'limit']);
    if (other.length) fail(`${other.join(', ')}: options of the detection eval, not of --violation\n\n${HELP}`, 2);
    if (positionals.length) fail(`--violation takes its photos from --positives / --negatives / --labels, not from "${positionals.join(' ')}"\n\n${HELP}`, 2);
    let kind: ViolationKind;
    let where;
    let positiveWhen;
    try {
      kind = parseViolationKind(a.violation);
      where = (a.where ?? []).map((w) => parseColumnTest(w, '--where'));
      positiveWhen = a['positive-when'] === undefined ? undefined : parseColumnTest(a['positive-when'], '--positive-when');
    } catch (err) {
      fail((err as Error).message, 2);
    }
    if (a.labels === undefined && (positiveWhen || where.length)) fail(`${given(['positive-when', 'where']).join(', ')}: only with --labels CSV`, 2);
    if (a.labels !== undefined && !positiveWhen) fail('--labels needs --positive-when COLUMN=VALUE (which rows are positives, e.g. has_hat=0)', 2);
    if (a.labels === undefined && a.positives === undefined && a.negatives === undefined) fail(`--violation ${kind}: no photos (give --positives, --negatives or --labels)\n\n${HELP}`, 2);
    try {
      const sets = [imagesFromFolders(splitList(a.positives), splitList(a.negatives))];
      if (a.labels !== undefined) sets.push(readLabelsCsv(a.labels, { positiveWhen: positiveWhen!, where }));
      const images = mergeImageSets(sets);
      const t0 = performance.now();
      const report = await runViolationEval({
        kind,
        images,
        config: a.config,
        progress: (done, total) => {
          if (done % 20 === 0 || (done === total && total > 20))
            process.stderr.write(`eval: ${done}/${total} photos (${((performance.now() - t0) / 1000).toFixed(1)} s)\n`);
        },
      });
      process.stdout.write(`${a.json ? JSON.stringify(report) : formatViolationTable(report, a.list)}\n`);
    } catch (err) {
      fail((err as Error).message);
    }
    return;
  }
  const other = given(['positives', 'labels', 'positive-when', 'where', 'list']);
  if (other.length) fail(`${other.join(', ')}: options of the violation eval, only with --violation KIND\n\n${HELP}`, 2);
  if (positionals.length !== 1) fail(`expected one dataset folder, got ${positionals.length}\n\n${HELP}`, 2);
  const floor = Number(a.floor ?? '0.05');
  if (!(floor >= 0 && floor <= 1)) fail(`--floor: expected a score between 0 and 1, got "${a.floor}"`, 2);
  const limit = a.limit === undefined ? undefined : Number(a.limit);
  if (limit !== undefined && !(Number.isInteger(limit) && limit > 0)) fail(`--limit: expected a positive integer, got "${a.limit}"`, 2);
  try {
    const report = await runEval({
      dir: positionals[0]!,
      map: a.map ? parseClassMap(a.map) : undefined,
      split: a.split,
      iou: parseList('iou', a.iou ?? '0.3,0.5'),
      floor,
      config: a.config,
      limit,
      negatives: a.negatives ? splitList(a.negatives) : undefined,
    });
    process.stdout.write(`${a.json ? JSON.stringify(report) : formatTable(report)}\n`);
  } catch (err) {
    fail((err as Error).message);
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === path.resolve(new URL(import.meta.url).pathname)) await main();

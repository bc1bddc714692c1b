/**
 * Labelled still-image folders for evaluation: Pascal VOC (annotations/*.xml + images/) and YOLO
 * (images/{split}/ + labels/{split}/, or images/ + labels/, one "class cx cy w h" line per object).
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { isImageFile } from '../detect/image.js';
import type { BoxXYXY } from '../detect/types.js';

export interface GroundTruth {
  /** Mapped (canonical) label, or undefined when the dataset class is not in the map (ignored). */
  label: string | undefined;
  /** Class name (VOC) or index (YOLO) as written in the dataset. */
  raw: string;
  /** Pixels (VOC) or normalised cx, cy, w, h (YOLO; converted once the image size is known). */
  box: BoxXYXY;
  difficult: boolean;
}

export interface Sample {
  image: string;
  gt: GroundTruth[];
  /** YOLO boxes are normalised cx, cy, w, h until resolved against the image size. */
  normalised: boolean;
}

export interface Dataset {
  format: 'voc' | 'yolo';
  root: string;
  samples: Sample[];
  /** The class map in use (dataset class → label). */
  map: Map<string, string>;
}

/** "with_mask=masked_face,without_mask=face" → Map. */
export function parseClassMap(spec: string): Map<string, string> {
  const m = new Map<string, string>();
  for (const part of spec.split(',').map((s) => s.trim()).filter(Boolean)) {
    const eq = part.indexOf('=');
    if (eq <= 0 || eq === part.length - 1) throw new Error(`--map: expected "datasetClass=label" pairs separated by commas, got "${part}"`);
    const k = part.slice(0, eq).trim();
    if (m.has(k)) throw new Error(`--map: class "${k}" mapped twice`);
    m.set(k, part.slice(eq + 1).trim());
  }
  if (m.size === 0) throw new Error('--map: empty class map');
  return m;
}

export const DEFAULT_VOC_MAP = 'with_mask=masked_face,without_mask=face';

function tag(xml: string, name: string): string | undefined {
  const m = new RegExp(`<${name}>\\s*([^<]*?)\\s*</${name}>`).exec(xml);
  return m?.[1];
}

/** Parse one Pascal VOC annotation. */
export function parseVocXml(xml: string, file: string, map: Map<string, string>): { filename: string; gt: GroundTruth[] } {
  const filename = tag(xml, 'filename');
  if (!filename) throw new Error(`${file}: no <filename>`);
  const gt: GroundTruth[] = [];
  const objects = xml.match(/<object>[\s\S]*?<\/object>/g) ?? [];
  objects.forEach((o, i) => {
    const name = tag(o, 'name');
    const bb = /<bndbox>([\s\S]*?)<\/bndbox>/.exec(o)?.[1];
    if (!name || !bb) throw new Error(`${file}: object ${i + 1} lacks <name> or <bndbox>`);
    const v = ['xmin', 'ymin', 'xmax', 'ymax'].map((k) => Number(tag(bb, k)));
    if (v.some((x) => !Number.isFinite(x))) throw new Error(`${file}: object ${i + 1} (${name}): bad <bndbox> coordinates`);
    gt.push({ label: map.get(name), raw: name, box: v as BoxXYXY, difficult: tag(o, 'difficult') === '1' });
  });
  return { filename, gt };
}

function listImages(dir: string): string[] {
  return readdirSync(dir)
    .filter(isImageFile)
    .sort()
    .map((f) => path.join(dir, f));
}

function readVoc(root: string, map: Map<string, string>): Dataset {
  const annDir = path.join(root, 'annotations');
  const imgDir = path.join(root, 'images');
  const samples: Sample[] = [];
  for (const f of readdirSync(annDir).filter((x) => x.endsWith('.xml')).sort()) {
    const file = path.join(annDir, f);
    const { filename, gt } = parseVocXml(readFileSync(file, 'utf8'), file, map);
    const image = path.join(imgDir, filename);
    if (!existsSync(image)) throw new Error(`${file}: image ${image} (from <filename>) not found`);
    samples.push({ image, gt, normalised: false });
  }
  return { format: 'voc', root, samples, map };
}

function readYolo(root: string, map: Map<string, string>, split: string | undefined): Dataset {
  let imgDir = path.join(root, 'images');
  let lblDir = path.join(root, 'labels');
  const splits = readdirSync(imgDir).filter((d) => statSync(path.join(imgDir, d)).isDirectory());
  if (split) {
    if (!splits.includes(split)) throw new Error(`${imgDir}: no split "${split}" (have: ${splits.join(', ') || 'none'})`);
    imgDir = path.join(imgDir, split);
    lblDir = path.join(lblDir, split);
  } else if (splits.length > 0) {
    const pick = splits.includes('val') ? 'val' : splits.includes('valid') ? 'valid' : undefined;
    if (!pick) throw new Error(`${imgDir}: has splits (${splits.join(', ')}); choose one with --split`);
    imgDir = path.join(imgDir, pick);
    lblDir = path.join(lblDir, pick);
  }
  const samples: Sample[] = [];
  for (const image of listImages(imgDir)) {
    const lbl = path.join(lblDir, `${path.basename(image, path.extname(image))}.txt`);
    const gt: GroundTruth[] = [];
    if (existsSync(lbl)) {
      readFileSync(lbl, 'utf8')
        .split('\n')
        .forEach((line, i) => {
          const t = line.trim();
          if (!t) return;
          const p = t.split(/\s+/);
          const v = p.slice(1, 5).map(Number);
          if (p.length < 5 || !/^\d+$/.test(p[0]!) || v.some((x) => !Number.isFinite(x)))
            throw new Error(`${lbl}:${i + 1}: expected "class cx cy w h", got "${t}"`);
          gt.push({ label: map.get(p[0]!), raw: p[0]!, box: v as BoxXYXY, difficult: false });
        });
    }
    samples.push({ image, gt, normalised: true });
  }
  return { format: 'yolo', root, samples, map };
}

export interface ReadDatasetOptions {
  /** Dataset class (VOC name or YOLO index) → label. VOC default: DEFAULT_VOC_MAP; YOLO: required. */
  map?: Map<string, string>;
  /** YOLO split folder (default val when images/ has splits). */
  split?: string;
}

/** Detect the format of `dir` and read it. */
export function readDataset(dir: string, opts: ReadDatasetOptions = {}): Dataset {
  const root = path.resolve(dir);
  if (!existsSync(root)) throw new Error(`${root}: no such folder`);
  if (existsSync(path.join(root, 'annotations'))) return readVoc(root, opts.map ?? parseClassMap(DEFAULT_VOC_MAP));
  if (existsSync(path.join(root, 'labels')) && existsSync(path.join(root, 'images'))) {
    if (!opts.map) throw new Error(`${root}: YOLO folder needs --map (e.g. --map 0=rodent)`);
    return readYolo(root, opts.map, opts.split);
  }
  throw new Error(`${root}: neither a Pascal VOC folder (annotations/ + images/) nor a YOLO folder (images/ + labels/)`);
}

/** Ground truth in pixels for an image of the given size. */
export function resolveGroundTruth(s: Sample, width: number, height: number): GroundTruth[] {
  if (!s.normalised) return s.gt;
  return s.gt.map((g) => {
    const [cx, cy, w, h] = g.box;
    return { ...g, box: [(cx - w / 2) * width, (cy - h / 2) * height, (cx + w / 2) * width, (cy + h / 2) * height] };
  });
}

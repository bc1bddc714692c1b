/**
 * Run the model pack on still images.
 *   npm run detect -- [--json] [--annotate DIR] [--config site.yaml] <images or folders>
 */
import { mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import sharp from 'sharp';
import { labelText } from '../../protocol/labels.js';
import { VIOLATION_TEXT } from '../../protocol/violations.js';
import { isImageFile, loadImage } from '../detect/image.js';
import { loadSiteConfig } from '../config/load.js';
import type { CameraConfig } from '../config/schema.js';
import { BoardCheck } from '../detect/boards.js';
import { ModelPack, modelsSection } from '../detect/pack.js';
import type { Detection, RgbImage } from '../detect/types.js';
import { evaluateStill, rulesForSite, type StillViolation } from '../rules/index.js';
import { judgeOnce } from '../track/attributes.js';

const HELP = `Detect objects in still images with the model pack.

Usage: npm run detect -- [options] <image or folder> ...

  <image or folder>   JPEG / PNG / WebP ... files, or folders of them (not recursive)
  --json              one JSON object per image per line:
                      {"file","width","height","detections":[{"label","score","box":[x1,y1,x2,y2]}],
                       "heads":[{"box","source","attributes":{"covered":p,...},"labels":[...]}],
                       "violations":[{"kind","ruleId","label","score","box","severity"}]}
                      (boxes in source-image pixels; heads = the head cascade's regions (from a face
                      or a person) with the classifier's probabilities and the labels they give;
                      violations = rules whose condition holds in the still photo, ignoring
                      persistence and schedule)
  --annotate DIR      also write <DIR>/<name>.jpg with boxes and labels drawn
  --config FILE       site config whose models section gives the pack and whose rules apply
                      (default: the default pack — rfb640_masked_face, yolox_nano, rodent_yolox and
                      the head classifier head_attrs — from models/, files in var/models)
  --camera ID         with --config: judge the images as frames of this camera: its zones apply and
                      its raw / cooked zones get the board colour check (raw_board / cooked_board,
                      mixed_boards). Default: the config's camera when it has only one
  -h, --help          this text

Model files are installed by \`npm run models\`. Exit status 1 if any image failed.`;

export interface ImageResult {
  file: string;
  width: number;
  height: number;
  detections: { label: string; score: number; box: [number, number, number, number] }[];
  heads: { box: [number, number, number, number]; source: string; attributes: Record<string, number>; labels: string[] }[];
  violations: StillViolation[];
}

const round = (v: number, d: number) => Math.round(v * 10 ** d) / 10 ** d;

/** `dets` as the pack returned them (heads with attributes); detections are reported as judged (judgeOnce). */
export function toResult(file: string, img: RgbImage, dets: Detection[], violations: StillViolation[] = []): ImageResult {
  const box = (b: readonly number[]) => b.map((v) => round(v, 1)) as [number, number, number, number];
  return {
    file,
    width: img.width,
    height: img.height,
    detections: judgeOnce(dets).map((d) => ({ label: d.label, score: round(d.score, 4), box: box(d.box) })),
    heads: dets
      .filter((d) => d.attributes)
      .map((d) => ({
        box: box(d.box),
        source: d.source ?? 'face',
        attributes: Object.fromEntries(d.attributes!.map((a) => [a.name, round(a.p, 4)])),
        labels: judgeOnce([d]).map((j) => j.label),
      })),
    violations: violations.map((v) => ({ ...v, score: round(v.score, 4), box: v.box.map((x) => round(x, 1)) as [number, number, number, number] })),
  };
}

/** Expand folders into their image files (sorted); files are kept as given. */
export function expandInputs(inputs: string[]): string[] {
  const out: string[] = [];
  for (const p of inputs) {
    let st;
    try {
      st = statSync(p);
    } catch {
      throw new Error(`${p}: no such file or folder`);
    }
    if (st.isDirectory()) {
      const files = readdirSync(p).filter(isImageFile).sort();
      if (files.length === 0) throw new Error(`${p}: folder has no image files`);
      out.push(...files.map((f) => path.join(p, f)));
    } else out.push(p);
  }
  return out;
}

const COLOURS: Record<string, string> = {
  face: '#ff3030',
  masked_face: '#30c030',
  person: '#3080ff',
  cigarette: '#ff8000',
  head: '#ff3030',
  chef_hat: '#30c030',
  rodent: '#c000c0',
  cat: '#c000c0',
  dog: '#c000c0',
  knife: '#ffd000',
};

const xml = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** JPEG of the image with boxes and labels drawn (an SVG overlay). */
export async function annotate(img: RgbImage, dets: readonly Detection[]): Promise<Buffer> {
  const stroke = Math.max(2, Math.round(Math.min(img.width, img.height) / 250));
  const font = Math.max(12, Math.round(Math.min(img.width, img.height) / 40));
  const parts = dets.map((d) => {
    const [x1, y1, x2, y2] = d.box;
    const c = COLOURS[d.label] ?? '#00c0c0';
    const text = `${labelText(d.label)} ${d.score.toFixed(2)}`;
    const tw = Math.ceil([...text].reduce((w, ch) => w + (ch.charCodeAt(0) > 0x2e80 ? 1 : 0.6), 0) * font + 6);
    const ty = y1 - font - 4 >= 0 ? y1 - font - 4 : y1;
    return (
      `<rect x="${x1}" y="${y1}" width="${x2 - x1}" height="${y2 - y1}" fill="none" stroke="${c}" stroke-width="${stroke}"/>` +
      `<rect x="${x1}" y="${ty}" width="${tw}" height="${font + 4}" fill="${c}"/>` +
      `<text x="${x1 + 3}" y="${ty + font}" font-size="${font}" font-family="WenQuanYi Micro Hei, sans-serif" fill="#ffffff">${xml(text)}</text>`
    );
  });
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${img.width}" height="${img.height}">${parts.join('')}</svg>`;
  return sharp(img.data, { raw: { width: img.width, height: img.height, channels: 3 } })
    .composite([{ input: Buffer.from(svg), top: 0, left: 0 }])
    .jpeg({ quality: 85 })
    .toBuffer();
}

function table(r: ImageResult): string {
  const lines = [`${r.file}  ${r.width}x${r.height}  ${r.detections.length} detection${r.detections.length === 1 ? '' : 's'}`];
  for (const d of r.detections)
    lines.push(`  ${d.label.padEnd(12)} ${d.score.toFixed(3)}  [${d.box.map((v) => v.toFixed(1).padStart(7)).join(' ')}]`);
  for (const v of r.violations) lines.push(`  ! ${v.kind} (${VIOLATION_TEXT[v.kind].zh}, tier ${v.severity}) on ${v.label} ${v.score.toFixed(3)}`);
  return lines.join('\n');
}

async function main(): Promise<void> {
  let parsed;
  try {
    parsed = parseArgs({
      options: {
        json: { type: 'boolean', default: false },
        annotate: { type: 'string' },
        config: { type: 'string' },
        camera: { type: 'string' },
        help: { type: 'boolean', short: 'h', default: false },
      },
      allowPositionals: true,
    });
  } catch (err) {
    process.stderr.write(`detect: ${(err as Error).message}\n\n${HELP}\n`);
    process.exit(2);
  }
  const { values: a, positionals } = parsed;
  if (a.help) {
    process.stdout.write(`${HELP}\n`);
    return;
  }
  if (positionals.length === 0) {
    process.stderr.write(`detect: no images given\n\n${HELP}\n`);
    process.exit(2);
  }
  let files: string[];
  let pack: ModelPack;
  let rules: ReturnType<typeof rulesForSite>;
  let camera: CameraConfig | undefined;
  let boards: BoardCheck | null = null;
  try {
    if (a.camera && !a.config) throw new Error('--camera needs --config (the camera is looked up there)');
    files = expandInputs(positionals);
    const cfg = a.config ? loadSiteConfig(a.config) : undefined;
    rules = rulesForSite(cfg?.rules ?? []);
    if (cfg) {
      camera = a.camera ? cfg.cameras.find((c) => c.id === a.camera) : cfg.cameras.length === 1 ? cfg.cameras[0] : undefined;
      if (a.camera && !camera) throw new Error(`${a.config}: no camera "${a.camera}" (cameras: ${cfg.cameras.map((c) => c.id).join(', ')})`);
      if (camera) boards = BoardCheck.forCamera(camera, cfg.boards);
    }
    pack = await ModelPack.fromConfig(modelsSection(a.config));
  } catch (err) {
    process.stderr.write(`detect: ${(err as Error).message}\n`);
    process.exit(1);
  }
  if (a.annotate) mkdirSync(a.annotate, { recursive: true });
  const written = new Set<string>();
  let failed = 0;
  for (const file of files) {
    try {
      const img = await loadImage(file);
      const dets = [...(await pack.detect(img)), ...(boards?.detect(img) ?? [])];
      const r = toResult(file, img, dets, evaluateStill(judgeOnce(dets), img, { rules, zones: camera?.zones }));
      process.stdout.write(`${a.json ? JSON.stringify(r) : table(r)}\n`);
      if (a.annotate) {
        const base = path.basename(file, path.extname(file));
        let out = path.join(a.annotate, `${base}.jpg`);
        for (let i = 2; written.has(out); i++) out = path.join(a.annotate, `${base}-${i}.jpg`);
        written.add(out);
        writeFileSync(out, await annotate(img, judgeOnce(dets)));
      }
    } catch (err) {
      failed++;
      process.stderr.write(`detect: ${(err as Error).message}\n`);
    }
  }
  await pack.close();
  if (failed) process.exit(1);
}

if (process.argv[1] && path.resolve(process.argv[1]) === path.resolve(new URL(import.meta.url).pathname)) await main();

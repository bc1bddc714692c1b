/**
 * The installer's zone check: one frame of a camera (or an image) with its zones, their kinds and
 * what the board check sees in them, written as a PNG to look at before leaving the site.
 *   npm run zones -- --config site.yaml --camera ID [--image FILE] [--out FILE.png] [--json]
 */
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { promisify } from 'node:util';
import sharp from 'sharp';
import { labelText } from '../../protocol/labels.js';
import { VIOLATION_TEXT } from '../../protocol/violations.js';
import { redactUrl } from '../../common/redact.js';
import { loadSiteConfig } from '../config/load.js';
import { detectUrl } from '../camera/types.js';
import type { CameraConfig, SiteConfig } from '../config/schema.js';
import { BoardCheck, type BoardRegion } from '../detect/boards.js';
import { loadImage } from '../detect/image.js';
import type { RgbImage } from '../detect/types.js';
import { evaluateStill, rulesForSite, type StillViolation } from '../rules/index.js';

const HELP = `Draw a camera's zones and what the board check sees in them (the installer's check).

Usage: npm run zones -- --config <site.yaml> --camera <id> [--image FILE] [--out FILE.png] [--json]

  --config FILE   the site config (zones, board colour code)
  --camera ID     the camera whose zones are drawn
  --image FILE    use this image instead of grabbing a frame from the camera's URL
                  (scaled to the camera's frameWidth, as the agent sees it)
  --out FILE      the PNG to write (default zones-<camera>.png)
  --json          print the zones, regions and violations as JSON instead of text

Zones are outlined by kind (raw red, cooked yellow, food green, general grey). Boards the check accepts
get a solid box with their raw / cooked label; coloured regions it rejects get a dashed box with the
reason (small, large, not solid, not rectangular, strip). The mixed_boards rules are applied to the
frame as \`npm run detect\` would (ignoring persistence). Exit status 1 on a bad config, camera or image.`;

const KIND_COLOUR = { raw: '#e03030', cooked: '#e0b000', food: '#30b030', general: '#909090' } as const;
const DRAW_COLOUR = { red: '#ff4040', yellow: '#ffd000', green: '#40d040', blue: '#4080ff', white: '#ffffff' } as const;
const GRAB_TIMEOUT_MS = 15_000;

/** One frame of the stream detection decodes (the sub-stream where there is one), scaled to its frameWidth, as PNG bytes. */
async function grabFrame(cam: CameraConfig): Promise<Buffer> {
  const url = detectUrl(cam);
  const input = url.startsWith('file://') ? url.slice('file://'.length) : url;
  const args = [...(url.startsWith('rtsp') ? ['-rtsp_transport', 'tcp'] : []), '-i', input, '-frames:v', '1', '-vf', `scale=${cam.frameWidth}:-2`, '-f', 'image2pipe', '-vcodec', 'png', '-'];
  try {
    const { stdout } = await promisify(execFile)('ffmpeg', ['-hide_banner', '-loglevel', 'error', ...args], { encoding: 'buffer', timeout: GRAB_TIMEOUT_MS, maxBuffer: 64 << 20 });
    if (stdout.length === 0) throw new Error('no frame');
    return stdout;
  } catch (err) {
    const msg = ((err as { stderr?: Buffer }).stderr?.toString() || (err as Error).message).trim().split('\n').pop();
    throw new Error(`camera ${cam.id}: cannot grab a frame from ${redactUrl(url)} (${redactUrl(msg ?? '')})`);
  }
}

export interface ZoneCheck {
  camera: string;
  width: number;
  height: number;
  zones: { id: string; name: string; kind: string }[];
  regions: BoardRegion[];
  violations: StillViolation[];
}

export function checkZones(cfg: SiteConfig, cam: CameraConfig, img: RgbImage): ZoneCheck {
  const check = BoardCheck.forCamera(cam, cfg.boards);
  const regions = check ? check.regions(img) : [];
  const boards = check ? check.detect(img) : [];
  const rules = rulesForSite(cfg.rules).filter((r) => r.kind === 'mixed_boards');
  return {
    camera: cam.id,
    width: img.width,
    height: img.height,
    zones: cam.zones.map((z) => ({ id: z.id, name: z.name, kind: z.kind })),
    regions,
    violations: evaluateStill(boards, img, { zones: cam.zones, rules }),
  };
}

const xml = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

export async function drawZones(img: RgbImage, cam: CameraConfig, r: ZoneCheck): Promise<Buffer> {
  const font = Math.max(11, Math.round(img.width / 50));
  const text = (x: number, y: number, s: string, fill: string) =>
    `<text x="${x}" y="${y}" font-size="${font}" font-family="WenQuanYi Micro Hei, sans-serif" fill="${fill}" stroke="black" stroke-width="3" paint-order="stroke">${xml(s)}</text>`;
  const parts: string[] = [];
  for (const z of cam.zones) {
    const pts = z.points.map(([x, y]) => `${x * img.width},${y * img.height}`).join(' ');
    const c = KIND_COLOUR[z.kind];
    parts.push(`<polygon points="${pts}" fill="${c}" fill-opacity="0.12" stroke="${c}" stroke-width="2"/>`);
    const [x0, y0] = z.points.reduce((a, p) => (p[1] < a[1] ? p : a));
    parts.push(text(x0 * img.width + 4, Math.max(font, y0 * img.height - 4), `${z.name} (${z.kind})`, c));
  }
  for (const g of r.regions) {
    const [x1, y1, x2, y2] = g.box;
    const c = DRAW_COLOUR[g.colour];
    const label = g.rejected === null ? `${labelText(`${g.side}_board`)} ${g.colour}` : `${g.colour}: ${g.rejected}`;
    parts.push(`<rect x="${x1}" y="${y1}" width="${x2 - x1}" height="${y2 - y1}" fill="none" stroke="${c}" stroke-width="${g.rejected === null ? 3 : 1.5}"${g.rejected === null ? '' : ' stroke-dasharray="4 3"'}/>`);
    parts.push(text(x1, y2 + font + 2 > img.height ? y1 - 4 : y2 + font, label, c));
  }
  r.violations.forEach((v, i) => parts.push(text(6, img.height - 8 - i * (font + 4), `! ${VIOLATION_TEXT[v.kind].zh} (${v.ruleId})`, '#ff5050')));
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${img.width}" height="${img.height}">${parts.join('')}</svg>`;
  return sharp(img.data, { raw: { width: img.width, height: img.height, channels: 3 } })
    .composite([{ input: Buffer.from(svg), top: 0, left: 0 }])
    .png()
    .toBuffer();
}

function summary(r: ZoneCheck, out: string): string {
  const lines = [`camera ${r.camera}  ${r.width}x${r.height}  -> ${out}`];
  for (const z of r.zones) lines.push(`  zone ${z.id} "${z.name}" (${z.kind})`);
  if (r.regions.length === 0) lines.push('  no region of a declared colour in the raw / cooked zones');
  for (const g of r.regions)
    lines.push(
      `  ${g.rejected === null ? 'board ' : 'reject'} ${g.colour.padEnd(6)} ${g.side.padEnd(6)} [${g.box.map((v) => v.toFixed(0)).join(',')}] area ${(g.areaFraction * 100).toFixed(2)} %, solidity ${g.solidity.toFixed(2)}, rectangularity ${g.rectangularity.toFixed(2)}, aspect ${g.aspect.toFixed(1)}${g.rejected ? `: ${g.rejected}` : ''}`,
    );
  for (const v of r.violations) lines.push(`  ! ${v.kind} (${VIOLATION_TEXT[v.kind].zh}) by rule ${v.ruleId} on ${v.label}`);
  return lines.join('\n');
}

async function main(): Promise<void> {
  let a;
  try {
    a = parseArgs({ options: { config: { type: 'string' }, camera: { type: 'string' }, image: { type: 'string' }, out: { type: 'string' }, json: { type: 'boolean', default: false }, help: { type: 'boolean', short: 'h', default: false } } }).values;
  } catch (err) {
    process.stderr.write(`zones: ${(err as Error).message}\n\n${HELP}\n`);
    process.exit(2);
  }
  if (a.help) return void process.stdout.write(`${HELP}\n`);
  if (!a.config || !a.camera) {
    process.stderr.write(`zones: --config and --camera are required\n\n${HELP}\n`);
    process.exit(2);
  }
  try {
    const cfg = loadSiteConfig(a.config);
    const cam = cfg.cameras.find((c) => c.id === a.camera);
    if (!cam) throw new Error(`${a.config}: no camera "${a.camera}" (cameras: ${cfg.cameras.map((c) => c.id).join(', ')})`);
    const src = a.image ? await sharp(a.image).resize({ width: cam.frameWidth }).png().toBuffer().catch((e: Error) => Promise.reject(new Error(`${a.image}: cannot read image (${e.message})`))) : await grabFrame(cam);
    const img = await loadImage(src);
    const r = checkZones(cfg, cam, img);
    const out = a.out ?? `zones-${cam.id}.png`;
    writeFileSync(out, await drawZones(img, cam, r));
    process.stdout.write(`${a.json ? JSON.stringify({ ...r, out }) : summary(r, out)}\n`);
  } catch (err) {
    process.stderr.write(`zones: ${(err as Error).message}\n`);
    process.exit(1);
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === path.resolve(new URL(import.meta.url).pathname)) await main();

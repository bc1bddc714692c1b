/**
 * Synthetic kitchen scenes with colour-coded cutting boards, for measuring the board check
 * (agent/detect/boards.ts). No public data set labels raw vs cooked boards, so scenes are drawn: real
 * kitchen frames from ../shared/data as backgrounds, two counter zones (raw on the left, cooked on the
 * right), boards of the site's colours with perspective, rounded corners, a shadow, wear texture, wet
 * glare, hands and food over them, and distractors of the same colours (tomatoes, peppers, a red crate,
 * a green cloth, a yellow sponge). Everything is an SVG composited by sharp; a seed makes it repeatable.
 */
import { readdirSync } from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import type { BoardColour } from '../../agent/config/schema.js';
import type { BoxXYXY } from '../../agent/detect/types.js';

export const WIDTH = 640;
export const HEIGHT = 360;

/** The colour code every scene follows (scenes.yaml declares it for the agent). */
export const SCENE_CODE = { raw: ['red', 'blue', 'green'] as BoardColour[], cooked: ['yellow', 'white'] as BoardColour[] };

/** Counter zones, normalised (the left counter raw, the right one cooked). */
export const SCENE_ZONES = [
  { id: 'raw_counter', name: '生食操作台', kind: 'raw' as const, points: [[0.03, 0.42], [0.48, 0.42], [0.48, 0.97], [0.03, 0.97]] as [number, number][] },
  { id: 'cooked_counter', name: '熟食操作台', kind: 'cooked' as const, points: [[0.52, 0.42], [0.97, 0.42], [0.97, 0.97], [0.52, 0.97]] as [number, number][] },
];

export type SceneKind = 'correct' | 'raw_in_cooked' | 'cooked_in_raw' | 'both_in_raw' | 'distractors';
export const SCENE_KINDS: SceneKind[] = ['correct', 'raw_in_cooked', 'cooked_in_raw', 'both_in_raw', 'distractors'];

export interface SceneBoard {
  colour: BoardColour;
  side: 'raw' | 'cooked';
  zone: string;
  box: BoxXYXY;
  /** Share of the board hidden by hands or food (roughly). */
  occluded: number;
}

export interface Scene {
  file: string;
  background: string;
  /** dev: backgrounds used to tune the check; test: held-out backgrounds. */
  split: 'dev' | 'test';
  kind: SceneKind;
  boards: SceneBoard[];
  distractors: string[];
  /** What the mixed_boards rules must say about this scene. */
  expect: { rawInCooked: boolean; cookedInRaw: boolean; bothInOneZone: boolean };
}

/** A small deterministic PRNG (mulberry32). */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const BASE: Record<BoardColour, [number, number, number]> = {
  red: [196, 38, 42],
  yellow: [232, 196, 40],
  green: [46, 150, 70],
  blue: [40, 92, 186],
  white: [236, 236, 230],
};

/**
 * Real kitchen backgrounds: kitchenA frames tune the check (dev), kitchenB frames and the coco-sample
 * kitchens are held out (test). Frames a second apart are near-duplicates: every 12th is taken.
 */
export function backgrounds(shared: string): { file: string; split: 'dev' | 'test' }[] {
  const dir = path.join(shared, 'data/hats/kitchen/images');
  const frames = readdirSync(dir).filter((f) => f.endsWith('.jpg')).sort();
  const pick = (prefix: string) => frames.filter((f) => f.startsWith(prefix)).filter((_, i) => i % 12 === 0);
  return [
    ...pick('kitchenA').map((f) => ({ file: path.join(dir, f), split: 'dev' as const })),
    ...pick('kitchenB').map((f) => ({ file: path.join(dir, f), split: 'test' as const })),
    ...['000000000802.jpg', '000000007574.jpg'].map((f) => ({ file: path.join(shared, 'data/coco-sample', f), split: 'test' as const })),
  ];
}

const rgb = (c: readonly number[]) => `rgb(${c.map((v) => Math.round(Math.max(0, Math.min(255, v)))).join(',')})`;

interface Placed {
  svg: string;
  box: BoxXYXY;
}

/** A board: a rotated rectangle seen in perspective, rounded, shaded, worn, maybe wet and partly covered. */
function board(r: () => number, colour: BoardColour, cx: number, cy: number, id: string): Placed & { occluded: number } {
  const w = 58 + r() * 40;
  const h = w * (0.55 + r() * 0.3);
  const ang = (r() - 0.5) * 0.9;
  const squeeze = 0.75 + r() * 0.25; // far edge shorter: a ceiling camera looks down at an angle
  const corners: [number, number][] = (
    [
      [(-w / 2) * squeeze, -h / 2],
      [(w / 2) * squeeze, -h / 2],
      [w / 2, h / 2],
      [-w / 2, h / 2],
    ] as const
  ).map(([x, y]) => [cx + x * Math.cos(ang) - y * Math.sin(ang), cy + x * Math.sin(ang) + y * Math.cos(ang)]);
  const pts = corners.map((p) => p.join(',')).join(' ');
  const shade = 0.8 + r() * 0.35;
  const base = BASE[colour].map((v) => v * shade + (r() - 0.5) * 20);
  const light = base.map((v) => v * 1.12);
  const dark = base.map((v) => v * 0.82);
  const xs = corners.map((p) => p[0]);
  const ys = corners.map((p) => p[1]);
  const box: BoxXYXY = [Math.min(...xs), Math.min(...ys), Math.max(...xs), Math.max(...ys)];
  const round = 3 + r() * 6;
  const parts = [
    // shadow
    `<polygon points="${corners.map((p) => `${p[0] + 4},${p[1] + 6}`).join(' ')}" fill="black" opacity="0.35" filter="url(#blur3)" stroke="black" stroke-width="${round}" stroke-linejoin="round"/>`,
    `<linearGradient id="g${id}" x1="0" y1="0" x2="1" y2="1"><stop offset="0" stop-color="${rgb(light)}"/><stop offset="1" stop-color="${rgb(dark)}"/></linearGradient>`,
    `<polygon points="${pts}" fill="url(#g${id})" stroke="url(#g${id})" stroke-width="${round}" stroke-linejoin="round"/>`,
    // wear: knife scratches and stains
    `<polygon points="${pts}" fill="black" opacity="${0.08 + r() * 0.1}" filter="url(#grain)"/>`,
  ];
  for (let i = 0, n = Math.floor(r() * 6); i < n; i++) {
    const x = box[0] + r() * (box[2] - box[0]);
    const y = box[1] + r() * (box[3] - box[1]);
    parts.push(`<line x1="${x}" y1="${y}" x2="${x + (r() - 0.5) * 20}" y2="${y + (r() - 0.5) * 8}" stroke="black" stroke-opacity="0.25" stroke-width="1"/>`);
  }
  if (r() < 0.5) {
    // wet glare: a bright blurred streak
    const gx = box[0] + (0.2 + r() * 0.6) * (box[2] - box[0]);
    const gy = box[1] + (0.2 + r() * 0.6) * (box[3] - box[1]);
    parts.push(`<ellipse cx="${gx}" cy="${gy}" rx="${6 + r() * 12}" ry="${2 + r() * 5}" transform="rotate(${(r() - 0.5) * 60} ${gx} ${gy})" fill="white" opacity="${0.5 + r() * 0.4}" filter="url(#blur2)"/>`);
  }
  let occluded = 0;
  if (r() < 0.5) {
    // food on the board: pieces of meat or vegetables
    for (let i = 0, n = 1 + Math.floor(r() * 4); i < n; i++) {
      const fx = box[0] + (0.25 + r() * 0.5) * (box[2] - box[0]);
      const fy = box[1] + (0.25 + r() * 0.5) * (box[3] - box[1]);
      const rx = 4 + r() * 8;
      const ry = 3 + r() * 6;
      const food = [[150, 70, 60], [210, 150, 120], [230, 220, 190], [110, 70, 40]][Math.floor(r() * 4)]!;
      parts.push(`<ellipse cx="${fx}" cy="${fy}" rx="${rx}" ry="${ry}" fill="${rgb(food)}"/>`);
      occluded += (Math.PI * rx * ry) / (w * h);
    }
  }
  if (r() < 0.4) {
    // a hand and forearm reaching over one edge
    const side = r() < 0.5 ? -1 : 1;
    const hx = cx + side * w * (0.35 + r() * 0.2);
    const hy = cy + (r() - 0.5) * h * 0.5;
    const skin = [[224, 180, 150], [200, 150, 120], [180, 130, 100]][Math.floor(r() * 3)]!;
    parts.push(
      `<ellipse cx="${hx}" cy="${hy}" rx="${9 + r() * 5}" ry="${7 + r() * 4}" fill="${rgb(skin)}"/>`,
      `<line x1="${hx}" y1="${hy}" x2="${hx + side * 40}" y2="${hy + 25 + r() * 20}" stroke="${rgb(skin.map((v) => v * 0.95))}" stroke-width="${13 + r() * 5}" stroke-linecap="round"/>`,
    );
    occluded += 0.12;
  }
  return { svg: parts.join(''), box, occluded: Math.min(1, occluded) };
}

type Distractor = 'tomatoes' | 'pepper' | 'red crate' | 'green cloth' | 'yellow sponge';
const DISTRACTORS: Distractor[] = ['tomatoes', 'pepper', 'red crate', 'green cloth', 'yellow sponge'];

function distractor(r: () => number, what: Distractor, cx: number, cy: number): string {
  switch (what) {
    case 'tomatoes': {
      const out: string[] = [];
      for (let i = 0, n = 3 + Math.floor(r() * 5); i < n; i++) {
        const x = cx + (r() - 0.5) * 40;
        const y = cy + (r() - 0.5) * 24;
        const rad = 5 + r() * 5;
        out.push(`<circle cx="${x}" cy="${y}" r="${rad}" fill="${rgb([205 + r() * 30, 35 + r() * 30, 30])}"/><circle cx="${x - rad / 3}" cy="${y - rad / 3}" r="${rad / 4}" fill="white" opacity="0.6"/>`);
      }
      return out.join('');
    }
    case 'pepper': {
      const c = r() < 0.5 ? [60, 150, 50] : [200, 40, 30];
      const a = (r() - 0.5) * 180;
      return `<path d="M ${cx - 18} ${cy} Q ${cx} ${cy - 14} ${cx + 18} ${cy} Q ${cx} ${cy + 6} ${cx - 18} ${cy} Z" transform="rotate(${a} ${cx} ${cy})" fill="${rgb(c)}"/>`;
    }
    case 'red crate': {
      const w = 80 + r() * 30;
      const h = 45 + r() * 15;
      const slots: string[] = [];
      for (let i = 0; i < 5; i++) slots.push(`<rect x="${cx - w / 2 + 6 + i * (w - 12) / 5}" y="${cy - h / 2 + 6}" width="${(w - 12) / 5 - 5}" height="${h - 12}" fill="rgb(40,30,30)"/>`);
      return `<rect x="${cx - w / 2}" y="${cy - h / 2}" width="${w}" height="${h}" fill="${rgb([190, 30, 35])}"/>${slots.join('')}`;
    }
    case 'green cloth': {
      const pts: string[] = [];
      for (let i = 0; i < 14; i++) {
        const t = (i / 14) * Math.PI * 2;
        const rad = 22 + r() * 22;
        pts.push(`${cx + Math.cos(t) * rad * 1.3},${cy + Math.sin(t) * rad * 0.8}`);
      }
      return `<polygon points="${pts.join(' ')}" fill="${rgb([50, 140, 80])}" filter="url(#folds)"/>`;
    }
    case 'yellow sponge':
      return `<rect x="${cx - 10}" y="${cy - 6}" width="${20 + r() * 6}" height="${12 + r() * 4}" rx="2" fill="${rgb([235, 205, 50])}"/>`;
  }
}

/** Where boards go in a zone: its inner part, away from the edges (a board hanging off a zone is cut). */
function spotIn(r: () => number, zone: (typeof SCENE_ZONES)[number], slot: number, slots: number): [number, number] {
  const [x0, y0] = zone.points[0]!;
  const [x1, y1] = zone.points[2]!;
  const fx = (slot + 0.5) / slots;
  return [(x0 + (x1 - x0) * (0.2 + 0.6 * fx + (r() - 0.5) * 0.1)) * WIDTH, (y0 + (y1 - y0) * (0.35 + r() * 0.3)) * HEIGHT];
}

export interface PlannedBoard {
  colour: BoardColour;
  zone: (typeof SCENE_ZONES)[number];
  /** Position among `slots` side by side in the zone. */
  slot: number;
  slots: number;
}

/** One scene of `kind` on `background`; returns the JPEG and its labels. */
export async function drawScene(background: string, split: 'dev' | 'test', kind: SceneKind, seed: number, file: string): Promise<{ jpeg: Buffer; scene: Scene }> {
  const r = rng(seed ^ 0x5bd1e995);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
  const [rawZone, cookedZone] = SCENE_ZONES as [(typeof SCENE_ZONES)[0], (typeof SCENE_ZONES)[1]];
  const plan: PlannedBoard[] = [];
  const raw = () => ({ colour: pick(SCENE_CODE.raw) });
  const cooked = () => ({ colour: pick(SCENE_CODE.cooked) });
  if (kind === 'correct') {
    plan.push({ ...raw(), zone: rawZone, slot: 0, slots: 1 });
    if (r() < 0.7) plan.push({ ...cooked(), zone: cookedZone, slot: 0, slots: 1 });
  } else if (kind === 'raw_in_cooked') plan.push({ ...raw(), zone: cookedZone, slot: 0, slots: 1 });
  else if (kind === 'cooked_in_raw') plan.push({ ...cooked(), zone: rawZone, slot: 0, slots: 1 });
  else if (kind === 'both_in_raw') plan.push({ ...raw(), zone: rawZone, slot: 0, slots: 2 }, { ...cooked(), zone: rawZone, slot: 1, slots: 2 });
  return renderScene(background, split, kind, plan, seed, file);
}

/**
 * Draw `plan` on `background`. The seed alone decides shapes, light, occluders and distractors, so
 * the same seed with another colour gives the same scene with another board.
 */
export async function renderScene(background: string, split: 'dev' | 'test', kind: SceneKind, plan: readonly PlannedBoard[], seed: number, file: string): Promise<{ jpeg: Buffer; scene: Scene }> {
  const r = rng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
  const sideOf = (c: BoardColour): 'raw' | 'cooked' => (SCENE_CODE.raw.includes(c) ? 'raw' : 'cooked');
  const boards: SceneBoard[] = [];
  const svg: string[] = [];
  plan.forEach((p, i) => {
    const [cx, cy] = spotIn(r, p.zone, p.slot, p.slots);
    const b = board(r, p.colour, cx, cy, String(i));
    svg.push(b.svg);
    boards.push({ colour: p.colour, side: sideOf(p.colour), zone: p.zone.id, box: b.box.map((v) => Math.round(v * 10) / 10) as unknown as BoxXYXY, occluded: Math.round(b.occluded * 100) / 100 });
  });
  const distractors: string[] = [];
  const nd = kind === 'distractors' ? 2 + Math.floor(r() * 3) : Math.floor(r() * 3);
  for (let i = 0; i < nd; i++) {
    const what = pick(DISTRACTORS);
    const zone = pick(SCENE_ZONES);
    const [x0, y0] = zone.points[0]!;
    const [x1, y1] = zone.points[2]!;
    // away from the boards: the far band of the zone
    const cx = (x0 + (x1 - x0) * (0.1 + r() * 0.8)) * WIDTH;
    const cy = (y0 + (y1 - y0) * (r() < 0.5 ? 0.1 + r() * 0.1 : 0.85 + r() * 0.1)) * HEIGHT;
    svg.unshift(distractor(r, what, cx, cy));
    distractors.push(what);
  }
  const defs =
    '<defs><filter id="blur3"><feGaussianBlur stdDeviation="3"/></filter><filter id="blur2"><feGaussianBlur stdDeviation="2"/></filter>' +
    `<filter id="grain"><feTurbulence type="fractalNoise" baseFrequency="0.9" numOctaves="2" seed="${seed % 1000}"/><feColorMatrix type="saturate" values="0"/><feComposite in2="SourceGraphic" operator="in"/></filter>` +
    `<filter id="folds"><feTurbulence type="turbulence" baseFrequency="0.05" numOctaves="2" seed="${seed % 997}" result="t"/><feDisplacementMap in="SourceGraphic" in2="t" scale="14"/></filter></defs>`;
  // Scene light: a warm or cool cast and a brightness, as kitchen lamps give.
  const cast = r() < 0.5 ? `rgb(255,${200 + Math.floor(r() * 40)},${150 + Math.floor(r() * 60)})` : `rgb(${200 + Math.floor(r() * 40)},${220 + Math.floor(r() * 30)},255)`;
  const overlay = `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${HEIGHT}">${defs}${svg.join('')}<rect width="${WIDTH}" height="${HEIGHT}" fill="${cast}" opacity="${0.1 + r() * 0.15}"/></svg>`;
  const bright = 0.7 + r() * 0.45;
  const jpeg = await sharp(background)
    .resize(WIDTH, HEIGHT, { fit: 'cover' })
    .composite([{ input: Buffer.from(overlay), top: 0, left: 0 }])
    .modulate({ brightness: bright })
    .blur(r() < 0.3 ? 0.8 : 0.3)
    .jpeg({ quality: 80 })
    .toBuffer();
  const inZone = (side: 'raw' | 'cooked', zone: string) => boards.some((b) => b.side === side && b.zone === zone);
  return {
    jpeg,
    scene: {
      file,
      background: path.basename(background),
      split,
      kind,
      boards,
      distractors,
      expect: {
        rawInCooked: inZone('raw', 'cooked_counter'),
        cookedInRaw: inZone('cooked', 'raw_counter'),
        bothInOneZone: SCENE_ZONES.some((z) => inZone('raw', z.id) && inZone('cooked', z.id)),
      },
    },
  };
}

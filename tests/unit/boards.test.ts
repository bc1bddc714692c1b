/**
 * The colour-coded board check on drawn frames (exact shapes, known colours), and the config errors
 * an installer gets for a wrong colour code.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadSiteConfig } from '../../agent/config/load.js';
import { BoardsSchema, type ZoneConfig } from '../../agent/config/schema.js';
import { BoardCheck, convexHull, minAreaRect, polygonArea } from '../../agent/detect/boards.js';
import type { RgbImage } from '../../agent/detect/types.js';
import { builtinRules, evaluateStill } from '../../agent/rules/index.js';

const W = 640;
const H = 360;
const GREY: [number, number, number] = [120, 118, 115];
const RED: [number, number, number] = [200, 40, 40];
const YELLOW: [number, number, number] = [230, 195, 40];

function frame(paint: (x: number, y: number) => [number, number, number] | null): RgbImage {
  const data = new Uint8Array(W * H * 3);
  for (let y = 0; y < H; y++)
    for (let x = 0; x < W; x++) {
      const c = paint(x, y) ?? GREY;
      data.set(c, (y * W + x) * 3);
    }
  return { width: W, height: H, data };
}
const rect = (x1: number, y1: number, x2: number, y2: number, c: [number, number, number]) => (x: number, y: number) => (x >= x1 && x < x2 && y >= y1 && y < y2 ? c : null);
const disc = (cx: number, cy: number, r: number, c: [number, number, number]) => (x: number, y: number) => ((x - cx) ** 2 + (y - cy) ** 2 <= r * r ? c : null);
const both = (...fs: ((x: number, y: number) => [number, number, number] | null)[]) => (x: number, y: number) => fs.reduce<[number, number, number] | null>((a, f) => a ?? f(x, y), null);

const zones: ZoneConfig[] = [
  { id: 'raw_desk', name: '生食区', kind: 'raw', points: [[0, 0.3], [0.49, 0.3], [0.49, 1], [0, 1]] },
  { id: 'cold_room', name: '凉菜间', kind: 'cooked', points: [[0.51, 0.3], [1, 0.3], [1, 1], [0.51, 1]] },
];
const code = BoardsSchema.parse({ raw: ['red'], cooked: ['yellow'] });
const check = new BoardCheck(code, zones);
const rules = builtinRules().filter((r) => r.kind === 'mixed_boards');
const fired = (img: RgbImage) => evaluateStill(check.detect(img), img, { zones, rules }).map((v) => v.ruleId).sort();

describe('board check', () => {
  it('a red (raw) board in the cooked zone is a raw_board there and raises mixed_boards_raw_in_cooked; a yellow one does not', () => {
    const red = frame(rect(420, 200, 500, 260, RED));
    const b = check.detect(red);
    expect(b).toHaveLength(1);
    expect(b[0]).toMatchObject({ label: 'raw_board', colour: 'red', model: 'board_colours' });
    expect(b[0]!.box).toEqual([420, 200, 500, 260]);
    expect(fired(red)).toEqual(['mixed_boards_raw_in_cooked']);
    const yellow = frame(rect(420, 200, 500, 260, YELLOW));
    expect(check.detect(yellow).map((d) => d.label)).toEqual(['cooked_board']);
    expect(fired(yellow)).toEqual([]);
  });

  it('a raw and a cooked board together in the raw zone raise both mixed rules', () => {
    const img = frame(both(rect(40, 180, 120, 240, RED), rect(160, 250, 240, 310, YELLOW)));
    expect(fired(img)).toEqual(['mixed_boards', 'mixed_boards_cooked_in_raw']);
  });

  it('looks only inside raw / cooked zones: a red board above them is not seen', () => {
    expect(check.detect(frame(rect(420, 10, 500, 70, RED)))).toEqual([]);
  });

  it('rejects same-coloured things that are not boards, and says why', () => {
    const regions = check.regions(
      frame(
        both(
          disc(100, 250, 40, RED), // a plate of tomatoes: a disc
          (x, y) => (x >= 380 && x < 480 && y >= 150 && y < 210 && !(x >= 388 && x < 472 && y >= 158 && y < 202 && (x - 388) % 21 < 14) ? RED : null), // a red crate: a rim and its holes
          rect(470, 300, 620, 314, RED), // a strip: a knife-rack bar
          rect(270, 200, 360, 260, RED), // across the edge between the two zones: not a board lying in one
          rect(560, 240, 580, 260, RED), // a speck
        ),
      ),
    );
    const why = regions.map((r) => r.rejected).sort();
    expect(why).toEqual(['not rectangular', 'not solid', 'small', 'strip', 'zone edge', 'zone edge']);
    expect(check.detect(frame(disc(100, 250, 40, RED)))).toEqual([]);
  });

  it('white-balances a warm cast: a yellow board under orange light is still yellow, not red', () => {
    const warm = (c: [number, number, number]): [number, number, number] => [Math.min(255, c[0] * 1.15), c[1] * 0.95, c[2] * 0.7];
    const img = frame((x, y) => warm((x >= 420 && x < 500 && y >= 200 && y < 260 ? YELLOW : GREY) as [number, number, number]));
    expect(check.detect(img).map((d) => d.colour)).toEqual(['yellow']);
  });

  it('rejects a frame that is not RGB24 of its size, naming it', () => {
    expect(() => check.detect({ width: 10, height: 10, data: new Uint8Array(5) })).toThrow(/board check: expected 300 bytes/);
  });

  it('hull and minimum-area rectangle: a rotated square fills its rectangle, a disc 78.5 %', () => {
    const sq = convexHull([[0, 5], [5, 0], [10, 5], [5, 10], [5, 5]]);
    expect(sq).toHaveLength(4);
    expect(polygonArea(sq)).toBeCloseTo(50, 6);
    expect(minAreaRect(sq).area).toBeCloseTo(50, 6);
    const circle = Array.from({ length: 720 }, (_, i) => [Math.cos((i * Math.PI) / 360) * 10, Math.sin((i * Math.PI) / 360) * 10] as [number, number]);
    const h = convexHull(circle);
    expect(polygonArea(h) / minAreaRect(h).area).toBeCloseTo(Math.PI / 4, 2);
  });
});

describe('board colour code in the site config', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'bk-boards-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const write = (yaml: string) => {
    const f = path.join(dir, `${Math.random().toString(36).slice(2)}.yaml`);
    writeFileSync(f, yaml);
    return f;
  };
  const camera = (zoneKind: string) => `cameras:\n  - id: cam1\n    name: 后厨\n    url: rtsp://127.0.0.1/x\n    zones:\n      - { id: z1, name: 凉菜间, kind: ${zoneKind}, points: [[0, 0], [1, 0], [1, 1]] }\n`;
  const site = 'site: { id: s1, name: 食堂 }\n';

  it('names an unknown colour and its place', () => {
    expect(() => loadSiteConfig(write(`${site}boards: { raw: [red, purple], cooked: [yellow] }\n${camera('cooked')}`))).toThrow(/boards\.raw\[1\]: unknown colour "purple" \(known: red, yellow, green, blue, white\)/);
  });

  it('refuses one colour for both raw and cooked', () => {
    expect(() => loadSiteConfig(write(`${site}boards: { raw: [red, yellow], cooked: [yellow] }\n${camera('cooked')}`))).toThrow(/boards\.cooked\[0\]: "yellow" is listed as both raw and cooked/);
  });

  it('refuses a cooked zone on a camera with no colour code, naming the zone', () => {
    expect(() => loadSiteConfig(write(`${site}${camera('cooked')}`))).toThrow(/cameras\[0\]\.zones\[0\]\.kind: a "cooked" zone needs the kitchen's board colour code/);
  });

  it('accepts a camera-level code, and a general zone needs none', () => {
    const cfg = loadSiteConfig(write(`${site}${camera('cooked')}    boards: { raw: [red], cooked: [white] }\n`));
    expect(cfg.cameras[0]!.boards).toMatchObject({ raw: ['red'], cooked: ['white'], everySec: 5 });
    expect(loadSiteConfig(write(`${site}${camera('general')}`)).boards).toBeUndefined();
  });
});

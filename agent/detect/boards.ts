/**
 * Colour-coded cutting boards in a camera's raw / cooked zones (生熟分开), by colour segmentation.
 *
 * No public data set labels raw vs cooked boards, and each kitchen has its own colour code, so this is
 * not a trained model: the site declares which colours are raw and which cooked (config `boards`), and
 * the check looks for board-shaped regions of those colours inside the zones of kind raw / cooked:
 *   1. lighting: grey-world white balance over the whole frame (warm kitchen lamps turn white boards
 *      yellow) and a brightness gain for dark frames;
 *   2. every zone pixel (at ≤ 320 px working width: boards are large) classified to at most one
 *      declared colour by its HSV value;
 *   3. per colour, a 3x3 closing (glare specks, knife cuts) and 4-connected regions;
 *   4. a region is a board when it has a board's size (≥ `minAreaFraction` of the frame, ≤ 30 %), is
 *      solid (area / convex hull ≥ 0.8: a crate's slats and a cloth's folds are not), rectangular
 *      (hull / minimum-area rectangle ≥ 0.85: a tomato or a plate is a disc, 0.785) and not a strip
 *      (rectangle sides ≤ 3:1).
 * It emits `raw_board` / `cooked_board` detections, which the mixed_boards rules judge against the
 * zones (rules/builtin.ts). Measured on synthetic scenes only (models/board_colours.md).
 */
import { pointInPolygon, type Point } from '../../common/geometry.js';
import type { BoardColour, BoardsConfig, ZoneConfig } from '../config/schema.js';
import { checkImage, type BoxXYXY, type Detection, type RgbImage } from './types.js';

/** The model name board detections carry (there is no model file: see the header). */
export const BOARD_CHECK = 'board_colours';
export const WORK_WIDTH = 320;
/** What makes a coloured region a board (tuned on the dev split of the synthetic scenes only). */
export const BOARD_SHAPE = { minSolidity: 0.7, minRectangularity: 0.85, maxAspect: 3, maxAreaFraction: 0.3, maxZoneEdge: 0.15 };
export type BoardShape = typeof BOARD_SHAPE;

/** HSV ranges (hue in degrees, saturation and value 0..1) after white balance. */
const COLOUR_RANGES: Record<BoardColour, { hue?: [number, number][]; minS?: number; maxS?: number; minV: number }> = {
  red: { hue: [[0, 14], [335, 360]], minS: 0.45, minV: 0.22 },
  yellow: { hue: [[38, 68]], minS: 0.45, minV: 0.4 },
  green: { hue: [[75, 165]], minS: 0.3, minV: 0.18 },
  blue: { hue: [[185, 250]], minS: 0.35, minV: 0.18 },
  white: { maxS: 0.14, minV: 0.78 },
};

export interface BoardRegion {
  colour: BoardColour;
  side: 'raw' | 'cooked';
  /** Frame pixels. */
  box: BoxXYXY;
  /** Share of the frame's area. */
  areaFraction: number;
  solidity: number;
  rectangularity: number;
  aspect: number;
  /** null: a board; otherwise why not. */
  rejected: null | 'small' | 'large' | 'zone edge' | 'not solid' | 'not rectangular' | 'strip';
}

export type BoardDetection = Detection & { colour: BoardColour };

export class BoardCheck {
  private readonly zones: ZoneConfig[];
  private readonly side = new Map<BoardColour, 'raw' | 'cooked'>();
  /** The zone mask of the last working size (frames of a camera keep their size). */
  private mask: { w: number; h: number; m: Uint8Array } | null = null;

  /** `zones`: the camera's zones; only those of kind raw / cooked are looked at. */
  constructor(
    readonly code: BoardsConfig,
    zones: readonly ZoneConfig[],
    private readonly shape: BoardShape = BOARD_SHAPE,
  ) {
    this.zones = zones.filter((z) => z.kind === 'raw' || z.kind === 'cooked');
    for (const c of code.raw) this.side.set(c, 'raw');
    for (const c of code.cooked) this.side.set(c, 'cooked');
  }

  /** A camera's check, or null when it has no raw / cooked zone (or no colour code). */
  static forCamera(cam: { zones: readonly ZoneConfig[]; boards?: BoardsConfig }, site?: BoardsConfig): BoardCheck | null {
    const code = cam.boards ?? site;
    if (!code || !cam.zones.some((z) => z.kind === 'raw' || z.kind === 'cooked')) return null;
    return new BoardCheck(code, cam.zones);
  }

  get zoneCount(): number {
    return this.zones.length;
  }

  /** Boards seen in the zones, as detections for the rules. */
  detect(img: RgbImage): BoardDetection[] {
    return this.regions(img)
      .filter((r) => r.rejected === null)
      .map((r) => ({
        label: `${r.side}_board`,
        score: Math.min(1, r.solidity * r.rectangularity),
        box: [...r.box] as [number, number, number, number],
        model: BOARD_CHECK,
        colour: r.colour,
      }));
  }

  /** Every coloured region found in the zones, boards and rejected ones (the installer's check draws both). */
  regions(img: RgbImage): BoardRegion[] {
    checkImage(img, 'board check');
    if (this.zones.length === 0) return [];
    const f = Math.max(1, Math.floor(img.width / WORK_WIDTH));
    const w = Math.floor(img.width / f);
    const h = Math.floor(img.height / f);
    const colours = [...this.side.keys()];
    if (this.mask?.w !== w || this.mask.h !== h) this.mask = { w, h, m: this.zoneMask(w, h) };
    const cls = classify(img, f, w, h, this.mask.m, colours);
    const minArea = this.code.minAreaFraction * w * h;
    const out: BoardRegion[] = [];
    colours.forEach((colour, ci) => {
      const comps = regionsOf(cls, ci + 1, w, h, this.mask!.m);
      for (const comp of comps) {
        if (comp.area < Math.max(12, minArea / 4)) continue; // specks: not worth a word
        const s = shapeOf(comp);
        const t = this.shape;
        const rejected =
          comp.area < minArea
            ? 'small'
            : comp.area > t.maxAreaFraction * w * h
              ? 'large'
              : comp.zoneEdge > t.maxZoneEdge * comp.perimeter
                ? 'zone edge'
                : s.solidity < t.minSolidity
                ? 'not solid'
                : s.rectangularity < t.minRectangularity
                  ? 'not rectangular'
                  : s.aspect > t.maxAspect
                    ? 'strip'
                    : null;
        out.push({
          colour,
          side: this.side.get(colour)!,
          box: [comp.x1 * f, comp.y1 * f, Math.min(img.width, (comp.x2 + 1) * f), Math.min(img.height, (comp.y2 + 1) * f)],
          areaFraction: comp.area / (w * h),
          ...s,
          rejected,
        });
      }
    });
    return out;
  }

  /** 1 where a working-resolution pixel's centre lies in a raw / cooked zone. */
  private zoneMask(w: number, h: number): Uint8Array {
    const m = new Uint8Array(w * h);
    for (const z of this.zones) {
      const poly: Point[] = z.points.map(([x, y]) => [x * w, y * h]);
      const xs = poly.map((p) => p[0]);
      const ys = poly.map((p) => p[1]);
      const x0 = Math.max(0, Math.floor(Math.min(...xs)));
      const x1 = Math.min(w - 1, Math.ceil(Math.max(...xs)));
      const y0 = Math.max(0, Math.floor(Math.min(...ys)));
      const y1 = Math.min(h - 1, Math.ceil(Math.max(...ys)));
      for (let y = y0; y <= y1; y++) for (let x = x0; x <= x1; x++) if (!m[y * w + x] && pointInPolygon([x + 0.5, y + 0.5], poly)) m[y * w + x] = 1;
    }
    return m;
  }
}

/** Grey-world channel gains (clamped) and a brightness gain that lifts a dark frame's 95th percentile. */
function lighting(img: RgbImage): [number, number, number] {
  let sr = 0;
  let sg = 0;
  let sb = 0;
  const hist = new Uint32Array(256);
  let n = 0;
  const step = 3 * 7; // every 7th pixel is plenty for means
  for (let i = 0; i + 2 < img.data.length; i += step) {
    const r = img.data[i]!;
    const g = img.data[i + 1]!;
    const b = img.data[i + 2]!;
    sr += r;
    sg += g;
    sb += b;
    hist[Math.max(r, g, b)]!++;
    n++;
  }
  const grey = (sr + sg + sb) / 3;
  let acc = 0;
  let p95 = 255;
  for (let v = 0; v < 256; v++) {
    acc += hist[v]!;
    if (acc >= 0.95 * n) {
      p95 = v;
      break;
    }
  }
  const bright = Math.min(2, Math.max(1, 235 / Math.max(p95, 1)));
  const gain = (s: number) => Math.min(1.6, Math.max(0.6, grey / Math.max(s, 1))) * bright;
  return [gain(sr), gain(sg), gain(sb)];
}

/** Per working pixel: 0, or 1 + the index in `colours` of the colour it has (first match). */
function classify(img: RgbImage, f: number, w: number, h: number, zone: Uint8Array, colours: BoardColour[]): Uint8Array {
  const [gr, gg, gb] = lighting(img);
  const out = new Uint8Array(w * h);
  const ranges = colours.map((c) => COLOUR_RANGES[c]);
  const inv = 1 / (f * f * 255);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) {
      if (!zone[y * w + x]) continue;
      let r = 0;
      let g = 0;
      let b = 0;
      for (let dy = 0; dy < f; dy++) {
        let i = ((y * f + dy) * img.width + x * f) * 3;
        for (let dx = 0; dx < f; dx++, i += 3) {
          r += img.data[i]!;
          g += img.data[i + 1]!;
          b += img.data[i + 2]!;
        }
      }
      r = Math.min(1, r * inv * gr);
      g = Math.min(1, g * inv * gg);
      b = Math.min(1, b * inv * gb);
      const max = Math.max(r, g, b);
      const min = Math.min(r, g, b);
      const s = max > 0 ? (max - min) / max : 0;
      let hue = 0;
      if (max > min) {
        const d = max - min;
        hue = max === r ? ((g - b) / d) % 6 : max === g ? (b - r) / d + 2 : (r - g) / d + 4;
        hue = (hue * 60 + 360) % 360;
      }
      for (let k = 0; k < ranges.length; k++) {
        const c = ranges[k]!;
        if (max < c.minV || (c.minS !== undefined && s < c.minS) || (c.maxS !== undefined && s > c.maxS)) continue;
        if (c.hue && !c.hue.some(([lo, hi]) => hue >= lo && hue <= hi)) continue;
        out[y * w + x] = k + 1;
        break;
      }
    }
  return out;
}

/** Connected regions of class `k` after a closing, computed within the bounding box of its pixels. */
function regionsOf(cls: Uint8Array, k: number, w: number, h: number, zone: Uint8Array): Component[] {
  let x0 = w;
  let y0 = h;
  let x1 = -1;
  let y1 = -1;
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++)
      if (cls[y * w + x] === k) {
        if (x < x0) x0 = x;
        if (x > x1) x1 = x;
        if (y < y0) y0 = y;
        if (y > y1) y1 = y;
      }
  if (x1 < 0) return [];
  // A margin of 2: the closing's dilation has room, and a region only meets the box's border at the frame's.
  x0 = Math.max(0, x0 - 2);
  y0 = Math.max(0, y0 - 2);
  x1 = Math.min(w - 1, x1 + 2);
  y1 = Math.min(h - 1, y1 + 2);
  const bw = x1 - x0 + 1;
  const bh = y1 - y0 + 1;
  const sub = new Uint8Array(bw * bh);
  const subZone = new Uint8Array(bw * bh);
  for (let y = 0; y < bh; y++)
    for (let x = 0; x < bw; x++) {
      sub[y * bw + x] = cls[(y + y0) * w + x + x0] === k ? 1 : 0;
      subZone[y * bw + x] = zone[(y + y0) * w + x + x0]!;
    }
  const closed = close3(sub, bw, bh);
  for (let i = 0; i < closed.length; i++) closed[i]! &= subZone[i]!; // the closing must not spill out of the zone
  return components(closed, bw, bh, subZone).map((c) => ({
    ...c,
    x1: c.x1 + x0,
    x2: c.x2 + x0,
    y1: c.y1 + y0,
    y2: c.y2 + y0,
    rows: new Map([...c.rows].map(([y, [a, b]]) => [y + y0, [a + x0, b + x0] as [number, number]])),
  }));
}

/** Binary closing with a 3x3 square: fills glare specks and thin cuts, keeps the outline. */
function close3(m: Uint8Array, w: number, h: number): Uint8Array {
  // Separable: a 3x3 max (dilation) or min (erosion) is a 3-wide pass along rows, then along columns;
  // outside the box counts as unset.
  const pass = (src: Uint8Array, dilate: boolean, horizontal: boolean): Uint8Array => {
    const dst = new Uint8Array(w * h);
    const step = horizontal ? 1 : w;
    for (let y = 0; y < h; y++)
      for (let x = 0; x < w; x++) {
        const i = y * w + x;
        const hasPrev = horizontal ? x > 0 : y > 0;
        const hasNext = horizontal ? x < w - 1 : y < h - 1;
        const a = hasPrev ? src[i - step]! : 0;
        const b = src[i]!;
        const c = hasNext ? src[i + step]! : 0;
        dst[i] = dilate ? a | b | c : a & b & c;
      }
    return dst;
  };
  const dilated = pass(pass(m, true, true), true, false);
  return pass(pass(dilated, false, true), false, false);
}

interface Component {
  area: number;
  /** Outline length in pixel sides, and how much of it runs along the zone's edge (or the frame's). */
  perimeter: number;
  zoneEdge: number;
  x1: number;
  y1: number;
  x2: number;
  y2: number;
  /** Per row from y1: leftmost and rightmost x (the hull only needs these). */
  rows: Map<number, [number, number]>;
}

function components(mask: Uint8Array, w: number, h: number, zone: Uint8Array): Component[] {
  const seen = new Uint8Array(w * h);
  const out: Component[] = [];
  const stack: number[] = [];
  for (let start = 0; start < mask.length; start++) {
    if (!mask[start] || seen[start]) continue;
    const c: Component = { area: 0, perimeter: 0, zoneEdge: 0, x1: w, y1: h, x2: -1, y2: -1, rows: new Map() };
    seen[start] = 1;
    stack.push(start);
    while (stack.length) {
      const i = stack.pop()!;
      const x = i % w;
      const y = (i - x) / w;
      c.area++;
      c.x1 = Math.min(c.x1, x);
      c.x2 = Math.max(c.x2, x);
      c.y1 = Math.min(c.y1, y);
      c.y2 = Math.max(c.y2, y);
      const r = c.rows.get(y);
      if (!r) c.rows.set(y, [x, x]);
      else {
        if (x < r[0]) r[0] = x;
        if (x > r[1]) r[1] = x;
      }
      // The 4 neighbours; a side that leaves the mask adds to the outline (and to the zone edge when
      // it leaves the zone or the box).
      for (let n = 0; n < 4; n++) {
        const ok = n === 0 ? x > 0 : n === 1 ? x < w - 1 : n === 2 ? y > 0 : y < h - 1;
        const j = n === 0 ? i - 1 : n === 1 ? i + 1 : n === 2 ? i - w : i + w;
        if (ok && mask[j]) {
          if (!seen[j]) {
            seen[j] = 1;
            stack.push(j);
          }
          continue;
        }
        c.perimeter++;
        if (!ok || !zone[j]) c.zoneEdge++;
      }
    }
    out.push(c);
  }
  return out;
}

/** Solidity, rectangularity and aspect of a region, from the convex hull of its pixel squares. */
function shapeOf(c: Component): { solidity: number; rectangularity: number; aspect: number } {
  const pts: Point[] = [];
  for (const [y, [x0, x1]] of c.rows) pts.push([x0, y], [x1 + 1, y], [x0, y + 1], [x1 + 1, y + 1]);
  const hull = convexHull(pts);
  const hullArea = polygonArea(hull);
  const rect = minAreaRect(hull);
  return {
    solidity: hullArea > 0 ? Math.min(1, c.area / hullArea) : 0,
    rectangularity: rect.area > 0 ? hullArea / rect.area : 0,
    aspect: rect.short > 0 ? rect.long / rect.short : Infinity,
  };
}

/** Andrew's monotone chain; counter-clockwise, no repeated end point. */
export function convexHull(points: readonly Point[]): Point[] {
  const p = [...points].sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  if (p.length < 3) return p;
  const cross = (o: Point, a: Point, b: Point) => (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0]);
  const lower: Point[] = [];
  for (const q of p) {
    while (lower.length >= 2 && cross(lower[lower.length - 2]!, lower[lower.length - 1]!, q) <= 0) lower.pop();
    lower.push(q);
  }
  const upper: Point[] = [];
  for (let i = p.length - 1; i >= 0; i--) {
    const q = p[i]!;
    while (upper.length >= 2 && cross(upper[upper.length - 2]!, upper[upper.length - 1]!, q) <= 0) upper.pop();
    upper.push(q);
  }
  return lower.slice(0, -1).concat(upper.slice(0, -1));
}

export function polygonArea(poly: readonly Point[]): number {
  let a = 0;
  for (let i = 0, j = poly.length - 1; i < poly.length; j = i++) a += (poly[j]![0] + poly[i]![0]) * (poly[j]![1] - poly[i]![1]);
  return Math.abs(a) / 2;
}

/** Smallest rectangle around a convex polygon: one of its sides lies on a hull edge. */
export function minAreaRect(hull: readonly Point[]): { area: number; long: number; short: number } {
  let best = { area: Infinity, long: 0, short: 0 };
  for (let i = 0; i < hull.length; i++) {
    const a = hull[i]!;
    const b = hull[(i + 1) % hull.length]!;
    const len = Math.hypot(b[0] - a[0], b[1] - a[1]);
    if (len === 0) continue;
    const ux = (b[0] - a[0]) / len;
    const uy = (b[1] - a[1]) / len;
    let minU = Infinity;
    let maxU = -Infinity;
    let minV = Infinity;
    let maxV = -Infinity;
    for (const p of hull) {
      const u = p[0] * ux + p[1] * uy;
      const v = -p[0] * uy + p[1] * ux;
      minU = Math.min(minU, u);
      maxU = Math.max(maxU, u);
      minV = Math.min(minV, v);
      maxV = Math.max(maxV, v);
    }
    const du = maxU - minU;
    const dv = maxV - minV;
    if (du * dv < best.area) best = { area: du * dv, long: Math.max(du, dv), short: Math.min(du, dv) };
  }
  return best.area === Infinity ? { area: 0, long: 0, short: 0 } : best;
}

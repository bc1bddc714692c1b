/**
 * Evidence images: the clean frame as JPEG, and an annotated copy with every detection boxed, the
 * violating one highlighted, and a header bar (site, camera, local time, violation in Chinese).
 * Rendering is an SVG overlay composited by sharp (librsvg + fontconfig); Chinese needs a CJK font,
 * "WenQuanYi Micro Hei" (Debian fonts-wqy-microhei). Evidence only, never per frame (~tens of ms).
 */
import sharp from 'sharp';
import type { BoxXYXY } from '../../common/geometry.js';
import { labelText } from '../../protocol/labels.js';
import { VIOLATION_TEXT, type ViolationKind } from '../../protocol/violations.js';

export interface RgbFrame {
  width: number;
  height: number;
  /** RGB24, row-major, width * height * 3 bytes. */
  data: Buffer;
}

export interface EvidenceDetection {
  label: string;
  score: number;
  box: BoxXYXY;
  trackId?: number;
}

export interface AnnotateInfo {
  cameraName: string;
  siteName: string;
  /** Capture time, ms since the epoch; shown in `timezone`. */
  time: number;
  kind: ViolationKind;
  /** The violating detection, drawn highlighted (matched by trackId + label, else by box). */
  violation?: EvidenceDetection | null;
  /** Default Asia/Shanghai. */
  timezone?: string;
  /** JPEG quality 1..100, default 80. */
  quality?: number;
}

export const FONT_FAMILY = 'WenQuanYi Micro Hei';
const HIGHLIGHT = '#ff2020';
const NORMAL = '#20d060';

export function checkFrame(frame: RgbFrame, what: string): void {
  const { width, height, data } = frame;
  if (!Number.isInteger(width) || !Number.isInteger(height) || width <= 0 || height <= 0) {
    throw new Error(`${what}: frame size must be positive integers, got ${width}x${height}`);
  }
  const expected = width * height * 3;
  if (!Buffer.isBuffer(data) || data.length !== expected) {
    throw new Error(`${what}: frame data is ${Buffer.isBuffer(data) ? data.length : typeof data} bytes, expected ${width}x${height}x3 = ${expected} (RGB24)`);
  }
}

function checkQuality(q: number, what: string): number {
  if (!Number.isInteger(q) || q < 1 || q > 100) throw new Error(`${what}: JPEG quality must be an integer 1..100, got ${q}`);
  return q;
}

export function escapeXml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' })[c]!);
}

/** Rough rendered width: CJK glyphs are square, Latin about half as wide. */
function textWidth(s: string, size: number): number {
  let w = 0;
  for (const ch of s) w += (ch.codePointAt(0) ?? 0) >= 0x2e80 ? size : size * 0.58;
  return w;
}

const timeFormats = new Map<string, Intl.DateTimeFormat>();
/** `YYYY-MM-DD HH:mm:ss` in `timeZone`. */
export function formatLocalTime(ts: number, timeZone: string): string {
  let f = timeFormats.get(timeZone);
  if (!f) {
    try {
      f = new Intl.DateTimeFormat('en-CA', { timeZone, year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23' });
    } catch {
      throw new Error(`evidence: time zone "${timeZone}" is not a valid IANA time zone`);
    }
    timeFormats.set(timeZone, f);
  }
  const p: Record<string, string> = {};
  for (const part of f.formatToParts(new Date(ts))) p[part.type] = part.value;
  return `${p.year}-${p.month}-${p.day} ${p.hour}:${p.minute}:${p.second}`;
}

function sameDetection(a: EvidenceDetection, b: EvidenceDetection): boolean {
  if (a.trackId !== undefined && b.trackId !== undefined) return a.trackId === b.trackId && a.label === b.label;
  return a.label === b.label && a.box.every((v, i) => Math.abs(v - b.box[i]!) < 0.5);
}

/** The overlay as an SVG document of the frame's size (exported for tests and other renderers). */
export function overlaySvg(width: number, height: number, detections: readonly EvidenceDetection[], info: AnnotateInfo): string {
  const fs = Math.max(12, Math.round(height / 40));
  const headerH = Math.round(fs * 1.9);
  const stroke = Math.max(2, Math.round(height / 360));
  const kindZh = VIOLATION_TEXT[info.kind]?.zh ?? info.kind;
  const parts: string[] = [];
  const v = info.violation ?? null;
  let highlighted = false;
  const drawn: { d: EvidenceDetection; hl: boolean }[] = detections.map((d) => {
    const hl = v !== null && !highlighted && sameDetection(d, v);
    if (hl) highlighted = true;
    return { d, hl };
  });
  if (v && !highlighted) drawn.push({ d: v, hl: true });
  // normal boxes first, the violation on top
  drawn.sort((a, b) => Number(a.hl) - Number(b.hl));
  const placed: { x: number; y: number; w: number; h: number }[] = [];
  for (const { d, hl } of drawn) {
    const x1 = clamp(Math.min(d.box[0], d.box[2]), 0, width);
    const x2 = clamp(Math.max(d.box[0], d.box[2]), 0, width);
    const y1 = clamp(Math.min(d.box[1], d.box[3]), 0, height);
    const y2 = clamp(Math.max(d.box[1], d.box[3]), 0, height);
    if (x2 - x1 < 1 || y2 - y1 < 1) continue;
    const color = hl ? HIGHLIGHT : NORMAL;
    const sw = hl ? stroke * 2 : stroke;
    parts.push(`<rect x="${r(x1)}" y="${r(y1)}" width="${r(x2 - x1)}" height="${r(y2 - y1)}" fill="none" stroke="${color}" stroke-width="${sw}"/>`);
    const lt = labelText(d.label);
    const text = `${hl && lt !== kindZh ? `${kindZh} · ` : ''}${lt} ${Math.round(d.score * 100)}%${d.trackId !== undefined ? ` #${d.trackId}` : ''}`;
    const lfs = hl ? Math.round(fs * 1.1) : fs;
    const tw = textWidth(text, lfs) + lfs * 0.6;
    const th = Math.round(lfs * 1.4);
    // label above the box, or inside its top when there is no room under the header (never under it:
    // the header bar is drawn last)
    let ly = y1 - th >= headerH ? y1 - th : Math.min(Math.max(y1, headerH), height - th);
    const lx = clamp(x1, 0, Math.max(0, width - tw));
    // step down past labels already placed (a few tries; cheap, good enough for a handful of boxes)
    for (let i = 0; i < 6 && placed.some((p) => lx < p.x + p.w && p.x < lx + tw && ly < p.y + p.h && p.y < ly + th); i++) {
      ly = Math.min(ly + th, height - th);
    }
    placed.push({ x: lx, y: ly, w: tw, h: th });
    parts.push(`<rect x="${r(lx)}" y="${r(ly)}" width="${r(tw)}" height="${th}" fill="${color}" fill-opacity="0.85"/>`);
    parts.push(`<text x="${r(lx + lfs * 0.3)}" y="${r(ly + th * 0.75)}" font-size="${lfs}" fill="#ffffff">${escapeXml(text)}</text>`);
  }
  const tz = info.timezone ?? 'Asia/Shanghai';
  const left = `${info.siteName} · ${info.cameraName} · ${formatLocalTime(info.time, tz)}`;
  const right = `违规：${kindZh}`;
  parts.push(`<rect x="0" y="0" width="${width}" height="${headerH}" fill="#000000" fill-opacity="0.65"/>`);
  parts.push(`<text x="${Math.round(fs * 0.5)}" y="${Math.round(headerH * 0.7)}" font-size="${fs}" fill="#ffffff">${escapeXml(left)}</text>`);
  parts.push(`<text x="${width - Math.round(fs * 0.5)}" y="${Math.round(headerH * 0.7)}" font-size="${fs}" fill="#ff5050" font-weight="bold" text-anchor="end">${escapeXml(right)}</text>`);
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="${FONT_FAMILY}, sans-serif">${parts.join('')}</svg>`;
}

/** Annotated evidence JPEG of the frame's size. */
export async function annotate(frame: RgbFrame, detections: readonly EvidenceDetection[], info: AnnotateInfo): Promise<Buffer> {
  checkFrame(frame, 'annotate');
  const quality = checkQuality(info.quality ?? 80, 'annotate');
  const svg = overlaySvg(frame.width, frame.height, detections, info);
  return sharp(frame.data, { raw: { width: frame.width, height: frame.height, channels: 3 } })
    .composite([{ input: Buffer.from(svg), top: 0, left: 0 }])
    .jpeg({ quality })
    .toBuffer();
}

/** The clean frame as JPEG. */
export async function encodeJpeg(frame: RgbFrame, quality = 80): Promise<Buffer> {
  checkFrame(frame, 'encodeJpeg');
  checkQuality(quality, 'encodeJpeg');
  return sharp(frame.data, { raw: { width: frame.width, height: frame.height, channels: 3 } }).jpeg({ quality }).toBuffer();
}

function clamp(v: number, lo: number, hi: number): number {
  return Math.min(hi, Math.max(lo, v));
}
function r(v: number): string {
  return (Math.round(v * 10) / 10).toString();
}

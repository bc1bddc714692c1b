/**
 * Output decoders by model family. Each turns raw output tensors into candidates (before NMS) with
 * boxes in model-input pixels; classes missing from the class map are dropped.
 */
import type { DecoderSpec, InputSpec } from './manifest.js';
import type { Candidate } from './types.js';

export interface OutputTensor {
  data: Float32Array;
  dims: readonly number[];
}
export type Outputs = Record<string, OutputTensor>;

export interface DecodeContext {
  input: Pick<InputSpec, 'width' | 'height'>;
  /** Class index → canonical label (undefined or beyond the end = dropped). */
  classes: readonly (string | undefined)[];
  /** Number of classes the model should output (from the manifest's classNames), checked when given. */
  numClasses?: number;
  /** Keep candidates scoring at least this. */
  minScore: number;
  /** Source of the outputs, for error messages. */
  model: string;
}

export class DecodeError extends Error {
  constructor(model: string, message: string) {
    super(`model ${model}: ${message}`);
    this.name = 'DecodeError';
  }
}

function output(outs: Outputs, name: string, ctx: DecodeContext): OutputTensor {
  const t = outs[name];
  if (!t) throw new DecodeError(ctx.model, `output "${name}" missing (have: ${Object.keys(outs).join(', ') || 'none'})`);
  return t;
}

/** Rows x columns view of a [1, rows, cols] tensor (or [rows, cols]). */
function rowsCols(t: OutputTensor, name: string, ctx: DecodeContext): [number, number] {
  const d = t.dims;
  const ok = (d.length === 3 && d[0] === 1) || d.length === 2;
  if (!ok) throw new DecodeError(ctx.model, `output "${name}": expected shape [1, N, K], got [${d.join(', ')}]`);
  return [d[d.length - 2]!, d[d.length - 1]!];
}

function checkClassCount(n: number, name: string, ctx: DecodeContext): void {
  if (n < 1) throw new DecodeError(ctx.model, `output "${name}" has no class columns`);
  if (ctx.numClasses !== undefined && ctx.numClasses !== n)
    throw new DecodeError(ctx.model, `output "${name}" has ${n} classes but the manifest's classNames list ${ctx.numClasses}`);
}

/** YOLOX: grid decode over strides; score = objectness * class score (both already sigmoided). */
export function decodeYolox(spec: Extract<DecoderSpec, { family: 'yolox' }>, outs: Outputs, ctx: DecodeContext): Candidate[] {
  const t = output(outs, spec.output, ctx);
  const [n, k] = rowsCols(t, spec.output, ctx);
  const nc = k - 5;
  checkClassCount(nc, spec.output, ctx);
  const { width: W, height: H } = ctx.input;
  const expected = spec.strides.reduce((s, st) => s + Math.floor(H / st) * Math.floor(W / st), 0);
  if (expected !== n)
    throw new DecodeError(ctx.model, `output "${spec.output}" has ${n} rows, strides [${spec.strides.join(', ')}] at ${W}x${H} give ${expected}`);
  const d = t.data;
  const off = spec.gridOffset;
  const out: Candidate[] = [];
  let row = 0;
  for (const s of spec.strides) {
    const gw = Math.floor(W / s);
    const gh = Math.floor(H / s);
    for (let gy = 0; gy < gh; gy++) {
      for (let gx = 0; gx < gw; gx++, row++) {
        const o = row * k;
        const obj = d[o + 4]!;
        if (obj < ctx.minScore) continue;
        let best = -1;
        let bestScore = -Infinity;
        for (let c = 0; c < nc; c++) {
          const v = d[o + 5 + c]!;
          if (v > bestScore) {
            bestScore = v;
            best = c;
          }
        }
        const label = ctx.classes[best];
        const score = obj * bestScore;
        if (label === undefined || score < ctx.minScore) continue;
        const cx = (d[o]! + gx + off) * s;
        const cy = (d[o + 1]! + gy + off) * s;
        const w = Math.exp(d[o + 2]!) * s;
        const h = Math.exp(d[o + 3]!) * s;
        out.push({ label, score, box: [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2] });
      }
    }
  }
  return out;
}

/** UltraFace: softmax scores [bg, c1, c2...], boxes x1y1x2y2 normalised. Score = 1 - bg; label = best non-bg. */
export function decodeUltraface(spec: Extract<DecoderSpec, { family: 'ultraface' }>, outs: Outputs, ctx: DecodeContext): Candidate[] {
  const st = output(outs, spec.scores, ctx);
  const bt = output(outs, spec.boxes, ctx);
  const [n, k] = rowsCols(st, spec.scores, ctx);
  const [nb, kb] = rowsCols(bt, spec.boxes, ctx);
  if (nb !== n || kb !== 4) throw new DecodeError(ctx.model, `output "${spec.boxes}": expected [1, ${n}, 4], got [${bt.dims.join(', ')}]`);
  checkClassCount(k, spec.scores, ctx);
  const { width: W, height: H } = ctx.input;
  const s = st.data;
  const b = bt.data;
  const out: Candidate[] = [];
  for (let i = 0; i < n; i++) {
    const o = i * k;
    const score = 1 - s[o]!;
    if (score < ctx.minScore) continue;
    let best = 1;
    for (let c = 2; c < k; c++) if (s[o + c]! > s[o + best]!) best = c;
    const label = ctx.classes[best];
    if (label === undefined) continue;
    const q = i * 4;
    out.push({ label, score, box: [b[q]! * W, b[q + 1]! * H, b[q + 2]! * W, b[q + 3]! * H] });
  }
  return out;
}

function pushCxCyWh(out: Candidate[], label: string, score: number, cx: number, cy: number, w: number, h: number): void {
  out.push({ label, score, box: [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2] });
}

/** YOLOv5: [1, N, 5+C] rows of cx, cy, w, h (input pixels), objectness, class scores; score = obj * cls. */
export function decodeYolov5(spec: Extract<DecoderSpec, { family: 'yolov5' }>, outs: Outputs, ctx: DecodeContext): Candidate[] {
  const t = output(outs, spec.output, ctx);
  const [n, k] = rowsCols(t, spec.output, ctx);
  const nc = k - 5;
  checkClassCount(nc, spec.output, ctx);
  const d = t.data;
  const out: Candidate[] = [];
  for (let i = 0; i < n; i++) {
    const o = i * k;
    const obj = d[o + 4]!;
    if (obj < ctx.minScore) continue;
    let best = 0;
    for (let c = 1; c < nc; c++) if (d[o + 5 + c]! > d[o + 5 + best]!) best = c;
    const label = ctx.classes[best];
    const score = obj * d[o + 5 + best]!;
    if (label === undefined || score < ctx.minScore) continue;
    pushCxCyWh(out, label, score, d[o]!, d[o + 1]!, d[o + 2]!, d[o + 3]!);
  }
  return out;
}

/** YOLOv8: [1, 4+C, N] (channels first): cx, cy, w, h (input pixels), class scores; no objectness. */
export function decodeYolov8(spec: Extract<DecoderSpec, { family: 'yolov8' }>, outs: Outputs, ctx: DecodeContext): Candidate[] {
  const t = output(outs, spec.output, ctx);
  const [k, n] = rowsCols(t, spec.output, ctx);
  const nc = k - 4;
  checkClassCount(nc, spec.output, ctx);
  const d = t.data;
  const out: Candidate[] = [];
  for (let i = 0; i < n; i++) {
    let best = 0;
    let bestScore = d[4 * n + i]!;
    for (let c = 1; c < nc; c++) {
      const v = d[(4 + c) * n + i]!;
      if (v > bestScore) {
        bestScore = v;
        best = c;
      }
    }
    const label = ctx.classes[best];
    if (label === undefined || bestScore < ctx.minScore) continue;
    pushCxCyWh(out, label, bestScore, d[i]!, d[n + i]!, d[2 * n + i]!, d[3 * n + i]!);
  }
  return out;
}

export function decode(spec: DecoderSpec, outs: Outputs, ctx: DecodeContext): Candidate[] {
  switch (spec.family) {
    case 'yolox':
      return decodeYolox(spec, outs, ctx);
    case 'ultraface':
      return decodeUltraface(spec, outs, ctx);
    case 'yolov5':
      return decodeYolov5(spec, outs, ctx);
    case 'yolov8':
      return decodeYolov8(spec, outs, ctx);
  }
}

/** Names of the outputs a decoder reads. */
export function decoderOutputs(spec: DecoderSpec): string[] {
  return spec.family === 'ultraface' ? [spec.scores, spec.boxes] : [spec.output];
}

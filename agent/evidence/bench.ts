/**
 * Evidence rendering cost: `npx tsx agent/evidence/bench.ts [runs] [out.jpg]`.
 * Annotates a 1280x720 frame with 5 boxes (one highlighted) `runs` times (default 20) and prints
 * the median / min / max in ms as one JSON line, plus the clean-frame JPEG encode for comparison.
 */
import { writeFileSync } from 'node:fs';
import { annotate, encodeJpeg, type EvidenceDetection } from './annotate.js';

const runs = Number(process.argv[2] ?? 20);
const out = process.argv[3];
const w = 1280;
const h = 720;
const data = Buffer.alloc(w * h * 3);
for (let y = 0; y < h; y++) {
  for (let x = 0; x < w; x++) {
    const i = (y * w + x) * 3;
    data[i] = (x * 200) / w;
    data[i + 1] = (y * 200) / h;
    data[i + 2] = ((x ^ y) & 63) + 90; // some texture so the JPEG is not trivially small
  }
}
const frame = { width: w, height: h, data };
const dets: EvidenceDetection[] = [
  { label: 'face', score: 0.91, box: [600, 200, 680, 290], trackId: 3 },
  { label: 'masked_face', score: 0.88, box: [200, 220, 270, 300], trackId: 4 },
  { label: 'person', score: 0.77, box: [150, 150, 350, 700], trackId: 5 },
  { label: 'chef_hat', score: 0.6, box: [190, 150, 280, 215], trackId: 6 },
  { label: 'cigarette', score: 0.7, box: [900, 500, 940, 512], trackId: 7 },
];
const info = { cameraName: '后厨1号 切配间', siteName: '第一中学食堂', time: Date.now(), kind: 'no_mask' as const, violation: dets[0] };

async function time(fn: () => Promise<Buffer>): Promise<{ median: number; min: number; max: number; bytes: number }> {
  const t: number[] = [];
  let bytes = 0;
  await fn(); // warm-up (font cache, librsvg)
  for (let i = 0; i < runs; i++) {
    const s = performance.now();
    bytes = (await fn()).length;
    t.push(performance.now() - s);
  }
  t.sort((a, b) => a - b);
  const r = (v: number) => Math.round(v * 10) / 10;
  return { median: r(t[Math.floor(t.length / 2)]!), min: r(t[0]!), max: r(t.at(-1)!), bytes };
}

const annotated = await time(() => annotate(frame, dets, info));
const clean = await time(() => encodeJpeg(frame));
if (out) writeFileSync(out, await annotate(frame, dets, info));
process.stdout.write(`${JSON.stringify({ frame: `${w}x${h}`, boxes: dets.length, runs, annotateMs: annotated, cleanJpegMs: clean })}\n`);

import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync, mkdirSync, existsSync, readdirSync, utimesSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { annotate, encodeJpeg, escapeXml, overlaySvg, formatLocalTime, EvidenceStore, sha256, type RgbFrame } from '../../agent/evidence/index.js';

type Box = [number, number, number, number];
const W = 320;
const H = 180;
function grayFrame(w = W, h = H, v = 90): RgbFrame {
  return { width: w, height: h, data: Buffer.alloc(w * h * 3, v) };
}
const T = Date.UTC(2025, 2, 5, 4, 3, 7); // 2025-03-05 12:03:07 in Shanghai

async function rawPixels(jpeg: Buffer) {
  const { data, info } = await sharp(jpeg).raw().toBuffer({ resolveWithObject: true });
  return { data, info };
}
function meanAbsDiff(a: Buffer, b: Buffer, w: number, box: Box, channels = 3): number {
  let sum = 0;
  let n = 0;
  for (let y = box[1]; y < box[3]; y++) {
    for (let x = box[0]; x < box[2]; x++) {
      for (let c = 0; c < channels; c++) {
        const i = (y * w + x) * channels + c;
        sum += Math.abs(a[i]! - b[i]!);
        n++;
      }
    }
  }
  return sum / n;
}

describe('annotate', () => {
  const viol = { label: 'face', score: 0.91, box: [150, 80, 200, 140] as Box, trackId: 3 };
  const other = { label: 'masked_face', score: 0.8, box: [30, 100, 70, 150] as Box, trackId: 4 };

  it('produces a JPEG of the frame size whose violation box differs from the clean frame', async () => {
    const frame = grayFrame();
    const [ann, clean] = await Promise.all([
      annotate(frame, [other, viol], { cameraName: '后厨1号', siteName: '第一中学食堂', time: T, kind: 'no_mask', violation: viol }),
      encodeJpeg(frame),
    ]);
    expect(ann.subarray(0, 2).toString('hex')).toBe('ffd8');
    const meta = await sharp(ann).metadata();
    expect(meta).toMatchObject({ format: 'jpeg', width: W, height: H });
    expect(await sharp(clean).metadata()).toMatchObject({ format: 'jpeg', width: W, height: H });
    const a = await rawPixels(ann);
    const c = await rawPixels(clean);
    // the left edge of the violation box is drawn (red): big difference on a thin strip around x=150
    expect(meanAbsDiff(a.data, c.data, W, [148, 90, 153, 130])).toBeGreaterThan(40);
    const i = (110 * W + 150) * 3;
    expect(a.data[i]!).toBeGreaterThan(a.data[i + 1]! + 60); // red dominates
    // far from every box and below the header, the two images agree
    expect(meanAbsDiff(a.data, c.data, W, [240, 150, 300, 175])).toBeLessThan(3);
    // the header bar darkens the top
    expect(meanAbsDiff(a.data, c.data, W, [100, 2, 200, 8])).toBeGreaterThan(20);
  });

  it('escapes XML in texts and writes Chinese texts, site/camera and local time in the overlay', () => {
    const svg = overlaySvg(W, H, [viol], { cameraName: 'cam <1> & "x"', siteName: "O'Brien 食堂", time: T, kind: 'no_mask', violation: viol });
    expect(svg).toContain('cam &lt;1&gt; &amp; &quot;x&quot;');
    expect(svg).toContain('O&apos;Brien 食堂');
    expect(svg).toContain('2025-03-05 12:03:07');
    expect(svg).toContain('违规：未戴口罩');
    expect(svg).toContain('WenQuanYi Micro Hei');
    expect(svg).not.toMatch(/<1>/);
    expect(escapeXml(`<a href="x">&'`)).toBe('&lt;a href=&quot;x&quot;&gt;&amp;&apos;');
    expect(formatLocalTime(Date.UTC(2024, 11, 31, 16, 0, 0), 'Asia/Shanghai')).toBe('2025-01-01 00:00:00');
  });

  it('puts the label of a box at the top edge below the header bar, not under it', () => {
    const top = { label: 'face', score: 0.9, box: [100, 0, 160, 60] as Box, trackId: 1 };
    const svg = overlaySvg(W, H, [top], { cameraName: 'c', siteName: 's', time: T, kind: 'no_mask', violation: top });
    const header = Number(/<rect x="0" y="0" width="\d+" height="(\d+)"/.exec(svg)![1]);
    const labelY = [...svg.matchAll(/<rect x="[\d.]+" y="([\d.]+)" width="[\d.]+" height="\d+" fill="#[0-9a-f]+" fill-opacity="0.85"\/>/g)].map((m) => Number(m[1]));
    expect(labelY).toHaveLength(1);
    expect(labelY[0]).toBeGreaterThanOrEqual(header);
  });

  it('highlights the violation even when it is not among the detections, and survives odd boxes', async () => {
    const svg = overlaySvg(W, H, [other], { cameraName: 'c', siteName: 's', time: T, kind: 'smoking', violation: { label: 'cigarette', score: 0.5, box: [10, 10, 20, 20] } });
    expect(svg).toContain('#ff2020');
    expect(svg).toContain('吸烟');
    const jpg = await annotate(grayFrame(), [{ label: 'x', score: 1, box: [-50, -50, 9999, 9999] }, { label: 'y', score: 1, box: [50, 50, 50, 50] }], { cameraName: 'c', siteName: 's', time: T, kind: 'rodent' });
    expect((await sharp(jpg).metadata()).width).toBe(W);
  });

  it('rejects a frame whose buffer does not match its size, naming the sizes', async () => {
    await expect(annotate({ width: 10, height: 10, data: Buffer.alloc(299) }, [], { cameraName: 'c', siteName: 's', time: T, kind: 'no_hat' })).rejects.toThrow(/299 bytes, expected 10x10x3 = 300/);
    await expect(encodeJpeg(grayFrame(), 0)).rejects.toThrow(/quality/);
  });
});

describe('EvidenceStore', () => {
  const dirs: string[] = [];
  const tmp = () => {
    const d = mkdtempSync(path.join(tmpdir(), 'bk-evidence-'));
    dirs.push(d);
    return d;
  };
  afterEach(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });
  let jpgA: Buffer;
  let jpgB: Buffer;
  beforeAll(async () => {
    jpgA = await encodeJpeg(grayFrame(64, 48, 10));
    jpgB = await encodeJpeg(grayFrame(64, 48, 200));
  });

  it('writes both files under evidence/<local date>/ and returns paths, hashes and sizes', async () => {
    const dir = tmp();
    const store = new EvidenceStore({ dir, maxAgeDays: 30, maxTotalMB: 10, retentionIntervalMs: 0 });
    await store.init();
    // 2025-03-05 20:00 UTC is already 2025-03-06 in Shanghai
    const r = await store.save('ev-1', Date.UTC(2025, 2, 5, 20), { annotated: jpgA, clean: jpgB });
    expect(r.error).toBeNull();
    expect(r.annotated.path).toBe(path.join(dir, 'evidence', '2025-03-06', 'ev-1-annotated.jpg'));
    expect(r.clean.path).toBe(path.join(dir, 'evidence', '2025-03-06', 'ev-1-clean.jpg'));
    expect(readFileSync(r.annotated.path!)).toEqual(jpgA);
    expect(r.annotated).toMatchObject({ sha256: sha256(jpgA), bytes: jpgA.length });
    expect(r.clean.sha256).toMatch(/^[a-f0-9]{64}$/);
    expect(r.clean.sha256).not.toBe(r.annotated.sha256);
    expect(store.totalBytes).toBe(jpgA.length + jpgB.length);
    expect(readdirSync(path.join(dir, 'evidence', '2025-03-06')).sort()).toEqual(['ev-1-annotated.jpg', 'ev-1-clean.jpg']);
  });

  it('deletes files older than maxAgeDays, at start and later as time passes', async () => {
    const dir = tmp();
    const old = path.join(dir, 'evidence', '2025-01-01');
    mkdirSync(old, { recursive: true });
    writeFileSync(path.join(old, 'old-annotated.jpg'), jpgA);
    writeFileSync(path.join(old, 'old-clean.jpg'), jpgB);
    writeFileSync(path.join(old, 'torn-annotated.jpg.tmp'), 'x');
    const tenDaysAgo = (Date.now() - 10 * 86_400_000) / 1000;
    utimesSync(path.join(old, 'old-annotated.jpg'), tenDaysAgo, tenDaysAgo);
    utimesSync(path.join(old, 'old-clean.jpg'), tenDaysAgo, tenDaysAgo);
    let now = Date.now();
    const store = new EvidenceStore({ dir, maxAgeDays: 7, maxTotalMB: 10, now: () => now, retentionIntervalMs: 0 });
    const rep = await store.init();
    expect(rep.deletedFiles).toBe(2);
    expect(existsSync(old)).toBe(false); // empty day folder removed, stray .tmp too
    const r = await store.save('fresh', now, { annotated: jpgA, clean: jpgB });
    expect(r.error).toBeNull();
    now += 6 * 86_400_000;
    expect((await store.enforceRetention()).deletedFiles).toBe(0);
    now += 2 * 86_400_000;
    expect((await store.enforceRetention()).deletedFiles).toBe(2);
    expect(existsSync(r.annotated.path!)).toBe(false);
    expect(store.totalBytes).toBe(0);
  });

  it('keeps the total under maxTotalMB by deleting the oldest events (both files) first', async () => {
    const dir = tmp();
    const big = Buffer.alloc(100 * 1024, 1);
    let now = Date.UTC(2025, 2, 5, 4);
    // 0.5 MB budget: room for two events of 2 x 100 KiB, not three
    const store = new EvidenceStore({ dir, maxAgeDays: 30, maxTotalMB: 0.5, now: () => now, retentionIntervalMs: 0 });
    await store.init();
    const paths: string[] = [];
    for (let i = 0; i < 4; i++) {
      now += 1000;
      const r = await store.save(`ev-${i}`, now, { annotated: big, clean: big });
      expect(r.error).toBeNull();
      paths.push(r.annotated.path!, r.clean.path!);
    }
    expect(store.totalBytes).toBeLessThanOrEqual(0.5 * 1024 * 1024);
    expect(paths.map((p) => existsSync(p))).toEqual([false, false, false, false, true, true, true, true]);
    // a second store scanning the same tree agrees
    const again = new EvidenceStore({ dir, maxAgeDays: 30, maxTotalMB: 0.5, retentionIntervalMs: 0 });
    await again.init();
    expect(again.totalBytes).toBe(4 * big.length);
    expect(again.fileCount).toBe(4);
    expect(again.eventCount).toBe(2);
  });

  it('a write error (storage dir is a file) yields a clear error, no throw, and hashes for the event', async () => {
    const dir = tmp();
    const notADir = path.join(dir, 'storage');
    writeFileSync(notADir, 'I am a file');
    const store = new EvidenceStore({ dir: notADir, maxAgeDays: 30, maxTotalMB: 10, retentionIntervalMs: 0 });
    await expect(store.init()).resolves.toBeDefined();
    const r = await store.save('ev-x', T, { annotated: jpgA, clean: jpgB });
    expect(r.error).not.toBeNull();
    expect(r.error!.message).toMatch(/cannot write .*storage\/evidence\/2025-03-05/);
    expect(r.error!.message).toMatch(/storage\.dir/);
    expect(['ENOTDIR', 'EEXIST']).toContain(r.error!.code);
    expect(r.annotated).toMatchObject({ path: null, sha256: sha256(jpgA), bytes: jpgA.length });
    expect(r.clean.path).toBeNull();
    expect(store.totalBytes).toBe(0);
  });

  it('on a full disk evicts the oldest evidence and retries once; gives up cleanly if still full', async () => {
    const dir = tmp();
    let now = Date.UTC(2025, 2, 5, 4);
    let failures = 0;
    const writeFile = async (file: string, data: Buffer) => {
      if (failures > 0) {
        failures--;
        throw Object.assign(new Error(`ENOSPC: no space left on device, open '${file}'`), { code: 'ENOSPC' });
      }
      writeFileSync(file, data);
    };
    const store = new EvidenceStore({ dir, maxAgeDays: 30, maxTotalMB: 10, now: () => now, writeFile, retentionIntervalMs: 0 });
    await store.init();
    const first = await store.save('ev-old', now, { annotated: jpgA, clean: jpgB });
    now += 1000;
    failures = 1;
    const second = await store.save('ev-new', now, { annotated: jpgA, clean: jpgB });
    expect(second.error).toBeNull();
    expect(existsSync(first.annotated.path!)).toBe(false); // evicted to make room
    expect(existsSync(second.annotated.path!)).toBe(true);
    failures = 5;
    const third = await store.save('ev-3', now, { annotated: jpgA, clean: jpgB });
    expect(third.error?.code).toBe('ENOSPC');
    expect(third.error?.message).toMatch(/no space left.*gave up after a retry/);
    expect(third.annotated.path).toBeNull();
    expect(readdirSync(path.dirname(second.annotated.path!)).filter((f) => f.startsWith('ev-3'))).toEqual([]);
  });

  it('refuses an unsafe event id without touching the disk', async () => {
    const dir = tmp();
    const store = new EvidenceStore({ dir, maxAgeDays: 30, maxTotalMB: 10, retentionIntervalMs: 0 });
    await store.init();
    const r = await store.save('../../etc/passwd', T, { annotated: jpgA, clean: jpgB });
    expect(r.error?.message).toMatch(/not a safe file name/);
    expect(readdirSync(path.join(dir, 'evidence'))).toEqual([]);
  });
});

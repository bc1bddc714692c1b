/**
 * The public window (社会公众) on a real central + HTTP layer: a real RTSP camera (GStreamer RTSP
 * server fed by ffmpeg) behind site A's public still, events arriving over MQTT, a manager acting on
 * them with names in the notes. Site A publishes its record, site B has a slug but did not opt in,
 * site C publishes violation pictures and has no live camera.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, parseCentralConfig } from '../../central/core.js';
import { monthStart } from '../../central/store/public-record.js';
import { startSimCamera, type SimCamera } from '../../scripts/sim-camera.js';
import { ApiClient, USERS, makeJpeg, startFixture, type Fixture } from '../helpers/central.js';

const SLUG_A = 'pubA-7f3c9e21b04d5a68';
const SLUG_B = 'pubB-2c81d0f4e95a7b13';
const SLUG_C = 'pubC-93ab17e6c0f25d48';
const NOTE_ACK = '已通知厨师张伟戴口罩';
const NOTE_FIX = '王经理已当面纠正，李师傅重新培训';

let fx: Fixture;
let cam: SimCamera;
let dir: string;
let pullLog: string;
/** ffmpeg runs of the public still so far (a wrapper that logs each run, then runs the real ffmpeg). */
const pulls = () => (existsSync(pullLog) ? readFileSync(pullLog, 'utf8').split('\n').filter(Boolean).length : 0);
const anon = (p: string, headers: Record<string, string> = {}) => fetch(fx.url + p, { headers, redirect: 'manual' });

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'bk-public-'));
  const clip = path.join(dir, 'clip.mp4');
  const enc = spawnSync('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-f', 'lavfi', '-i', 'testsrc=size=320x240:rate=10', '-t', '4',
    '-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p', clip]);
  if (enc.status !== 0) throw new Error(`ffmpeg: ${enc.stderr.toString()}`);
  pullLog = path.join(dir, 'pulls.log');
  const wrapper = path.join(dir, 'ffmpeg-counting.sh');
  writeFileSync(wrapper, `#!/bin/sh\necho pull >> '${pullLog}'\nexec ffmpeg "$@"\n`);
  chmodSync(wrapper, 0o755);
  cam = await startSimCamera({ source: clip, path: 'pub', fps: 10, width: 320, height: 240, gop: 10, loop: true });
  fx = await startFixture({
    liveUrl: cam.url,
    http: { publicWindow: { stillTtlMs: 1500, recordTtlMs: 0, maxPerIp: 10_000, ffmpegPath: wrapper } },
    sitePublic: {
      'site-a': { enabled: true, slug: SLUG_A, camera: 'cam-hot', rectifications: true },
      'site-b': { enabled: false, slug: SLUG_B, camera: 'cam-b1', rectifications: true, violationImages: true },
      'site-c': { enabled: true, slug: SLUG_C, camera: 'cam-c1', rectifications: true, violationImages: true },
    },
  });
  // Site A's month: two no_mask, one rodent, one experimental (left out); one acknowledged, one rectified.
  const mgr = new ApiClient(fx.url);
  await mgr.login(USERS.mgrA.username);
  const e1 = await fx.publishEvent('site-a', { kind: 'no_mask' });
  const e2 = await fx.publishEvent('site-a', { kind: 'no_mask' });
  await fx.publishEvent('site-a', { kind: 'rodent', severity: 1 });
  await fx.publishEvent('site-a', { kind: 'smoking', experimental: true });
  expect((await mgr.json('POST', `/api/events/${e1.id}/ack`, { note: NOTE_ACK })).status).toBe(200);
  const photo = await makeJpeg(64, 48, { r: 9, g: 9, b: 9 }, 'fix');
  expect((await mgr.json('POST', `/api/events/${e2.id}/rectify`, { note: NOTE_FIX, photoBase64: photo.toString('base64'), photoMime: 'image/jpeg' })).status).toBe(200);
  await fx.publishEvent('site-b', { kind: 'smoking' });
  await fx.publishEvent('site-c', { kind: 'no_hat' });
}, 90_000);
afterAll(async () => {
  await fx?.close();
  await cam?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('public window config', () => {
  const base = (pub: Record<string, unknown>, extra: Record<string, unknown>[] = []) => ({
    dataDir: '/tmp/x', broker: { mode: 'embedded' },
    org: {
      districts: [{ id: 'd', name: 'D' }], schools: [{ id: 's', name: 'S', districtId: 'd' }],
      sites: [{ id: 'site-1', name: 'N', schoolId: 's', cameras: [{ id: 'c1', name: 'C' }], public: pub }, ...extra],
    },
  });
  const problem = (cfg: unknown) => {
    try {
      parseCentralConfig(cfg);
    } catch (e) {
      expect(e).toBeInstanceOf(ConfigError);
      return (e as ConfigError).problems.join(' | ');
    }
    return 'accepted';
  };
  it('refuses bad public sections with a message naming the field', () => {
    expect(problem(base({ enabled: true, camera: 'c1' }))).toMatch(/org\.sites\[0\]\.public\.slug: a public site needs a slug/);
    expect(problem(base({ enabled: true, slug: 'short', camera: 'c1' }))).toMatch(/org\.sites\.0\.public\.slug|sites\[0\]\.public\.slug/);
    expect(problem(base({ enabled: true, slug: SLUG_A, camera: 'nope' }))).toMatch(/org\.sites\[0\]\.public\.camera: no camera "nope"/);
    expect(problem(base({ enabled: true, slug: SLUG_A }))).toMatch(/public\.camera: snapshot is on/);
    expect(problem(base({ enabled: true, slug: SLUG_A, camera: 'c1', violationImage: true }))).toMatch(/violationImage/);
    const twin = { id: 'site-2', name: 'M', schoolId: 's', public: { slug: SLUG_A, snapshot: false } };
    expect(problem(base({ enabled: true, slug: SLUG_A, camera: 'c1' }, [twin]))).toMatch(/org\.sites\[1\]\.public\.slug: slug already used/);
  });
  it('is off unless enabled; defaults publish a picture only', () => {
    const cfg = parseCentralConfig(base({ slug: SLUG_A }));
    expect(cfg.org.sites[0]!.public).toEqual({ enabled: false, slug: SLUG_A, snapshot: true, rectifications: false, violationImages: false });
    expect(problem(base({ enabled: true, slug: SLUG_A, snapshot: false }))).toBe('accepted');
  });
});

describe('public window', () => {
  it('answers a site that did not opt in exactly like an unknown slug, with or without a session', async () => {
    const admin = new ApiClient(fx.url);
    await admin.login(USERS.admin.username);
    const cookie = { Cookie: admin.cookie };
    const probes = ['pubZ-0000000000000000', SLUG_B, 'site-b', 'site-a', 'a%2Fb', 'x'.repeat(80), `${SLUG_A}x`, SLUG_A.toUpperCase()];
    const answers = new Set<string>();
    for (const slug of probes) {
      for (const headers of [{}, cookie]) {
        for (const p of [`/public/${slug}`, `/api/public/${slug}`, `/api/public/${slug}/still.jpg`, `/api/public/${slug}/images/${'a'.repeat(64)}`]) {
          const res = await anon(p, headers);
          const kind = p.startsWith('/api/') ? 'api' : 'page';
          answers.add(`${kind} ${res.status} ${res.headers.get('content-type')} ${await res.text()}`);
        }
      }
    }
    // one answer for pages, one for the API: nothing tells an opted-out site from a made-up one
    expect([...answers].sort()).toEqual([
      'api 404 application/json; charset=utf-8 {"error":"not_found","message":"未找到"}',
      'page 404 text/plain; charset=utf-8 404',
    ]);
  });

  it('the page and the JSON: names of canteen and school, the month record, nothing personal', async () => {
    const page = await anon(`/public/${SLUG_A}`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(page.headers.get('content-security-policy')).toContain("default-src 'self'");
    expect(page.headers.get('set-cookie')).toBeNull();
    expect(await page.text()).toContain('/window.js');

    const res = await anon(`/api/public/${SLUG_A}`);
    expect(res.status).toBe(200);
    expect(res.headers.get('set-cookie')).toBeNull();
    const text = await res.text();
    const body = JSON.parse(text);
    expect(body).toMatchObject({ canteen: '第一中学学生食堂', school: '第一中学', district: '东城区', timezone: 'Asia/Shanghai', violationImages: false });
    expect(body.still).toEqual({ url: `/api/public/${SLUG_A}/still.jpg`, refreshSec: 5 });
    const r = body.record;
    expect(r.month).toBe(monthStart(Date.now(), 'Asia/Shanghai').label);
    expect(r).toMatchObject({ total: 3, rectified: 1, open: 2, overdue: 0 });
    expect(r.byKind).toEqual([{ kind: 'no_mask', count: 2, rectified: 1 }, { kind: 'rodent', count: 1, rectified: 0 }]);
    expect(r.timeToRectify.count).toBe(1);
    expect(r.timeToRectify.medianSec).toBeGreaterThanOrEqual(0);
    expect(r.recent).toHaveLength(3);
    expect(r.recent.map((x: { state: string }) => x.state).sort()).toEqual(['open', 'open', 'rectified']);
    expect(r.recent.every((x: { image: unknown }) => x.image === null)).toBe(true);
    // nothing private: people, notes, ids, cameras, URLs, other sites
    const privateValues = [
      ...Object.values(USERS).flatMap((u) => [u.name, u.username, u.id]), NOTE_ACK, NOTE_FIX, '张伟', '李师傅',
      'site-a', 'cam-hot', '热菜操作间', 'rtsp', cam.url, '127.0.0.1', 'sch-1', 'd-east', '第二小学', '西城', 'photo', 'ackBy', 'note',
    ];
    for (const v of privateValues) expect(text, v).not.toContain(v);
  });

  it('the still: a real camera frame, one pull shared by concurrent viewers and reused for the TTL', async () => {
    const get = async () => {
      const res = await anon(`/api/public/${SLUG_A}/still.jpg`);
      return { status: res.status, type: res.headers.get('content-type'), at: res.headers.get('x-captured-at'), source: res.headers.get('x-still-source'), bytes: Buffer.from(await res.arrayBuffer()) };
    };
    const before = pulls();
    const burst = await Promise.all(Array.from({ length: 6 }, get));
    expect(pulls() - before).toBe(1);
    for (const s of burst) {
      expect(s.status).toBe(200);
      expect(s.type).toBe('image/jpeg');
      expect(s.source).toBe('live');
      expect(s.bytes.equals(burst[0]!.bytes)).toBe(true);
      expect(s.at).toBe(burst[0]!.at);
    }
    const meta = await sharp(burst[0]!.bytes).metadata();
    expect([meta.format, meta.width, meta.height]).toEqual(['jpeg', 320, 240]);
    const stats = await sharp(burst[0]!.bytes).stats();
    expect(stats.channels[0]!.stdev).toBeGreaterThan(10); // a picture, not a blank frame
    const again = await get();
    expect(again.at).toBe(burst[0]!.at); // within the TTL: no new pull
    expect(pulls() - before).toBe(1);
    await new Promise((r) => setTimeout(r, 1700));
    const later = await Promise.all([get(), get()]);
    expect(later.map((s) => s.status)).toEqual([200, 200]);
    expect(Number(later[0]!.at)).toBeGreaterThan(Number(burst[0]!.at));
    expect(pulls() - before).toBe(2);
  });

  it('violation pictures only where the site opts in: its own alerts of the month', async () => {
    // A: no pictures, and its alerts' hashes do not open through the public path
    const shaA = (await (async () => {
      const admin = new ApiClient(fx.url);
      await admin.login(USERS.admin.username);
      return (await admin.json('GET', '/api/events?siteId=site-a')).body.events[0].snapshotSha256 as string;
    })());
    expect((await anon(`/api/public/${SLUG_A}/images/${shaA}`)).status).toBe(404);
    // C: opted in; a picture of its alert opens, A's does not (no path to another site's pictures)
    const c = await (await anon(`/api/public/${SLUG_C}`)).json();
    expect(c.violationImages).toBe(true);
    expect(c.record.total).toBe(1);
    const img = c.record.recent[0].image as string;
    expect(img).toMatch(new RegExp(`^/api/public/${SLUG_C}/images/[a-f0-9]{64}$`));
    const pic = await anon(img);
    expect(pic.status).toBe(200);
    expect(pic.headers.get('content-type')).toBe('image/jpeg');
    expect((await sharp(Buffer.from(await pic.arrayBuffer())).metadata()).width).toBe(640);
    expect((await anon(`/api/public/${SLUG_C}/images/${shaA}`)).status).toBe(404);
    // C has no live URL: the still is the latest alert's clean picture, marked as such
    const still = await anon(`/api/public/${SLUG_C}/still.jpg`);
    expect(still.status).toBe(200);
    expect(still.headers.get('x-still-source')).toBe('alert');
  });

  it('a camera that cannot be pulled is said so (503, JSON), and refusals are JSON; methods other than GET are 405', async () => {
    await fx.close();
    fx = await startFixture({
      http: { trustProxy: true, publicWindow: { maxPerIp: 5, windowMs: 60_000 } },
      sitePublic: { 'site-b': { enabled: true, slug: SLUG_B, camera: 'cam-b1' } }, // cam-b1: rtsp://127.0.0.1:9 (nothing listens)
    });
    const ip = (n: number) => ({ 'X-Forwarded-For': `10.0.0.${n}` });
    const still = await anon(`/api/public/${SLUG_B}/still.jpg`, { ...ip(1), 'Accept-Language': 'en' });
    expect(still.status).toBe(503);
    expect((await still.json()).error).toBe('unavailable');
    const json = await (await anon(`/api/public/${SLUG_B}`, ip(1))).json();
    expect(json.record).toBeNull(); // rectifications default off
    expect((await anon(`/api/public/${SLUG_B}?x=1`, ip(1))).status).toBe(400);
    const post = await fetch(`${fx.url}/api/public/${SLUG_B}`, { method: 'POST', headers: ip(1) });
    expect(post.status).toBe(405);

    // per address: 5 requests a minute here, unknown slugs count too; another address is not affected
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++) statuses.push((await anon(i % 2 ? `/api/public/pubZ-0000000000000000` : `/public/${SLUG_B}`, ip(2))).status);
    const limited = await anon(`/api/public/${SLUG_B}`, ip(2));
    const over = await anon(`/api/public/${SLUG_B}`, ip(2));
    expect([...statuses, limited.status, over.status]).toEqual([200, 404, 200, 404, 200, 429]);
    expect(Number(over.headers.get('retry-after'))).toBeGreaterThan(0);
    expect((await over.json()).error).toBe('too_many_requests');
    expect((await anon(`/public/${SLUG_B}`, ip(3))).status).toBe(200);
  });
});

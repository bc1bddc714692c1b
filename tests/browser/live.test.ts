/**
 * Live view with real pictures: a simulated RTSP camera (GStreamer RTSP server fed by ffmpeg with a
 * slideshow of the shared mask photos) → central's ffmpeg (MPEG-TS / MPEG-1) → WebSocket → jsmpeg in
 * a real headless Chromium, under the dashboard's Content-Security-Policy. The canvas must show
 * decoded, changing pictures (screenshots checked with sharp), without any CSP violation, and closing
 * the view must stop central's ffmpeg.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import vm from 'node:vm';
import { chromium, type Browser } from 'playwright-core';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JSMPEG_PATH, JSMPEG_STYLE_HASHES, jsmpegPlayerFile } from '../../central/http/server.js';
import { PASSWORD, USERS, startFixture, type Fixture } from '../helpers/central.js';
import { MASK_IMAGES, startSimCamera, stopAllSimCameras, type SimCamera } from '../helpers/rtsp.js';

const SCREENSHOT_DIR = process.env.BK_SCREENSHOT_DIR ?? tmpdir();

let fx: Fixture;
let cam: SimCamera;
let browser: Browser;

beforeAll(async () => {
  cam = await startSimCamera({ source: MASK_IMAGES, path: 'live' }); // 640x360, 15 fps, a keyframe per second, 1 s per photo
  fx = await startFixture({ liveUrl: cam.url, http: { live: { graceMs: 300 } } });
  browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  });
}, 60_000);
afterAll(async () => {
  await browser?.close();
  await fx?.close();
  await stopAllSimCameras();
});

/** Per-channel standard deviation of an image: ~0 for a blank (uniform) canvas. */
async function spread(png: Buffer): Promise<number> {
  const st = await sharp(png).removeAlpha().stats();
  return Math.min(...st.channels.map((c) => c.stdev));
}
/** Mean absolute difference of two same-sized screenshots (0–255). */
async function difference(a: Buffer, b: Buffer): Promise<number> {
  const [x, y] = await Promise.all([a, b].map((p) => sharp(p).removeAlpha().greyscale().raw().toBuffer()));
  let sum = 0;
  for (let i = 0; i < x!.length; i++) sum += Math.abs(x![i]! - y![i]!);
  return sum / x!.length;
}

describe('live view player', () => {
  it('serves the jsmpeg player at a fixed path with the security headers; CSP allows exactly its style sheet', async () => {
    const file = readFileSync(jsmpegPlayerFile());
    const res = await fetch(fx.url + JSMPEG_PATH);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    const csp = res.headers.get('content-security-policy')!;
    expect(csp).toContain("default-src 'self'");
    expect(csp).toContain("script-src 'self';"); // no 'unsafe-eval' / 'wasm-unsafe-eval'
    expect(Buffer.from(await res.arrayBuffer()).equals(file)).toBe(true);
    const again = await fetch(fx.url + JSMPEG_PATH, { headers: { 'If-None-Match': res.headers.get('etag')! } });
    expect(again.status).toBe(304);
    expect((await fetch(fx.url + '/vendor/other.js')).status).toBe(404);

    // The style text the script injects when it loads (captured with a stand-in document) is what the hash allows.
    const injected: string[] = [];
    const node = () => ({ appendChild() {}, insertBefore() {}, firstChild: null });
    const document = { head: node(), getElementsByTagName: () => [node()], createElement: () => ({ ...node(), style: {} }), createTextNode: (t: string) => (injected.push(t), {}) };
    const sandbox: Record<string, unknown> = { document, window: {}, navigator: { userAgent: '' } };
    vm.runInNewContext(file.toString('utf8'), sandbox);
    expect(typeof (sandbox.JSMpeg as { Player?: unknown }).Player).toBe('function');
    expect(injected).toHaveLength(1);
    const hash = (text: string) => `'sha256-${createHash('sha256').update(text, 'utf8').digest('base64')}'`;
    expect(JSMPEG_STYLE_HASHES).toEqual([hash(''), hash(injected[0]!)]); // empty first: the <style> is appended before its text
    expect(csp).toContain(`style-src 'self' ${JSMPEG_STYLE_HASHES.join(' ')};`);
  });

  it('a manager opens the live view: the canvas shows decoded, changing pictures; closing stops the stream', async () => {
    const context = await browser.newContext({ locale: 'zh-CN', viewport: { width: 1280, height: 860 } });
    await context.addInitScript(() => {
      const w = window as unknown as { __csp: string[] };
      w.__csp = [];
      document.addEventListener('securitypolicyviolation', (e) => w.__csp.push(`${e.violatedDirective} ${e.blockedURI} ${JSON.stringify(e.sample)}`));
    });
    const page = await context.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
    page.on('console', (m) => { if (m.type() === 'error' && !/status of 401/.test(m.text())) errors.push(`console: ${m.text()}`); });
    await page.goto(fx.url + '/');
    await page.fill('#username', USERS.mgrA.username);
    await page.fill('#password', PASSWORD);
    await page.click('#login-submit');
    await page.click('#nav-sites'); // the navigation appears once signed in
    await page.locator('.site[data-id="site-a"] .cam[data-id="cam-hot"] button').click();

    const canvas = page.locator('#live-canvas');
    await canvas.waitFor();
    const frames = () => page.locator('#live-stats').evaluate((el) => Number((el as HTMLElement).dataset.frames ?? 0));
    await expect.poll(frames, { timeout: 45_000, interval: 250 }).toBeGreaterThanOrEqual(10);
    expect(await page.locator('#live-status').textContent()).toBe('视频流已连接');
    expect(await page.locator('#live-stats').textContent()).toMatch(/帧 · 640×360$/);
    // jsmpeg sized the canvas to the decoded pictures
    expect(await canvas.evaluate((c: HTMLCanvasElement) => [c.width, c.height])).toEqual([640, 360]);
    const renderer = await canvas.evaluate((c: HTMLCanvasElement) => (c.getContext('2d') ? 'canvas2d' : 'webgl'));

    const first = await canvas.screenshot({ path: path.join(SCREENSHOT_DIR, 'bk-live-canvas-1.png') });
    expect(await spread(first)).toBeGreaterThan(15); // a photo, not a blank or single-colour canvas
    // one photo a second: a few seconds later the canvas shows another one
    const before = await frames();
    await page.waitForTimeout(2500);
    const second = await canvas.screenshot({ path: path.join(SCREENSHOT_DIR, 'bk-live-canvas-2.png') });
    expect(await frames()).toBeGreaterThan(before);
    expect(await spread(second)).toBeGreaterThan(15);
    expect(await difference(first, second)).toBeGreaterThan(5);
    await page.screenshot({ path: path.join(SCREENSHOT_DIR, 'bk-live.png') });
    console.log(`live view: ${await frames()} pictures decoded (${renderer})`);

    expect(fx.http.live.list()).toHaveLength(1);
    await page.click('#live-close');
    expect(await page.locator('#overlay').isHidden()).toBe(true);
    await expect.poll(() => fx.http.live.list().length, { timeout: 10_000 }).toBe(0); // the player closed its WebSocket

    expect(await page.evaluate(() => (window as unknown as { __csp: string[] }).__csp)).toEqual([]);
    expect(errors).toEqual([]);
    await context.close();
  }, 120_000);
});

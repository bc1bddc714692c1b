/**
 * The public window (社会公众) in a real headless Chromium: the kitchen camera's still (a simulated
 * RTSP camera playing the shared kitchen photos) appears and is refreshed, the month record shows, the
 * English toggle works, the phone layout does not scroll sideways, no CSP violation, and the page
 * sends no cookie to the public API even in a browser logged in to the dashboard.
 * Screenshots at 1280 px and 390 px go to BK_SCREENSHOT_DIR (default: the temp folder).
 */
import { existsSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiClient, PASSWORD, USERS, startFixture, type Fixture } from '../helpers/central.js';
import { startSimCamera, type SimCamera } from '../helpers/rtsp.js';

const KITCHEN = new URL('../../../shared/data/hats/kitchen/images', import.meta.url).pathname;
const SLUG = 'browserA-5e0c2b9d71f4a386';
const SLUG_OFF = 'browserB-0d7a4c19e3b6f582';
const SCREENSHOT_DIR = process.env.BK_SCREENSHOT_DIR ?? tmpdir();

let fx: Fixture;
let cam: SimCamera;
let browser: Browser;

beforeAll(async () => {
  if (!existsSync(KITCHEN)) throw new Error(`shared kitchen photos missing: ${KITCHEN}`);
  cam = await startSimCamera({ source: KITCHEN, imageSeconds: 1, width: 960, height: 540, fps: 10, gop: 10 });
  fx = await startFixture({
    liveUrl: cam.url,
    http: { publicWindow: { stillTtlMs: 1000, refreshSec: 2 } },
    sitePublic: {
      'site-a': { enabled: true, slug: SLUG, camera: 'cam-hot', rectifications: true },
      'site-b': { enabled: false, slug: SLUG_OFF, camera: 'cam-b1', rectifications: true },
    },
  });
  const mgr = new ApiClient(fx.url);
  await mgr.login(USERS.mgrA.username);
  const a = await fx.publishEvent('site-a', { kind: 'no_mask' });
  await fx.publishEvent('site-a', { kind: 'no_hat' });
  await fx.publishEvent('site-a', { kind: 'rodent', severity: 1 });
  await mgr.json('POST', `/api/events/${a.id}/rectify`, { note: '已整改' });
  browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'] });
  mkdirSync(SCREENSHOT_DIR, { recursive: true });
}, 90_000);
afterAll(async () => {
  await browser?.close();
  await fx?.close();
  await cam?.stop();
});

describe('public window page', () => {
  it('shows the canteen, a refreshed live still and the month record; zh first, English on the toggle; phone layout', async () => {
    const context = await browser.newContext({ locale: 'zh-CN', viewport: { width: 1280, height: 900 } });
    const page = await context.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
    page.on('console', (m) => { if (m.type() === 'error') errors.push(`console: ${m.text()}`); });
    // Logged in to the dashboard in the same browser: the public page must not send that cookie to its API.
    await page.goto(fx.url + '/');
    await page.fill('#username', USERS.admin.username);
    await page.fill('#password', PASSWORD);
    await page.click('#login-submit');
    await page.waitForSelector('#feed');
    const cookieSent: string[] = [];
    page.on('request', (r) => { if (r.url().includes('/api/public/') && r.headers().cookie) cookieSent.push(r.url()); });

    await page.goto(`${fx.url}/public/${SLUG}`);
    await expect.poll(() => page.locator('#canteen').textContent()).toBe('第一中学学生食堂');
    expect(await page.locator('#school').textContent()).toBe('第一中学 · 东城区');
    await expect.poll(() => page.locator('#still').evaluate((img: HTMLImageElement) => img.naturalWidth), { timeout: 20_000 }).toBe(960);
    expect(await page.locator('#still-box').getAttribute('data-state')).toBe('live');
    const firstSrc = await page.locator('#still').getAttribute('src');
    await expect.poll(() => page.locator('#still').getAttribute('src'), { timeout: 15_000 }).not.toBe(firstSrc); // refreshed
    expect(await page.locator('#record-title').textContent()).toMatch(/^\d{4}年\d{1,2}月 整改公示$/);
    const tiles = await page.locator('.tile .n').allTextContents();
    expect(tiles.slice(0, 4)).toEqual(['3', '1', '2', '0']);
    expect(await page.locator('#kinds td:first-child').allTextContents()).toEqual(expect.arrayContaining(['未戴口罩', '未戴厨师帽', '老鼠等动物进入']));
    expect(await page.locator('#recent li').count()).toBe(3);
    expect(await page.locator('#recent img').count()).toBe(0); // no violation pictures without the opt-in
    expect(await page.locator('body').textContent()).not.toContain('已整改 ·'); // the note is not on the page
    await page.screenshot({ path: path.join(SCREENSHOT_DIR, 'public-desktop.png'), fullPage: true });

    await page.click('#lang');
    expect(await page.locator('#record-title').textContent()).toMatch(/^Rectification record, \w+ \d{4}$/);
    expect(await page.locator('#th-kind').textContent()).toBe('Kind');
    await page.screenshot({ path: path.join(SCREENSHOT_DIR, 'public-desktop-en.png'), fullPage: true });
    await page.click('#lang');

    await page.setViewportSize({ width: 390, height: 844 });
    await page.reload();
    await expect.poll(() => page.locator('#still').evaluate((img: HTMLImageElement) => img.naturalWidth), { timeout: 20_000 }).toBe(960);
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);
    await page.screenshot({ path: path.join(SCREENSHOT_DIR, 'public-390.png'), fullPage: true });

    expect(cookieSent).toEqual([]);
    expect(errors).toEqual([]);
    await context.close();
  });

  it('an opted-out site has no page', async () => {
    const context = await browser.newContext({ locale: 'zh-CN' });
    const page = await context.newPage();
    const res = await page.goto(`${fx.url}/public/${SLUG_OFF}`);
    expect(res?.status()).toBe(404);
    expect(await page.locator('body').textContent()).toBe('404');
    await context.close();
  });
});

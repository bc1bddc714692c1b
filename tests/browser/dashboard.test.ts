/**
 * The dashboard in a real headless Chromium: a canteen manager sees a site's alert (published over
 * MQTT) with its snapshot loaded, gets a new one pushed live, acknowledges it; an inspector sends a
 * voice warning and sees its status go from sent to played when the site reports back.
 */
import { tmpdir } from 'node:os';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import mqtt from 'mqtt';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { topics, PROTOCOL_VERSION } from '../../protocol/index.js';
import { PASSWORD, SITE_PASSWORD, USERS, startFixture, type Fixture } from '../helpers/central.js';
import { testMp4 } from '../helpers/media.js';
import { scopeOf } from '../integration/central-fixture.js';

let fx: Fixture;
let browser: Browser;
const errors: string[] = [];
export const SCREENSHOT_DIR = process.env.BK_SCREENSHOT_DIR ?? tmpdir();

async function login(page: Page, username: string) {
  await page.goto(fx.url + '/');
  await page.waitForSelector('#login-form');
  await page.fill('#username', username);
  await page.fill('#password', PASSWORD);
  await page.click('#login-submit');
  await page.waitForSelector('#feed');
}

beforeAll(async () => {
  fx = await startFixture();
  browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    // fake microphone for push-to-talk (MediaRecorder records Chromium's synthetic beep)
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream'],
  });
});
afterAll(async () => {
  await browser?.close();
  await fx?.close();
});

describe('dashboard', () => {
  it('manager: alert with snapshot, live push, acknowledge', async () => {
    const first = await fx.publishEvent('site-a', { kind: 'no_mask', severity: 2 });
    await fx.publishEvent('site-b', { kind: 'smoking', severity: 1 }); // not in the manager's scope
    // A browser in another zone: times must still be the sites' (central's Asia/Shanghai), as on the snapshot.
    const context = await browser.newContext({ locale: 'zh-CN', timezoneId: 'America/New_York', viewport: { width: 1280, height: 860 } });
    const page = await context.newPage();
    page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
    // Not logged in yet is not an error: the page's boot probe must not log one (no 401 exemption).
    page.on('console', (m) => { if (m.type() === 'error') errors.push(`console: ${m.text()}`); });
    await login(page, USERS.mgrA.username);

    const card = page.locator(`.ev[data-id="${first.id}"]`);
    await card.waitFor();
    await expect.poll(() => card.locator('img.thumb').evaluate((img: HTMLImageElement) => img.complete && img.naturalWidth), { timeout: 10_000 }).toBe(640);
    expect(await card.locator('.kind').textContent()).toBe('未戴口罩');
    const shanghai = new Date(first.raisedAt).toLocaleString('zh-CN', { hour12: false, timeZone: 'Asia/Shanghai' });
    expect(await card.locator('.muted').last().textContent()).toBe(shanghai);
    expect(await page.locator('.ev').count()).toBe(1); // site B's event is not shown

    // pushed over SSE while the page is open
    await expect.poll(() => page.locator('#live-dot.on').count(), { timeout: 10_000 }).toBe(1);
    const pushed = await fx.publishEvent('site-a', { kind: 'rodent', severity: 1 });
    const pushedCard = page.locator(`.ev[data-id="${pushed.id}"]`);
    await pushedCard.waitFor({ timeout: 10_000 });
    expect(await pushedCard.locator('.kind').textContent()).toBe('老鼠等动物进入');
    await expect.poll(() => pushedCard.locator('img.thumb').evaluate((img: HTMLImageElement) => img.naturalWidth), { timeout: 10_000 }).toBeGreaterThan(0);
    expect(await page.locator('.ev').first().getAttribute('data-id')).toBe(pushed.id);

    // thumbnail → large image
    await card.locator('img.thumb').click();
    await page.waitForSelector('#overlay-img');
    await page.click('#overlay');

    await page.screenshot({ path: path.join(SCREENSHOT_DIR, 'bk-dashboard-feed.png'), fullPage: true });

    // event detail → acknowledge
    await card.locator('.body').click();
    await page.waitForSelector('#ack-btn');
    // the notification log speaks the page's language: channel and delivery words translated
    const log = (await page.locator('table').allTextContents()).join(' ');
    expect(log).toContain('管理平台');
    expect(log).not.toMatch(/\bdashboard\b|\bpending\b|\bsent\b/);
    await expect.poll(() => page.locator('#detail-img').evaluate((img: HTMLImageElement) => img.naturalWidth)).toBe(640);
    await page.fill('#ack-form input[name=note]', '已提醒员工佩戴口罩');
    await page.click('#ack-btn');
    await expect.poll(() => page.locator('h1 .status').textContent(), { timeout: 10_000 }).toBe('已确认');
    expect((await fx.central.store.event(await scopeOf(fx.central, USERS.admin.id), first.id))!.status).toBe('acknowledged');
    expect(await page.locator('#rectify-form').count()).toBe(1);
    // who did what: names, not user ids (the site's agent raised it)
    expect(await page.locator('td.by').allTextContents()).toEqual(['现场设备', USERS.mgrA.name]);
    expect(await page.locator('.kv dd').allTextContents()).toContainEqual(expect.stringMatching(new RegExp(`^${USERS.mgrA.name} · `)));
    await page.screenshot({ path: path.join(SCREENSHOT_DIR, 'bk-dashboard-detail.png'), fullPage: true });

    // English toggle changes texts, kind texts come from the protocol
    await page.click('#lang');
    await expect.poll(() => page.locator('h1 .status').textContent()).toBe('Acknowledged');
    await page.click('#lang');

    // phone-sized layout of the feed
    await page.setViewportSize({ width: 390, height: 844 });
    await page.goto(fx.url + '/#/alerts');
    await page.locator(`.ev[data-id="${first.id}"]`).waitFor();
    const w = await page.evaluate(() => document.documentElement.scrollWidth);
    expect(w).toBeLessThanOrEqual(390); // no horizontal scrolling on a phone
    await page.screenshot({ path: path.join(SCREENSHOT_DIR, 'bk-dashboard-phone.png') });
    await context.close();
  });

  it('an alert\'s video clip plays in its detail (desktop and phone)', async () => {
    const ev = await fx.publishEvent('site-a', { kind: 'no_hat', severity: 2 });
    // 10 s of H.264 as the agent sends it (5 s pre + 5 s post roll), chunked over MQTT
    await fx.publishClip('site-a', ev.id, testMp4(path.join(tmpdir(), `bk-clip-${process.pid}.mp4`), 10), 10_000);
    const context = await browser.newContext({ locale: 'zh-CN', viewport: { width: 1280, height: 860 } });
    const page = await context.newPage();
    page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
    await login(page, USERS.mgrA.username);
    await page.goto(`${fx.url}/#/event/${ev.id}`);
    const video = page.locator('#detail-clip');
    await video.waitFor({ timeout: 10_000 });
    await expect.poll(() => video.evaluate((v: HTMLVideoElement) => v.readyState), { timeout: 15_000 }).toBeGreaterThanOrEqual(2);
    const duration = await video.evaluate((v: HTMLVideoElement) => v.duration);
    expect(Math.abs(duration - 10), `video duration ${duration} s`).toBeLessThanOrEqual(1);
    // it plays: time advances
    await video.evaluate((v: HTMLVideoElement) => v.play());
    await expect.poll(() => video.evaluate((v: HTMLVideoElement) => v.currentTime), { timeout: 10_000 }).toBeGreaterThan(0.5);
    await page.screenshot({ path: path.join(SCREENSHOT_DIR, 'bk-dashboard-clip.png'), fullPage: true });
    await page.setViewportSize({ width: 390, height: 844 });
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);
    await page.screenshot({ path: path.join(SCREENSHOT_DIR, 'bk-dashboard-clip-390.png'), fullPage: true });
    await context.close();
  });

  it('inspector: voice warning is sent, then reported played', async () => {
    const context = await browser.newContext({ locale: 'zh-CN', viewport: { width: 1280, height: 860 }, permissions: ['microphone'], acceptDownloads: true });
    const page = await context.newPage();
    page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
    await login(page, USERS.inspector.username);
    await page.click('#nav-voice');
    await page.waitForSelector('#voice-form');
    await page.selectOption('#v-site', 'site-a');
    await page.selectOption('#v-type', 'text');
    await page.fill('#v-text', '请后厨人员立即佩戴口罩');
    await page.click('#voice-send');
    const row = page.locator('#voice-table tbody tr').first();
    await expect.poll(() => row.locator('.voice-state').textContent(), { timeout: 10_000 }).toBe('已发送');
    expect(await row.textContent()).toContain('请后厨人员立即佩戴口罩');
    const commandId = (await row.getAttribute('data-id'))!;
    const stored = await fx.central.store.voiceCommands(await scopeOf(fx.central, USERS.inspector.id), 'site-a');
    expect(stored.some((v) => v.id === commandId && v.state === 'sent')).toBe(true);

    // the site's agent reports back over MQTT → the row turns "played" through SSE
    const site = await mqtt.connectAsync(fx.central.brokerUrl, { username: 'site-a', password: SITE_PASSWORD, clientId: `browser-test-site-a-${process.pid}` });
    await site.publishAsync(topics(fx.central.config.topicPrefix).voiceStatus('site-a'),
      JSON.stringify({ v: PROTOCOL_VERSION, commandId, siteId: 'site-a', state: 'played', at: Date.now(), error: null }), { qos: 1 });
    await expect.poll(() => page.locator(`#voice-table tr[data-id="${commandId}"] .voice-state`).textContent(), { timeout: 10_000 }).toBe('已播放');
    expect(await page.locator(`#voice-table tr[data-id="${commandId}"] td.by`).textContent()).toBe(USERS.inspector.name);

    // push-to-talk: hold the button ~1.5 s, release → an audio command is sent
    const ptt = page.locator('#ptt');
    await ptt.hover();
    await page.mouse.down();
    await expect.poll(() => ptt.getAttribute('class'), { timeout: 5000 }).toContain('rec');
    await page.waitForTimeout(1500);
    await page.mouse.up();
    await expect.poll(() => page.locator('#voice-table tbody tr').count(), { timeout: 10_000 }).toBe(2);
    const audioRow = page.locator('#voice-table tbody tr').first();
    expect(await audioRow.locator('td').nth(2).textContent()).toBe('录音');
    expect(await audioRow.locator('.voice-state').textContent()).toBe('已发送');
    const audioId = (await audioRow.getAttribute('data-id'))!;
    const rec = (await fx.central.store.voiceCommands(await scopeOf(fx.central, USERS.inspector.id), 'site-a')).find((v) => v.id === audioId);
    expect(rec?.type).toBe('audio');
    await site.endAsync();
    await page.screenshot({ path: path.join(SCREENSHOT_DIR, 'bk-dashboard-voice.png'), fullPage: true });

    // the list as read back from the API names the sender too
    await page.click('#nav-sites');
    await page.click('#nav-voice');
    await expect.poll(() => page.locator('#voice-table td.by').allTextContents()).toEqual([USERS.inspector.name, USERS.inspector.name]);

    // sites page and statistics render
    await page.click('#nav-sites');
    await page.waitForSelector('#sites .site');
    await page.click('#nav-stats');
    await page.waitForSelector('#stats-table');
    expect(Number(await page.locator('#stat-total').textContent())).toBeGreaterThan(0);
    // trend chart: one line per kind seen, as many points as days in the range (7 by default)
    const lines = page.locator('#trend-chart polyline');
    expect(await lines.count()).toBeGreaterThan(0);
    expect((await lines.first().getAttribute('points'))!.split(' ')).toHaveLength(7);
    // ranking: the inspector's district sites, most alerts first
    const counts = (await page.locator('#ranking tbody tr td:nth-child(3)').allTextContents()).map(Number);
    expect(counts.length).toBeGreaterThan(0);
    expect([...counts].sort((a, b) => b - a)).toEqual(counts);
    // exports: the statistics as a CSV download, the alerts as the server's CSV
    const [dl] = await Promise.all([page.waitForEvent('download'), page.click('#export-stats')]);
    const statsCsv = readFileSync((await dl.path())!, 'utf8');
    expect(statsCsv.replace(/^\ufeff/, '').split('\r\n')[0]).toBe('日期,站点,类型,数量');
    const [dl2] = await Promise.all([page.waitForEvent('download'), page.click('#export-events')]);
    expect(readFileSync((await dl2.path())!, 'utf8')).toMatch(/^\ufeff编号,食堂,摄像头/);
    const [dl3] = await Promise.all([page.waitForEvent('download'), page.click('#export-events-xlsx')]);
    expect(readFileSync((await dl3.path())!).subarray(0, 2).toString()).toBe('PK'); // an OOXML zip
    // the sticky header and the toast of the last click would be painted mid-page in a full-page shot
    const clean = async () => {
      await page.evaluate(() => window.scrollTo(0, 0));
      await expect.poll(() => page.locator('#toast.show').count(), { timeout: 5000 }).toBe(0);
      await page.waitForTimeout(600); // its fade-out
    };
    await clean();
    await page.screenshot({ path: path.join(SCREENSHOT_DIR, 'bk-dashboard-stats.png'), fullPage: true });
    await page.setViewportSize({ width: 390, height: 844 });
    await clean();
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);
    await page.screenshot({ path: path.join(SCREENSHOT_DIR, 'bk-dashboard-stats-390.png'), fullPage: true });
    await context.close();
    expect(errors).toEqual([]);
  });

  it('admin: the organisation page lists cities and township offices, and adds one of each', async () => {
    const context = await browser.newContext({ locale: 'zh-CN', viewport: { width: 1280, height: 860 } });
    const page = await context.newPage();
    page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
    await login(page, USERS.admin.username);
    await page.click('#nav-admin');
    await page.waitForSelector('#org-table');
    const tabs = await page.locator('#org-kinds a').allTextContents();
    expect(tabs).toEqual(expect.arrayContaining(['城市', '区县', '市场监管所', '学校', '用户']));
    const add = async (fields: Record<string, string>, selects: Record<string, string> = {}) => {
      await page.click('#org-add');
      for (const [k, v] of Object.entries(fields)) await page.fill(`#org-form input[name="${k}"]`, v);
      for (const [k, v] of Object.entries(selects)) await page.selectOption(`#org-form select[name="${k}"]`, v);
      await page.click('#org-save');
      await page.locator(`#org-table tr[data-id="${fields.id}"]`).waitFor();
    };
    await add({ id: 'city-b', name: '某市' });
    await page.click('#org-kinds a[data-kind="townships"]');
    await page.waitForSelector('#org-kinds a.active[data-kind="townships"]');
    await add({ id: 't-east-2', name: '东城第二市场监管所' }, { districtId: 'd-east' });
    expect(await fx.central.store.org.get('townships', 't-east-2')).toMatchObject({ districtId: 'd-east' });
    expect(await fx.central.store.org.get('cities', 'city-b')).toMatchObject({ name: '某市' });
    await context.close();
    expect(errors).toEqual([]);
  });
});

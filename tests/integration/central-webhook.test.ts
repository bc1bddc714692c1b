import { afterEach, describe, expect, it } from 'vitest';
import { createHmac } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { eventMsg, jpeg, startCore, T, until, userOf, type CoreFixture } from './central-fixture.js';

interface Hit { at: number; path: string; query: URLSearchParams; body: any }
async function robotServer(failFirst = 0) {
  const hits: Hit[] = [];
  let failures = failFirst;
  const srv = http.createServer((req, res) => {
    let b = '';
    req.on('data', (c) => (b += c));
    req.on('end', () => {
      const u = new URL(req.url!, 'http://x');
      if (failures > 0) { failures--; res.writeHead(500).end('boom'); return; }
      hits.push({ at: Date.now(), path: u.pathname, query: u.searchParams, body: JSON.parse(b) });
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"errcode":0,"errmsg":"ok"}');
    });
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const base = `http://127.0.0.1:${(srv.address() as AddressInfo).port}`;
  return { hits, base, setFailures: (n: number) => { failures = n; }, close: () => new Promise<void>((r) => srv.close(() => r())) };
}

describe('central robot webhooks (WeCom, DingTalk) against a local HTTP server', () => {
  let f: CoreFixture | undefined;
  let robot: Awaited<ReturnType<typeof robotServer>> | undefined;
  afterEach(async () => { await f?.close(); f = undefined; await robot?.close(); robot = undefined; delete process.env.BK_TEST_DING; });

  const withWebhooks = (base: string, notify: Record<string, unknown>) => (c: any) => {
    c.org.districts[0].webhooks = [
      { type: 'wecom', url: `${base}/wecom?key=k1` },
      { type: 'dingtalk', url: `${base}/ding?access_token=t1`, secretEnv: 'BK_TEST_DING' },
    ];
    c.notify = notify;
  };

  it('sends the documented markdown bodies and a valid DingTalk signature', async () => {
    robot = await robotServer();
    process.env.BK_TEST_DING = 'SECtest-secret';
    f = await startCore(withWebhooks(robot.base, {}));
    const site = await f.connect('site-a');
    const a = await jpeg('w1'), c = await jpeg('w2');
    await site.publishAsync(T.event('site-a'), JSON.stringify(eventMsg('ev-w1', 'site-a', { annotated: a, clean: c }, { kind: 'rodent' })), { qos: 1 });
    await until(() => robot!.hits.length >= 2, 5000, 'two robot posts');
    const wecom = robot.hits.find((h) => h.path === '/wecom')!;
    expect(wecom.query.get('key')).toBe('k1');
    expect(wecom.body.msgtype).toBe('markdown');
    expect(Object.keys(wecom.body.markdown)).toEqual(['content']);
    expect(wecom.body.markdown.content).toContain('老鼠等动物进入');
    expect(wecom.body.markdown.content).toContain('一中食堂');
    expect(wecom.body.markdown.content).toContain('http://central.test:8080/api/snapshots/');
    const ding = robot.hits.find((h) => h.path === '/ding')!;
    expect(ding.body.msgtype).toBe('markdown');
    expect(ding.body.markdown.title).toContain('老鼠等动物进入');
    expect(ding.body.markdown.text).toContain('Rodent or animal in kitchen');
    const ts = ding.query.get('timestamp')!;
    expect(Math.abs(Number(ts) - Date.now())).toBeLessThan(10_000);
    const expected = createHmac('sha256', 'SECtest-secret').update(`${ts}\nSECtest-secret`).digest('base64');
    expect(ding.query.get('sign')).toBe(expected); // URLSearchParams decoded the urlencoded value
    expect(ding.query.get('access_token')).toBe('t1');
    await until(async () => (await f!.central.internals.store.deliveries('ev-w1')).filter((d) => (d.channel === 'wecom' || d.channel === 'dingtalk') && d.status === 'sent').length === 2, 3000, 'sent');
  });

  it('never exceeds the rate limit per window, batches when backed up, and delivers every alert', async () => {
    robot = await robotServer();
    // 5 messages per 1.5 s window, up to 4 alerts per message
    f = await startCore(withWebhooks(robot.base, { webhookRateLimit: { max: 5, windowSec: 1.5 }, maxBatch: 4 }));
    f.central.config.org.districts[0]!.webhooks = [];
    await f.central.internals.store.org.update(await userOf(f.central, 'u-admin'), 'districts', 'd1', { id: 'd1', name: '东城区', webhooks: [{ type: 'wecom', url: `${robot.base}/wecom?key=k1` }] });
    const site = await f.connect('site-a');
    const a = await jpeg('r1'), c = await jpeg('r2');
    const t0 = Date.now();
    for (let i = 0; i < 25; i++) {
      await site.publishAsync(T.event('site-a'), JSON.stringify(eventMsg(`ev-rl-${i}`, 'site-a', { annotated: a, clean: c })), { qos: 1 });
    }
    await until(() => f!.central.internals.notifier.counters.webhookAlerts >= 25, 15_000, 'all alerts delivered');
    const hits = robot.hits.filter((h) => h.path === '/wecom');
    // sliding window check over every request
    for (const h of hits) expect(hits.filter((x) => x.at >= h.at && x.at < h.at + 1500).length).toBeLessThanOrEqual(5);
    expect(hits.filter((h) => h.at < t0 + 1500).length).toBeLessThanOrEqual(5);
    const text = hits.map((h) => h.body.markdown.content as string).join('\n');
    for (let i = 0; i < 25; i++) expect(text).toContain(`ev-rl-${i}`);
    expect(hits.length).toBeLessThan(25); // batched
    expect(hits.some((h) => /\d+ 条明厨亮灶告警/.test(h.body.markdown.content))).toBe(true);
  });

  it('retries a failing robot with back-off and continues pending deliveries after a restart', async () => {
    robot = await robotServer(1_000_000); // fails until we say otherwise
    f = await startCore(withWebhooks(robot.base, { retry: { baseMs: 100, maxMs: 400 } }), { keepDir: true });
    await f.central.internals.store.org.update(await userOf(f.central, 'u-admin'), 'districts', 'd1', { id: 'd1', name: '东城区', webhooks: [{ type: 'wecom', url: `${robot.base}/wecom?key=k1` }] });
    const site = await f.connect('site-a');
    const a = await jpeg('f1'), c = await jpeg('f2');
    await site.publishAsync(T.event('site-a'), JSON.stringify(eventMsg('ev-f', 'site-a', { annotated: a, clean: c })), { qos: 1 });
    const d = await until(async () => (await f!.central.internals.store.deliveries('ev-f')).find((x) => x.channel === 'wecom' && x.attempts >= 2), 5000, 'retries');
    expect(d.status).toBe('retrying');
    expect(d.lastError).toContain('HTTP 500');
    const dir = f.dir;
    await f.close(); // stopped while the delivery is still pending
    robot.setFailures(0); // the robot recovers while central is down
    f = await startCore(withWebhooks(robot.base, { retry: { baseMs: 100, maxMs: 400 } }), { dir });
    await until(() => robot!.hits.some((h) => (h.body.markdown.content as string).includes('ev-f')), 5000, 'resumed delivery');
    await until(async () => (await f!.central.internals.store.deliveries('ev-f')).find((x) => x.channel === 'wecom')?.status === 'sent', 3000, 'marked sent');
  });
});

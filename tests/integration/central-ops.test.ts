/** Central's /healthz, /readyz and /metrics on a real central (embedded broker, SQLite, HTTP). */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHttp } from '../../central/http/index.js';
import { startFixture, type Fixture } from '../helpers/central.js';

let fx: Fixture;
beforeAll(async () => {
  fx = await startFixture();
});
afterAll(async () => {
  await fx?.close();
});

const value = (text: string, series: string) => {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
};

describe('central health and metrics', () => {
  it('healthz and readyz answer; metrics count an ingested event and its deliveries', async () => {
    expect((await fetch(`${fx.url}/healthz`)).status).toBe(200);
    const ready = await fetch(`${fx.url}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ ready: true, store: true, problems: [] });

    const before = await (await fetch(`${fx.url}/metrics`)).text();
    await fx.publishEvent('site-a', { kind: 'smoking', severity: 1 });
    await new Promise((r) => setTimeout(r, 600)); // past the scrape cache
    const res = await fetch(`${fx.url}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    const after = await res.text();
    expect(value(after, 'bk_central_events_total')).toBe((value(before, 'bk_central_events_total') ?? 0) + 1);
    expect(value(after, 'bk_central_events_routed_total')).toBeGreaterThanOrEqual(1);
    expect(value(after, 'bk_central_deliveries{channel="dashboard",status="sent"}') ?? value(after, 'bk_central_deliveries{channel="dashboard",status="pending"}')).toBeGreaterThan(0);
    expect(value(after, 'bk_central_broker_connected')).toBe(1);
    expect(value(after, 'bk_central_sse_clients')).toBe(0);
    expect(after).toMatch(/# TYPE bk_central_events_total counter/);
    expect(value(after, 'bk_central_store_query_seconds')).toBeGreaterThanOrEqual(0);
  });

  it('metrics: loopback only, unless a bearer token is configured; a forwarded (proxied) request is not local', async () => {
    expect((await fetch(`${fx.url}/metrics`, { headers: { 'X-Forwarded-For': '203.0.113.9' } })).status).toBe(403);
    const h = await startHttp(fx.central, { port: 0, metricsToken: 'tok-123456' });
    try {
      const fwd = { 'X-Forwarded-For': '203.0.113.9' };
      expect((await fetch(`${h.url}/metrics`, { headers: { ...fwd, Authorization: 'Bearer wrong' } })).status).toBe(403);
      expect((await fetch(`${h.url}/metrics`, { headers: { ...fwd, Authorization: 'Bearer tok-123456' } })).status).toBe(200);
    } finally {
      await h.close();
    }
  });
});

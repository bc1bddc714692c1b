import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import type { MqttClient } from 'mqtt';
import { eventMsg, jpeg, scopeOf, sha, startCore, T, until, type CoreFixture } from './central-fixture.js';

describe('central ingest (embedded aedes, real SQLite)', () => {
  let f: CoreFixture;
  let site: MqttClient;
  beforeAll(async () => {
    f = await startCore((c) => { c.ingest = { maxJsonBytes: 20_000, maxSnapshotBytes: 50_000 }; });
    site = await f.connect('site-a');
  });
  afterAll(async () => { await f?.close(); });
  const ingest = () => f.central.internals.ingest.counters;
  const admin = () => scopeOf(f.central, 'u-admin');

  it('rejects malformed, invalid, oversized and wrong-site payloads with reasons, and keeps working', async () => {
    const before = ingest().rejected;
    const a = await jpeg('x1'), c = await jpeg('x2');
    await site.publishAsync(T.event('site-a'), 'not json{', { qos: 1 });
    await site.publishAsync(T.event('site-a'), JSON.stringify({ ...eventMsg('ev-bad', 'site-a', { annotated: a, clean: c }), severity: 7 }), { qos: 1 });
    await site.publishAsync(T.event('site-a'), Buffer.alloc(30_000, 0x20), { qos: 1 });
    await site.publishAsync(T.event('site-a'), JSON.stringify(eventMsg('ev-other', 'site-b', { annotated: a, clean: c })), { qos: 1 });
    await site.publishAsync(T.snapshot('site-a', 'ev-x', 'annotated'), Buffer.from('GIF89a not a jpeg'), { qos: 1 });
    await until(() => ingest().rejected >= before + 5, 5000, 'five rejections');
    const reasons = ingest().recent.join('\n');
    expect(reasons).toContain('not JSON');
    expect(reasons).toMatch(/invalid event: severity: /); // the zod path is named
    expect(reasons).toContain('payload too large');
    expect(reasons).toContain('wrong site');
    expect(reasons).toContain('snapshot is not a JPEG');
    expect(await f.central.store.events(await admin())).toHaveLength(0);
    // still alive: a good event goes through
    await site.publishAsync(T.event('site-a'), JSON.stringify(eventMsg('ev-good', 'site-a', { annotated: a, clean: c })), { qos: 1 });
    await until(async () => (await f.central.store.events(await admin())).length === 1, 5000, 'good event');
    expect((await f.central.store.event(await admin(), 'ev-good'))!.siteName).toBe('一中食堂');
  });

  it('stores a duplicate event id once and counts the duplicate', async () => {
    const a = await jpeg('d1'), c = await jpeg('d2');
    const msg = JSON.stringify(eventMsg('ev-dup', 'site-a', { annotated: a, clean: c }));
    const d0 = ingest().duplicates;
    for (let i = 0; i < 3; i++) await site.publishAsync(T.event('site-a'), msg, { qos: 1 });
    await until(() => ingest().duplicates >= d0 + 2, 5000, 'duplicates');
    expect(await f.central.internals.store.sql.value("SELECT COUNT(*) FROM events WHERE id = 'ev-dup'")).toBe(1);
    // routing ran once: one dashboard delivery per recipient
    const dash = (await f.central.internals.store.deliveries('ev-dup')).filter((d) => d.channel === 'dashboard');
    expect(new Set(dash.map((d) => d.recipientId)).size).toBe(dash.length);
  });

  it('accepts snapshots before or after the event, checks the declared sha256, serves only referenced ones', async () => {
    const a = await jpeg('s1'), c = await jpeg('s2'), wrong = await jpeg('s3');
    // annotated before the event
    await site.publishAsync(T.snapshot('site-a', 'ev-snap', 'annotated'), a, { qos: 1 });
    await until(() => f.central.internals.store.sql.get('SELECT 1 FROM snapshots WHERE sha256 = ?', [sha(a)]), 5000, 'early snapshot');
    expect(await f.central.snapshotFile(sha(a))).toBeNull(); // no event references it yet
    await site.publishAsync(T.event('site-a'), JSON.stringify(eventMsg('ev-snap', 'site-a', { annotated: a, clean: c })), { qos: 1 });
    await until(() => f.central.internals.store.eventRow('ev-snap'), 5000, 'event');
    const file = await f.central.snapshotFile(sha(a), await admin());
    expect(file).toMatch(new RegExp(`snapshots/${sha(a).slice(0, 2)}/${sha(a)}\\.jpg$`));
    expect(existsSync(file!)).toBe(true);
    // a clean snapshot whose bytes do not hash to what the event declared is refused
    const r0 = ingest().rejected;
    await site.publishAsync(T.snapshot('site-a', 'ev-snap', 'clean'), wrong, { qos: 1 });
    await until(() => ingest().rejected > r0, 5000, 'mismatch rejection');
    expect(Object.keys(ingest().reasons)).toContain('snapshot sha256 mismatch');
    expect(await f.central.snapshotFile(sha(wrong))).toBeNull();
    await site.publishAsync(T.snapshot('site-a', 'ev-snap', 'clean'), c, { qos: 1 });
    await until(() => f.central.snapshotFile(sha(c)), 5000, 'clean snapshot');
    // out of scope for site-c's inspector
    expect(await f.central.snapshotFile(sha(c), await scopeOf(f.central, 'u-insp2'))).toBeNull();
  });

  it('upserts site status, camera status and stats; emits bus events', async () => {
    const seen: string[] = [];
    f.central.bus.on('site', (s) => seen.push(`site:${s.id}:${s.online}`));
    f.central.bus.on('camera', (c) => seen.push(`camera:${c.siteId}/${c.id}:${c.state}`));
    const ts = Date.now();
    await site.publishAsync(T.siteStatus('site-a'), JSON.stringify({ v: 1, siteId: 'site-a', online: true, ts, agentVersion: '0.1.0' }), { qos: 1 });
    await site.publishAsync(T.cameraStatus('site-a', 'cam-1'), JSON.stringify({ v: 1, siteId: 'site-a', cameraId: 'cam-1', name: '热菜间', state: 'online', lastFrameAt: ts, fps: 2, error: null, ts }), { qos: 1 });
    await site.publishAsync(T.stats('site-a'), JSON.stringify({ v: 1, siteId: 'site-a', ts, uptimeSec: 5, inferencesPerSec: 4, framesProcessed: 20, framesDropped: 0, outboxPending: 0, eventsRaised: 1 }), { qos: 1 });
    // camera id in payload differs from topic → rejected
    await site.publishAsync(T.cameraStatus('site-a', 'cam-1'), JSON.stringify({ v: 1, siteId: 'site-a', cameraId: 'cam-9', name: 'x', state: 'offline', lastFrameAt: null, fps: 0, error: null, ts }), { qos: 1 });
    await until(() => seen.length >= 3, 5000, 'bus events');
    const s = (await f.central.store.site(await admin(), 'site-a'))!;
    expect(s.online).toBe(true);
    expect(s.agentVersion).toBe('0.1.0');
    expect(s.stats?.framesProcessed).toBe(20);
    expect(s.cameras.find((c) => c.id === 'cam-1')!.state).toBe('online');
    expect(seen).toContain('camera:site-a/cam-1:online');
  });
});

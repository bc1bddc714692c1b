/**
 * Two central instances on one PostgreSQL and one external Mosquitto (shared subscriptions): the
 * sites' messages are split between them, and still every event is stored once, every recipient is
 * alerted once, escalations happen once, a dashboard session works on either instance and its live
 * feed carries what the other instance ingested; with one instance stopped the other does all.
 * Runs in the vitest project "postgres" (with SQLite each instance has its own file: nothing to share).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { startHttp, type HttpHandle } from '../../central/http/index.js';
import type { StoreConfig } from '../../central/config/schema.js';
import { ApiClient } from '../helpers/central.js';
import { startMosquitto, disposeMosquitto, type MosquittoHandle } from '../helpers/brokers.js';
import { pgCluster, testStore } from '../helpers/postgres.js';
import { eventMsg, jpeg, PW, scopeOf, sleep, startCore, T, until, type CoreFixture } from './central-fixture.js';

describe.skipIf(!pgCluster())('two central instances on one PostgreSQL and one Mosquitto', () => {
  let mosq: MosquittoHandle;
  let store: StoreConfig;
  let filesDir: string;
  const inst: { core: CoreFixture; http: HttpHandle }[] = [];
  const clients: MqttClient[] = [];
  let site: MqttClient;
  let n = 0;

  beforeAll(async () => {
    mosq = await startMosquitto(); // anonymous: the ACL matrix is tested elsewhere
    store = (await testStore())!;
    filesDir = mkdtempSync(path.join(tmpdir(), 'bk-central-files-'));
    process.env.BK_TEST_MQ_USER = 'central';
    process.env.BK_TEST_MQ_PASS = 'x';
    for (const id of ['a', 'b']) {
      const core = await startCore(overFor(id));
      inst.push({ core, http: await startHttp(core.central, { port: 0 }) });
    }
    site = await mqtt.connectAsync(mosq.url, { clientId: 'site-a-agent', reconnectPeriod: 0 });
    clients.push(site);
  });
  afterAll(async () => {
    for (const c of clients) await c.endAsync(true).catch(() => {});
    for (const { core, http } of inst) { await http.close().catch(() => {}); await core.close().catch(() => {}); }
    if (mosq) await disposeMosquitto(mosq);
    rmSync(filesDir, { recursive: true, force: true });
  });

  const overFor = (id: string) => (c: Parameters<Parameters<typeof startCore>[0] & object>[0]) => {
    c.store = { ...store, filesDir };
    c.broker = { mode: 'external', url: mosq.url, usernameEnv: 'BK_TEST_MQ_USER', passwordEnv: 'BK_TEST_MQ_PASS', sharedGroup: 'bk-test', clientId: `bk-central-${id}` };
    // tier 2 escalates: manager now, vice-principal 1.2 s later if nobody acknowledged
    c.routing = { checkIntervalSec: 0.2, tier2: { mode: 'escalate', viceAfterMin: 0.02, inspectorAfterMin: 600, rectifyWithinHours: 72, webhook: 'never' } };
  };
  const publish = async (over: Parameters<typeof eventMsg>[3] = {}) => {
    const id = `ev-${n++}`;
    const snaps = { annotated: await jpeg(`${id}-a`), clean: await jpeg(`${id}-c`) };
    await site.publishAsync(T.event('site-a'), JSON.stringify(eventMsg(id, 'site-a', snaps, over)), { qos: 1 });
    await site.publishAsync(T.snapshot('site-a', id, 'annotated'), snaps.annotated, { qos: 1 });
    await site.publishAsync(T.snapshot('site-a', id, 'clean'), snaps.clean, { qos: 1 });
    return id;
  };
  const alertsTo = async (userId: string) => {
    const c = await mqtt.connectAsync(mosq.url, { clientId: `phone-${userId}-${n}`, reconnectPeriod: 0 });
    clients.push(c);
    const got: string[] = [];
    c.on('message', (_t, p) => got.push((JSON.parse(p.toString()) as { eventId: string }).eventId));
    await c.subscribeAsync(T.userAlert(userId), { qos: 1 });
    return got;
  };
  const stored = async (ids: string[]) => {
    const live = inst.find((i) => i.core.central.internals.mqtt.client.connected)!.core.central;
    const scope = await scopeOf(live, 'u-admin');
    const events = await live.store.events(scope, { limit: 500 });
    return ids.every((id) => events.some((e) => e.id === id && e.snapshotReceived));
  };
  const sum = (f: (c: CoreFixture) => number) => inst.reduce((s, i) => s + f(i.core), 0);

  it('splits the sites\' messages between the instances and still stores and alerts each event once', async () => {
    const phone = await alertsTo('u-mgr');
    const before = inst.map((i) => i.core.central.internals.ingest.counters.events);
    const ids: string[] = [];
    for (let i = 0; i < 20; i++) ids.push(await publish());
    await until(() => stored(ids), 20_000, 'all 20 events with their snapshots');
    const took = inst.map((i, k) => i.core.central.internals.ingest.counters.events - before[k]!);
    expect(took.reduce((a, b) => a + b, 0)).toBe(20);
    expect(Math.min(...took)).toBeGreaterThan(0); // both worked
    await until(() => ids.every((id) => phone.includes(id)), 10_000, 'the manager\'s alerts');
    await sleep(500);
    expect(phone.filter((id) => ids.includes(id)).sort()).toEqual([...ids].sort()); // once each
  });

  it('escalates each unacknowledged event once, although both instances run the escalation timer', async () => {
    const vp = await alertsTo('u-vp');
    const ids: string[] = [];
    for (let i = 0; i < 6; i++) ids.push(await publish({ severity: 2, ruleId: 'r-esc' }));
    await until(() => ids.every((id) => vp.includes(id)), 15_000, 'the vice-principal\'s escalated alerts');
    await sleep(1500); // a second escalation by the other instance would have come by now
    expect(vp.filter((id) => ids.includes(id)).sort()).toEqual([...ids].sort());
    const central = inst[0]!.core.central;
    for (const id of ids) {
      const d = await central.store.event(await scopeOf(central, 'u-admin'), id);
      expect(d!.history.filter((h) => h.action === 'escalated')).toHaveLength(1);
      expect(d!.deliveries.filter((x) => x.recipientId === 'u-vp' && x.channel === 'mqtt')).toHaveLength(1);
    }
    expect(sum((c) => c.central.internals.router.counters.escalations)).toBeGreaterThanOrEqual(6);
  });

  it('a session opened on one instance works on the other, whose live feed carries what either ingested', async () => {
    const api = new ApiClient(inst[0]!.http.url);
    expect((await api.login('mgr', PW)).status).toBe(200);
    const onB = new ApiClient(inst[1]!.http.url);
    Object.assign(onB, { cookie: api.cookie, csrf: api.csrf });
    expect((await onB.json('GET', '/api/me')).status).toBe(200);
    const res = await onB.req('GET', '/api/stream');
    expect(res.status).toBe(200);
    const reader = res.body!.getReader();
    let text = '';
    void (async () => { for (;;) { const r = await reader.read().catch(() => null); if (!r || r.done) return; text += Buffer.from(r.value).toString('utf8'); } })();
    await until(() => text.includes(': connected'), 3000, 'the stream');
    const before = inst.map((i) => i.core.central.internals.ingest.counters.events);
    const ids: string[] = [];
    for (let i = 0; i < 10; i++) ids.push(await publish());
    await until(() => ids.every((id) => text.includes(id)), 15_000, 'every event on instance b\'s live feed');
    const byA = inst[0]!.core.central.internals.ingest.counters.events - before[0]!;
    expect(byA).toBeGreaterThan(0); // some came over from instance a
    // the instances' LISTEN connections cut (a database failover would do it): what was NOTIFYed
    // meanwhile is gone, so once listening again instance b tells its dashboards to reload
    expect(text).not.toContain('event: resync');
    const cut = await inst[1]!.core.central.internals.store.sql.all<{ ok: boolean }>(
      "SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity WHERE query ILIKE 'LISTEN%' AND pid <> pg_backend_pid()");
    expect(cut.length).toBeGreaterThan(0);
    await until(() => text.includes('event: resync'), 15_000, 'a resync on instance b\'s live feed');
    await reader.cancel();
    // acknowledged through instance b, seen by instance a
    expect((await onB.json('POST', `/api/events/${ids[0]}/ack`, { note: '已处理' })).status).toBe(200);
    const a = inst[0]!.core.central;
    expect((await a.store.event(await scopeOf(a, 'u-admin'), ids[0]!))!.status).toBe('acknowledged');
  });

  it('with one instance stopped the other ingests its share; the stopped one\'s share waits in its broker session until it is back', async () => {
    const [a, b] = inst;
    await a!.http.close();
    await a!.core.central.stop();
    const before = b!.core.central.internals.ingest.counters.events;
    const ids: string[] = [];
    for (let i = 0; i < 10; i++) ids.push(await publish());
    // Mosquitto keeps dealing the stopped member's persistent session its share (EMQX would deal it
    // to the others): those events wait in the broker, not lost (docs/scale.md)
    await until(() => b!.core.central.internals.ingest.counters.events - before >= 4, 10_000, 'instance b\'s share');
    const back = await startCore(overFor('a'));
    inst[0] = { core: back, http: await startHttp(back.central, { port: 0 }) };
    await until(() => stored(ids), 15_000, 'all 10 events once instance a is back');
    expect(b!.core.central.internals.ingest.counters.events - before + back.central.internals.ingest.counters.events).toBe(10);
  });
});

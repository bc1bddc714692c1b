/**
 * PostgreSQL goes away for 10 s while a site keeps sending events: central keeps the messages it
 * received, retries them until the database answers again, and then stores, routes and alerts each
 * event exactly once. A private cluster of its own (stopped with `pg_ctl -m immediate`, as a crash).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import mqtt, { type MqttClient } from 'mqtt';
import { createDatabase, pgStart, pgStop, startPgCluster } from '../../scripts/load/postgres.js';
import { eventMsg, jpeg, PW, scopeOf, sleep, startCore, T, until, type CoreFixture } from '../integration/central-fixture.js';

describe('PostgreSQL down for 10 s under a stream of events', () => {
  let cluster: Awaited<ReturnType<typeof startPgCluster>>;
  let core: CoreFixture;
  const clients: MqttClient[] = [];
  beforeAll(async () => {
    cluster = await startPgCluster();
    process.env.BK_TEST_OUTAGE_PG = cluster.password;
    const url = await createDatabase(cluster);
    core = await startCore((c) => { c.store = { url, passwordEnv: 'BK_TEST_OUTAGE_PG', poolSize: 4 }; });
  }, 60_000);
  afterAll(async () => {
    for (const c of clients) await c.endAsync(true).catch(() => {});
    await core?.close();
    cluster?.stop();
  });

  it('loses nothing and duplicates nothing: every event stored once with its snapshots, every alert sent once', async () => {
    const site = await core.connect('site-a', PW);
    const phone = await mqtt.connectAsync(core.central.brokerUrl, { username: 'u-mgr', password: PW, reconnectPeriod: 0 });
    clients.push(phone);
    const alerts: string[] = [];
    phone.on('message', (_t, p) => alerts.push((JSON.parse(p.toString()) as { eventId: string }).eventId));
    await phone.subscribeAsync(T.userAlert('u-mgr'), { qos: 1 });

    const ids: string[] = [];
    const send = async (id: string) => {
      const snaps = { annotated: await jpeg(`${id}-a`), clean: await jpeg(`${id}-c`) };
      await site.publishAsync(T.event('site-a'), JSON.stringify(eventMsg(id, 'site-a', snaps)), { qos: 1 });
      await site.publishAsync(T.snapshot('site-a', id, 'annotated'), snaps.annotated, { qos: 1 });
      await site.publishAsync(T.snapshot('site-a', id, 'clean'), snaps.clean, { qos: 1 });
      ids.push(id);
    };
    const t0 = Date.now();
    let down = 0, up = 0;
    for (let i = 0; i < 36; i++) {
      if (i === 6) { pgStop(cluster); down = Date.now(); }
      if (down && !up && Date.now() - down >= 10_000) { pgStart(cluster); up = Date.now(); }
      await send(`out-${i}`);
      await sleep(400);
    }
    expect(up - down).toBeGreaterThanOrEqual(10_000); // the outage happened inside the stream
    expect(up).toBeGreaterThan(0);
    expect(Date.now() - t0).toBeLessThan(40_000);

    const central = core.central;
    await until(async () => {
      const events = await central.store.events(await scopeOf(central, 'u-admin'), { limit: 500 });
      return ids.every((id) => events.some((e) => e.id === id && e.snapshotReceived));
    }, 30_000, 'every event with its snapshots after the outage');
    await until(() => ids.every((id) => alerts.includes(id)), 20_000, 'every alert on the phone');
    await sleep(1500);
    expect(alerts.filter((id) => ids.includes(id)).sort()).toEqual([...ids].sort());
    const c = central.internals.ingest.counters;
    expect(c.events).toBe(36);
    expect(c.recent.filter((r) => r.includes('internal error'))).toEqual([]);
  }, 120_000);
});

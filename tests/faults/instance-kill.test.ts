/**
 * Two central instances on one PostgreSQL and one Mosquitto; one of them is a real process
 * (`central/main.ts`, as `npm run central` runs it) SIGKILLed while the escalations of 30 events are
 * under way. The other finishes them: each event escalated exactly once (one history entry, one
 * vice-principal delivery row) and the vice-principal alerted for every event. A private cluster
 * and broker of its own.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { PostgresSql } from '../../central/store/sql.js';
import { createDatabase, startPgCluster } from '../../scripts/load/postgres.js';
import { disposeMosquitto, startMosquitto, type MosquittoHandle } from '../helpers/brokers.js';
import { eventMsg, hashes, jpeg, orgConfig, sleep, startCore, T, until, type CoreFixture } from '../integration/central-fixture.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const EVENTS = 30;

describe('an instance SIGKILLed during escalations', () => {
  let cluster: Awaited<ReturnType<typeof startPgCluster>>;
  let mosq: MosquittoHandle;
  let dir: string;
  let child: ChildProcess | null = null;
  let b: CoreFixture;
  let sql: PostgresSql;
  const clients: MqttClient[] = [];

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'bk-kill-'));
    cluster = await startPgCluster();
    mosq = await startMosquitto();
    const url = await createDatabase(cluster);
    const env = { BK_TEST_KILL_PG: cluster.password, BK_TEST_MQ_USER: 'central', BK_TEST_MQ_PASS: 'x' };
    Object.assign(process.env, env);
    const shared = {
      store: { url, passwordEnv: 'BK_TEST_KILL_PG', poolSize: 4, filesDir: path.join(dir, 'files') },
      // tier 2: manager at once, the vice-principal 3 s later if nobody acknowledged
      routing: { checkIntervalSec: 0.2, tier2: { mode: 'escalate', viceAfterMin: 0.05, inspectorAfterMin: 600, rectifyWithinHours: 72, webhook: 'never' } },
      notify: { deliveryLeaseSec: 2 },
    };
    const broker = (id: string) => ({ mode: 'external', url: mosq.url, usernameEnv: 'BK_TEST_MQ_USER', passwordEnv: 'BK_TEST_MQ_PASS', sharedGroup: 'bk-kill', clientId: `bk-central-${id}` });
    const configA = path.join(dir, 'a.yaml'); // JSON is YAML
    writeFileSync(configA, JSON.stringify({
      dataDir: path.join(dir, 'a'), http: { host: '127.0.0.1', port: 0, publicUrl: 'http://central.test' },
      broker: broker('a'), org: await orgConfig(await hashes()), ...shared,
    }));
    child = spawn(process.execPath, ['--import', 'tsx', 'central/main.ts', '--config', configA], { cwd: ROOT, env: { ...process.env, ...env, LOG_LEVEL: 'warn' }, stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr!.on('data', (d: Buffer) => { err = (err + d.toString()).slice(-4000); });
    sql = new PostgresSql({ connectionString: url, password: cluster.password });
    // instance a migrated the database and synced the org once its broker session is up
    await until(async () => (await sql.value('SELECT COUNT(*) FROM users').catch(() => 0)) as number > 0, 30_000, `instance a started (${err})`);
    b = await startCore((c) => { Object.assign(c, shared); c.broker = broker('b') as never; });
  }, 90_000);
  afterAll(async () => {
    child?.kill('SIGKILL');
    for (const c of clients) await c.endAsync(true).catch(() => {});
    await b?.close();
    await sql?.close();
    if (mosq) await disposeMosquitto(mosq);
    cluster?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('the surviving instance finishes every escalation, and none happens twice', async () => {
    const phone = await mqtt.connectAsync(mosq.url, { clientId: 'phone-vp', reconnectPeriod: 0 });
    clients.push(phone);
    const vp: string[] = [];
    phone.on('message', (_t, p) => vp.push((JSON.parse(p.toString()) as { eventId: string }).eventId));
    await phone.subscribeAsync(T.userAlert('u-vp'), { qos: 1 });
    const site = await mqtt.connectAsync(mosq.url, { clientId: 'site-a-agent', reconnectPeriod: 0 });
    clients.push(site);
    const ids = Array.from({ length: EVENTS }, (_, i) => `kill-${i}`);
    for (const id of ids) {
      const snaps = { annotated: await jpeg(`${id}-a`), clean: await jpeg(`${id}-c`) };
      await site.publishAsync(T.event('site-a'), JSON.stringify(eventMsg(id, 'site-a', snaps, { severity: 2 })), { qos: 1 });
    }
    // both instances took some; the kill comes as the first escalations are made
    await until(async () => (await sql.value<number>('SELECT COUNT(*) FROM events')) === EVENTS, 15_000, 'all events stored');
    const escalated = async () => (await sql.value<number>("SELECT COUNT(*) FROM event_history WHERE action = 'escalated'"))!;
    await until(async () => (await escalated()) > 0, 15_000, 'the first escalation');
    child!.kill('SIGKILL');
    const atKill = await escalated();
    await until(() => ids.every((id) => vp.includes(id)), 20_000, 'the vice-principal alerted for every event');
    await sleep(3000); // past the delivery lease: a second escalation or send would have come by now
    const once = await sql.all<{ event_id: string; n: number }>(`SELECT event_id, COUNT(*) AS n FROM event_history WHERE action = 'escalated' GROUP BY event_id`);
    expect(once).toHaveLength(EVENTS);
    expect(once.filter((r) => r.n !== 1)).toEqual([]);
    const rows = await sql.all<{ event_id: string; n: number }>(`SELECT event_id, COUNT(*) AS n FROM deliveries WHERE recipient_id = 'u-vp' AND channel = 'mqtt' GROUP BY event_id`);
    expect(rows.filter((r) => r.n !== 1)).toEqual([]);
    expect(await sql.value(`SELECT COUNT(*) FROM deliveries WHERE recipient_id = 'u-vp' AND channel = 'mqtt' AND status <> 'sent'`)).toBe(0);
    // An alert whose broker acknowledgement came just before the kill, with its "sent" not yet
    // written, is sent again by the survivor after the lease: at least once, duplicates only from
    // that window (phones tell them apart by event id and level).
    const dupes = vp.length - new Set(vp).size;
    const bySurvivor = b.central.internals.router.counters.escalations;
    process.stdout.write(`[faults] instance killed during escalations: ${atKill} of ${EVENTS} escalated when killed, the survivor made ${bySurvivor}; `
      + `each event escalated once, ${new Set(vp).size} of ${EVENTS} alerted, ${dupes} alerts sent twice\n`);
    expect(atKill).toBeLessThan(EVENTS); // the kill came mid-way: the survivor had some to finish
    expect(bySurvivor).toBeGreaterThan(0);
    expect(dupes).toBeLessThanOrEqual(4);
  }, 120_000);
});

/**
 * Outages while violations keep coming: a real agent (child process, real camera ingest of a looping
 * file, pipeline, evidence, SQLite outbox, MQTT uplink; deterministic detector) sends to a real
 * central. Variants:
 *  - central down (embedded broker, so broker and central together) for N s, then started again;
 *  - external Mosquitto down for N s while central stays up (central connects as an external client);
 *  - central down for N s while the external Mosquitto stays up;
 * and a recipient phone (persistent session, QoS 1) across a central restart.
 * Counted: events the agent committed to its outbox (sent), events central stored (received), lost,
 * duplicated at central (alert routed twice for the same recipient/channel/level); the re-sent
 * copies central de-duplicated are reported as "redelivered".
 */
import path from 'node:path';
import { writeFileSync } from 'node:fs';
import { mosquittoFiles } from '../../../central/broker/mosquitto.js';
import { hashPasswordMosquitto } from '../../../central/auth/password.js';
import type { CentralInternals } from '../../../central/central.js';
import { startMosquitto, freePort, type MosquittoHandle } from '../../helpers/brokers.js';
import {
  AgentProc, CENTRAL_ACCOUNT, agentClipIds, centralClipIds, RECIPIENT, Scratch, USER_MQTT_PASSWORD, centralConfig, centralDuplicateAlerts, centralEventIds,
  centralMissingSnapshots, dupCount, mustWait, observe, row, sleep, startCentralAt, waitDelivered, waitUntil, writeAgentConfig, type Row,
} from '../lib/harness.js';

export interface OutageOptions {
  outageSec: number;
  /** Seconds between events per camera. */
  cooldownSec?: number;
  /** Event clips on: every clip the agent cut must be complete at central too. */
  clips?: boolean;
}

type Kind = 'central-embedded' | 'broker-external' | 'central-external';

const TITLES: Record<Kind, string> = {
  'central-embedded': 'central + embedded broker down',
  'broker-external': 'external Mosquitto broker down (central up)',
  'central-external': 'central down, external Mosquitto up',
};

const OWNERS: Record<Kind, string> = {
  'central-embedded': 'agent/uplink/uplink.ts (drain after reconnect) or central/ingest/ingest.ts',
  'broker-external': 'central/broker/client.ts: the initial-connect `client.once(\'error\', …)` listener stays registered after a successful connect ' +
    '(`client.off(\'error\', fail)` removes nothing: the listener is a wrapper), so the first connection error after start (the broker going down) ' +
    'calls `client.end(true)`: central never reconnects and ingests nothing more until it is restarted; in addition, clean: true means anything ' +
    'published before central re-subscribes is dropped by the broker',
  'central-external': 'central/broker/client.ts: central connects with clean: true and a new random client id at every start, so while it is down ' +
    'the broker holds no session for it and drops every event it PUBACKs to the agents (which then delete them from their outboxes); ' +
    'needs a stable client id per central worker with clean: false (persistent session, QoS 1 queued by the broker)',
};

async function mosquittoForOrg(scratch: Scratch, cfgOrg: Parameters<typeof mosquittoFiles>[0], port: number): Promise<MosquittoHandle> {
  const dir = scratch.dir('mosq-files');
  const files = mosquittoFiles(cfgOrg, 'bk/v1', { username: CENTRAL_ACCOUNT.username, passwordHash: await hashPasswordMosquitto(CENTRAL_ACCOUNT.password) }, { host: '127.0.0.1', port }, dir);
  writeFileSync(path.join(dir, 'passwd'), files.passwd, { mode: 0o600 });
  writeFileSync(path.join(dir, 'acl'), files.acl);
  const m = await startMosquitto({ port, passwordFile: path.join(dir, 'passwd'), aclFile: path.join(dir, 'acl') });
  scratch.defer(() => m.stop());
  return m;
}

export async function outageScenario(kind: Kind, o: OutageOptions): Promise<Row> {
  const t0 = Date.now();
  const scratch = new Scratch();
  let agent: AgentProc | null = null;
  let central: CentralInternals | null = null;
  try {
    const dataDir = scratch.dir('central');
    const port = await freePort();
    const external = kind !== 'central-embedded';
    let mosq: MosquittoHandle | null = null;
    const cfg = await centralConfig({ dataDir, brokerPort: port, ...(external ? { external: { url: `mqtt://127.0.0.1:${port}` } } : {}) });
    if (external) mosq = await mosquittoForOrg(scratch, cfg.org, port);
    central = await startCentralAt(cfg);
    const metrics = { redelivered: 0, rejected: 0 };
    const addMetrics = async (c: CentralInternals) => {
      const m = await c.metrics();
      metrics.redelivered += m.duplicates;
      metrics.rejected += m.rejected;
    };
    const agentDir = scratch.dir('agent');
    const storage = path.join(agentDir, 'var');
    const conf = writeAgentConfig(agentDir, { storageDir: storage, brokerUrl: `mqtt://127.0.0.1:${port}`, cooldownSec: o.cooldownSec ?? 0.5, clips: o.clips });
    agent = await AgentProc.start(conf);
    const a = agent;
    // steady state first: some events through end to end
    await mustWait(() => centralEventIds(dataDir).length >= 3, 30_000, 'the first events at central');

    // the fault
    const before = a.eventIds().length;
    if (kind === 'broker-external') await mosq!.stop();
    else {
      await addMetrics(central);
      await central.stop();
      central = null;
    }
    const downAt = Date.now();
    await sleep(o.outageSec * 1000);
    const duringOutage = a.eventIds().length - before;
    if (kind === 'broker-external') await mosq!.restart();
    else central = await startCentralAt(cfg);
    const upAt = Date.now();

    // keep violations coming a little after the recovery, then stop the cameras and let the outbox drain
    await sleep(3000);
    await a.stopCameras();
    const sent = a.eventIds();
    const drained = await waitDelivered(dataDir, sent, storage, 60_000 + sent.length * 50);
    const catchUpMs = Date.now() - upAt;
    // Clips follow their events by the post-roll and the cut: wait until central has each one the agent cut.
    let clipsLost = 0;
    let clipsCut = 0;
    if (o.clips) {
      await waitUntil(() => agentClipIds(storage).every((id) => centralClipIds(dataDir).includes(id)) && agentClipIds(storage).length > 0, 60_000, 500);
      const atCentral = new Set(centralClipIds(dataDir));
      clipsCut = agentClipIds(storage).length;
      clipsLost = agentClipIds(storage).filter((id) => !atCentral.has(id)).length;
    }
    await sleep(1000); // let late duplicates arrive before counting
    await addMetrics(central!);
    const stored = centralEventIds(dataDir);
    const got = new Set(stored);
    const lost = sent.filter((id) => !got.has(id)).length;
    const extra = stored.filter((id) => !sent.includes(id)).length;
    const dupAlerts = centralDuplicateAlerts(dataDir);
    const missingSnaps = centralMissingSnapshots(dataDir);
    const alive = a.alive;
    const pass = lost === 0 && dupAlerts === 0 && dupCount(stored) === 0 && duringOutage > 0 && alive && missingSnaps === 0 && clipsLost === 0 && (!o.clips || clipsCut > 0);
    if (!pass && process.env.FAULTS_DEBUG) {
      for (const l of a.logs.filter((x) => Number(x.level) >= 40 || /uplink/.test(String(x.module)))) console.error('[agent]', JSON.stringify(l).slice(0, 300));
      console.error('[central]', JSON.stringify(await central!.metrics()), JSON.stringify(central!.internals.ingest.counters.recent.slice(-5)), central!.internals.mqtt.client.connected);
      if (mosq) console.error('[mosq]', mosq.logTail().slice(-3000));
    }
    return row({
      group: 'fault',
      name: `${TITLES[kind]} for ${o.outageSec} s while violations keep coming`,
      expected: 'every event delivered after recovery, none duplicated at central, snapshots with every event',
      observed: `${duringOutage} events raised during the outage; ${drained ? `all delivered ${(catchUpMs / 1000).toFixed(1)} s after recovery` : 'NOT all delivered within the wait'}; ` +
        `${metrics.redelivered} re-sent copies de-duplicated; ${missingSnaps} events without snapshot; ${o.clips ? `${clipsCut} clips cut, ${clipsLost} of them missing at central; ` : ''} ${extra} unexpected ids; agent ${alive ? 'alive' : 'DEAD'}; outage ${((upAt - downAt) / 1000).toFixed(0)} s`,
      sent: sent.length,
      received: sent.length - lost,
      lost,
      duplicated: dupAlerts,
      pass,
      ...(pass ? {} : { owner: OWNERS[kind] }),
      seconds: (Date.now() - t0) / 1000,
    });
  } finally {
    await agent?.stop();
    await central?.stop();
    await scratch.dispose();
  }
}

/**
 * A recipient's phone (persistent session, QoS 1) is offline while alerts are routed to it; central
 * (with its embedded broker) restarts before the phone comes back. Expected: every alert reaches
 * the phone once it reconnects.
 */
export async function recipientAcrossRestart(o: { events?: number } = {}): Promise<Row> {
  const t0 = Date.now();
  const scratch = new Scratch();
  let agent: AgentProc | null = null;
  let central: CentralInternals | null = null;
  try {
    const dataDir = scratch.dir('central');
    const port = await freePort();
    const cfg = await centralConfig({ dataDir, brokerPort: port });
    central = await startCentralAt(cfg);
    const url = `mqtt://127.0.0.1:${port}`;
    const phoneOpts = { username: RECIPIENT, password: USER_MQTT_PASSWORD, clientId: 'phone-u-mgr-a', clean: false, filters: [`bk/v1/user/${RECIPIENT}/alert`] };
    const phone1 = await observe(url, phoneOpts);
    let phone2: Awaited<ReturnType<typeof observe>> | null = null;
    const alertIds = () => [...phone1.got, ...(phone2?.got ?? [])].map((m) => {
      try {
        return JSON.parse(m.payload.toString()).eventId as string;
      } catch {
        return '?';
      }
    });
    const agentDir = scratch.dir('agent');
    const storage = path.join(agentDir, 'var');
    const conf = writeAgentConfig(agentDir, { storageDir: storage, brokerUrl: url, cooldownSec: 0.5 });
    agent = await AgentProc.start(conf);
    await mustWait(() => phone1.got.length >= 2, 30_000, 'the first alerts on the phone');
    // phone goes offline (network gone: no DISCONNECT), alerts keep being routed to its session
    (phone1.client.stream as { destroy?: () => void }).destroy?.();
    phone1.client.end(true);
    const offlineFrom = agent.eventIds().length;
    await sleep(3000);
    // central restarts while the phone is away
    await central.stop();
    central = null;
    await sleep(2000);
    central = await startCentralAt(cfg);
    await sleep(3000);
    await agent.stopCameras();
    const sent = agent.eventIds();
    if (!(await waitDelivered(dataDir, sent, storage))) throw new Error('not every event reached central (see the outage scenario)');
    // the phone comes back
    phone2 = await observe(url, phoneOpts);
    const p2 = phone2;
    await waitUntil(() => new Set(alertIds()).size >= sent.length, 20_000, 200);
    await sleep(500);
    await p2.client.endAsync(true);
    const alerts = alertIds();
    const got = new Set(alerts);
    const missing = sent.filter((id) => !got.has(id));
    const whileOffline = sent.slice(offlineFrom);
    const missingWhileOffline = whileOffline.filter((id) => !got.has(id)).length;
    const dup = dupCount(alerts);
    const pass = missing.length === 0;
    return row({
      group: 'fault',
      name: 'central restarted while a recipient phone is offline (persistent session, QoS 1)',
      expected: 'every alert reaches the phone after it reconnects',
      observed: `${whileOffline.length} alerts routed while the phone was offline; ${missingWhileOffline} of them never reached it; ${missing.length} missing in all; ` +
        `${dup} delivered twice (at-least-once, allowed)`,
      sent: sent.length,
      received: sent.length - missing.length,
      lost: missing.length,
      duplicated: dup,
      pass,
      ...(pass ? {} : { owner: 'central/broker/embedded.ts (aedes keeps sessions and queued QoS 1 messages in memory only; central marks an alert "sent" on the broker PUBACK, so alerts queued for offline phones die with a central restart)' }),
      seconds: (Date.now() - t0) / 1000,
    });
  } finally {
    await agent?.stop();
    await central?.stop();
    await scratch.dispose();
  }
}

/**
 * One load run: generate the city, start Mosquitto (password + ACL files from the org, as
 * `npm run central -- mosquitto-config` writes them), with --store postgres a private PostgreSQL
 * cluster, and M central processes on them, connect the sites, the recipient's phone and a dashboard
 * per central, send events for S seconds, wait for everything to arrive, then count and measure.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { startMosquitto, disposeMosquitto, freePort, type MosquittoHandle } from '../../tests/helpers/brokers.js';
import type { LoadArgs } from './args.js';
import { centralCommit, centralCounters, logProblems, ROOT, startCentralProc, type CentralProc } from './centrals.js';
import { makeSnapshots } from './jpeg.js';
import { startDashboard, startRecipient, type Arrivals, type Dashboard, type Recipient } from './observers.js';
import { CENTRAL_ENV, makeCity, writeCentralConfig, writeMosquittoAuth } from './org.js';
import { findPid, loadAvg, machineBusySec, ProcMeter, TreeMeter } from './proc.js';
import { pgProcessKind, readEscalations, readStore, type EscalationFigures, sqliteReader, startSharedPostgres, statusRowsStored, type SharedPostgres, type Statement, type StoreFigures, type StoreReader } from './store.js';
import { connectSites, type SiteFleet } from './sites.js';
import { Faults, type FaultResults } from './faults.js';

export interface Quantiles { n: number; p50: number | null; p95: number | null; p99: number | null; max: number | null }

export function quantiles(xs: readonly number[]): Quantiles {
  const s = [...xs].sort((a, b) => a - b);
  const q = (p: number) => {
    if (!s.length) return null;
    const i = (s.length - 1) * p, lo = Math.floor(i), hi = Math.ceil(i);
    return Math.round(s[lo]! + (s[hi]! - s[lo]!) * (i - lo));
  };
  return { n: s.length, p50: q(0.5), p95: q(0.95), p99: q(0.99), max: s.length ? Math.round(s[s.length - 1]!) : null };
}

export interface LoadResult {
  startedAt: string;
  central: { dir: string; commit: string };
  machine: { cores: number; node: string; loadAvgBefore: number[]; loadAvgAfter: number[]; otherProcessesCpuPercent: number | null };
  params: Omit<LoadArgs, 'json' | 'keep' | 'centralDir'>;
  setup: {
    hashSeconds: number; brokerAccounts: number; users: number; mosquittoStartSeconds: number;
    /** initdb, start and CREATE DATABASE of the private cluster; null with SQLite. */
    postgresStartSeconds: number | null;
    centralStartSeconds: number[];
    sitesConnectSeconds: number; statusPublishSeconds: number; statusMessages: number;
    /** From the first status publish until central had taken in (received) every site and camera status. */
    statusAbsorbSeconds: number;
    /**
     * … until every one was applied in the store(s) (status_at set on each site and camera row). Later
     * than received when ingest queues behind a slower store; the measured window starts after it.
     */
    statusStoredSeconds: number;
    totalSeconds: number;
  };
  snapshots: { source: string; width: number; height: number; bytesPerEvent: number };
  offered: { eventsPerSec: number; messagesPerSec: number; statsPerSec: number; megabytesPerSec: number };
  sent: { events: number; stats: number; failed: number; unacked: number; messages: number; bytes: number; pubackMs: Quantiles };
  ingested: {
    events: number; eventsPerSec: number | null; notStored: number;
    /** In more than one SQLite store; with the shared store 0 by construction (one events table, ids unique). */
    inSeveralInstances: number;
    withoutAnnotatedSnapshot: number; withoutCleanSnapshot: number;
    /** Events the centrals received again and ignored as already stored (bk_central_event_duplicates_total, all instances). */
    duplicatesIgnored: number | null;
  };
  recipient: { alerts: number; lost: number; duplicated: number; invalid: number; latencyMs: Quantiles };
  dashboards: { instance: number; alerts: number; sharePercent: number; lost: number; duplicated: number; updates: number; error: string | null; latencyMs: Quantiles }[];
  /** Seconds from the end of sending until every alert had arrived; null: not within --drain-seconds. */
  drainSeconds: number | null;
  keptUp: boolean;
  lost: number;
  duplicated: number;
  instances: {
    /**
     * `events`: stored by this instance: counted in its own SQLite store, or with the shared store from
     * its bk_central_events_total (`eventsFrom` says which; null: /metrics did not answer). The store
     * figures (db…, snapshotBytes, deliveries, mqttDeliveriesPending) are per instance with SQLite and
     * null with the shared store: see `store` for them.
     */
    instance: number; pid: number; events: number | null; eventsFrom: 'store' | 'metrics';
    /** From its /metrics over the run: events it stored as new, and events it got again and ignored. */
    newEventsCounted: number | null; duplicatesIgnored: number | null;
    cpuPercent: number | null; rssMB: number; maxRssMB: number;
    dbBytes: number | null; dbGrowthBytes: number | null; snapshotBytes: number | null; deliveries: number | null; mqttDeliveriesPending: number | null;
    logProblems: Record<string, number>;
    /** After --kill-instance-at: the process started in its place (CPU over its part of the window). */
    afterRestart: { pid: number; cpuPercent: number | null; maxRssMB: number } | null;
  }[];
  /** The stores together (SQLite: summed over the instances' files; PostgreSQL: the one database and files directory). */
  store: {
    kind: 'sqlite' | 'postgres'; shared: boolean; poolSize: number | null;
    dbBytes: number; dbGrowthBytes: number; snapshotBytes: number; snapshotFileBytes: number; snapshotFiles: number;
    deliveries: number; mqttDeliveriesPending: number;
    /** PostgreSQL's WAL written in the run (not part of dbBytes); null with SQLite. */
    walGrowthBytes: number | null;
  };
  /** The private cluster's processes (postmaster, a backend per connection, background workers) together; null with SQLite. */
  postgres: {
    pid: number; processes: number; cpuPercent: number | null; cpuPercentByKind: Record<string, number>;
    /** Proportional set size of all of them (shared buffers counted once). */
    pssMB: number; maxPssMB: number;
    logProblems: Record<string, number>;
    /** pg_stat_statements over the measured window and the drain: where the server's time went (execution, not parsing and planning). */
    topStatements: Statement[];
    statements: { calls: number; execMs: number };
  } | null;
  mosquitto: { pid: number | null; cpuPercent: number | null; rssMB: number; maxRssMB: number };
  generator: { cpuPercent: number; maxRssMB: number; eventLoopDelayP99Ms: number };
  storage: { dbBytesPer10kEvents: number | null; snapshotBytesPer10kEvents: number | null };
  timeline: { t: number; sent: number; alerts: number; backlog: number; p95Ms: number | null; centralCpuPercent: number | null; postgresCpuPercent?: number | null }[];
  /** What --kill-instance-at / --db-down-at did and when (seconds into sending); null fields: not asked for. */
  faults: FaultResults;
  /** With --escalate-after: every due tier-2 event escalated exactly once? null without it. */
  escalations: (EscalationFigures & { afterSec: number }) | null;
  runDir?: string;
}

/** Longest wait for central to take in the sites' status messages at start. */
const STATUS_WAIT_SEC = 900;

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const r1 = (x: number) => Math.round(x * 10) / 10;

export async function runLoad(a: LoadArgs, progress: (msg: string) => void): Promise<LoadResult> {
  const wallStart = Date.now();
  const startedAt = new Date().toISOString();
  const loadAvgBefore = loadAvg();
  const dir = mkdtempSync(path.join(tmpdir(), 'bk-load-'));
  const runId = `ld${Date.now().toString(36)}`;
  let mosq: MosquittoHandle | null = null;
  let pg: SharedPostgres | null = null;
  const centrals: CentralProc[] = [];
  const readers: StoreReader[] = [];
  let fleet: SiteFleet | null = null;
  let recipient: Recipient | null = null;
  const dashboards: Dashboard[] = [];
  // Everything started, stopped once: at the end, on an error, or on Ctrl-C / SIGTERM (the PostgreSQL
  // cluster runs detached from our terminal, so nothing else would stop it or remove its directory).
  let cleaning: Promise<void> | null = null;
  const cleanup = () => (cleaning ??= (async () => {
    for (const d of dashboards) d.close();
    await recipient?.close().catch(() => {});
    await fleet?.close().catch(() => {});
    for (const c of centrals) await c.stop().catch(() => null);
    if (mosq) await disposeMosquitto(mosq).catch(() => {});
    for (const r of readers) if (r !== pg?.reader) await r.sql.close().catch(() => {});
    await pg?.stop(a.keep ? dir : undefined).catch(() => {});
    if (!a.keep) rmSync(dir, { recursive: true, force: true });
  })());
  const onSignal = (sig: NodeJS.Signals) => {
    progress(`${sig}: stopping what this run started`);
    void cleanup().finally(() => process.exit(sig === 'SIGINT' ? 130 : 143));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    progress(`generating ${a.sites} sites × ${a.camerasPerSite} cameras and their accounts`);
    const city = await makeCity(a.sites, a.camerasPerSite);
    const snaps = await makeSnapshots(a.snapshotWidth);
    progress(`${city.sites.length} site passwords hashed in ${city.hashSeconds.toFixed(1)} s; snapshots ${snaps.source}, ${snaps.width}×${snaps.height}, ${(snaps.meanBytesPerEvent / 1024).toFixed(0)} KiB per event`);

    const centralDir = path.resolve(a.centralDir ?? ROOT);
    const commit = centralCommit(centralDir);
    progress(`central from ${centralDir} at ${commit}`);
    const port = await freePort();
    const auth = await writeMosquittoAuth(dir, city, port);
    let t = performance.now();
    // The test helper's Mosquitto (runs as this user, persistence on, max_queued_messages 100000); saves every 5 min, not every second.
    mosq = await startMosquitto({ port, passwordFile: auth.passwordFile, aclFile: auth.aclFile, extraConfig: ['autosave_interval 300'] });
    const mosquittoStartSeconds = (performance.now() - t) / 1000;
    const mosqPid = findPid(['mosquitto', mosq.dir]);
    progress(`mosquitto on ${mosq.url} with ${auth.accounts} accounts (${mosquittoStartSeconds.toFixed(1)} s)`);
    if (a.store === 'postgres') {
      // the cluster's max_connections is 200 (postgres.ts): each central's pool and its LISTEN connection, and ours
      if (a.instances * (a.poolSize + 1) + 2 > 200) throw new Error(`--pool-size ${a.poolSize} × ${a.instances} instances: more connections than the cluster's 200`);
      pg = await startSharedPostgres(dir, a.poolSize);
      progress(`postgresql ready in ${pg.startSeconds.toFixed(1)} s (pid ${pg.postmasterPid}, ${pg.config.url}, files in ${pg.config.filesDir})`);
    }

    const env = { [CENTRAL_ENV.user]: city.central.username, [CENTRAL_ENV.pass]: city.central.password, ...pg?.env };
    for (let i = 0; i < a.instances; i++) {
      const files = writeCentralConfig(dir, city, i, { brokerUrl: mosq.url, httpPort: await freePort(), shared: a.instances > 1, store: pg?.config, escalateAfterSec: a.escalateAfter });
      const c = await startCentralProc(i, files, env, centralDir);
      centrals.push(c);
      progress(`central ${i + 1} of ${a.instances} ready in ${c.startSeconds.toFixed(1)} s (pid ${c.pid}, ${c.url})`);
    }
    // one store per central, or the one they share
    readers.push(...(pg ? [pg.reader] : centrals.map((c) => sqliteReader(c.dataDir))));
    // /metrics may be slow to answer under load: the counts before and after are tried a few times
    const counters = async (tries = 1) => {
      for (let t = 1; ; t++) {
        const got = await Promise.all(centrals.map((c) => centralCounters(c.url)));
        if (t >= tries || got.every(Boolean)) return got;
        await sleep(1000);
      }
    };
    recipient = await startRecipient(mosq.url, city.watcher);
    for (const c of centrals) dashboards.push(await startDashboard(c.url, city.watcher.username, city.watcher.password));

    fleet = await connectSites({
      url: mosq.url, sites: city.sites, eventsPerSitePerMin: a.eventsPerSitePerMin, snapshots: snaps, runId, concurrency: a.connectConcurrency,
      statsIntervalSec: a.statsInterval, progress,
    });
    progress(`${a.sites} sites connected in ${fleet.connectSeconds.toFixed(1)} s; retained status published in ${fleet.statusSeconds.toFixed(1)} s`);
    // Every site and camera status must be through central before the measured window (they queue ahead of events).
    const statusMessages = a.sites * (1 + a.camerasPerSite);
    const tAbsorb = performance.now();
    let lastNote = 0;
    for (;;) {
      const got = (await counters()).reduce((x, y) => x + (y?.messages ?? 0), 0);
      if (got >= statusMessages) break;
      const el = (performance.now() - tAbsorb) / 1000;
      if (el - lastNote >= 10) { lastNote = el; progress(`central has taken in ${got} of ${statusMessages} status messages`); }
      if (el > STATUS_WAIT_SEC) throw new Error(`central took in only ${got} of ${statusMessages} status messages in ${STATUS_WAIT_SEC} s`);
      await sleep(250);
    }
    const statusAbsorbSeconds = (performance.now() - tAbsorb) / 1000 + fleet.statusSeconds;
    progress(`central took in the ${statusMessages} status messages ${statusAbsorbSeconds.toFixed(1)} s after they were published`);
    // Received is not stored: with an asynchronous store (PostgreSQL) messages queue in central behind
    // the store, and events sent now would queue behind them.
    for (lastNote = 0; ;) {
      const stored = (await Promise.all(readers.map(statusRowsStored))).reduce((x, y) => x + y, 0);
      if (stored >= statusMessages) break;
      const el = (performance.now() - tAbsorb) / 1000;
      if (el - lastNote >= 10) { lastNote = el; progress(`the store has ${stored} of ${statusMessages} statuses applied`); }
      if (el > STATUS_WAIT_SEC) throw new Error(`the store had only ${stored} of ${statusMessages} statuses applied after ${STATUS_WAIT_SEC} s`);
      await sleep(500);
    }
    const statusStoredSeconds = (performance.now() - tAbsorb) / 1000 + fleet.statusSeconds;
    progress(`the ${statusMessages} statuses were in the store ${statusStoredSeconds.toFixed(1)} s after they were published`);
    await sleep(1000);
    const baseline = await Promise.all(readers.map((r) => readStore(r, runId)));
    const countersBefore = await counters(5);
    await pg?.resetStatements();

    // ── the measured window ──
    const meters = centrals.map((c) => new ProcMeter(`central-${c.index + 1}`, c.pid));
    const mosqMeter = mosqPid ? new ProcMeter('mosquitto', mosqPid) : null;
    const pgMeter = pg ? new TreeMeter('postgres', () => pg!.postmasterPid, pgProcessKind) : null;
    const self = new ProcMeter('generator', process.pid);
    const all = [...meters, ...(mosqMeter ? [mosqMeter] : []), ...(pgMeter ? [pgMeter] : []), self];
    for (const m of all) m.begin();
    const busy0 = machineBusySec();
    const loop = monitorEventLoopDelay({ resolution: 10 });
    loop.enable();
    const offeredPerSec = (a.sites * a.eventsPerSitePerMin) / 60;
    progress(`sending ${offeredPerSec.toFixed(1)} events/s for ${a.seconds} s`);
    const timeline: LoadResult['timeline'] = [];
    let lastCpu = meters.map((m) => m.cpuSec());
    let lastPgCpu = pgMeter?.cpuSec() ?? 0;
    let lastT = Date.now();
    let lastSeries = 0;
    const sampler = setInterval(() => { for (const m of all) m.sample(); }, 1000);
    const restartedMeters = new Map<number, ProcMeter>();
    const faults = new Faults(a, {
      centrals, dashboards, pg, env, centralDir, progress,
      onRestarted: (c) => {
        const m = new ProcMeter(`central-${c.index + 1}-restarted`, c.pid);
        m.begin();
        restartedMeters.set(c.index, m);
        all.push(m);
      },
    });
    let lastRow = 0;
    const tick = (el: number) => {
      faults.tick(el);
      if (el - lastRow < 5) return;
      lastRow = el;
      const f = fleet!;
      const rc = recipient!;
      const window = rc.series.slice(lastSeries).map(([, l]) => l);
      lastSeries = rc.series.length;
      const now = Date.now();
      const cpuNow = meters.map((m) => m.cpuSec());
      // CPU of all centrals together in this window (% of one core).
      const dt = Math.max(0.001, (now - lastT) / 1000);
      const cpu = (100 * cpuNow.reduce((s, c, i) => s + (c - lastCpu[i]!), 0)) / dt;
      const pgCpuNow = pgMeter?.cpuSec() ?? 0;
      const pgCpu = pgMeter ? Math.round((100 * (pgCpuNow - lastPgCpu)) / dt) : undefined;
      lastCpu = cpuNow;
      lastPgCpu = pgCpuNow;
      lastT = now;
      const row = {
        t: el, sent: f.sent.length, alerts: rc.byEvent.size, backlog: f.sent.length + f.inFlight - rc.byEvent.size, p95Ms: quantiles(window).p95,
        centralCpuPercent: Number.isFinite(cpu) ? Math.round(cpu) : null, ...(pgMeter ? { postgresCpuPercent: pgCpu } : {}),
      };
      timeline.push(row);
      progress(`t=${el}s sent ${row.sent} alerts ${row.alerts} backlog ${row.backlog} p95 ${row.p95Ms ?? '–'} ms central cpu ${row.centralCpuPercent ?? '–'}%${pgMeter ? ` postgres cpu ${pgCpu}%` : ''}`);
    };
    const sendStart = Date.now();
    await fleet.run(a.seconds, a.drainSeconds * 1000, tick);
    const sendEnd = Date.now();
    for (const m of all) m.sample();
    const cpuWindow = all.map((m) => m.result());
    const pgWindow = pgMeter?.result() ?? null;
    const busy = machineBusySec() - busy0;
    loop.disable();

    // ── drain: wait for every sent event at the phone and on the dashboards ──
    progress(`sent ${fleet.sent.length} events (${fleet.failed.length} failed, ${fleet.inFlight} unacknowledged); waiting for them to arrive`);
    const sentIds = fleet.sent.map((e) => e.id);
    const arrivedEverywhere = () => sentIds.every((id) => recipient!.byEvent.has(id) && dashboards.some((d) => d.byEvent.has(id)));
    const drainDeadline = Date.now() + a.drainSeconds * 1000;
    let drained = arrivedEverywhere();
    while (!drained && Date.now() < drainDeadline) {
      await sleep(100);
      drained = arrivedEverywhere();
    }
    const drainSeconds = drained ? Math.max(0, (Date.now() - sendEnd) / 1000) : null;
    await sleep(1500); // late copies (duplicates) still count
    const faultResults = await faults.settled();
    let escalations: LoadResult['escalations'] = null;
    if (a.escalateAfter !== undefined) {
      // the last events' escalations come due after the drain: wait for them (3 s past due, as counted)
      const lastIn = Math.max(0, ...(await Promise.all(readers.map(async (r) => Number(await r.sql.value('SELECT max(received_at) FROM events WHERE id LIKE ?', [`${runId}%`]) ?? 0)))));
      const wait = lastIn + a.escalateAfter * 1000 + 4000 - Date.now();
      if (wait > 0) { progress(`waiting ${Math.ceil(wait / 1000)} s for the last escalations to come due`); await sleep(wait); }
      const per = await Promise.all(readers.map((r) => readEscalations(r, runId, a.escalateAfter! * 1000)));
      const sum = (k: keyof EscalationFigures) => per.reduce((t, f) => t + f[k], 0);
      escalations = { afterSec: a.escalateAfter, due: sum('due'), once: sum('once'), missed: sum('missed'), twice: sum('twice'), deliveryRowsTwice: sum('deliveryRowsTwice'), notDueYet: sum('notDueYet') };
    }
    clearInterval(sampler);
    for (const m of all) m.sample();

    // ── count ──
    const stores = await Promise.all(readers.map((r) => readStore(r, runId)));
    const countersAfter = await counters(5);
    const statements = (await pg?.topStatements(8)) ?? { top: [], calls: 0, totalMs: 0 };
    const counted = centrals.map((_, i) => {
      const b = countersBefore[i], e = countersAfter[i];
      if (!b || !e) return null;
      // a restarted instance counts from 0 again: what it had counted before the kill, plus the new process's
      const k = faultResults.kill;
      if (k && k.instance === i + 1 && k.restartedPid !== null) {
        return k.countersAtKill ? { events: k.countersAtKill.events - b.events + e.events, duplicates: k.countersAtKill.duplicates - b.duplicates + e.duplicates } : null;
      }
      return { events: e.events - b.events, duplicates: e.duplicates - b.duplicates };
    });
    const where = new Map<string, number>();
    for (const s of stores) for (const id of s.events.keys()) where.set(id, (where.get(id) ?? 0) + 1);
    const notStored = sentIds.filter((id) => !where.has(id)).length;
    const inSeveral = [...where.values()].filter((n) => n > 1).length;
    const receivedAts = stores.flatMap((s) => [...s.events.values()]);
    const lastStored = receivedAts.length ? Math.max(...receivedAts) : null;
    const ingestPerSec = lastStored && receivedAts.length ? receivedAts.length / Math.max(1, (lastStored - sendStart) / 1000) : null;
    const dups = (x: Arrivals) => [...x.byEvent.values()].filter((v) => v.length > 1).length;
    const lostAt = (x: Arrivals) => sentIds.filter((id) => !x.byEvent.has(id)).length;
    const recipientLost = lostAt(recipient);
    const dashResults = dashboards.map((d, i) => ({
      instance: i + 1, alerts: d.byEvent.size, sharePercent: sentIds.length ? r1((100 * d.byEvent.size) / sentIds.length) : 0,
      lost: lostAt(d), duplicated: dups(d), updates: d.updates, error: d.error, latencyMs: quantiles(d.latencies),
    }));
    const dashUnionLost = sentIds.filter((id) => !dashboards.some((d) => d.byEvent.has(id))).length;
    const eventsStored = where.size;
    const instances: LoadResult['instances'] = centrals.map((c, i) => {
      const r = meters[i]!.result();
      const w = cpuWindow[i]!;
      // with SQLite store i is this instance's own; the shared store is not any one instance's
      const own = pg ? null : { now: stores[i]!, before: baseline[i]! };
      const grown = (f: (s: StoreFigures) => number) => (own ? f(own.now) - f(own.before) : null);
      return {
        instance: i + 1, pid: c.pid, events: own ? own.now.events.size : counted[i]?.events ?? null, eventsFrom: own ? 'store' : 'metrics',
        newEventsCounted: counted[i]?.events ?? null, duplicatesIgnored: counted[i]?.duplicates ?? null,
        cpuPercent: w.cpuPercent, rssMB: r.rssMB, maxRssMB: r.maxRssMB,
        dbBytes: own?.now.dbBytes ?? null, dbGrowthBytes: grown((s) => s.dbBytes),
        snapshotBytes: grown((s) => s.snapshotBytes), deliveries: grown((s) => s.deliveries),
        mqttDeliveriesPending: own?.now.mqttDeliveriesPending ?? null, logProblems: logProblems(c.logFile),
        afterRestart: restartedMeters.has(i) ? (({ pid, cpuPercent, maxRssMB }) => ({ pid, cpuPercent, maxRssMB }))(restartedMeters.get(i)!.result()) : null,
      };
    });
    const total = (f: (s: StoreFigures) => number, of = stores) => of.reduce((t, s) => t + f(s), 0);
    const totalGrowth = (f: (s: StoreFigures) => number) => total(f) - total(f, baseline);
    const store: LoadResult['store'] = {
      kind: a.store, shared: pg !== null, poolSize: pg ? a.poolSize : null,
      dbBytes: total((s) => s.dbBytes), dbGrowthBytes: totalGrowth((s) => s.dbBytes),
      snapshotBytes: totalGrowth((s) => s.snapshotBytes), snapshotFileBytes: totalGrowth((s) => s.snapshotFileBytes), snapshotFiles: totalGrowth((s) => s.snapshotFiles),
      deliveries: totalGrowth((s) => s.deliveries), mqttDeliveriesPending: total((s) => s.mqttDeliveriesPending),
      walGrowthBytes: pg ? totalGrowth((s) => s.walBytes ?? 0) : null,
    };
    const ours = cpuWindow.reduce((s, c) => s + (c.cpuPercent ?? 0), 0);
    const machineCpu = (100 * busy) / Math.max(0.001, (sendEnd - sendStart) / 1000);
    const recipientDup = dups(recipient);
    const lost = Math.max(recipientLost, notStored, dashUnionLost) + fleet.failed.length;
    const duplicated = recipientDup + inSeveral + dashResults.reduce((s, d) => s + d.duplicated, 0);
    const mq = mosqMeter?.result();
    const result: LoadResult = {
      startedAt,
      central: { dir: centralDir, commit },
      machine: { cores: availableParallelism(), node: process.version, loadAvgBefore, loadAvgAfter: loadAvg(), otherProcessesCpuPercent: Math.max(0, Math.round(machineCpu - ours)) },
      params: {
        sites: a.sites, camerasPerSite: a.camerasPerSite, eventsPerSitePerMin: a.eventsPerSitePerMin, seconds: a.seconds, instances: a.instances, store: a.store, poolSize: a.poolSize,
        statsInterval: a.statsInterval, snapshotWidth: a.snapshotWidth, drainSeconds: a.drainSeconds, connectConcurrency: a.connectConcurrency,
        escalateAfter: a.escalateAfter, killInstanceAt: a.killInstanceAt, restartAfter: a.restartAfter, dbDownAt: a.dbDownAt, dbDownSeconds: a.dbDownSeconds,
      },
      setup: {
        hashSeconds: r1(city.hashSeconds), brokerAccounts: auth.accounts, users: city.users, mosquittoStartSeconds: r1(mosquittoStartSeconds),
        postgresStartSeconds: pg ? r1(pg.startSeconds) : null,
        centralStartSeconds: centrals.map((c) => r1(c.startSeconds)), sitesConnectSeconds: r1(fleet.connectSeconds), statusPublishSeconds: r1(fleet.statusSeconds),
        statusMessages, statusAbsorbSeconds: r1(statusAbsorbSeconds), statusStoredSeconds: r1(statusStoredSeconds),
        totalSeconds: r1((sendStart - wallStart) / 1000),
      },
      snapshots: { source: snaps.source, width: snaps.width, height: snaps.height, bytesPerEvent: snaps.meanBytesPerEvent },
      offered: {
        eventsPerSec: r1(offeredPerSec), statsPerSec: r1(a.statsInterval ? a.sites / a.statsInterval : 0),
        messagesPerSec: r1(offeredPerSec * 3 + (a.statsInterval ? a.sites / a.statsInterval : 0)), megabytesPerSec: r1((offeredPerSec * snaps.meanBytesPerEvent) / 2 ** 20) },
      sent: { events: fleet.sent.length, stats: fleet.statsSent, failed: fleet.failed.length, unacked: fleet.inFlight, messages: fleet.messages, bytes: fleet.bytes, pubackMs: quantiles(fleet.sent.map((e) => e.ackMs ?? 0)) },
      ingested: {
        events: eventsStored, eventsPerSec: ingestPerSec === null ? null : r1(ingestPerSec), notStored, inSeveralInstances: inSeveral,
        withoutAnnotatedSnapshot: total((s) => s.eventsWithoutAnnotated), withoutCleanSnapshot: total((s) => s.eventsWithoutClean),
        duplicatesIgnored: counted.every((c) => c) ? counted.reduce((t, c) => t + c!.duplicates, 0) : null,
      },
      recipient: { alerts: recipient.byEvent.size, lost: recipientLost, duplicated: recipientDup, invalid: recipient.invalid, latencyMs: quantiles(recipient.latencies) },
      dashboards: dashResults,
      drainSeconds: drainSeconds === null ? null : r1(drainSeconds),
      keptUp: drainSeconds !== null && drainSeconds <= 5 && fleet.failed.length === 0 && fleet.inFlight === 0,
      lost,
      duplicated,
      instances,
      store,
      postgres: pg && pgMeter && pgWindow ? {
        pid: pgMeter.pid, processes: pgWindow.processes, cpuPercent: pgWindow.cpuPercent, cpuPercentByKind: pgWindow.byKind,
        pssMB: pgMeter.result().rssMB, maxPssMB: pgMeter.result().maxRssMB, logProblems: pg.logProblems(), topStatements: statements.top, statements: { calls: statements.calls, execMs: statements.totalMs },
      } : null,
      mosquitto: { pid: mosqPid, cpuPercent: cpuWindow.find((c) => c.name === 'mosquitto')?.cpuPercent ?? null, rssMB: mq?.rssMB ?? 0, maxRssMB: mq?.maxRssMB ?? 0 },
      generator: { cpuPercent: cpuWindow.find((c) => c.name === 'generator')?.cpuPercent ?? 0, maxRssMB: self.result().maxRssMB, eventLoopDelayP99Ms: r1(loop.percentile(99) / 1e6) },
      storage: {
        dbBytesPer10kEvents: eventsStored ? Math.round((store.dbGrowthBytes / eventsStored) * 10_000) : null,
        snapshotBytesPer10kEvents: eventsStored ? Math.round((store.snapshotBytes / eventsStored) * 10_000) : null,
      },
      timeline,
      faults: faultResults,
      escalations,
      ...(a.keep ? { runDir: dir } : {}),
    };
    return result;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await cleanup();
  }
}

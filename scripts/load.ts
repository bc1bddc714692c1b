/**
 * Load generator for central at city scale (issue 14): N simulated sites against M real central
 * processes on one external Mosquitto, all on this machine. See docs/scale.md for the figures.
 *
 *   npm run load -- --sites N --cameras-per-site C --events-per-site-per-min R --seconds S [--instances M] [--store sqlite|postgres] [--json]
 *
 * Faults (--kill-instance-at, --db-down-at) and escalations (--escalate-after) in the same run: see --help.
 *
 * Exit 0 when every sent event was stored and alerted once (and, with --escalate-after, every due
 * event escalated exactly once), 1 when any was lost or duplicated, 2 for a bad command line.
 */
import { ArgsError, parseLoadArgs, USAGE } from './load/args.js';
import { runLoad, type LoadResult, type Quantiles } from './load/run.js';

const ms = (q: Quantiles) => `p50 ${q.p50 ?? '–'} / p95 ${q.p95 ?? '–'} / max ${q.max ?? '–'} ms`;
const mib = (b: number | null) => (b === null ? '–' : (b / 2 ** 20).toFixed(1));

function table(r: LoadResult): string {
  const p = r.params;
  const shared = r.store.shared;
  const storeName = shared ? `one shared PostgreSQL (pool ${r.store.poolSize} per instance)` : 'SQLite, one file per instance';
  const lines = [
    `load: ${p.sites} sites × ${p.camerasPerSite} cameras, ${p.eventsPerSitePerMin} events/site/min, ${p.seconds} s, ${p.instances} central instance(s) on ${storeName}, ${r.machine.cores} cores, load ${r.machine.loadAvgBefore.join(' ')} before; central at ${r.central.commit}`,
    `setup: ${r.setup.totalSeconds} s (hashes ${r.setup.hashSeconds} s for ${r.setup.brokerAccounts} broker accounts, mosquitto ${r.setup.mosquittoStartSeconds} s, ${r.setup.postgresStartSeconds === null ? '' : `postgresql ${r.setup.postgresStartSeconds} s, `}central ${r.setup.centralStartSeconds.join(' / ')} s, sites connect ${r.setup.sitesConnectSeconds} s; ${r.setup.statusMessages} status messages published in ${r.setup.statusPublishSeconds} s, taken in by central after ${r.setup.statusAbsorbSeconds} s, in the store after ${r.setup.statusStoredSeconds} s)`,
    `offered: ${r.offered.eventsPerSec} events/s + ${r.offered.statsPerSec} stats/s = ${r.offered.messagesPerSec} messages/s, ${r.offered.megabytesPerSec} MB/s (snapshots ${r.snapshots.width}×${r.snapshots.height} ${r.snapshots.source}, ${(r.snapshots.bytesPerEvent / 1024).toFixed(0)} KiB per event)`,
    `sent: ${r.sent.stats} stats and ${r.sent.events} events acknowledged by the broker (${r.sent.failed} failed, ${r.sent.unacked} unacknowledged); PUBACK ${ms(r.sent.pubackMs)}`,
    `ingested: ${r.ingested.events} events (${r.ingested.eventsPerSec ?? '–'} events/s), ${r.ingested.notStored} not stored, ${shared ? '0 in several stores (one shared store: 0 by construction)' : `${r.ingested.inSeveralInstances} in several stores`}, ${r.ingested.withoutAnnotatedSnapshot} without annotated / ${r.ingested.withoutCleanSnapshot} without clean snapshot in their store; ${r.ingested.duplicatesIgnored ?? '–'} received again and ignored`,
    `recipient (MQTT): ${r.recipient.alerts} alerts, lost ${r.recipient.lost}, duplicated ${r.recipient.duplicated}; event → phone ${ms(r.recipient.latencyMs)}`,
    ...r.dashboards.map((d) => `dashboard on central ${d.instance} (SSE): ${d.alerts} alerts (${d.sharePercent} % of sent), missing ${d.lost}, duplicated ${d.duplicated}; event → dashboard ${ms(d.latencyMs)}${d.error ? `; stream error: ${d.error}` : ''}`),
    `drain: ${r.drainSeconds === null ? 'NOT everything arrived within the drain time' : `${r.drainSeconds} s after the last event`}; kept up: ${r.keptUp ? 'yes' : 'NO'}; lost ${r.lost}, duplicated ${r.duplicated}`,
    ...r.instances.map((i) => `central ${i.instance}: ${i.events ?? '–'} events stored (${i.eventsFrom === 'metrics' ? 'its bk_central_events_total' : 'its own store'}), CPU ${i.cpuPercent ?? '–'} %, RSS ${i.rssMB} MB (max ${i.maxRssMB})${shared ? '' : `, database ${mib(i.dbBytes)} MiB (+${mib(i.dbGrowthBytes)}), snapshots +${mib(i.snapshotBytes)} MiB`}${Object.keys(i.logProblems).length ? `; warnings: ${JSON.stringify(i.logProblems)}` : ''}`),
    `store${shared ? ' (shared)' : 's together'}: database ${mib(r.store.dbBytes)} MiB (+${mib(r.store.dbGrowthBytes)}), snapshots +${mib(r.store.snapshotBytes)} MiB in rows, +${r.store.snapshotFiles} files / +${mib(r.store.snapshotFileBytes)} MiB on disk, +${r.store.deliveries} deliveries (${r.store.mqttDeliveriesPending} MQTT pending)${r.store.walGrowthBytes === null ? '' : `; WAL +${mib(r.store.walGrowthBytes)} MiB`}`,
    ...(r.postgres ? [`postgresql: CPU ${r.postgres.cpuPercent ?? '–'} % (${Object.entries(r.postgres.cpuPercentByKind).filter(([, v]) => v > 0).map(([k, v]) => `${k} ${v}`).join(', ') || '–'}), ${r.postgres.processes} processes, ${r.postgres.statements.calls} statements taking ${r.postgres.statements.execMs} ms to execute, PSS ${r.postgres.pssMB} MB (max ${r.postgres.maxPssMB})${Object.keys(r.postgres.logProblems).length ? `; log: ${JSON.stringify(r.postgres.logProblems)}` : ''}`,
      ...r.postgres.topStatements.slice(0, 5).map((q) => `  ${q.totalMs} ms in ${q.calls} calls (${q.meanMs} ms each): ${q.query.slice(0, 110)}`)] : []),
    `mosquitto: CPU ${r.mosquitto.cpuPercent ?? '–'} %, RSS ${r.mosquitto.rssMB} MB (max ${r.mosquitto.maxRssMB}); generator: CPU ${r.generator.cpuPercent} %, RSS max ${r.generator.maxRssMB} MB, event-loop delay p99 ${r.generator.eventLoopDelayP99Ms} ms; other processes ${r.machine.otherProcessesCpuPercent ?? '–'} %`,
    `storage per 10,000 events: database ${mib(r.storage.dbBytesPer10kEvents)} MiB${r.store.walGrowthBytes !== null && r.ingested.events ? ` (WAL written ${mib((r.store.walGrowthBytes / r.ingested.events) * 10_000)} MiB)` : ''}, snapshots ${r.storage.snapshotBytesPer10kEvents === null ? '–' : (r.storage.snapshotBytesPer10kEvents / 2 ** 20).toFixed(0)} MiB`,
  ];
  const k = r.faults.kill;
  if (k) lines.push(`fault: central ${k.instance} (pid ${k.pid}) SIGKILLed at t=${k.atSec} s, ${k.backAfterSec === null ? `did NOT come back${k.error ? ` (${k.error})` : ''}` : `back ${k.backAfterSec} s later (pid ${k.restartedPid}); its dashboard's session after the restart: ${k.dashboardResumeStatus === 200 ? 'still logged in' : `HTTP ${k.dashboardResumeStatus}`}`}`);
  const db = r.faults.dbDown;
  if (db) lines.push(`fault: PostgreSQL stopped at t=${db.atSec} s for ${db.downSec} s${db.error ? `; restart FAILED: ${db.error}` : ` (stop ${db.stopMs} ms, start ${db.startMs} ms)`}`);
  const e = r.escalations;
  if (e) lines.push(`escalations (vice-principal after ${e.afterSec} s): ${e.due} tier-2 events due, ${e.once} escalated once, ${e.missed} missed, ${e.twice} more than once, ${e.deliveryRowsTwice} vice-principal deliveries made twice (${e.notDueYet} not due yet)`);
  if (r.runDir) lines.push(`run directory kept: ${r.runDir}`);
  return lines.join('\n') + '\n';
}

async function main(): Promise<number> {
  let args;
  try {
    args = parseLoadArgs(process.argv.slice(2));
  } catch (err) {
    if (err instanceof ArgsError) {
      process.stderr.write(`load: ${err.message}\n\n${USAGE}\n`);
      return 2;
    }
    throw err;
  }
  if ('help' in args) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const t0 = Date.now();
  const progress = (m: string) => process.stderr.write(`load [${((Date.now() - t0) / 1000).toFixed(0).padStart(3)} s] ${m}\n`);
  const r = await runLoad(args, progress);
  process.stdout.write(args.json ? `${JSON.stringify(r)}\n` : table(r));
  const e = r.escalations;
  const escalatedOnce = !e || (e.missed === 0 && e.twice === 0 && e.deliveryRowsTwice === 0);
  return r.lost === 0 && r.duplicated === 0 && escalatedOnce ? 0 : 1;
}

main().then((code) => process.exit(code), (err: Error) => {
  process.stderr.write(`load: ${err.message}\n`);
  process.exit(1);
});

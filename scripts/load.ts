/**
 * Load generator for central at city scale (issue 14): N simulated sites against M real central
 * processes on one external Mosquitto, all on this machine. See docs/scale.md for the figures.
 *
 *   npm run load -- --sites N --cameras-per-site C --events-per-site-per-min R --seconds S [--instances M] [--json]
 *
 * Exit 0 when every sent event was stored and alerted once, 1 when any was lost or duplicated,
 * 2 for a bad command line.
 */
import { ArgsError, parseLoadArgs, USAGE } from './load/args.js';
import { runLoad, type LoadResult, type Quantiles } from './load/run.js';

const ms = (q: Quantiles) => `p50 ${q.p50 ?? '–'} / p95 ${q.p95 ?? '–'} / max ${q.max ?? '–'} ms`;

function table(r: LoadResult): string {
  const p = r.params;
  const lines = [
    `load: ${p.sites} sites × ${p.camerasPerSite} cameras, ${p.eventsPerSitePerMin} events/site/min, ${p.seconds} s, ${p.instances} central instance(s), ${r.machine.cores} cores, load ${r.machine.loadAvgBefore.join(' ')} before; central at ${r.central.commit}`,
    `setup: ${r.setup.totalSeconds} s (hashes ${r.setup.hashSeconds} s for ${r.setup.brokerAccounts} broker accounts, mosquitto ${r.setup.mosquittoStartSeconds} s, central ${r.setup.centralStartSeconds.join(' / ')} s, sites connect ${r.setup.sitesConnectSeconds} s; ${r.setup.statusMessages} status messages published in ${r.setup.statusPublishSeconds} s, taken in by central after ${r.setup.statusAbsorbSeconds} s)`,
    `offered: ${r.offered.eventsPerSec} events/s + ${r.offered.statsPerSec} stats/s = ${r.offered.messagesPerSec} messages/s, ${r.offered.megabytesPerSec} MB/s (snapshots ${r.snapshots.width}×${r.snapshots.height} ${r.snapshots.source}, ${(r.snapshots.bytesPerEvent / 1024).toFixed(0)} KiB per event)`,
    `sent: ${r.sent.stats} stats and ${r.sent.events} events acknowledged by the broker (${r.sent.failed} failed, ${r.sent.unacked} unacknowledged); PUBACK ${ms(r.sent.pubackMs)}`,
    `ingested: ${r.ingested.events} events (${r.ingested.eventsPerSec ?? '–'} events/s), ${r.ingested.notStored} not stored, ${r.ingested.inSeveralInstances} in several stores, ${r.ingested.withoutAnnotatedSnapshot} without annotated / ${r.ingested.withoutCleanSnapshot} without clean snapshot in their store`,
    `recipient (MQTT): ${r.recipient.alerts} alerts, lost ${r.recipient.lost}, duplicated ${r.recipient.duplicated}; event → phone ${ms(r.recipient.latencyMs)}`,
    ...r.dashboards.map((d) => `dashboard on central ${d.instance} (SSE): ${d.alerts} alerts (${d.sharePercent} % of sent), missing ${d.lost}, duplicated ${d.duplicated}; event → dashboard ${ms(d.latencyMs)}${d.error ? `; stream error: ${d.error}` : ''}`),
    `drain: ${r.drainSeconds === null ? 'NOT everything arrived within the drain time' : `${r.drainSeconds} s after the last event`}; kept up: ${r.keptUp ? 'yes' : 'NO'}; lost ${r.lost}, duplicated ${r.duplicated}`,
    ...r.instances.map((i) => `central ${i.instance}: ${i.events} events, CPU ${i.cpuPercent ?? '–'} %, RSS ${i.rssMB} MB (max ${i.maxRssMB}), database ${(i.dbBytes / 2 ** 20).toFixed(1)} MiB (+${(i.dbGrowthBytes / 2 ** 20).toFixed(1)}), snapshots +${(i.snapshotBytes / 2 ** 20).toFixed(1)} MiB${Object.keys(i.logProblems).length ? `; warnings: ${JSON.stringify(i.logProblems)}` : ''}`),
    `mosquitto: CPU ${r.mosquitto.cpuPercent ?? '–'} %, RSS ${r.mosquitto.rssMB} MB (max ${r.mosquitto.maxRssMB}); generator: CPU ${r.generator.cpuPercent} %, RSS max ${r.generator.maxRssMB} MB, event-loop delay p99 ${r.generator.eventLoopDelayP99Ms} ms; other processes ${r.machine.otherProcessesCpuPercent ?? '–'} %`,
    `storage per 10,000 events: database ${r.storage.dbBytesPer10kEvents === null ? '–' : (r.storage.dbBytesPer10kEvents / 2 ** 20).toFixed(1)} MiB, snapshots ${r.storage.snapshotBytesPer10kEvents === null ? '–' : (r.storage.snapshotBytesPer10kEvents / 2 ** 20).toFixed(0)} MiB`,
  ];
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
  return r.lost === 0 && r.duplicated === 0 ? 0 : 1;
}

main().then((code) => process.exit(code), (err: Error) => {
  process.stderr.write(`load: ${err.message}\n`);
  process.exit(1);
});

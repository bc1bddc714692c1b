/**
 * Disk nearly full: the agent's evidence folder is a 2 MiB tmpfs (`mount -t tmpfs -o size=2m`, needs
 * root; the scenario refuses to fake it and reports "skipped" otherwise), the configured evidence cap
 * (8 MiB) is larger than the disk, so the store meets ENOSPC. Expected: a clear error is logged, the
 * oldest evidence is evicted, detection and event delivery go on (every event reaches central with
 * its snapshots, which travel through the outbox on another disk).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import type { CentralInternals } from '../../../central/central.js';
import { freePort } from '../../helpers/brokers.js';
import {
  AgentProc, Scratch, centralConfig, centralEventIds, centralMissingSnapshots, dupCount, mustWait, row, sleep, startCentralAt, testVideo,
  waitDelivered, waitUntil, writeAgentConfig, type Row,
} from '../lib/harness.js';

function evidenceFiles(dir: string): { name: string; bytes: number }[] {
  const out: { name: string; bytes: number }[] = [];
  if (!existsSync(dir)) return out;
  for (const day of readdirSync(dir)) {
    const d = path.join(dir, day);
    if (!statSync(d).isDirectory()) continue;
    for (const f of readdirSync(d)) out.push({ name: f, bytes: statSync(path.join(d, f)).size });
  }
  return out;
}

export async function diskFullScenario(o: { runSec?: number } = {}): Promise<Row> {
  const t0 = Date.now();
  const scratch = new Scratch();
  let agent: AgentProc | null = null;
  let central: CentralInternals | null = null;
  let mounted: string | null = null;
  const name = 'disk nearly full: evidence on a 2 MiB tmpfs, cap set larger than the disk';
  try {
    const dataDir = scratch.dir('central');
    const port = await freePort();
    central = await startCentralAt(await centralConfig({ dataDir, brokerPort: port }));
    const agentDir = scratch.dir('agent');
    const storage = path.join(agentDir, 'var');
    const evidenceDir = path.join(storage, 'evidence');
    mkdirSync(evidenceDir, { recursive: true });
    const m = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=2m', 'tmpfs', evidenceDir], { encoding: 'utf8' });
    if (m.status !== 0) {
      return row({ group: 'fault', name, expected: 'oldest evidence evicted, clear error logged, events still delivered',
        observed: `SKIPPED: cannot mount a tmpfs here (${(m.stderr || m.error?.message || '').trim()}); run as root`, pass: false, owner: 'environment' });
    }
    mounted = evidenceDir;
    const conf = writeAgentConfig(agentDir, {
      storageDir: storage, brokerUrl: `mqtt://127.0.0.1:${port}`, cooldownSec: 0.25, evidenceMaxMB: 8,
      cameras: [{ id: 'cam1', url: `file://${testVideo()}`, fps: 8, frameWidth: 960 }],
    });
    agent = await AgentProc.start(conf);
    const a = agent;
    const full = await waitUntil(() => a.logsMatching(/no space left|ENOSPC/).length > 0, 60_000, 100);
    const firstEvents = a.eventIds().slice(0, 3);
    const atFull = a.eventIds().length;
    await sleep((o.runSec ?? 8) * 1000);
    const afterFull = a.eventIds().length - atFull;
    await a.stopCameras();
    const sent = a.eventIds();
    await waitDelivered(dataDir, sent, storage);
    await sleep(500);
    const stored = centralEventIds(dataDir);
    const got = new Set(stored);
    const lost = sent.filter((id) => !got.has(id)).length;
    const files = evidenceFiles(evidenceDir);
    const used = files.reduce((s, f) => s + f.bytes, 0);
    const oldestGone = firstEvents.every((id) => !files.some((f) => f.name.startsWith(id)));
    const newestKept = sent.slice(-5).some((id) => files.some((f) => f.name.startsWith(id)));
    const errors = a.logsMatching(/no space left/);
    const evicted = a.logsMatching(/evicted the oldest/);
    const sampleError = String(errors[0]?.msg ?? '').replace(/\/tmp\/[^ ]+\//g, '…/').slice(0, 160);
    const missingSnaps = centralMissingSnapshots(dataDir);
    const pass = full && lost === 0 && afterFull > 0 && oldestGone && newestKept && errors.length > 0 && evicted.length > 0 && a.alive && missingSnaps === 0;
    return row({
      group: 'fault',
      name,
      expected: 'oldest evidence evicted, clear error logged, detection and delivery go on',
      observed: `${errors.length} ENOSPC errors logged (e.g. "${sampleError}"), ${evicted.length} evictions; oldest events' files ${oldestGone ? 'evicted' : 'STILL THERE'}, ` +
        `newest ${newestKept ? 'kept' : 'NOT kept'}; ${files.length} files / ${(used / 1024).toFixed(0)} KiB on the 2 MiB disk; ${afterFull} events raised after the disk filled; ` +
        `${missingSnaps} events at central without snapshot`,
      sent: sent.length,
      received: sent.length - lost,
      lost,
      duplicated: dupCount(stored),
      pass,
      ...(pass ? {} : { owner: 'agent/evidence/store.ts (ENOSPC handling), agent/pipeline.ts' }),
      seconds: (Date.now() - t0) / 1000,
    });
  } finally {
    await agent?.stop();
    await central?.stop();
    if (mounted) spawnSync('umount', ['-l', mounted]);
    await scratch.dispose();
  }
}

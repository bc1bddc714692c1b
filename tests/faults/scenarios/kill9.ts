/**
 * The agent is killed with SIGKILL in the middle of a burst of violations (several times), then
 * started again on the same storage: the outbox must pass `PRAGMA integrity_check`, and every event
 * the agent had committed (printed after its outbox transaction returned) must reach central once.
 * Central stays up; the kill lands while events are being raised, encoded, written and published.
 */
import path from 'node:path';
import Database from 'better-sqlite3';
import type { CentralInternals } from '../../../central/central.js';
import { freePort } from '../../helpers/brokers.js';
import {
  AgentProc, Scratch, centralConfig, centralDuplicateAlerts, centralEventIds, centralMissingSnapshots, dupCount, mustWait, row, sleep,
  startCentralAt, testVideo, waitDelivered, writeAgentConfig, type Row,
} from '../lib/harness.js';

export async function kill9Scenario(o: { kills?: number } = {}): Promise<Row> {
  const kills = o.kills ?? 3;
  const t0 = Date.now();
  const scratch = new Scratch();
  let agent: AgentProc | null = null;
  let central: CentralInternals | null = null;
  try {
    const dataDir = scratch.dir('central');
    const port = await freePort();
    const cfg = await centralConfig({ dataDir, brokerPort: port, cameras: ['cam1', 'cam2'] });
    central = await startCentralAt(cfg);
    const agentDir = scratch.dir('agent');
    const storage = path.join(agentDir, 'var');
    // burst: two cameras at 10 fps, an event every 0.2 s per camera
    const video = testVideo();
    const conf = writeAgentConfig(agentDir, {
      storageDir: storage, brokerUrl: `mqtt://127.0.0.1:${port}`, cooldownSec: 0.2,
      cameras: [{ id: 'cam1', url: `file://${video}`, fps: 10 }, { id: 'cam2', url: `file://${video}`, fps: 10 }],
    });
    const committed: string[] = [];
    const integrity: string[] = [];
    const pendingAfterKill: number[] = [];
    for (let k = 0; k < kills; k++) {
      // round 0: central up (the kill lands while rows are in flight); later rounds: central down, so
      // the outbox holds a backlog that must survive the kills and resume
      if (k === 1 && central) {
        await central.stop();
        central = null;
      }
      agent = await AgentProc.start(conf);
      const a = agent;
      // kill at a different moment of the burst each round
      const target = 8 + k * 7;
      await mustWait(() => a.eventIds().length >= target, 30_000, `${target} events from the agent`);
      await sleep(37 * k);
      await a.kill9();
      committed.push(...a.eventIds());
      const db = new Database(path.join(storage, 'outbox.sqlite'));
      try {
        integrity.push(String(db.pragma('integrity_check', { simple: true })));
        pendingAfterKill.push((db.prepare('SELECT count(*) AS n FROM outbox').get() as { n: number }).n);
      } finally {
        db.close();
      }
    }
    // last start with central back: let the outbox resume, stop the cameras, wait for the drain
    central ??= await startCentralAt(cfg);
    agent = await AgentProc.start(conf);
    const a = agent;
    await sleep(1500);
    await a.stopCameras();
    committed.push(...a.eventIds());
    const delivered = await waitDelivered(dataDir, committed, storage);
    await sleep(1000);
    const stored = centralEventIds(dataDir);
    const got = new Set(stored);
    const lost = committed.filter((id) => !got.has(id)).length;
    const extra = stored.length - committed.filter((id) => got.has(id)).length;
    const dup = centralDuplicateAlerts(dataDir) + dupCount(stored);
    const missingSnaps = centralMissingSnapshots(dataDir);
    const redelivered = (await central!.metrics()).duplicates;
    const allOk = integrity.every((s) => s === 'ok');
    const pass = lost === 0 && dup === 0 && allOk && delivered;
    return row({
      group: 'fault',
      name: `agent killed with SIGKILL during a burst (${kills} times: once while publishing, then with central down and a backlog), restarted on the same storage`,
      expected: 'outbox integrity_check ok after each kill; the backlog resumes; every committed event delivered once',
      observed: `integrity_check: ${integrity.join(', ')}; rows pending right after the kills: ${pendingAfterKill.join(', ')}; ` +
        `${redelivered} re-sent copies de-duplicated; ${extra} events raised but killed before they were reported (delivered anyway); ${missingSnaps} events without snapshot`,
      sent: committed.length,
      received: committed.length - lost,
      lost,
      duplicated: dup,
      pass,
      ...(pass ? {} : { owner: 'agent/outbox/outbox.ts, agent/uplink/uplink.ts' }),
      seconds: (Date.now() - t0) / 1000,
    });
  } finally {
    await agent?.stop();
    await central?.stop();
    await scratch.dispose();
  }
}

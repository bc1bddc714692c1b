/**
 * The load generator as docs/scale.md runs it, with tiny parameters: real Mosquitto, real central
 * processes, simulated sites, a phone and a dashboard counting. Asserts counts (nothing lost or
 * duplicated, every sent event stored and alerted) and that each figure is there; never timings.
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { parseLoadArgs } from '../../scripts/load/args.js';
import type { LoadResult } from '../../scripts/load/run.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const TSX = path.join(ROOT, 'node_modules/.bin/tsx');
const SCRIPT = path.join(ROOT, 'scripts/load.ts');

function cli(args: string[], timeout = 120_000): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(TSX, [SCRIPT, ...args], { cwd: ROOT, timeout, maxBuffer: 16 * 2 ** 20 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr });
    });
  });
}

const isNum = (x: unknown) => typeof x === 'number' && Number.isFinite(x);

describe('load generator', () => {
  it('parses its arguments', () => {
    expect(parseLoadArgs(['--sites', '2000', '--cameras-per-site=4', '--events-per-site-per-min', '1', '--seconds', '300', '--instances', '2', '--json']))
      .toMatchObject({ sites: 2000, camerasPerSite: 4, eventsPerSitePerMin: 1, seconds: 300, instances: 2, json: true, statsInterval: 60, snapshotWidth: 640 });
    expect(parseLoadArgs(['--help'])).toEqual({ help: true });
    expect(() => parseLoadArgs(['--sites', '0'])).toThrow(/^--sites: expected at least 1 \(got "0"\)/);
    expect(() => parseLoadArgs(['--sites', '2.5'])).toThrow(/^--sites: expected a whole number/);
    expect(() => parseLoadArgs(['--seconds', 'soon'])).toThrow(/^--seconds: expected a number/);
    expect(() => parseLoadArgs(['--instances', '9'])).toThrow(/^--instances: expected at most 8/);
    expect(() => parseLoadArgs(['--seconds'])).toThrow(/^--seconds: expected a value/);
    expect(() => parseLoadArgs(['--sites', '5', '--sites', '6'])).toThrow(/given twice/);
    expect(() => parseLoadArgs(['--frobnicate'])).toThrow(/unknown argument "--frobnicate"/);
    expect(parseLoadArgs([])).toMatchObject({ store: 'sqlite', poolSize: 10 });
    expect(parseLoadArgs(['--store', 'postgres', '--pool-size', '4'])).toMatchObject({ store: 'postgres', poolSize: 4 });
    expect(() => parseLoadArgs(['--store', 'mysql'])).toThrow(/^--store: expected "sqlite" or "postgres" \(got "mysql"\)/);
    expect(parseLoadArgs(['--seconds', '60', '--kill-instance-at', '20', '--escalate-after', '15'])).toMatchObject({ killInstanceAt: 20, restartAfter: 10, escalateAfter: 15 });
    expect(() => parseLoadArgs(['--seconds', '60', '--kill-instance-at', '60'])).toThrow(/^--kill-instance-at: 60 s is not within the 60 s of sending/);
    expect(() => parseLoadArgs(['--seconds', '60', '--db-down-at', '10'])).toThrow(/^--db-down-at: needs --store postgres/);
  });

  it('refuses a bad command line with exit 2, one line naming the flag and the usage; --help prints the usage', async () => {
    const bad = await cli(['--sites', '-3', '--seconds', '10']);
    expect(bad.code).toBe(2);
    expect(bad.stdout).toBe('');
    expect(bad.stderr).toMatch(/^load: --sites: expected at least 1 \(got "-3"\)\n/);
    expect(bad.stderr).toContain('usage: npm run load --');
    const unknown = await cli(['--sites', '5', '--fast']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/^load: unknown argument "--fast"/);
    const help = await cli(['--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/--events-per-site-per-min R/);
  });

  it('20 sites × 2 cameras × 6 events/min for 10 s on one central: every event stored once, alerted once on the phone and the dashboard', { timeout: 120_000 }, async () => {
    const { code, stdout, stderr } = await cli(['--sites', '20', '--cameras-per-site', '2', '--events-per-site-per-min', '6', '--seconds', '10', '--stats-interval', '5', '--drain-seconds', '30', '--json']);
    expect(code, stderr.slice(-2000)).toBe(0);
    expect(stderr).toMatch(/sending 2\.0 events\/s for 10 s/); // progress on stderr
    const lines = stdout.trim().split('\n');
    expect(lines).toHaveLength(1);
    const r = JSON.parse(lines[0]!) as LoadResult;
    // 20 sites, one event every 10 s each, for 10 s: one event per site
    expect(r.sent.events).toBe(20);
    expect(r.sent.failed).toBe(0);
    expect(r.sent.unacked).toBe(0);
    expect(r.sent.stats).toBeGreaterThan(0);
    expect(r.ingested.events).toBe(r.sent.events);
    expect(r.ingested.notStored).toBe(0);
    expect(r.ingested.withoutAnnotatedSnapshot).toBe(0);
    expect(r.ingested.withoutCleanSnapshot).toBe(0);
    expect(r.recipient).toMatchObject({ alerts: 20, lost: 0, duplicated: 0, invalid: 0 });
    expect(r.dashboards).toHaveLength(1);
    expect(r.dashboards[0]).toMatchObject({ alerts: 20, lost: 0, duplicated: 0, error: null });
    expect(r.lost).toBe(0);
    expect(r.duplicated).toBe(0);
    expect(r.drainSeconds).not.toBeNull();
    for (const q of [r.recipient.latencyMs, r.dashboards[0]!.latencyMs, r.sent.pubackMs]) {
      expect(q.n).toBe(20);
      for (const k of ['p50', 'p95', 'p99', 'max'] as const) expect(isNum(q[k]), k).toBe(true);
    }
    expect(r.instances).toHaveLength(1);
    const i = r.instances[0]!;
    expect(i.events).toBe(20);
    expect(isNum(i.cpuPercent) && isNum(i.rssMB) && i.rssMB > 0).toBe(true);
    expect(i.snapshotBytes).toBeGreaterThanOrEqual(20 * 2 * 1000); // two real JPEGs per event
    expect(isNum(r.mosquitto.cpuPercent) && r.mosquitto.rssMB > 0).toBe(true);
    expect(isNum(r.storage.dbBytesPer10kEvents) && isNum(r.storage.snapshotBytesPer10kEvents)).toBe(true);
    expect(isNum(r.ingested.eventsPerSec) && isNum(r.setup.statusAbsorbSeconds)).toBe(true);
    expect(r.setup.statusMessages).toBe(20 * 3);
    expect(r.timeline.length).toBeGreaterThan(0);
  });

  it('two centrals on one broker (shared subscription): the phone gets every alert, each dashboard only its own central\'s share', { timeout: 120_000 }, async () => {
    const { code, stdout, stderr } = await cli(['--sites', '20', '--cameras-per-site', '1', '--events-per-site-per-min', '6', '--seconds', '10', '--instances', '2', '--stats-interval', '0', '--drain-seconds', '30', '--json']);
    expect(code, stderr.slice(-2000)).toBe(0);
    const r = JSON.parse(stdout) as LoadResult;
    expect(r.sent.events).toBe(20);
    expect(r.recipient).toMatchObject({ alerts: 20, lost: 0, duplicated: 0 });
    expect(r.ingested).toMatchObject({ events: 20, notStored: 0, inSeveralInstances: 0 });
    // Each central has its own SQLite store: the events are split between them, and so are the dashboards.
    expect(r.instances.map((x) => x.events ?? NaN).reduce((a, b) => a + b, 0)).toBe(20);
    expect(r.dashboards.map((d) => d.alerts).reduce((a, b) => a + b, 0)).toBe(20);
    for (const d of r.dashboards) {
      expect(d.alerts).toBeGreaterThan(0);
      expect(d.alerts).toBeLessThan(20);
      expect(d.duplicated).toBe(0);
    }
  });

  it('two centrals on one shared PostgreSQL (--store postgres): every event stored once, alerted once, on every dashboard', { timeout: 150_000 }, async () => {
    const { code, stdout, stderr } = await cli(['--sites', '20', '--cameras-per-site', '2', '--events-per-site-per-min', '6', '--seconds', '10', '--instances', '2', '--store', 'postgres', '--stats-interval', '5', '--drain-seconds', '30', '--json'], 150_000);
    expect(code, stderr.slice(-2000)).toBe(0);
    const r = JSON.parse(stdout) as LoadResult;
    expect(r.params).toMatchObject({ instances: 2, store: 'postgres' });
    expect(r.sent).toMatchObject({ events: 20, failed: 0, unacked: 0 });
    expect(r.lost).toBe(0);
    expect(r.duplicated).toBe(0);
    // one events table: each sent event is in it exactly once, with both its snapshots
    expect(r.ingested).toMatchObject({ events: 20, notStored: 0, inSeveralInstances: 0, withoutAnnotatedSnapshot: 0, withoutCleanSnapshot: 0, duplicatesIgnored: 0 });
    expect(r.store).toMatchObject({ kind: 'postgres', shared: true, mqttDeliveriesPending: 0 });
    expect(r.store.snapshotFiles).toBe(20 * 2); // in the one shared files directory
    // the instances' own counts of the events they stored add up to the events in the database: none stored twice
    expect(r.instances.map((x) => x.eventsFrom)).toEqual(['metrics', 'metrics']);
    expect(r.instances.map((x) => x.events ?? NaN).reduce((a, b) => a + b, 0)).toBe(20);
    expect(r.recipient).toMatchObject({ alerts: 20, lost: 0, duplicated: 0, invalid: 0 });
    // each instance forwards its live feed to the others (LISTEN/NOTIFY): every dashboard gets every alert once
    expect(r.dashboards).toHaveLength(2);
    for (const d of r.dashboards) expect(d).toMatchObject({ alerts: 20, lost: 0, duplicated: 0, error: null });
    expect(isNum(r.postgres?.cpuPercent) && r.postgres!.processes > 1 && isNum(r.storage.dbBytesPer10kEvents)).toBe(true);
  });

  it('faults in one run on PostgreSQL: an instance SIGKILLed and restarted, the database down 3 s; nothing lost, every escalation once, still logged in', { timeout: 180_000 }, async () => {
    const { code, stdout, stderr } = await cli(['--sites', '20', '--cameras-per-site', '2', '--events-per-site-per-min', '12', '--seconds', '20', '--instances', '2', '--store', 'postgres',
      '--stats-interval', '5', '--drain-seconds', '40', '--escalate-after', '3', '--kill-instance-at', '4', '--restart-after', '3', '--db-down-at', '12', '--db-down-seconds', '3', '--json'], 180_000);
    expect([0, 1], stderr.slice(-2000)).toContain(code);
    const r = JSON.parse(stdout) as LoadResult;
    expect(r.faults.kill).toMatchObject({ instance: 2, atSec: 4, error: null, dashboardResumeStatus: 200 });
    expect(r.faults.kill!.restartedPid).not.toBe(r.faults.kill!.pid);
    expect(r.faults.dbDown).toMatchObject({ atSec: 12, downSec: 3, error: null });
    // every event stored once and at the phone; an alert sent just before the kill may come twice (at least once)
    expect(r.sent).toMatchObject({ events: 80, failed: 0, unacked: 0 });
    expect(r.ingested).toMatchObject({ events: 80, notStored: 0, withoutAnnotatedSnapshot: 0, withoutCleanSnapshot: 0 });
    expect(r.lost).toBe(0);
    expect(r.recipient).toMatchObject({ alerts: 80, lost: 0 });
    expect(r.recipient.duplicated).toBeLessThanOrEqual(2);
    expect(r.instances.map((x) => x.events ?? NaN).reduce((a, b) => a + b, 0)).toBe(80);
    // 8 of 10 kinds are tier 2: every one of them escalated to the vice-principal exactly once
    expect(r.escalations).toMatchObject({ afterSec: 3, due: 64, once: 64, missed: 0, twice: 0, deliveryRowsTwice: 0, notDueYet: 0 });
    expect(code).toBe(r.recipient.duplicated === 0 ? 0 : 1);
  });
});


/**
 * The faults a run can inject while it sends (--kill-instance-at, --db-down-at), driven by the
 * sending loop's once-a-second tick so that they land at a known second of the window:
 *
 * - kill: the last central is SIGKILLed (no shutdown: whatever it had received and not stored is in
 *   its broker session or lost, which is what the run then counts), started again --restart-after
 *   seconds later with the same config, as a service manager would; its dashboard then opens the
 *   stream again with the session cookie it logged in with before the kill.
 * - database down: the PostgreSQL cluster is stopped in immediate mode (connections cut) and started
 *   again --db-down-seconds later; the centrals must hold what arrives meanwhile and store it after.
 */
import type { LoadArgs } from './args.js';
import { centralCounters, startCentralProc, type CentralCounters, type CentralProc } from './centrals.js';
import type { Dashboard } from './observers.js';
import type { SharedPostgres } from './store.js';

export interface FaultResults {
  kill: {
    instance: number; atSec: number; pid: number;
    /** Its counters read just before the kill (the restarted process counts from 0). */
    countersAtKill: CentralCounters | null;
    /** Seconds from the kill until it answered /readyz again; null: it did not come back. */
    backAfterSec: number | null; restartedPid: number | null;
    /** HTTP status of its dashboard's stream re-opened with the old session cookie (200: still logged in). */
    dashboardResumeStatus: number | null;
    error: string | null;
  } | null;
  dbDown: { atSec: number; stopMs: number | null; downSec: number; startMs: number | null; error: string | null } | null;
}

export interface FaultDeps {
  centrals: CentralProc[];
  dashboards: Dashboard[];
  pg: SharedPostgres | null;
  env: Record<string, string>;
  centralDir: string;
  progress(msg: string): void;
  /** A central was started again: centrals[i] is now `c`. */
  onRestarted(c: CentralProc): void;
}

export class Faults {
  private readonly pending: Promise<void>[] = [];
  private readonly out: FaultResults = { kill: null, dbDown: null };
  constructor(private readonly a: LoadArgs, private readonly d: FaultDeps) {}

  get any(): boolean {
    return this.a.killInstanceAt !== undefined || this.a.dbDownAt !== undefined;
  }

  /** Called every second of the sending window with the seconds elapsed. */
  tick(el: number): void {
    if (this.a.killInstanceAt !== undefined && !this.out.kill && el >= this.a.killInstanceAt) this.pending.push(this.kill(el));
    if (this.a.dbDownAt !== undefined && !this.out.dbDown && el >= this.a.dbDownAt) this.pending.push(this.dbDown(el));
  }

  /** Waits for restarts under way (a central still starting, the database still down). */
  async settled(): Promise<FaultResults> {
    await Promise.all(this.pending);
    return this.out;
  }

  private async kill(el: number): Promise<void> {
    const { centrals, dashboards, progress } = this.d;
    const i = centrals.length - 1;
    const c = centrals[i]!;
    const k: NonNullable<FaultResults['kill']> = {
      instance: i + 1, atSec: el, pid: c.pid, countersAtKill: null, backAfterSec: null, restartedPid: null, dashboardResumeStatus: null, error: null,
    };
    this.out.kill = k;
    k.countersAtKill = await centralCounters(c.url);
    const t0 = performance.now();
    c.proc.kill('SIGKILL');
    progress(`t=${el}s central ${i + 1} (pid ${c.pid}) SIGKILLed; starting it again in ${this.a.restartAfter} s`);
    await new Promise((r) => setTimeout(r, this.a.restartAfter * 1000));
    try {
      const again = await startCentralProc(i, c, this.d.env, this.d.centralDir);
      centrals[i] = again;
      this.d.onRestarted(again);
      k.backAfterSec = Math.round((performance.now() - t0) / 100) / 10;
      k.restartedPid = again.pid;
      k.dashboardResumeStatus = await dashboards[i]!.resume();
      progress(`central ${i + 1} back ${k.backAfterSec} s after the kill (pid ${again.pid}); its dashboard's old session: HTTP ${k.dashboardResumeStatus}`);
    } catch (err) {
      k.error = (err as Error).message.slice(0, 500);
      progress(`central ${i + 1} did not come back: ${k.error}`);
    }
  }

  private async dbDown(el: number): Promise<void> {
    const r: NonNullable<FaultResults['dbDown']> = { atSec: el, stopMs: null, downSec: this.a.dbDownSeconds, startMs: null, error: null };
    this.out.dbDown = r;
    this.d.progress(`t=${el}s stopping PostgreSQL for ${this.a.dbDownSeconds} s`);
    try {
      const t = await this.d.pg!.outage(this.a.dbDownSeconds * 1000);
      r.stopMs = Math.round(t.stopMs);
      r.startMs = Math.round(t.startMs);
      this.d.progress(`PostgreSQL accepts connections again (stopped in ${r.stopMs} ms, started in ${r.startMs} ms)`);
    } catch (err) {
      r.error = (err as Error).message.slice(0, 500);
      this.d.progress(`PostgreSQL restart failed: ${r.error}`);
    }
  }
}

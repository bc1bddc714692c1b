/** CPU and memory of the processes under load, read from /proc (Linux). */
import { readdirSync, readFileSync } from 'node:fs';
import { procInfo } from '../bench/procstat.js';

export { procInfo };

/** Resident and peak resident memory (MiB) from /proc/<pid>/status. */
export function memMB(pid: number): { rss: number; hwm: number } | null {
  try {
    const s = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(s)?.[1] ?? NaN);
    return { rss: kb('VmRSS') / 1024, hwm: kb('VmHWM') / 1024 };
  } catch {
    return null;
  }
}

/** The pid of a process whose command line contains every one of `parts` (first found). */
export function findPid(parts: string[]): number | null {
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const cmd = readFileSync(`/proc/${d}/cmdline`, 'utf8').split('\0').join(' ');
      if (parts.every((p) => cmd.includes(p))) return Number(d);
    } catch { /* gone */ }
  }
  return null;
}

export function loadAvg(): [number, number, number] {
  const [a, b, c] = readFileSync('/proc/loadavg', 'utf8').split(' ').map(Number);
  return [a!, b!, c!];
}

/** Whole-machine busy CPU seconds (all cores) from /proc/stat. */
export function machineBusySec(): number {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const [user, nice, system, , , irq, softirq, steal] = f as number[];
  return (user! + nice! + system! + irq! + softirq! + (steal ?? 0)) / 100;
}

/** CPU % of one core and RSS of one process over a window, sampled by `sample()`. */
export class ProcMeter {
  private cpu0: number | null = null;
  private t0 = 0;
  private cpu1 = 0;
  private t1 = 0;
  maxRssMB = 0;
  lastRssMB = 0;
  constructor(readonly name: string, readonly pid: number) {}
  /** Start the window now (CPU counted from here; RSS peak from here). */
  begin(): void {
    const i = procInfo(this.pid);
    this.cpu0 = i?.cpuSec ?? null;
    this.t0 = performance.now();
    this.maxRssMB = 0;
    this.sample();
  }
  /** CPU seconds used so far (0 once the process is gone). */
  cpuSec(): number {
    return procInfo(this.pid)?.cpuSec ?? this.cpu1;
  }
  sample(): void {
    const i = procInfo(this.pid);
    if (!i) return;
    this.cpu1 = i.cpuSec;
    this.t1 = performance.now();
    const m = memMB(this.pid);
    this.lastRssMB = m?.rss ?? i.rssMB;
    this.maxRssMB = Math.max(this.maxRssMB, this.lastRssMB);
  }
  result(): { name: string; pid: number; cpuPercent: number | null; rssMB: number; maxRssMB: number } {
    const dt = (this.t1 - this.t0) / 1000;
    const cpu = this.cpu0 === null || dt <= 0 ? null : Math.round(((this.cpu1 - this.cpu0) / dt) * 1000) / 10;
    return { name: this.name, pid: this.pid, cpuPercent: cpu, rssMB: Math.round(this.lastRssMB), maxRssMB: Math.round(this.maxRssMB) };
  }
}

/** The unit of the times in /proc/<pid>/stat: USER_HZ, fixed at 100 by Linux's ABI whatever the kernel's HZ. */
const CLK_TCK = 100;

/** utime + stime and the reaped children's cutime + cstime (seconds), from /proc/<pid>/stat. */
function cpuWithChildren(pid: number): { self: number; children: number } | null {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ').map(Number);
    // f[0] is field 3 (state): utime 14, stime 15, cutime 16, cstime 17
    return { self: (f[11]! + f[12]!) / CLK_TCK, children: (f[13]! + f[14]!) / CLK_TCK };
  } catch {
    return null;
  }
}

/** Proportional set size (MiB): shared memory (PostgreSQL's buffers) counted once across the processes that map it. */
function pssMB(pid: number): number {
  try {
    return Number(/^Pss:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'))?.[1] ?? 0) / 1024;
  } catch {
    return 0;
  }
}

const childrenOf = (ppid: number) => readdirSync('/proc').filter((d) => /^\d+$/.test(d)).map(Number).filter((p) => procInfo(p)?.ppid === ppid);

/**
 * CPU of a server and its child processes together (PostgreSQL: the postmaster and one backend per
 * connection, which come and go). A child's time moves into the parent's cutime/cstime when it
 * exits, so parent (self + children) + Σ live children is continuous and its growth is exact,
 * however many backends started or ended in the window. Same methods as ProcMeter. `pid` may be a
 * function: a server restarted in the window (a new postmaster) is followed, its CPU added to the
 * old one's (what the old one used between its last sample and its end is not counted).
 */
export class TreeMeter {
  private cpu0: number | null = null;
  private t0 = 0;
  private cpu1 = 0;
  private t1 = 0;
  /** Each live child's CPU when first seen in the window (0 when born in it) and at the last sample. */
  private readonly kids = new Map<number, { base: number; last: number; kind: string }>();
  maxRssMB = 0;
  lastRssMB = 0;
  processes = 0;
  /** `kind(cmdline)` groups the children for `result().byKind` (e.g. client backends vs background workers). */
  /** CPU of servers that ended (restarted) before the current one, and the current one's last total. */
  private ended = 0;
  private current: { pid: number; total: number } | null = null;
  constructor(readonly name: string, private readonly pidOf: number | (() => number | null), private readonly kind: (cmdline: string) => string) {}
  get pid(): number {
    return this.current?.pid ?? (typeof this.pidOf === 'number' ? this.pidOf : this.pidOf() ?? 0);
  }

  private read(): { total: number; pss: number; live: { pid: number; cpu: number }[] } | null {
    const pid = typeof this.pidOf === 'number' ? this.pidOf : this.pidOf();
    const p = pid === null ? null : cpuWithChildren(pid);
    if (!p || pid === null) return null;
    const live = childrenOf(pid).flatMap((k) => { const c = procInfo(k); return c ? [{ pid: k, cpu: c.cpuSec }] : []; });
    const own = p.self + p.children + live.reduce((s, c) => s + c.cpu, 0);
    if (this.current && this.current.pid !== pid) this.ended += this.current.total;
    this.current = { pid, total: own };
    return { total: this.ended + own, pss: pssMB(pid) + live.reduce((s, c) => s + pssMB(c.pid), 0), live };
  }
  begin(): void {
    this.kids.clear();
    const r = this.read();
    this.cpu0 = r?.total ?? null;
    this.t0 = performance.now();
    for (const c of r?.live ?? []) this.kids.set(c.pid, { base: c.cpu, last: c.cpu, kind: this.kindOf(c.pid) });
    this.maxRssMB = 0;
    this.sample();
  }
  cpuSec(): number {
    return this.read()?.total ?? this.cpu1;
  }
  sample(): void {
    const r = this.read();
    if (!r) return;
    this.cpu1 = r.total;
    this.t1 = performance.now();
    for (const c of r.live) {
      const k = this.kids.get(c.pid);
      if (k) k.last = c.cpu;
      else this.kids.set(c.pid, { base: 0, last: c.cpu, kind: this.kindOf(c.pid) });
    }
    this.processes = 1 + r.live.length;
    this.lastRssMB = r.pss;
    this.maxRssMB = Math.max(this.maxRssMB, r.pss);
  }
  private kindOf(pid: number): string {
    try {
      return this.kind(readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim());
    } catch {
      return 'other';
    }
  }
  result(): { name: string; pid: number; cpuPercent: number | null; rssMB: number; maxRssMB: number; processes: number; byKind: Record<string, number> } {
    const dt = (this.t1 - this.t0) / 1000;
    const pct = (sec: number) => Math.round((sec / dt) * 1000) / 10;
    const byKind: Record<string, number> = {};
    let kidsSec = 0;
    for (const k of this.kids.values()) { byKind[k.kind] = (byKind[k.kind] ?? 0) + (k.last - k.base); kidsSec += k.last - k.base; }
    // what is left: the parent itself and children that ended between two samples
    const rest = this.cpu0 === null ? 0 : this.cpu1 - this.cpu0 - kidsSec;
    const out: Record<string, number> = {};
    if (dt > 0) for (const [k, v] of Object.entries({ ...byKind, 'server and ended processes': rest })) out[k] = pct(Math.max(0, v));
    return {
      name: this.name, pid: this.pid, cpuPercent: this.cpu0 === null || dt <= 0 ? null : pct(this.cpu1 - this.cpu0),
      rssMB: Math.round(this.lastRssMB), maxRssMB: Math.round(this.maxRssMB), processes: this.processes, byKind: out,
    };
  }
}

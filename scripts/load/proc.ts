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

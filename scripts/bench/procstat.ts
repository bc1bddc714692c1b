/** CPU time of processes from /proc (Linux): utime + stime, summed over the pids seen. */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

let TICK = 100;
try {
  TICK = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
} catch {
  /* default 100 */
}

export interface ProcInfo {
  pid: number;
  ppid: number;
  cpuSec: number;
  rssMB: number;
}

export function procInfo(pid: number): ProcInfo | null {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    // f[0] = state (field 3); utime = field 14, stime = 15, rss (pages) = 24.
    return { pid, ppid: Number(f[1]), cpuSec: (Number(f[11]) + Number(f[12])) / TICK, rssMB: (Number(f[21]) * 4096) / 2 ** 20 };
  } catch {
    return null;
  }
}

/**
 * Accumulates CPU seconds of a changing set of processes (ffmpeg restarts): remembers each pid's last
 * reading, so time of processes that exited before the end is kept up to their last sample.
 */
export class CpuMeter {
  private readonly base = new Map<number, number>();
  private readonly last = new Map<number, number>();
  constructor(private readonly find: () => number[]) {}

  /** Take a reading; pids first seen now start from their current CPU time unless `fromZero`. */
  sample(fromZero = false): void {
    for (const pid of this.find()) {
      const info = procInfo(pid);
      if (!info) continue;
      if (!this.base.has(pid)) this.base.set(pid, fromZero ? 0 : info.cpuSec);
      this.last.set(pid, info.cpuSec);
    }
  }

  /** CPU seconds since construction, per pid. */
  perPid(): Map<number, number> {
    const m = new Map<number, number>();
    for (const [pid, v] of this.last) m.set(pid, v - (this.base.get(pid) ?? v));
    return m;
  }

  total(): number {
    let t = 0;
    for (const v of this.perPid().values()) t += v;
    return t;
  }
}

/**
 * Central instances as separate processes, exactly as `npm run central -- --config FILE` runs them
 * (node --import tsx central/main.ts), each logging (pino JSON) to a file; their stores: store.ts.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, openSync, closeSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { InstanceFiles } from './org.js';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export interface CentralProc extends InstanceFiles {
  index: number;
  pid: number;
  url: string;
  logFile: string;
  startSeconds: number;
  proc: ChildProcess;
  stop(): Promise<number | null>;
}

/** The commit central runs from: `.commit` in an exported tree, else git (with "+dirty" when central/, protocol/ or common/ differ from it). */
export function centralCommit(dir: string): string {
  try {
    return readFileSync(path.join(dir, '.commit'), 'utf8').trim();
  } catch { /* not an export */ }
  try {
    const head = execFileSync('git', ['-C', dir, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['-C', dir, 'status', '--porcelain', '--', 'central', 'protocol', 'common'], { encoding: 'utf8' }).trim();
    return dirty ? `${head}+dirty` : head;
  } catch {
    return 'unknown';
  }
}

/** `env`: the variables its config names (broker account, database password), added to ours. */
export async function startCentralProc(index: number, files: InstanceFiles, env: Record<string, string>, centralDir = ROOT, logLevel = 'info'): Promise<CentralProc> {
  const t0 = performance.now();
  const logFile = path.join(path.dirname(files.configFile), `central-${index + 1}.log`);
  const fd = openSync(logFile, 'a');
  const proc = spawn(process.execPath, ['--import', 'tsx', 'central/main.ts', '--config', files.configFile], {
    cwd: centralDir,
    env: { ...process.env, ...env, LOG_LEVEL: logLevel },
    stdio: ['ignore', fd, fd],
  });
  closeSync(fd);
  let exit: number | null | undefined;
  proc.once('exit', (code, sig) => { exit = code ?? (sig ? -1 : null); });
  const url = `http://127.0.0.1:${files.httpPort}`;
  const deadline = Date.now() + 180_000;
  for (;;) {
    if (exit !== undefined) throw new Error(`central ${index + 1} exited (code ${exit}) before it was ready: ${tail(logFile)}`);
    try {
      const r = await fetch(`${url}/readyz`, { signal: AbortSignal.timeout(2000) });
      if (r.ok) break;
    } catch { /* not listening yet */ }
    if (Date.now() > deadline) {
      proc.kill('SIGKILL');
      throw new Error(`central ${index + 1} not ready after 180 s: ${tail(logFile)}`);
    }
    await sleep(200);
  }
  return {
    ...files, index, pid: proc.pid!, url, logFile, proc,
    startSeconds: (performance.now() - t0) / 1000,
    async stop() {
      if (exit !== undefined) return exit;
      const done = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
      proc.kill('SIGTERM');
      const t = setTimeout(() => proc.kill('SIGKILL'), 15_000);
      const code = await done;
      clearTimeout(t);
      return code;
    },
  };
}

export function tail(file: string, n = 1500): string {
  try {
    return readFileSync(file, 'utf8').slice(-n);
  } catch {
    return '(no log)';
  }
}

/** Warnings and errors central logged (pino levels ≥ 40), by message. */
export function logProblems(file: string): Record<string, number> {
  const out: Record<string, number> = {};
  if (!existsSync(file)) return out;
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      const l = JSON.parse(line) as { level?: number; msg?: string };
      if ((l.level ?? 0) >= 40) out[l.msg ?? '?'] = (out[l.msg ?? '?'] ?? 0) + 1;
    } catch { /* not JSON */ }
  }
  return out;
}

/** Central's own ingest counters from its /metrics (loopback needs no token); null while it does not answer. */
export interface CentralCounters {
  /** bk_central_messages_total: MQTT messages received (status, stats, events, snapshots). */
  messages: number;
  /** bk_central_events_total: events this instance stored as new (with a shared store: the insert that won). */
  events: number;
  /** bk_central_event_duplicates_total: events it received again and ignored (already stored, by it or another instance). */
  duplicates: number;
}

export async function centralCounters(url: string): Promise<CentralCounters | null> {
  try {
    const text = await (await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(5000) })).text();
    const v = (name: string) => Number(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\d+)`, 'm').exec(text)?.[1] ?? 0);
    return { messages: v('bk_central_messages_total'), events: v('bk_central_events_total'), duplicates: v('bk_central_event_duplicates_total') };
  } catch {
    return null;
  }
}

/**
 * Central instances as separate processes, exactly as `npm run central -- --config FILE` runs them
 * (node --import tsx central/main.ts), each with its own SQLite store, logging (pino JSON) to a file.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, openSync, closeSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { CENTRAL_ENV, type InstanceFiles } from './org.js';

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

export async function startCentralProc(index: number, files: InstanceFiles, account: { username: string; password: string }, centralDir = ROOT, logLevel = 'info'): Promise<CentralProc> {
  const t0 = performance.now();
  const logFile = path.join(path.dirname(files.configFile), `central-${index + 1}.log`);
  const fd = openSync(logFile, 'a');
  const proc = spawn(process.execPath, ['--import', 'tsx', 'central/main.ts', '--config', files.configFile], {
    cwd: centralDir,
    env: { ...process.env, [CENTRAL_ENV.user]: account.username, [CENTRAL_ENV.pass]: account.password, LOG_LEVEL: logLevel },
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

export interface StoreFigures {
  /** Event ids stored with their received_at. */
  events: Map<string, number>;
  eventsWithoutAnnotated: number;
  eventsWithoutClean: number;
  snapshots: number;
  snapshotBytes: number;
  deliveries: number;
  mqttDeliveriesPending: number;
  /** Logical size of the database (page_count × page_size, WAL content included). */
  dbBytes: number;
}

/** What one central stored, read through a second, read-only connection (WAL lets it read alongside). */
export function readStore(dataDir: string, eventPrefix: string): StoreFigures {
  const db = new Database(path.join(dataDir, 'central.db'), { readonly: true, fileMustExist: true });
  try {
    const events = new Map<string, number>();
    for (const r of db.prepare('SELECT id, received_at FROM events WHERE id LIKE ?').all(`${eventPrefix}%`) as { id: string; received_at: number }[]) events.set(r.id, r.received_at);
    const missing = (col: string) => (db.prepare(`SELECT count(*) FROM events e LEFT JOIN snapshots s ON s.sha256 = e.${col} WHERE s.sha256 IS NULL`).pluck().get() as number);
    const snaps = db.prepare('SELECT count(*) AS n, coalesce(sum(bytes), 0) AS b FROM snapshots').get() as { n: number; b: number };
    const pageSize = db.pragma('page_size', { simple: true }) as number;
    const pages = db.pragma('page_count', { simple: true }) as number;
    return {
      events,
      eventsWithoutAnnotated: missing('snap_annotated'),
      eventsWithoutClean: missing('snap_clean'),
      snapshots: snaps.n,
      snapshotBytes: snaps.b,
      deliveries: db.prepare('SELECT count(*) FROM deliveries').pluck().get() as number,
      mqttDeliveriesPending: db.prepare("SELECT count(*) FROM deliveries WHERE channel = 'mqtt' AND status IN ('pending', 'retrying')").pluck().get() as number,
      dbBytes: pageSize * pages,
    };
  } finally {
    db.close();
  }
}

/**
 * Where a run's centrals keep their data, and how the tool counts what they stored.
 *
 * - sqlite: each central its own `central.db` and snapshot files in its data dir; counted store by
 *   store, through a read-only second connection (WAL lets it read alongside central).
 * - postgres: a private cluster started for the run (scripts/load/postgres.ts), one database and one
 *   files directory that every central's `store` names (docs/deploy.md §8); counted once.
 *
 * Both are read with central's own SQL executor (central/store/sql.ts), so the counting queries are
 * written once for both dialects.
 */
import { copyFileSync, existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import type { StoreConfig } from '../../central/config/schema.js';
import { PostgresSql, SqliteSql, type Sql } from '../../central/store/sql.js';
import { CENTRAL_ENV } from './org.js';
import { createDatabase, pgOutage, pgStart, pgStop, startPgCluster } from './postgres.js';

export interface StoreFigures {
  /** Event ids stored with their received_at. */
  events: Map<string, number>;
  eventsWithoutAnnotated: number;
  eventsWithoutClean: number;
  /** Snapshot rows and the bytes they record. */
  snapshots: number;
  snapshotBytes: number;
  /** Snapshot files on disk under the files directory (what the rows point at). */
  snapshotFiles: number;
  snapshotFileBytes: number;
  deliveries: number;
  mqttDeliveriesPending: number;
  /** SQLite: page_count × page_size (WAL content included); PostgreSQL: pg_database_size (tables and indexes, not the cluster's WAL). */
  dbBytes: number;
  /** PostgreSQL: WAL written by the cluster so far (what a streaming replica receives); null with SQLite (its WAL is in dbBytes). */
  walBytes: number | null;
}

/** One store to count in: its SQL connection and the directory its snapshot files are in. */
export interface StoreReader {
  sql: Sql;
  filesDir: string;
}

export function sqliteReader(dataDir: string): StoreReader {
  return { sql: new SqliteSql(new Database(path.join(dataDir, 'central.db'), { readonly: true, fileMustExist: true })), filesDir: dataDir };
}

/** Files under `<filesDir>/snapshots/<xx>/` (central's content-addressed layout). */
function snapshotFiles(filesDir: string): { n: number; bytes: number } {
  const root = path.join(filesDir, 'snapshots');
  let n = 0, bytes = 0;
  if (!existsSync(root)) return { n, bytes };
  for (const d of readdirSync(root)) {
    for (const f of readdirSync(path.join(root, d))) {
      try { bytes += statSync(path.join(root, d, f)).size; n++; } catch { /* renamed away meanwhile */ }
    }
  }
  return { n, bytes };
}

export async function readStore(r: StoreReader, eventPrefix: string): Promise<StoreFigures> {
  const { sql } = r;
  const pgsql = sql.dialect.name === 'postgres';
  const events = new Map<string, number>();
  for (const e of await sql.all<{ id: string; received_at: number }>('SELECT id, received_at FROM events WHERE id LIKE ?', [`${eventPrefix}%`])) events.set(e.id, e.received_at);
  const missing = async (col: string) => Number(await sql.value(`SELECT count(*) FROM events e LEFT JOIN snapshots s ON s.sha256 = e.${col} WHERE s.sha256 IS NULL`));
  const snaps = (await sql.get<{ n: number; b: number }>('SELECT count(*) AS n, coalesce(sum(bytes), 0) AS b FROM snapshots'))!;
  const dbBytes = await sql.value(pgsql
    ? 'SELECT pg_database_size(current_database())'
    : 'SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()');
  const files = snapshotFiles(r.filesDir);
  return {
    events,
    eventsWithoutAnnotated: await missing('snap_annotated'),
    eventsWithoutClean: await missing('snap_clean'),
    snapshots: Number(snaps.n),
    snapshotBytes: Number(snaps.b),
    snapshotFiles: files.n,
    snapshotFileBytes: files.bytes,
    deliveries: Number(await sql.value('SELECT count(*) FROM deliveries')),
    mqttDeliveriesPending: Number(await sql.value("SELECT count(*) FROM deliveries WHERE channel = 'mqtt' AND status IN ('pending', 'retrying')")),
    dbBytes: Number(dbBytes),
    walBytes: pgsql ? Number(await sql.value("SELECT pg_current_wal_lsn() - '0/0'::pg_lsn")) : null,
  };
}

/** Site and camera rows a status message has been applied to (their status_at is set): status stored, not only received. */
export async function statusRowsStored(r: StoreReader): Promise<number> {
  const n = async (table: string, col: string) => Number(await r.sql.value(`SELECT count(*) FROM ${table} WHERE ${col} LIKE 'ld-%' AND status_at IS NOT NULL`));
  return (await n('sites', 'id')) + (await n('cameras', 'site_id'));
}

/** What became of the run's tier-2 escalations (--escalate-after): each due event escalated exactly once? */
export interface EscalationFigures {
  /** Tier-2 events whose escalation time (received + the delay, + 3 s for the 1 s check) had passed when counted. */
  due: number;
  once: number;
  /** Due and never escalated. */
  missed: number;
  /** Escalated more than once (any event of the run, due or not). */
  twice: number;
  /** (event, recipient, channel) with more than one level-1 delivery row: the vice-principal alerted twice. */
  deliveryRowsTwice: number;
  /** Not yet due when counted (left out of the above). */
  notDueYet: number;
}

export async function readEscalations(r: StoreReader, eventPrefix: string, afterMs: number, at = Date.now()): Promise<EscalationFigures> {
  const rows = await r.sql.all<{ received_at: number; n: number }>(
    `SELECT e.received_at, (SELECT count(*) FROM event_history h WHERE h.event_id = e.id AND h.action = 'escalated') AS n
       FROM events e WHERE e.id LIKE ? AND e.severity = 2`, [`${eventPrefix}%`]);
  const f: EscalationFigures = { due: 0, once: 0, missed: 0, twice: 0, deliveryRowsTwice: 0, notDueYet: 0 };
  for (const row of rows) {
    const n = Number(row.n);
    if (n > 1) f.twice++;
    if (Number(row.received_at) + afterMs + 3000 > at) { f.notDueYet++; continue; }
    f.due++;
    if (n === 1) f.once++;
    else if (n === 0) f.missed++;
  }
  f.deliveryRowsTwice = Number(await r.sql.value(
    `SELECT count(*) FROM (SELECT event_id FROM deliveries WHERE event_id LIKE ? AND level = 1
       GROUP BY event_id, recipient_id, channel HAVING count(*) > 1) AS twice`, [`${eventPrefix}%`]));
  return f;
}

export interface Statement { query: string; calls: number; totalMs: number; meanMs: number; rows: number }

export interface SharedPostgres {
  /** The `store` section every central gets. */
  config: StoreConfig;
  /** For the central processes: the database password, named by config.passwordEnv. */
  env: Record<string, string>;
  reader: StoreReader;
  /** The postmaster's pid now (a new one after `outage`); null while it is down. */
  readonly postmasterPid: number | null;
  startSeconds: number;
  /** WARNING and worse in the cluster's log, by severity and message. */
  logProblems(): Record<string, number>;
  /** Starts counting statements anew (pg_stat_statements, every database of the cluster). */
  resetStatements(): Promise<void>;
  /** The statements that took the most server time since the reset, and all of them together. */
  topStatements(n: number): Promise<{ top: Statement[]; calls: number; totalMs: number }>;
  /** Stops the cluster at once (connections cut) and starts it `downMs` later (--db-down-at). */
  outage(downMs: number): Promise<{ stopMs: number; startMs: number }>;
  /** Closes the tool's connection and removes the cluster (`keepLogIn`: copy its log there first). */
  stop(keepLogIn?: string): Promise<void>;
}

export async function startSharedPostgres(runDir: string, poolSize: number): Promise<SharedPostgres> {
  const t0 = performance.now();
  const cluster = await startPgCluster();
  const logFile = path.join(path.dirname(cluster.dataDir), 'log');
  let reader: StoreReader | null = null;
  const stop = async (keepLogIn?: string) => {
    await reader?.sql.close().catch(() => {});
    if (keepLogIn) { try { copyFileSync(logFile, path.join(keepLogIn, 'postgres.log')); } catch { /* no log yet */ } }
    cluster.stop();
  };
  try {
    // pg_stat_statements (PostgreSQL's contrib, loaded at server start) says which of central's queries the server's CPU goes to
    const admin = new PostgresSql({ connectionString: cluster.url, password: cluster.password, max: 1 });
    await admin.exec("ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements'").finally(() => admin.close());
    pgStop(cluster);
    pgStart(cluster);
    const url = await createDatabase(cluster, 'bk_load');
    const filesDir = path.join(runDir, 'files');
    const sql = new PostgresSql({ connectionString: url, password: cluster.password, max: 2 });
    reader = { sql, filesDir };
    await sql.exec('CREATE EXTENSION pg_stat_statements');
    return {
      config: { url, passwordEnv: CENTRAL_ENV.dbPass, poolSize, filesDir },
      env: { [CENTRAL_ENV.dbPass]: cluster.password },
      reader,
      // postmaster.pid: the postmaster's pid on its first line (the file belongs to the cluster's owner; we are that user or root)
      get postmasterPid() {
        try { return Number(readFileSync(path.join(cluster.dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]); } catch { return null; }
      },
      startSeconds: (performance.now() - t0) / 1000,
      logProblems: () => pgLogProblems(logFile),
      outage: (downMs) => pgOutage(cluster, downMs),
      resetStatements: async () => { await sql.value('SELECT pg_stat_statements_reset()'); },
      topStatements: async (n) => {
        const all = (await sql.get<{ calls: number; total: number }>('SELECT coalesce(sum(calls), 0) AS calls, coalesce(sum(total_exec_time), 0) AS total FROM pg_stat_statements'))!;
        const top = (await sql.all<{ query: string; calls: number; total: number; rows: number }>(
          'SELECT query, calls, total_exec_time AS total, rows FROM pg_stat_statements ORDER BY total_exec_time DESC LIMIT ?', [n],
        )).map((q) => ({
          query: q.query.replace(/\s+/g, ' ').slice(0, 200), calls: Number(q.calls), totalMs: Math.round(Number(q.total)),
          meanMs: Math.round((Number(q.total) / Math.max(1, Number(q.calls))) * 100) / 100, rows: Number(q.rows),
        }));
        return { top, calls: Number(all.calls), totalMs: Math.round(Number(all.total)) };
      },
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** `2026-12-07 07:00:00.000 UTC [123] ERROR:  message` (log_line_prefix '%m [%p] ', PostgreSQL's default). */
function pgLogProblems(file: string): Record<string, number> {
  const out: Record<string, number> = {};
  let text = '';
  try { text = readFileSync(file, 'utf8'); } catch { return out; }
  for (const line of text.split('\n')) {
    const m = /\] (WARNING|ERROR|FATAL|PANIC):\s+(.*)$/.exec(line);
    if (!m) continue;
    const key = `${m[1]}: ${m[2]!.slice(0, 120)}`;
    out[key] = (out[key] ?? 0) + 1;
  }
  return out;
}

/** PostgreSQL's process titles, grouped: the centrals' connections, autovacuum workers, and each background process by name. */
export function pgProcessKind(cmdline: string): string {
  const title = cmdline.replace(/^postgres:\s*/, '');
  if (/^\S+ \S+ [\d.:]+\(\d+\)/.test(title)) return 'connections';
  if (title.startsWith('autovacuum worker')) return 'autovacuum workers';
  return title.split(/\s{2,}/)[0]!.trim() || 'other';
}

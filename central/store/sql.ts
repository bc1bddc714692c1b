/**
 * The SQL executor central's store runs on: one asynchronous interface over SQLite (better-sqlite3,
 * the embedded default) and PostgreSQL (`pg`, a pool), so the store's queries are written once.
 *
 * Queries use `?` placeholders (turned into `$1…` for PostgreSQL) and the portable subset both
 * dialects share; the few differences are the `Dialect` fragments below. Transactions join through
 * AsyncLocalStorage: every query made while `tx(fn)` runs — in the store's helpers too — goes to that
 * transaction, without passing a handle around.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { createHash } from 'node:crypto';
import Database from 'better-sqlite3';
import pg from 'pg';
import { childLog } from '../../common/log.js';

const log = childLog({ mod: 'central.store' });

export type Row = Record<string, unknown>;
export type Params = readonly unknown[];

/** SQL fragments that differ between the dialects. */
export interface Dialect {
  readonly name: 'sqlite' | 'postgres';
  /** `col` is one of `values` (one parameter whatever their number). */
  inList(col: string, values: Iterable<unknown>): { sql: string; params: unknown[] };
  /** The larger of two expressions. */
  greatest(a: string, b: string): string;
}

export interface Sql {
  readonly dialect: Dialect;
  all<T = Row>(text: string, params?: Params): Promise<T[]>;
  get<T = Row>(text: string, params?: Params): Promise<T | undefined>;
  /** The first column of the first row. */
  value<T = unknown>(text: string, params?: Params): Promise<T | undefined>;
  /** The first column of every row. */
  values<T = unknown>(text: string, params?: Params): Promise<T[]>;
  /** A statement without rows (use `get` with RETURNING for generated ids). */
  run(text: string, params?: Params): Promise<{ changes: number }>;
  /** Statements without parameters, separated by `;` (migrations). */
  exec(script: string): Promise<void>;
  /** Runs `fn` in a transaction (or in the enclosing one); rolls back when it throws. */
  tx<T>(fn: () => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

/**
 * The database is unreachable or restarting (worth trying again), as opposed to a statement that
 * fails on its own: connection refused / reset / timed out, PostgreSQL shutting down or starting
 * (57P01-57P03, class 08), SQLite busy or locked past its timeout.
 */
export function isTransientStoreError(err: unknown): boolean {
  const e = err as { code?: unknown; message?: unknown } | null;
  const code = typeof e?.code === 'string' ? e.code : '';
  if (['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', '57P01', '57P02', '57P03', 'SQLITE_BUSY', 'SQLITE_LOCKED'].includes(code) || code.startsWith('08')) return true;
  const msg = typeof e?.message === 'string' ? e.message : '';
  return /Connection terminated|timeout exceeded when trying to connect|the database system is (starting up|shutting down)|Client has encountered a connection error/i.test(msg);
}

const firstColumn = (r: Row | undefined) => (r ? Object.values(r)[0] : undefined);

// ------------------------------------------------------------------------------------------ SQLite

const sqliteDialect: Dialect = {
  name: 'sqlite',
  inList: (col, values) => ({ sql: `${col} IN (SELECT value FROM json_each(?))`, params: [JSON.stringify([...values])] }),
  greatest: (a, b) => `MAX(${a}, ${b})`,
};

/** better-sqlite3 binds numbers, strings, bigints, Buffers and null only. */
const sqliteParam = (v: unknown) => (v === undefined ? null : typeof v === 'boolean' ? (v ? 1 : 0) : v);

/**
 * One connection, synchronous underneath. A transaction spans awaits, so while one is open every
 * other caller waits for it to end (their statements would otherwise run inside it).
 */
export class SqliteSql implements Sql {
  readonly dialect = sqliteDialect;
  private readonly inTx = new AsyncLocalStorage<{ open: boolean }>();
  private active: Promise<void> | null = null;
  private readonly statements = new Map<string, Database.Statement>();

  constructor(readonly db: Database.Database) {}

  static open(file: string): SqliteSql {
    const db = new Database(file);
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    db.pragma('foreign_keys = ON');
    db.pragma('busy_timeout = 5000');
    return new SqliteSql(db);
  }

  private stmt(text: string): Database.Statement {
    let s = this.statements.get(text);
    if (!s) {
      s = this.db.prepare(text);
      if (this.statements.size > 500) this.statements.clear(); // dynamic queries (filters) stay bounded
      this.statements.set(text, s);
    }
    return s;
  }

  /**
   * The open transaction this caller must wait for (it is not part of it), or null. Callers loop on
   * it and then act with no await in between: an `await` after the check would let another caller
   * open a transaction first.
   */
  private blocker(): Promise<void> | null {
    return this.active && !this.inTx.getStore()?.open ? this.active : null;
  }

  async all<T>(text: string, params: Params = []): Promise<T[]> {
    for (let w = this.blocker(); w; w = this.blocker()) await w;
    return this.stmt(text).all(...params.map(sqliteParam)) as T[];
  }
  async get<T>(text: string, params: Params = []): Promise<T | undefined> {
    for (let w = this.blocker(); w; w = this.blocker()) await w;
    return this.stmt(text).get(...params.map(sqliteParam)) as T | undefined;
  }
  async value<T>(text: string, params: Params = []): Promise<T | undefined> {
    return firstColumn(await this.get<Row>(text, params)) as T | undefined;
  }
  async values<T>(text: string, params: Params = []): Promise<T[]> {
    for (let w = this.blocker(); w; w = this.blocker()) await w;
    const s = this.stmt(text);
    try {
      return s.raw(true).all(...params.map(sqliteParam)).map((r) => (r as unknown[])[0] as T);
    } finally {
      s.raw(false); // the statement is cached: `get` must see objects again
    }
  }
  async run(text: string, params: Params = []): Promise<{ changes: number }> {
    for (let w = this.blocker(); w; w = this.blocker()) await w;
    return { changes: this.stmt(text).run(...params.map(sqliteParam)).changes };
  }
  async exec(script: string): Promise<void> {
    for (let w = this.blocker(); w; w = this.blocker()) await w;
    this.db.exec(script);
  }

  async tx<T>(fn: () => Promise<T>): Promise<T> {
    if (this.inTx.getStore()?.open) return fn();
    for (let w = this.blocker(); w; w = this.blocker()) await w;
    const ctx = { open: true }; // from here to BEGIN nothing awaits
    let end!: () => void;
    this.active = new Promise((resolve) => { end = resolve; });
    try {
      this.db.exec('BEGIN IMMEDIATE');
      try {
        const out = await this.inTx.run(ctx, fn);
        this.db.exec('COMMIT');
        return out;
      } catch (err) {
        if (this.db.inTransaction) this.db.exec('ROLLBACK');
        throw err;
      }
    } finally {
      ctx.open = false; // work started inside and still running later waits its turn like anyone
      this.active = null;
      end();
    }
  }

  async close(): Promise<void> {
    for (let w = this.blocker(); w; w = this.blocker()) await w;
    this.db.close();
  }
}

// -------------------------------------------------------------------------------------- PostgreSQL

const postgresDialect: Dialect = {
  name: 'postgres',
  inList: (col, values) => ({ sql: `${col} = ANY(?)`, params: [[...values]] }),
  greatest: (a, b) => `GREATEST(${a}, ${b})`,
};

/** `?` → `$n`, outside quoted strings and identifiers. */
export function numberPlaceholders(text: string): string {
  let n = 0, out = '', quote: string | null = null;
  for (const ch of text) {
    if (quote) { if (ch === quote) quote = null; out += ch; continue; }
    if (ch === "'" || ch === '"') { quote = ch; out += ch; continue; }
    out += ch === '?' ? `$${++n}` : ch;
  }
  return out;
}

/**
 * Numbers come back as numbers: counts and BIGINT millisecond timestamps (int8) are far below 2^53;
 * NUMERIC only appears as the result of arithmetic on them.
 */
const pgTypes = {
  getTypeParser: ((oid: number, format?: string) => {
    if (oid === 20 || oid === 1700) return (v: string) => Number(v);
    return pg.types.getTypeParser(oid, format as 'text');
  }) as typeof pg.types.getTypeParser,
};

export interface PostgresOptions {
  connectionString: string;
  password?: string;
  /** Connections per instance. */
  max?: number;
  /** Idle-in-transaction and statement limit (ms), so a stuck query cannot hold a lock for ever. */
  statementTimeoutMs?: number;
}

export class PostgresSql implements Sql {
  readonly dialect = postgresDialect;
  private readonly inTx = new AsyncLocalStorage<{ client: pg.PoolClient; open: boolean }>();
  private readonly texts = new Map<string, { text: string; name: string }>();
  readonly pool: pg.Pool;
  private readonly url: string;

  constructor(o: PostgresOptions) {
    // pg lets the URL's (absent) password override a `password` option: put it in the URL instead.
    const url = new URL(o.connectionString);
    if (o.password !== undefined) url.password = encodeURIComponent(o.password);
    this.url = url.toString();
    this.pool = new pg.Pool({
      connectionString: this.url, max: o.max ?? 10, types: pgTypes,
      statement_timeout: o.statementTimeoutMs ?? 30_000, idle_in_transaction_session_timeout: o.statementTimeoutMs ?? 30_000,
      connectionTimeoutMillis: 10_000,
    });
    // A dropped idle connection (database restart) is replaced on next use; it must not crash central.
    this.pool.on('error', (err) => log.warn({ err: err.message }, 'idle database connection lost; the pool opens another when needed'));
  }

  /**
   * The statement as PostgreSQL gets it, with a name: the driver then prepares it once per connection
   * instead of having every execution parsed and planned again (over half of PostgreSQL's CPU under
   * load, docs/scale.md). The store's texts are a bounded set (filters vary a few clauses).
   */
  private text(sql: string): { text: string; name: string } {
    let t = this.texts.get(sql);
    if (!t) {
      t = { text: numberPlaceholders(sql), name: `bk_${createHash('sha1').update(sql).digest('hex').slice(0, 16)}` };
      if (this.texts.size > 500) this.texts.clear();
      this.texts.set(sql, t);
    }
    return t;
  }

  private async query(sql: string, params: Params = [], rowMode?: 'array'): Promise<pg.QueryResult> {
    const ctx = this.inTx.getStore();
    const q = { ...this.text(sql), values: params.map((v) => (v === undefined ? null : v)), ...(rowMode ? { rowMode } : {}) };
    return ctx?.open ? ctx.client.query(q) : this.pool.query(q);
  }

  async all<T>(text: string, params?: Params): Promise<T[]> { return (await this.query(text, params)).rows as T[]; }
  async get<T>(text: string, params?: Params): Promise<T | undefined> { return (await this.query(text, params)).rows[0] as T | undefined; }
  async value<T>(text: string, params?: Params): Promise<T | undefined> { return firstColumn((await this.query(text, params)).rows[0] as Row | undefined) as T | undefined; }
  async values<T>(text: string, params?: Params): Promise<T[]> { return (await this.query(text, params, 'array')).rows.map((r) => (r as unknown[])[0] as T); }
  async run(text: string, params?: Params): Promise<{ changes: number }> { return { changes: (await this.query(text, params)).rowCount ?? 0 }; }
  async exec(script: string): Promise<void> {
    const ctx = this.inTx.getStore();
    await (ctx?.open ? ctx.client.query(script) : this.pool.query(script));
  }

  async tx<T>(fn: () => Promise<T>): Promise<T> {
    if (this.inTx.getStore()?.open) return fn();
    const client = await this.pool.connect();
    const ctx = { client, open: true };
    let broken = false;
    try {
      await client.query('BEGIN');
      const out = await this.inTx.run(ctx, fn);
      await client.query('COMMIT');
      return out;
    } catch (err) {
      await client.query('ROLLBACK').catch(() => { broken = true; });
      throw err;
    } finally {
      ctx.open = false;
      client.release(broken);
    }
  }

  /** Sends `payload` to every session listening on `channel` (at commit, when inside a transaction). */
  async notify(channel: string, payload: string): Promise<void> {
    await this.query('SELECT pg_notify(?, ?)', [channel, payload]);
  }

  /**
   * Calls `onPayload` for each notification on `channel`, on a connection of its own that is opened
   * again after the database restarts (notifications sent while it was down are missed: callers
   * treat the feed as live updates, not as a log). Returns a function that stops listening.
   */
  listen(channel: string, onPayload: (payload: string) => void, onState?: (up: boolean, err?: Error) => void): () => Promise<void> {
    let client: pg.Client | null = null, stopped = false, retry: NodeJS.Timeout | null = null;
    const connect = async () => {
      if (stopped) return;
      const c = new pg.Client({ connectionString: this.url, types: pgTypes });
      const lost = (err?: Error) => {
        if (client !== c) return;
        client = null;
        onState?.(false, err);
        c.end().catch(() => {}); // the connection is already broken: nothing to learn from closing it
        if (!stopped) retry = setTimeout(connect, 1000);
      };
      c.on('error', lost);
      c.on('end', () => lost());
      c.on('notification', (n) => { if (n.channel === channel && n.payload !== undefined) onPayload(n.payload); });
      client = c;
      try {
        await c.connect();
        await c.query(`LISTEN ${pg.escapeIdentifier(channel)}`);
        onState?.(true);
      } catch (err) {
        lost(err as Error);
      }
    };
    void connect();
    return async () => {
      stopped = true;
      if (retry) clearTimeout(retry);
      const c = client;
      client = null;
      await c?.end().catch(() => {});
    };
  }

  async close(): Promise<void> { await this.pool.end(); }
}

/**
 * The agent's durable outbox: every message bound for central is written here first, in one SQLite
 * transaction per logical unit (an event = its snapshot JPEGs + the event JSON), and leaves only when
 * the uplink has the broker's PUBACK for it.
 *
 * Durability: WAL journal + `synchronous=FULL`.
 *  - Surviving `kill -9` of the process only needs WAL with synchronous=NORMAL: a committed
 *    transaction is in the WAL file (OS page cache), which outlives the process.
 *  - A canteen box also loses power. With NORMAL the last commits before a power cut may roll back;
 *    with FULL the WAL is fsynced on every commit, so an enqueue that returned is on disk.
 *    Events are a few per minute, so the fsync per enqueue is negligible; acks (one fsync each
 *    with FULL) are batched by the uplink into one transaction via `ackMany`.
 *
 * Size cap (`maxPendingBytes`): nothing important is ever lost. When the pending payload total
 * exceeds the cap, the payloads of *droppable* rows (snapshot JPEGs) are deleted oldest first, logged
 * at error level with the rows dropped; non-droppable rows (event JSON, voice status) are never
 * dropped, even above the cap (logged once per crossing).
 */
import { EventEmitter } from 'node:events';
import { existsSync, mkdirSync, renameSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { childLog } from '../../common/log.js';

const log = childLog({ module: 'outbox' });

export type Qos = 0 | 1 | 2;

export interface OutboxMessage {
  topic: string;
  payload: Buffer | string;
  /** Default 1. */
  qos?: Qos;
  /** Default false. */
  retain?: boolean;
  /** May be dropped under the size cap (snapshot images). Default false: never dropped. */
  droppable?: boolean;
}

export interface OutboxRow {
  id: number;
  topic: string;
  payload: Buffer;
  qos: Qos;
  retain: boolean;
  droppable: boolean;
  /** ms since epoch */
  createdAt: number;
  attempts: number;
  lastError: string | null;
}

export interface OutboxOptions {
  /** Directory holding `outbox.sqlite` (the site config's `storage.dir`). */
  dir: string;
  /** File name inside `dir`. Default `outbox.sqlite`. */
  fileName?: string;
  /** Cap on the total payload bytes pending; default 512 MiB. */
  maxPendingBytes?: number;
  /** Default FULL (see the module comment). */
  synchronous?: 'NORMAL' | 'FULL';
  /** Clock, for tests. */
  now?: () => number;
}

export class OutboxError extends Error {
  constructor(
    readonly file: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(`outbox ${file}: ${message}`, options);
    this.name = 'OutboxError';
  }
}

interface DbRow {
  id: number;
  topic: string;
  payload: Buffer;
  qos: number;
  retain: number;
  droppable: number;
  createdAt: number;
  attempts: number;
  lastError: string | null;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS outbox (
  id         INTEGER PRIMARY KEY AUTOINCREMENT,
  topic      TEXT    NOT NULL,
  payload    BLOB    NOT NULL,
  bytes      INTEGER NOT NULL,
  qos        INTEGER NOT NULL DEFAULT 1,
  retain     INTEGER NOT NULL DEFAULT 0,
  droppable  INTEGER NOT NULL DEFAULT 0,
  createdAt  INTEGER NOT NULL,
  attempts   INTEGER NOT NULL DEFAULT 0,
  lastError  TEXT
);
CREATE INDEX IF NOT EXISTS outbox_droppable ON outbox (droppable, id);
CREATE TABLE IF NOT EXISTS outbox_meta (k TEXT PRIMARY KEY, v INTEGER NOT NULL);
`;

/** Events: `enqueued` (ids: number[]) after each committed enqueue; `dropped` (rows: {id, topic, bytes}[]). */
export class Outbox extends EventEmitter {
  readonly file: string;
  private readonly db: Database.Database;
  private readonly maxPendingBytes: number;
  private readonly now: () => number;
  private bytes: number;
  private overCapLogged = false;
  private closed = false;
  private readonly stmts: {
    insert: Database.Statement;
    peek: Database.Statement;
    del: Database.Statement;
    count: Database.Statement;
    oldest: Database.Statement;
    sumBytes: Database.Statement;
    attempt: Database.Statement;
    oldestDroppable: Database.Statement;
  };

  private constructor(file: string, db: Database.Database, opts: OutboxOptions) {
    super();
    this.file = file;
    this.db = db;
    this.maxPendingBytes = opts.maxPendingBytes ?? 512 * 1024 * 1024;
    this.now = opts.now ?? Date.now;
    this.stmts = {
      insert: db.prepare(
        'INSERT INTO outbox (topic, payload, bytes, qos, retain, droppable, createdAt) VALUES (?, ?, ?, ?, ?, ?, ?)',
      ),
      peek: db.prepare('SELECT id, topic, payload, qos, retain, droppable, createdAt, attempts, lastError FROM outbox WHERE id > ? ORDER BY id LIMIT ?'),
      del: db.prepare('DELETE FROM outbox WHERE id = ? RETURNING bytes'),
      count: db.prepare('SELECT count(*) AS n FROM outbox'),
      oldest: db.prepare('SELECT createdAt FROM outbox ORDER BY id LIMIT 1'),
      sumBytes: db.prepare('SELECT coalesce(sum(bytes), 0) AS b FROM outbox'),
      attempt: db.prepare('UPDATE outbox SET attempts = attempts + 1, lastError = ? WHERE id = ?'),
      oldestDroppable: db.prepare('SELECT id, topic, bytes FROM outbox WHERE droppable = 1 ORDER BY id LIMIT ?'),
    };
    this.bytes = (this.stmts.sumBytes.get() as { b: number }).b;
  }

  /**
   * Open (or create) `<dir>/outbox.sqlite`. A file that is not a database or fails SQLite's
   * quick_check is moved aside to `outbox.sqlite.corrupt-<ts>` (with its -wal/-shm) and a fresh
   * outbox is started; this is logged at error level naming both files.
   */
  static open(opts: OutboxOptions): Outbox {
    const file = path.resolve(opts.dir, opts.fileName ?? 'outbox.sqlite');
    try {
      mkdirSync(path.dirname(file), { recursive: true });
    } catch (err) {
      throw new OutboxError(file, `cannot create directory ${path.dirname(file)}: ${(err as Error).message}`, { cause: err });
    }
    let db: Database.Database;
    try {
      db = openChecked(file, opts);
    } catch (err) {
      if (!isCorruption(err)) throw new OutboxError(file, `cannot open: ${(err as Error).message}`, { cause: err });
      const aside = `${file}.corrupt-${new Date().toISOString().replace(/[:.]/g, '-')}`;
      for (const suffix of ['', '-wal', '-shm']) {
        if (existsSync(file + suffix)) renameSync(file + suffix, aside + suffix);
      }
      log.error({ file, movedTo: aside, err: (err as Error).message }, 'outbox database is corrupt: moved aside, starting a fresh outbox (pending messages in the old file are NOT sent)');
      try {
        db = openChecked(file, opts);
      } catch (err2) {
        throw new OutboxError(file, `cannot open a fresh outbox after moving the corrupt one to ${aside}: ${(err2 as Error).message}`, { cause: err2 });
      }
    }
    const ob = new Outbox(file, db, opts);
    log.info({ file, pending: ob.pending(), bytes: ob.pendingBytes() }, 'outbox open');
    return ob;
  }

  /**
   * Write several messages in ONE transaction, in the given order (ids ascend in that order).
   * Returns the new row ids. Then applies the size cap and emits `enqueued`.
   */
  enqueue(messages: readonly OutboxMessage[]): number[] {
    this.assertOpen();
    if (messages.length === 0) return [];
    messages.forEach((m, i) => {
      if (typeof m.topic !== 'string' || m.topic.length === 0) throw new OutboxError(this.file, `enqueue: messages[${i}].topic must be a non-empty string`);
      if (m.topic.includes('+') || m.topic.includes('#')) throw new OutboxError(this.file, `enqueue: messages[${i}].topic "${m.topic}" contains an MQTT wildcard`);
      if (!Buffer.isBuffer(m.payload) && typeof m.payload !== 'string') throw new OutboxError(this.file, `enqueue: messages[${i}].payload must be a Buffer or string`);
      if (m.qos !== undefined && m.qos !== 0 && m.qos !== 1 && m.qos !== 2) throw new OutboxError(this.file, `enqueue: messages[${i}].qos must be 0, 1 or 2 (got ${String(m.qos)})`);
    });
    const now = this.now();
    let added = 0;
    const ids = this.db.transaction(() => {
      const out: number[] = [];
      for (const m of messages) {
        const payload = Buffer.isBuffer(m.payload) ? m.payload : Buffer.from(m.payload, 'utf8');
        const r = this.stmts.insert.run(m.topic, payload, payload.length, m.qos ?? 1, m.retain ? 1 : 0, m.droppable ? 1 : 0, now);
        out.push(Number(r.lastInsertRowid));
        added += payload.length;
      }
      return out;
    })();
    this.bytes += added;
    if (this.bytes > this.maxPendingBytes) this.enforceCap();
    this.emit('enqueued', ids);
    return ids;
  }

  /** Up to `limit` rows in id order, with id > `afterId` (default: from the start). */
  peek(limit: number, afterId = 0): OutboxRow[] {
    this.assertOpen();
    const rows = this.stmts.peek.all(afterId, Math.max(0, Math.floor(limit))) as DbRow[];
    return rows.map((r) => ({
      id: r.id,
      topic: r.topic,
      payload: r.payload,
      qos: r.qos as Qos,
      retain: r.retain === 1,
      droppable: r.droppable === 1,
      createdAt: r.createdAt,
      attempts: r.attempts,
      lastError: r.lastError,
    }));
  }

  /** Delete a delivered row. Returns false when it was not there (already acked or dropped). */
  ack(id: number): boolean {
    return this.ackMany([id]) === 1;
  }

  /** Delete several delivered rows in one transaction (one fsync). Returns how many existed. */
  ackMany(ids: readonly number[]): number {
    this.assertOpen();
    if (ids.length === 0) return 0;
    let n = 0;
    let freed = 0;
    this.db.transaction(() => {
      for (const id of ids) {
        const r = this.stmts.del.get(id) as { bytes: number } | undefined;
        if (r) {
          n++;
          freed += r.bytes;
        }
      }
    })();
    this.bytes -= freed;
    if (this.overCapLogged && this.bytes <= this.maxPendingBytes) this.overCapLogged = false;
    return n;
  }

  /** Record a failed publish attempt (kept for diagnosis; the row stays pending). */
  recordAttempt(id: number, error: string | null): void {
    this.assertOpen();
    this.stmts.attempt.run(error === null ? null : error.slice(0, 500), id);
  }

  pending(): number {
    this.assertOpen();
    return (this.stmts.count.get() as { n: number }).n;
  }

  /** Total payload bytes pending. */
  pendingBytes(): number {
    return this.bytes;
  }

  /** Age of the oldest pending row in ms, or null when empty. */
  oldestAgeMs(): number | null {
    this.assertOpen();
    const r = this.stmts.oldest.get() as { createdAt: number } | undefined;
    return r ? Math.max(0, this.now() - r.createdAt) : null;
  }

  /** `PRAGMA integrity_check` result ('ok' when healthy). */
  integrityCheck(): string {
    this.assertOpen();
    const rows = this.db.pragma('integrity_check') as { integrity_check: string }[];
    return rows.map((r) => r.integrity_check).join('; ');
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    try {
      this.db.pragma('wal_checkpoint(TRUNCATE)');
    } catch {
      /* best effort */
    }
    this.db.close();
  }

  get isClosed(): boolean {
    return this.closed;
  }

  private assertOpen(): void {
    if (this.closed) throw new OutboxError(this.file, 'used after close()');
  }

  /** Drop droppable rows (oldest first) until under the cap; never drop the others. */
  private enforceCap(): void {
    const dropped: { id: number; topic: string; bytes: number }[] = [];
    this.db.transaction(() => {
      while (this.bytes > this.maxPendingBytes) {
        const batch = this.stmts.oldestDroppable.all(64) as { id: number; topic: string; bytes: number }[];
        if (batch.length === 0) break;
        for (const r of batch) {
          if (this.bytes <= this.maxPendingBytes) break;
          this.stmts.del.run(r.id);
          this.bytes -= r.bytes;
          dropped.push(r);
        }
      }
    })();
    if (dropped.length > 0) {
      log.error(
        {
          file: this.file,
          droppedRows: dropped.length,
          droppedBytes: dropped.reduce((a, r) => a + r.bytes, 0),
          topics: dropped.slice(0, 20).map((r) => r.topic),
          capBytes: this.maxPendingBytes,
        },
        'OUTBOX FULL: dropped the oldest snapshot images to stay under the cap (their events are kept and will still be sent)',
      );
      this.emit('dropped', dropped);
    }
    if (this.bytes > this.maxPendingBytes && !this.overCapLogged) {
      this.overCapLogged = true;
      log.error(
        { file: this.file, pendingBytes: this.bytes, capBytes: this.maxPendingBytes, pending: this.pending() },
        'OUTBOX OVER CAP with only non-droppable messages (events): keeping them all; the uplink has been down too long',
      );
    }
  }
}

function openChecked(file: string, opts: OutboxOptions): Database.Database {
  const db = new Database(file, { timeout: 5000 });
  try {
    db.pragma('journal_mode = WAL');
    db.pragma(`synchronous = ${opts.synchronous ?? 'FULL'}`);
    const check = db.pragma('quick_check', { simple: true }) as string;
    if (check !== 'ok') throw Object.assign(new Error(`quick_check failed: ${check}`), { code: 'SQLITE_CORRUPT' });
    db.exec(SCHEMA);
    return db;
  } catch (err) {
    db.close();
    throw err;
  }
}

function isCorruption(err: unknown): boolean {
  const code = (err as { code?: string }).code ?? '';
  return code === 'SQLITE_CORRUPT' || code === 'SQLITE_NOTADB' || code.startsWith('SQLITE_CORRUPT') || code.startsWith('SQLITE_NOTADB');
}

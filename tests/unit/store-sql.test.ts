/**
 * The SQL executor under central's store, on the store of this project run (SQLite, or PostgreSQL in
 * the "postgres" project): placeholders, the dialect fragments, transactions that span awaits.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { numberPlaceholders, PostgresSql, SqliteSql, type Sql } from '../../central/store/sql.js';
import { forDialect, migrate, SCHEMA_VERSION } from '../../central/store/migrations.js';
import { testStore } from '../helpers/postgres.js';

describe('SQL executor', () => {
  let sql: Sql;
  let dir: string;
  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'bk-sql-'));
    const store = await testStore();
    sql = store?.url ? new PostgresSql({ connectionString: store.url, password: process.env[store.passwordEnv!] }) : SqliteSql.open(path.join(dir, 'x.db'));
    await sql.exec(forDialect('CREATE TABLE t (id TEXT PRIMARY KEY, n INTEGER NOT NULL, tags TEXT NOT NULL DEFAULT \'[]\', data BLOB)', sql.dialect.name));
    await sql.exec(forDialect('CREATE TABLE s (id INTEGER PRIMARY KEY AUTOINCREMENT, at INTEGER NOT NULL)', sql.dialect.name));
  });
  afterAll(async () => {
    await sql.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('numbers placeholders outside quotes only', () => {
    expect(numberPlaceholders(`SELECT '?' AS q, "a?b" FROM t WHERE a = ? AND b IN (?, ?)`)).toBe(`SELECT '?' AS q, "a?b" FROM t WHERE a = $1 AND b IN ($2, $3)`);
  });

  it('round-trips rows: millisecond timestamps as numbers, blobs as Buffers, RETURNING ids', async () => {
    const ms = Date.UTC(2026, 11, 7, 6, 0, 0, 123); // > 2^31: BIGINT on PostgreSQL
    await sql.run('INSERT INTO t (id, n, tags, data) VALUES (?, ?, ?, ?)', ['a', ms, '["x","y"]', Buffer.from([0, 1, 255])]);
    await sql.run('INSERT INTO t (id, n) VALUES (?, ?)', ['b', 2]);
    expect(await sql.get('SELECT id, n FROM t WHERE id = ?', ['a'])).toEqual({ id: 'a', n: ms });
    expect(await sql.value('SELECT data FROM t WHERE id = ?', ['a'])).toEqual(Buffer.from([0, 1, 255]));
    expect(await sql.value('SELECT COUNT(*) FROM t')).toBe(2);
    expect(await sql.values('SELECT id FROM t ORDER BY id')).toEqual(['a', 'b']);
    // a cached statement read as values is read as rows again afterwards
    expect(await sql.get('SELECT id FROM t ORDER BY id')).toEqual({ id: 'a' });
    expect(await sql.value('INSERT INTO s (at) VALUES (?) RETURNING id', [ms])).toBe(1);
    expect(await sql.value('INSERT INTO s (at) VALUES (?) RETURNING id', [ms])).toBe(2);
    expect((await sql.run('UPDATE t SET n = n + 1 WHERE id IN (?, ?)', ['a', 'zz'])).changes).toBe(1);
  });

  it('dialect fragments: a list parameter, the larger of two values', async () => {
    const d = sql.dialect;
    const ids = d.inList('id', ['b', 'nope']);
    expect(await sql.values(`SELECT id FROM t WHERE ${ids.sql}`, ids.params)).toEqual(['b']);
    const none = d.inList('id', []);
    expect(await sql.values(`SELECT id FROM t WHERE ${none.sql}`, none.params)).toEqual([]);
    expect(await sql.value(`SELECT ${d.greatest('n', '?')} FROM t WHERE id = ?`, [10, 'b'])).toBe(10);
  });

  it('a transaction spans awaits, rolls back on a throw, and others wait for it', async () => {
    await expect(sql.tx(async () => {
      await sql.run('INSERT INTO t (id, n) VALUES (?, ?)', ['c', 3]);
      expect(await sql.value('SELECT n FROM t WHERE id = ?', ['c'])).toBe(3); // its own write, seen inside
      throw new Error('undo');
    })).rejects.toThrow('undo');
    expect(await sql.get('SELECT 1 FROM t WHERE id = ?', ['c'])).toBeUndefined();

    const order: string[] = [];
    let release!: () => void;
    const held = new Promise<void>((r) => { release = r; });
    const tx = sql.tx(async () => {
      await sql.run('UPDATE t SET n = ? WHERE id = ?', [100, 'b']);
      order.push('tx wrote');
      await held;
      await sql.run('UPDATE t SET n = ? WHERE id = ?', [200, 'b']);
      order.push('tx done');
    });
    await new Promise((r) => setTimeout(r, 50));
    // a writer outside the transaction waits for it (SQLite: its turn; PostgreSQL: the row lock)
    const outside = sql.run('UPDATE t SET n = n + 1 WHERE id = ?', ['b']).then(() => order.push('outside wrote'));
    await new Promise((r) => setTimeout(r, 100));
    release();
    await Promise.all([tx, outside]);
    expect(order).toEqual(['tx wrote', 'tx done', 'outside wrote']);
    expect(await sql.value('SELECT n FROM t WHERE id = ?', ['b'])).toBe(201);
  });

  it('transactions started at the same moment run one after the other, and a write beside them is kept', async () => {
    const bump = (id: string) => sql.tx(async () => {
      const n = (await sql.value<number>('SELECT n FROM t WHERE id = ?', [id]))!;
      await new Promise((r) => setTimeout(r, 5));
      await sql.run('UPDATE t SET n = ? WHERE id = ?', [n + 1, id]);
    });
    await sql.run('INSERT INTO t (id, n) VALUES (?, ?)', ['k', 0]);
    const failing = sql.tx(async () => { await sql.run('UPDATE t SET n = n + 100 WHERE id = ?', ['k']); throw new Error('undo'); });
    const beside = sql.run('INSERT INTO t (id, n) VALUES (?, ?)', ['beside', 1]);
    // SQLite: serialised; PostgreSQL: read committed, so the read-modify-write needs the row lock
    const bumps = sql.dialect.name === 'sqlite' ? [bump('k'), bump('k'), bump('k')] : [];
    await expect(failing).rejects.toThrow('undo');
    await Promise.all([...bumps, beside]);
    expect(await sql.value('SELECT n FROM t WHERE id = ?', ['k'])).toBe(bumps.length);
    expect(await sql.value('SELECT n FROM t WHERE id = ?', ['beside'])).toBe(1);
  });

  it('migrates the full schema once, and again is a no-op', async () => {
    expect(await migrate(sql)).toBe(SCHEMA_VERSION);
    expect(await migrate(sql)).toBe(SCHEMA_VERSION);
    expect(await sql.value('SELECT version FROM schema_version')).toBe(SCHEMA_VERSION);
  });
});

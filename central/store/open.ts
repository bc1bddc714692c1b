/** Opens central's store on the database the config names: SQLite in `dataDir` unless `store.url` names PostgreSQL. */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import type { StoreConfig } from '../config/schema.js';
import { migrate } from './migrations.js';
import { PostgresSql, SqliteSql, type Sql } from './sql.js';
import { Store } from './store.js';

export async function openStore(o: { dataDir: string; store?: StoreConfig }): Promise<Store> {
  const filesDir = o.store?.filesDir ?? o.dataDir;
  mkdirSync(filesDir, { recursive: true });
  let sql: Sql;
  if (o.store?.url) {
    const { passwordEnv } = o.store;
    const password = passwordEnv ? process.env[passwordEnv] : undefined;
    if (passwordEnv && password === undefined) throw new Error(`store.passwordEnv: environment variable ${passwordEnv} is not set`);
    sql = new PostgresSql({ connectionString: o.store.url, password, max: o.store.poolSize });
  } else {
    mkdirSync(o.dataDir, { recursive: true });
    sql = SqliteSql.open(path.join(o.dataDir, 'central.db'));
  }
  try {
    await migrate(sql);
  } catch (err) {
    await sql.close();
    const where = o.store?.url ? `PostgreSQL at ${redact(o.store.url)}` : `SQLite in ${o.dataDir}`;
    throw new Error(`store: cannot open ${where}: ${(err as Error).message}`, { cause: err });
  }
  return new Store(sql, filesDir);
}

/** The URL without credentials, for messages and logs. */
export function redact(url: string): string {
  try {
    const u = new URL(url);
    u.password = '';
    return u.toString();
  } catch {
    return 'an unparsable URL';
  }
}

/**
 * The store matrix: the vitest project "postgres" starts one private cluster for the run
 * (tests/helpers/postgres-global.ts, scripts/load/postgres.ts) and runs central's tests on it;
 * every store a test opens gets a database of its own. In the project "sqlite" `testStore()` returns
 * undefined and central uses SQLite in its data directory.
 */
import { inject } from 'vitest';
import type { StoreConfig } from '../../central/config/schema.js';
import { createDatabase, type PgCluster } from '../../scripts/load/postgres.js';

declare module 'vitest' {
  export interface ProvidedContext {
    pgCluster: PgCluster | null;
  }
}

/** The environment variable the test stores name in `store.passwordEnv`. */
export const PG_PASSWORD_ENV = 'BK_TEST_PG_PASSWORD';

/** The cluster of this run, when the store matrix is on PostgreSQL. */
export function pgCluster(): PgCluster | null {
  return inject('pgCluster') ?? null;
}

/**
 * The `store` config for a new test store: a fresh PostgreSQL database in the run's cluster, or
 * undefined (SQLite in the test's data directory).
 */
export async function testStore(): Promise<StoreConfig | undefined> {
  const c = pgCluster();
  if (!c) return undefined;
  process.env[PG_PASSWORD_ENV] = c.password;
  return { url: await createDatabase(c), passwordEnv: PG_PASSWORD_ENV, poolSize: 10 };
}

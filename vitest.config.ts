import { defineConfig } from 'vitest/config';

/**
 * Central's tests run twice: on SQLite (the embedded default) and on PostgreSQL (a private cluster
 * started for the run, tests/helpers/postgres.ts) — one set of tests, two stores.
 */
const CENTRAL_TESTS = [
  'tests/unit/central-store.test.ts',
  'tests/unit/store-sql.test.ts',
  'tests/integration/central-*.test.ts',
  'tests/integration/http-api.test.ts',
  'tests/integration/public-window.test.ts',
  'tests/integration/clips.test.ts',
  'tests/faults/security.test.ts',
];

export default defineConfig({
  test: {
    // Integration tests start real ffmpeg, RTSP servers, brokers and browsers: one file at a time
    // keeps a 2-core machine from timing them out.
    fileParallelism: false,
    testTimeout: 60_000,
    hookTimeout: 60_000,
    reporters: ['default'],
    projects: [
      { extends: true, test: { name: 'sqlite', include: ['tests/**/*.test.ts'] } },
      { extends: true, test: { name: 'postgres', include: CENTRAL_TESTS, globalSetup: ['tests/helpers/postgres-global.ts'] } },
    ],
  },
});

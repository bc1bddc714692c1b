/** vitest globalSetup of the "postgres" project: one private cluster for the run (tests/helpers/postgres.ts). */
import type { TestProject } from 'vitest/node';
import { startPgCluster } from '../../scripts/load/postgres.js';

export default async function setup(project: TestProject): Promise<() => void> {
  const cluster = await startPgCluster();
  const { stop, ...provided } = cluster;
  project.provide('pgCluster', provided);
  return stop;
}

/** Assert one row of a scenario's results (found by its name), printing what was observed. */
import { expect } from 'vitest';
import type { Row } from './harness.js';

export function report(rows: Row[]): void {
  for (const r of rows) console.info(`[faults] ${r.pass ? 'PASS' : 'FAIL'} ${r.name}: ${r.observed}`);
}

export function expectRow(rows: Row[], name: RegExp): void {
  const r = rows.find((x) => name.test(x.name));
  expect(r, `no result row matching ${name} (the scenario did not get that far)`).toBeDefined();
  expect(r!.pass, `${r!.name}: ${r!.observed}${r!.owner ? ` — owner: ${r!.owner}` : ''}`).toBe(true);
}

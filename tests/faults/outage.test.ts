/**
 * Outages with violations flowing (see scenarios/outage.ts). The outage lasts FAULTS_OUTAGE_SEC
 * seconds (default 8 in the test suite; `npm run test:faults` / scripts/faults.ts runs the full 60 s).
 */
import { describe, expect, it } from 'vitest';
import { outageScenario, recipientAcrossRestart } from './scenarios/outage.js';
import type { Row } from './lib/harness.js';

const OUTAGE = Number(process.env.FAULTS_OUTAGE_SEC ?? 8);
const T = (OUTAGE + 120) * 1000;

function check(r: Row): void {
  console.info(`[faults] ${r.name}: sent ${r.sent} received ${r.received} lost ${r.lost} duplicated ${r.duplicated} — ${r.observed}`);
  const why = `${r.observed}${r.owner ? ` — owner: ${r.owner}` : ''}`;
  expect(r.observed, why).not.toMatch(/DEAD/);
  expect({ lost: r.lost, duplicated: r.duplicated, pass: r.pass }, why).toEqual({ lost: 0, duplicated: 0, pass: true });
}

describe('outages while violations keep coming (real agent, real central)', () => {
  it(`central with its embedded broker down for ${OUTAGE} s: every event delivered once`, { timeout: T }, async () => {
    check(await outageScenario('central-embedded', { outageSec: OUTAGE }));
  });
  it(`external Mosquitto down for ${OUTAGE} s, central up: every event delivered once`, { timeout: T }, async () => {
    check(await outageScenario('broker-external', { outageSec: OUTAGE }));
  });
  it(`central down for ${OUTAGE} s, external Mosquitto up: every event delivered once`, { timeout: T }, async () => {
    check(await outageScenario('central-external', { outageSec: OUTAGE }));
  });
  it('external Mosquitto down for 60 s with event clips on: no event and no clip lost', { timeout: 240_000 }, async () => {
    check(await outageScenario('broker-external', { outageSec: 60, cooldownSec: 4, clips: true }));
  });
  it('a recipient phone offline across a central restart gets every alert', { timeout: 150_000 }, async () => {
    const r = await recipientAcrossRestart();
    console.info(`[faults] ${r.name}: ${r.observed}`);
    expect({ lost: r.lost, pass: r.pass }, `${r.observed} — owner: ${r.owner ?? ''}`).toEqual({ lost: 0, pass: true });
  });
});

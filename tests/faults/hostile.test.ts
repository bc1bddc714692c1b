/**
 * Hostile and bad input (see scenarios/): MQTT fuzzing of central and the agent, voice end to end
 * through central; HTTP fuzzing, scope sweep, audit, traversal, uploads; bad config and model files.
 * Each scenario runs once; each result row is its own test.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { hostileMqttScenario } from './scenarios/hostile-mqtt.js';
import { hostileHttpScenario } from './scenarios/hostile-http.js';
import { badFilesScenario } from './scenarios/bad-files.js';
import { expectRow, report } from './lib/expect-row.js';
import type { Row } from './lib/harness.js';

const RUNS = Number(process.env.FAULTS_FUZZ_RUNS ?? 40);
const HTTP_RUNS = Number(process.env.FAULTS_HTTP_RUNS ?? 12);

describe('hostile MQTT input and voice end to end (real central, real agent)', () => {
  let rows: Row[] = [];
  beforeAll(async () => {
    rows = await hostileMqttScenario({ runsPerTopic: RUNS });
    report(rows);
  }, 150_000);
  it('central rejects every schema-invalid payload on every site topic with a reason, then still stores a valid event', () => expectRow(rows, /^malformed/));
  it('odd sub-topics under a site prefix are refused by the broker ACL', () => expectRow(rows, /sub-topics/));
  it('the agent refuses garbage voice commands with a reason, plays nothing, stays up', () => expectRow(rows, /^garbage on the agent/));
  it('voice: signed played; replayed, unsigned and forged refused and reported; the played record stays "played"', () => expectRow(rows, /^voice end to end/));
});

describe('hostile HTTP input, scoping sweep, audit, traversal, uploads (real central + HTTP)', () => {
  let rows: Row[] = [];
  beforeAll(async () => {
    rows = await hostileHttpScenario({ runsPerEndpoint: HTTP_RUNS });
    report(rows);
  }, 240_000);
  it('fuzzing every endpoint: no 5xx, JSON errors, API still works', () => expectRow(rows, /^fuzzing every HTTP endpoint/));
  it('no user sees, acts on or streams a site outside their scope', () => expectRow(rows, /^role scoping sweep/));
  it('the public window leads to nothing private; an opted-out site answers like an unknown one', () => expectRow(rows, /^public window/));
  it('every remote action is in the audit log', () => expectRow(rows, /^audit log/));
  it('path traversal serves nothing', () => expectRow(rows, /^path traversal/));
  it('corrupt and oversized uploads are refused and change nothing', () => expectRow(rows, /^corrupt and oversized uploads/));
});

describe('corrupt config and model files', () => {
  it('the agent and central command lines refuse them with a message naming file and field', { timeout: 240_000 }, async () => {
    const r = await badFilesScenario();
    report([r]);
    expect(r.pass, r.observed).toBe(true);
  });
});

/** Security sweeps across components (see scenarios/): TLS with a private CA, the MQTT ACL matrix on both brokers. */
import { beforeAll, describe, it } from 'vitest';
import { tlsScenario } from './scenarios/tls.js';
import { aclScenario } from './scenarios/acl.js';
import { expectRow, report } from './lib/expect-row.js';
import type { Row } from './lib/harness.js';

describe('TLS with a locally generated CA', () => {
  let rows: Row[] = [];
  beforeAll(async () => {
    rows = await tlsScenario();
    report(rows);
  }, 120_000);
  it('agent → embedded broker over mqtts with uplink.caFile; untrusting and plain clients refused', () => expectRow(rows, /^MQTT over TLS/));
  it('HTTPS dashboard: Secure cookie, HSTS; untrusting and plain clients refused', () => expectRow(rows, /^HTTPS/));
});

describe('MQTT ACL matrix on both brokers', () => {
  let rows: Row[] = [];
  beforeAll(async () => {
    rows = await aclScenario();
    report(rows);
  }, 120_000);
  it('embedded aedes enforces the per-site / per-recipient policy', () => expectRow(rows, /aedes/));
  it('Mosquitto with the generated files enforces the same policy', () => expectRow(rows, /Mosquitto/));
});

/** Agent-side faults with a real central: SIGKILL during a burst, a full evidence disk (see scenarios/). */
import { describe, expect, it } from 'vitest';
import { kill9Scenario } from './scenarios/kill9.js';
import { diskFullScenario } from './scenarios/diskfull.js';

describe('agent faults (real agent process, real central)', () => {
  it('SIGKILL during a burst, three times: integrity ok, every committed event delivered once', { timeout: 180_000 }, async () => {
    const r = await kill9Scenario({ kills: 3 });
    console.info(`[faults] ${r.name}: sent ${r.sent} received ${r.received} lost ${r.lost} duplicated ${r.duplicated} — ${r.observed}`);
    expect(r.observed).toMatch(/integrity_check: ok, ok, ok/);
    expect({ lost: r.lost, duplicated: r.duplicated, pass: r.pass }).toEqual({ lost: 0, duplicated: 0, pass: true });
  });
  it('a full evidence disk: oldest evicted, error logged, events still delivered', { timeout: 150_000 }, async () => {
    const r = await diskFullScenario();
    console.info(`[faults] ${r.name}: sent ${r.sent} received ${r.received} lost ${r.lost} — ${r.observed}`);
    expect(r.observed).not.toMatch(/SKIPPED/);
    expect({ lost: r.lost, pass: r.pass }).toEqual({ lost: 0, pass: true });
  });
});

import { cameraFaultsScenario } from './scenarios/cameras.js';
import { afterAll } from 'vitest';
import { stopAllSimCameras } from '../helpers/rtsp.js';

describe('camera faults through the agent', () => {
  afterAll(() => stopAllSimCameras());
  it('RTSP server killed and restarted, a garbage camera and a stalled one: statuses reported, the good camera goes on', { timeout: 200_000 }, async () => {
    const r = await cameraFaultsScenario();
    console.info(`[faults] ${r.name}: sent ${r.sent} received ${r.received} lost ${r.lost} — ${r.observed}`);
    expect(r.observed).not.toMatch(/DEAD|NOT/);
    expect({ lost: r.lost, pass: r.pass }).toEqual({ lost: 0, pass: true });
  });
});

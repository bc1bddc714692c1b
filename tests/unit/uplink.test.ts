import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SiteConfigSchema } from '../../agent/config/schema.js';
import { Outbox } from '../../agent/outbox/outbox.js';
import { Uplink, UplinkConfigError, readCredentials, uplinkOptionsFromConfig } from '../../agent/uplink/uplink.js';

let dir: string;
let outbox: Outbox;
beforeEach(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'uplink-unit-'));
  outbox = Outbox.open({ dir });
});
afterEach(() => {
  outbox.close();
  rmSync(dir, { recursive: true, force: true });
});

const base = { site: { id: 'site1', name: '一中食堂' }, cameras: [{ id: 'cam1', name: '后厨', url: 'rtsp://x/1' }] };

describe('uplink configuration', () => {
  it('reads credentials from the named env vars and names a missing one', () => {
    expect(readCredentials('U', 'P', { U: 'site1', P: 's3cret' })).toEqual({ username: 'site1', password: 's3cret' });
    expect(() => readCredentials('BK_U', 'BK_P', { BK_P: 'x' })).toThrow(/uplink\.usernameEnv: environment variable BK_U is not set/);
    expect(() => readCredentials('BK_U', 'BK_P', { BK_U: 'x', BK_P: '' })).toThrow(/uplink\.passwordEnv: environment variable BK_P is not set/);
  });

  it('builds options from the site config; names a missing CA file and a missing section', () => {
    const cfg = SiteConfigSchema.parse({ ...base, uplink: { url: 'mqtt://127.0.0.1:1883', topicPrefix: 'bk/test' } });
    const o = uplinkOptionsFromConfig(cfg, outbox, { BK_MQTT_USERNAME: 'site1', BK_MQTT_PASSWORD: 'pw' });
    expect(o).toMatchObject({ siteId: 'site1', url: 'mqtt://127.0.0.1:1883', topicPrefix: 'bk/test', credentials: { username: 'site1', password: 'pw' } });
    expect(() => uplinkOptionsFromConfig(cfg, outbox, {})).toThrow(UplinkConfigError);
    const withCa = SiteConfigSchema.parse({ ...base, uplink: { url: 'mqtts://h:8883', caFile: path.join(dir, 'ca.pem') } });
    expect(() => uplinkOptionsFromConfig(withCa, outbox, { BK_MQTT_USERNAME: 'a', BK_MQTT_PASSWORD: 'b' })).toThrow(/uplink\.caFile: cannot read .*ca\.pem: ENOENT/);
    expect(() => uplinkOptionsFromConfig(SiteConfigSchema.parse(base), outbox)).toThrow(/uplink: section missing/);
  });

  it('rejects a bad URL and a bad window', () => {
    expect(() => new Uplink({ siteId: 'site1', url: 'http://x', outbox })).toThrow(/uplink\.url: expected an mqtt/);
    expect(() => new Uplink({ siteId: 'site1', url: 'mqtt://x', outbox, inFlight: 0 })).toThrow(/inFlight/);
  });

  it('keeps rows and reports the error while no broker is reachable; stop() is prompt', async () => {
    const up = new Uplink({ siteId: 'site1', url: 'mqtt://127.0.0.1:1', outbox, reconnectMinMs: 20, reconnectMaxMs: 40 });
    outbox.enqueue([{ topic: 'bk/v1/site/site1/event', payload: '{}' }]);
    up.start();
    const deadline = Date.now() + 5000;
    while (up.state().failedAttempts < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(up.state()).toMatchObject({ connected: false, phase: 'reconnecting', pending: 1 });
    expect(up.state().lastError).toMatch(/ECONNREFUSED/);
    const t0 = Date.now();
    await up.stop();
    expect(Date.now() - t0).toBeLessThan(500);
    expect(up.state().phase).toBe('stopped');
    expect(outbox.pending()).toBe(1);
  });
});

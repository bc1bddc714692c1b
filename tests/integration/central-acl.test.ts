import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { mosquittoFiles, writeMosquittoFiles } from '../../central/broker/mosquitto.js';
import { hashPasswordMosquitto } from '../../central/auth/password.js';
import { startMosquitto, type MosquittoHandle } from '../helpers/brokers.js';
import { eventMsg, hashes, jpeg, orgConfig, PW, sleep, startCore, T, until, type CoreFixture } from './central-fixture.js';

/** Connect; resolves with the client or rejects with the broker's refusal. */
function connect(url: string, username?: string, password?: string): Promise<MqttClient> {
  return new Promise((resolve, reject) => {
    const c = mqtt.connect(url, { username, password, reconnectPeriod: 0, connectTimeout: 4000 });
    c.once('connect', () => resolve(c));
    c.once('error', (e) => { c.end(true); reject(e); });
  });
}

/** Granted QoS, or 128 when refused (mqtt.js rejects the promise on a 0x80 SUBACK). */
async function sub(c: MqttClient, filter: string): Promise<number> {
  try { return (await c.subscribeAsync(filter, { qos: 1 }))[0]!.qos; } catch { return 128; }
}

/** The ACL checks, run against any broker: `observer` may read everything under the prefix. */
function aclSuite(get: () => { url: string; observer: () => Promise<MqttClient>; refusesSubscribe: boolean }) {
  // aedes refuses a forbidden SUBSCRIBE (0x80); Mosquitto grants it but never delivers: check delivery on both.
  const refused = (q: number) => (get().refusesSubscribe ? expect(q).toBe(128) : expect([1, 128]).toContain(q));
  it('refuses anonymous and wrong passwords', async () => {
    await expect(connect(get().url)).rejects.toThrow(/authori|password|Bad/i);
    await expect(connect(get().url, 'site-a', 'wrong')).rejects.toThrow(/authori|password|Bad/i);
  });

  it('a site cannot publish under another site, nor send voice commands, but can use its own topics', async () => {
    const seen: string[] = [];
    const obs = await get().observer();
    obs.on('message', (t) => seen.push(t));
    await obs.subscribeAsync('bk/v1/site/#', { qos: 1 });
    const site = await connect(get().url, 'site-a', PW);
    site.on('error', () => {});
    site.publish(T.event('site-b'), '{"forged":true}', { qos: 0 });
    site.publish(T.voiceCommand('site-a'), '{"forged":true}', { qos: 0 });
    await sleep(300);
    const own = await connect(get().url, 'site-a', PW);
    await own.publishAsync(T.stats('site-a'), '{"ok":1}', { qos: 1 });
    await until(() => seen.includes(T.stats('site-a')), 3000, 'own publish');
    expect(seen).not.toContain(T.event('site-b'));
    expect(seen).not.toContain(T.voiceCommand('site-a'));
    // subscriptions: own voice/command yes, another site's no
    const ownGot: string[] = [];
    own.on('message', (t) => ownGot.push(t));
    expect(await sub(own, T.voiceCommand('site-a'))).toBe(1);
    refused(await sub(own, T.voiceCommand('site-b')));
    await obs.publishAsync(T.voiceCommand('site-b'), '{}', { qos: 1 });
    await obs.publishAsync(T.voiceCommand('site-a'), '{}', { qos: 1 });
    await until(() => ownGot.includes(T.voiceCommand('site-a')), 3000, 'own voice command');
    await sleep(100);
    expect(ownGot).not.toContain(T.voiceCommand('site-b'));
    await own.endAsync(); await obs.endAsync(); site.end(true);
  });

  it('a recipient reads only its own topic and publishes nothing', async () => {
    const mgr = await connect(get().url, 'u-mgr', PW);
    const got: string[] = [];
    mgr.on('message', (t) => got.push(t));
    expect(await sub(mgr, T.userAlert('u-mgr'))).toBe(1);
    refused(await sub(mgr, T.userAlert('u-vp')));
    refused(await sub(mgr, 'bk/v1/#'));
    const obs = await get().observer();
    await obs.publishAsync(T.userAlert('u-vp'), 'for vp', { qos: 1 });
    await obs.publishAsync(T.userAlert('u-mgr'), 'for mgr', { qos: 1 });
    // and it cannot publish (to its own topic or anywhere)
    mgr.publish(T.event('site-a'), 'x', { qos: 0 });
    mgr.publish(T.userAlert('u-mgr'), 'self', { qos: 0 });
    await until(() => got.includes(T.userAlert('u-mgr')), 3000, 'own alert');
    await sleep(200);
    expect(got).not.toContain(T.userAlert('u-vp'));
    expect(got.filter((t) => t === T.userAlert('u-mgr'))).toHaveLength(1);
    await mgr.endAsync(); await obs.endAsync();
  });
}

describe('broker ACL: embedded aedes', () => {
  let f: CoreFixture;
  beforeAll(async () => { f = await startCore(); });
  afterAll(async () => { await f?.close(); });
  // the observer is central's own credential (full access)
  aclSuite(() => ({ url: f.central.brokerUrl, observer: () => connect(f.central.brokerUrl, f.central.internals.broker!.centralCredentials.username, f.central.internals.broker!.centralCredentials.password), refusesSubscribe: true }));

  it('no client may take a central client id', async () => {
    const c = mqtt.connect(f.central.brokerUrl, { username: 'site-a', password: PW, clientId: 'bk-central-evil', reconnectPeriod: 0 });
    await expect(new Promise((res, rej) => { c.once('connect', res); c.once('error', rej); })).rejects.toThrow();
    c.end(true);
  });
});

describe('broker ACL and shared subscriptions: Mosquitto with generated passwd/acl', () => {
  let mosq: MosquittoHandle;
  let dir: string;
  let centrals: CoreFixture[] = [];
  const CENTRAL_PW = 'central-secret-1';
  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'bk-mosq-gen-'));
    const org = await orgConfig(await hashes());
    const files = mosquittoFiles(org as never, 'bk/v1', { username: 'central', passwordHash: await hashPasswordMosquitto(CENTRAL_PW) }, undefined, dir);
    expect(files.skipped).toEqual([]);
    writeMosquittoFiles(dir, files);
    mosq = await startMosquitto({ passwordFile: path.join(dir, 'passwd'), aclFile: path.join(dir, 'acl') });
    process.env.BK_TEST_CENTRAL_USER = 'central';
    process.env.BK_TEST_CENTRAL_PW = CENTRAL_PW;
  });
  afterEach(async () => { for (const c of centrals) await c.close(); centrals = []; });
  afterAll(async () => { await mosq?.stop(); rmSync(dir, { recursive: true, force: true }); });

  aclSuite(() => ({ url: mosq.url, observer: () => connect(mosq.url, 'central', CENTRAL_PW), refusesSubscribe: false }));

  it('two central instances split events through $share and together store each one once', async () => {
    // one client id per worker of the group (persistent sessions)
    const ext = (worker: number) => (c: any) => { c.broker = { mode: 'external', url: mosq.url, usernameEnv: 'BK_TEST_CENTRAL_USER', passwordEnv: 'BK_TEST_CENTRAL_PW', sharedGroup: 'g1', clientId: `bk-central-acl-test-${worker}` }; };
    centrals = [await startCore(ext(1)), await startCore(ext(2))];
    expect(centrals[0]!.central.internals.mqtt.filters[0]).toBe('$share/g1/bk/v1/site/+/event');
    const site = await connect(mosq.url, 'site-a', PW);
    const a = await jpeg('m1'), c = await jpeg('m2');
    for (let i = 0; i < 10; i++) await site.publishAsync(T.event('site-a'), JSON.stringify(eventMsg(`ev-m-${i}`, 'site-a', { annotated: a, clean: c })), { qos: 1 });
    const count = () => Promise.all(centrals.map(async (x) => (await x.central.metrics()).events));
    await until(async () => (await count()).reduce((a, b) => a + b) === 10, 8000, 'ten events across both');
    await sleep(300);
    const [n0, n1] = await count();
    expect(n0! + n1!).toBe(10);
    expect(n0!).toBeGreaterThan(0);
    expect(n1!).toBeGreaterThan(0);
    await site.endAsync();
  });
});

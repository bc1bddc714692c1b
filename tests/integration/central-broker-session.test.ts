/**
 * Central's broker sessions: the embedded broker keeps persistent sessions and their queued QoS 1
 * messages across a restart (LevelDB under the data dir); central's client reconnects after a broker
 * outage and re-subscribes, and keeps a persistent session (stable client id, clean: false) so the
 * broker queues the sites' messages while central is down.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { hashPassword } from '../../central/auth/password.js';
import { connectCentralMqtt, defaultCentralClientId, type CentralMqtt } from '../../central/broker/client.js';
import { startEmbeddedBroker, type EmbeddedBroker } from '../../central/broker/embedded.js';
import { freePort, startMosquitto, disposeMosquitto, type MosquittoHandle } from '../helpers/brokers.js';
import { T, until } from './central-fixture.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function client(url: string, o: mqtt.IClientOptions): Promise<MqttClient> {
  return mqtt.connectAsync(url, { protocolVersion: 4, reconnectPeriod: 0, connectTimeout: 5000, ...o });
}

describe('embedded broker: persistent sessions survive a restart', () => {
  let dir: string;
  let broker: EmbeddedBroker | null = null;
  const opened: MqttClient[] = [];
  beforeAll(() => { dir = mkdtempSync(path.join(tmpdir(), 'bk-broker-session-')); });
  afterAll(async () => {
    for (const c of opened) c.end(true);
    await broker?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('QoS 1 alerts queued for an offline phone before and after a broker restart all reach it when it reconnects', async () => {
    const hash = await hashPassword('phone-pw', { N: 1024 });
    const start = (port: number) => startEmbeddedBroker({
      host: '127.0.0.1', port, prefix: 'bk/v1', maxPacketBytes: 1_000_000, persistenceDir: path.join(dir, 'broker'),
      credentials: { siteHash: () => null, user: (name) => (name === 'u1' ? { id: 'u1', mqttPasswordHash: hash } : null) },
    });
    const port = await freePort();
    const topic = 'bk/v1/user/u1/alert';
    const phoneOpts = { username: 'u1', password: 'phone-pw', clientId: 'phone-u1', clean: false };
    const publishAs = async (b: EmbeddedBroker, ids: string[]) => {
      const cen = await client(b.url, { ...b.centralCredentials, clientId: `bk-central-test-${Date.now()}` });
      for (const id of ids) await cen.publishAsync(topic, id, { qos: 1 });
      await cen.endAsync();
    };

    broker = await start(port);
    const phone = await client(broker.url, phoneOpts);
    await phone.subscribeAsync(topic, { qos: 1 });
    await phone.endAsync(); // offline; the session stays
    await publishAs(broker, ['before-1', 'before-2', 'before-3']);
    await broker.close();
    broker = null;

    broker = await start(port); // same data dir
    // aedes numbers messages per start: these reuse the counters of the ones queued before the restart
    const after = Array.from({ length: 12 }, (_, i) => `after-${String(i + 1).padStart(2, '0')}`);
    await publishAs(broker, after);

    const got: string[] = [];
    const back = mqtt.connect(broker.url, { ...phoneOpts, protocolVersion: 4, reconnectPeriod: 0 });
    opened.push(back);
    back.on('message', (_t, p) => got.push(p.toString()));
    await until(() => got.length >= 15, 5000, 'the queued alerts on the phone').catch(() => {});
    await sleep(200);
    expect([...new Set(got)].sort()).toEqual([...after, 'before-1', 'before-2', 'before-3']);
  });
});

describe('embedded broker: live QoS 1 delivery to a persistent session under load', () => {
  let dir: string;
  let broker: EmbeddedBroker;
  const opened: MqttClient[] = [];
  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'bk-broker-burst-'));
    const hash = await hashPassword('site-pw', { N: 1024 });
    broker = await startEmbeddedBroker({
      host: '127.0.0.1', port: 0, prefix: 'bk/v1', maxPacketBytes: 1_000_000, persistenceDir: path.join(dir, 'broker'),
      credentials: { siteHash: (id) => (id === 'site-a' ? hash : null), user: () => null },
    });
  });
  afterAll(async () => {
    for (const c of opened) c.end(true);
    await broker?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('a burst of pipelined QoS 1 publishes (some retained) all reach an online clean: false subscriber', async () => {
    const got = new Set<string>();
    const cen = await client(broker.url, { ...broker.centralCredentials, clientId: 'bk-central-burst-1', clean: false });
    opened.push(cen);
    cen.on('message', (_t, p) => got.add(p.toString()));
    await cen.subscribeAsync(['bk/v1/site/+/event', 'bk/v1/site/+/status'], { qos: 1 });
    const site = await client(broker.url, { username: 'site-a', password: 'site-pw', clientId: 'agent-site-a' });
    opened.push(site);
    const n = 300;
    // not awaited one by one: the agent's uplink pipelines its outbox; retained status messages take an extra store write
    await Promise.all(Array.from({ length: n }, (_, i) => (i % 10 === 0
      ? site.publishAsync(T.siteStatus('site-a'), `m-${i}`, { qos: 1, retain: true })
      : site.publishAsync(T.event('site-a'), `m-${i}`, { qos: 1 }))));
    await until(() => got.size >= n, 5000, 'every message').catch(() => {});
    expect(Array.from({ length: n }, (_, i) => `m-${i}`).filter((m) => !got.has(m))).toEqual([]);
  });
});

describe('central client on an external Mosquitto', () => {
  let mosq: MosquittoHandle;
  const centrals: CentralMqtt[] = [];
  const others: MqttClient[] = [];
  beforeAll(async () => { mosq = await startMosquitto(); });
  afterEach(async () => {
    for (const c of centrals.splice(0)) await c.close();
    for (const c of others.splice(0)) c.end(true);
  });
  afterAll(async () => { await disposeMosquitto(mosq); });

  // each test its own group: Mosquitto keeps queueing a group's share for an offline member's persistent session
  const connectCentral = (got: string[], clientId: string, sharedGroup: string) => connectCentralMqtt({
    url: mosq.url, username: 'central', password: 'x', prefix: 'bk/v1', sharedGroup, clientId,
    reconnect: { minMs: 200, maxMs: 1000 },
    onMessage: async (_topic, payload) => { got.push(payload.toString()); },
  }).then((c) => { centrals.push(c); return c; });

  it('the default client id is stable per host and worker', () => {
    expect(defaultCentralClientId(1, 'canteen.host_01')).toBe('bk-central-canteen.host_01-1');
    expect(defaultCentralClientId(2, 'a b/c')).toBe('bk-central-a-b-c-2');
    expect(defaultCentralClientId()).toBe(defaultCentralClientId());
  });

  it('reconnects after the broker was down, subscribes again and ingests what the sites publish', async () => {
    const got: string[] = [];
    const c = await connectCentral(got, 'bk-central-test-1', 'g1');
    await mosq.stop();
    await until(() => !c.client.connected, 3000, 'central offline');
    await sleep(2500); // several failed attempts (back-off)
    expect(c.client.disconnecting).toBe(false); // still trying: not ended by the first connection error
    await mosq.restart();
    await until(() => c.client.connected, 5000, 'central reconnected');
    await sleep(300);
    const site = await client(mosq.url, { clientId: 'site-s1' });
    others.push(site);
    await site.publishAsync(T.event('s1'), 'after-outage', { qos: 1 });
    await until(() => got.includes('after-outage'), 3000, 'the message after the outage');
  });

  it('in a shared group every worker still gets the retained site and camera status published before it started', async () => {
    const site = await client(mosq.url, { clientId: 'site-s9' });
    others.push(site);
    await site.publishAsync(T.siteStatus('s9'), 'site-s9-online', { qos: 1, retain: true });
    await site.publishAsync(T.cameraStatus('s9', 'cam1'), 'cam1-online', { qos: 1, retain: true });
    const a: string[] = [];
    const b: string[] = [];
    await connectCentral(a, 'bk-central-test-r1', 'g-retained');
    await connectCentral(b, 'bk-central-test-r2', 'g-retained');
    await until(() => [a, b].every((got) => got.includes('site-s9-online') && got.includes('cam1-online')), 3000, 'retained status at both workers');
    // work is still split: one event reaches one worker, not both
    await site.publishAsync(T.event('s9'), 'one-event', { qos: 1 });
    await until(() => [...a, ...b].includes('one-event'), 3000, 'the event');
    await sleep(300);
    expect([...a, ...b].filter((m) => m === 'one-event')).toHaveLength(1);
    // clear the retained messages for the tests after this one
    await site.publishAsync(T.siteStatus('s9'), '', { qos: 1, retain: true });
    await site.publishAsync(T.cameraStatus('s9', 'cam1'), '', { qos: 1, retain: true });
  });

  it('without a shared group, messages published after a Mosquitto restart and before central is back are not lost', async () => {
    const got: string[] = [];
    const c = await connectCentralMqtt({
      url: mosq.url, username: 'central', password: 'x', prefix: 'bk/v1', clientId: 'bk-central-test-3',
      reconnect: { minMs: 2500, maxMs: 2500 }, // central comes back after the site has published
      onMessage: async (_topic, payload) => { got.push(payload.toString()); },
    });
    centrals.push(c);
    expect(c.filters[0]).toBe('bk/v1/site/+/event');
    await sleep(1500); // Mosquitto autosaves its persistence every second
    await mosq.restart();
    const site = await client(mosq.url, { clientId: 'site-s3' });
    others.push(site);
    await site.publishAsync(T.event('s3'), 'before-central-is-back', { qos: 1 });
    expect(c.client.connected).toBe(false);
    await until(() => got.includes('before-central-is-back'), 8000, 'the message published before central reconnected');
  });

  it('keeps its session while central is down: messages the broker accepted meanwhile arrive when it comes back', async () => {
    const got: string[] = [];
    const c = await connectCentral(got, 'bk-central-test-2', 'g2');
    await c.close(); // central stops; the broker keeps its session and its $share subscriptions
    const site = await client(mosq.url, { clientId: 'site-s2' });
    others.push(site);
    for (const i of [1, 2, 3]) await site.publishAsync(T.event('s2'), `while-down-${i}`, { qos: 1 });
    await connectCentral(got, 'bk-central-test-2', 'g2');
    await until(() => got.length >= 3, 3000, 'the queued messages').catch(() => {});
    expect(got.sort()).toEqual(['while-down-1', 'while-down-2', 'while-down-3']);
  });

  it('a QoS 1 message is acknowledged only once handled: a central that dies before that gets it again when it comes back', async () => {
    const first: string[] = [];
    // the first central never finishes handling (its store hangs), then its connection drops as in a SIGKILL
    const dying = await connectCentralMqtt({
      url: mosq.url, username: 'central', password: 'x', prefix: 'bk/v1', sharedGroup: 'g5', clientId: 'bk-central-test-5',
      reconnect: { minMs: 60_000, maxMs: 60_000 },
      onMessage: (_topic, payload) => { first.push(payload.toString()); return new Promise<void>(() => {}); },
    });
    const site = await client(mosq.url, { clientId: 'site-s5' });
    others.push(site);
    await site.publishAsync(T.event('s5'), 'in-flight', { qos: 1 });
    await until(() => first.length === 1, 3000, 'the first delivery');
    (dying.client as unknown as { stream: { destroy(): void } }).stream.destroy();
    dying.client.end(true);
    const got: string[] = [];
    await connectCentral(got, 'bk-central-test-5', 'g5');
    await until(() => got.length >= 1, 5000, 'the redelivery').catch(() => {});
    expect(got).toEqual(['in-flight']);
    expect(first).toEqual(['in-flight']); // the first central took it in but never acknowledged it
  });
});


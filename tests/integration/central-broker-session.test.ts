/**
 * Central's broker sessions: central's client reconnects after a broker outage and re-subscribes,
 * and keeps a persistent session (stable client id, clean: false) so the broker queues the sites'
 * messages while central is down.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import mqtt, { type MqttClient } from 'mqtt';
import { connectCentralMqtt, defaultCentralClientId, type CentralMqtt } from '../../central/broker/client.js';
import { startMosquitto, disposeMosquitto, type MosquittoHandle } from '../helpers/brokers.js';
import { T, until } from './central-fixture.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function client(url: string, o: mqtt.IClientOptions): Promise<MqttClient> {
  return mqtt.connectAsync(url, { protocolVersion: 4, reconnectPeriod: 0, connectTimeout: 5000, ...o });
}

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
    onMessage: (_topic, payload) => got.push(payload.toString()),
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
});

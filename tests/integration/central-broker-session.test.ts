/**
 * Central's broker sessions: central's client reconnects after a broker outage and re-subscribes.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import mqtt, { type MqttClient } from 'mqtt';
import { connectCentralMqtt, type CentralMqtt } from '../../central/broker/client.js';
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

  const connectCentral = (got: string[], sharedGroup: string) => connectCentralMqtt({
    url: mosq.url, username: 'central', password: 'x', prefix: 'bk/v1', sharedGroup,
    reconnect: { minMs: 200, maxMs: 1000 },
    onMessage: (_topic, payload) => got.push(payload.toString()),
  }).then((c) => { centrals.push(c); return c; });

  it('reconnects after the broker was down, subscribes again and ingests what the sites publish', async () => {
    const got: string[] = [];
    const c = await connectCentral(got, 'g1');
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
});

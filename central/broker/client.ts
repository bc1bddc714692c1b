/**
 * Central's one code path to the broker: an mqtt.js client, to the embedded aedes over loopback or to
 * an external Mosquitto / EMQX. With an external broker the site topics are subscribed through a
 * shared subscription (`$share/<group>/…`) so several central instances split the load.
 */
import mqtt, { type MqttClient } from 'mqtt';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { childLog } from '../../common/log.js';
import { CENTRAL_CLIENT_PREFIX } from './acl.js';

const log = childLog({ mod: 'central.mqtt' });

export interface CentralMqttOptions {
  url: string;
  username: string;
  password: string;
  caFile?: string;
  prefix: string;
  /** Set for an external broker: subscribe as `$share/<group>/<filter>`. */
  sharedGroup?: string;
  onMessage(topic: string, payload: Buffer): void;
}

export interface CentralMqtt {
  client: MqttClient;
  publish(topic: string, payload: string | Buffer, opts?: { qos?: 0 | 1; retain?: boolean }): Promise<void>;
  /** The filters actually subscribed (with $share when shared). */
  filters: string[];
  close(): Promise<void>;
}

export async function connectCentralMqtt(o: CentralMqttOptions): Promise<CentralMqtt> {
  const base = `${o.prefix}/site/+/`;
  // Only what central consumes: never voice/command (central's own output).
  const plain = [`${base}event`, `${base}snapshot/+/+`, `${base}status`, `${base}camera/+/status`, `${base}stats`, `${base}voice/status`];
  const filters = o.sharedGroup ? plain.map((f) => `$share/${o.sharedGroup}/${f}`) : plain;
  const client = mqtt.connect(o.url, {
    clientId: `${CENTRAL_CLIENT_PREFIX}${randomBytes(6).toString('hex')}`,
    username: o.username,
    password: o.password,
    protocolVersion: 4, // aedes speaks 3.1.1; Mosquitto and EMQX accept $share on 3.1.1 too
    clean: true,
    reconnectPeriod: 2000,
    connectTimeout: 10_000,
    ca: o.caFile ? readFileSync(o.caFile) : undefined,
  });
  client.on('message', (topic, payload) => o.onMessage(topic, payload));
  client.on('error', (err) => log.warn({ err: err.message }, 'broker connection error'));
  client.on('offline', () => log.warn({ url: o.url }, 'broker offline; reconnecting'));
  const subscribe = async () => {
    const granted = await client.subscribeAsync(filters.map((f) => f), { qos: 1 });
    const refused = granted.filter((g) => g.qos !== 0 && g.qos !== 1 && g.qos !== 2);
    if (refused.length) throw new Error(`broker refused subscriptions: ${refused.map((g) => g.topic).join(', ')}`);
  };
  // Clean sessions: resubscribe after every reconnect.
  let first = true;
  client.on('connect', (ack) => {
    if (first) { first = false; return; } // the first subscribe is awaited below
    if (ack.sessionPresent) return;
    subscribe().catch((err: Error) => log.error({ err: err.message }, 'resubscribe failed'));
  });
  await new Promise<void>((resolve, reject) => {
    const fail = (err: Error) => { client.end(true); reject(new Error(`cannot connect to broker ${o.url} as "${o.username}": ${err.message}`)); };
    const timer = setTimeout(() => fail(new Error('timed out')), 15_000);
    client.once('connect', () => { clearTimeout(timer); client.off('error', fail); resolve(); });
    client.once('error', (err) => { clearTimeout(timer); fail(err); });
  });
  await subscribe();
  log.info({ url: o.url, filters }, 'central subscribed');
  return {
    client,
    filters,
    async publish(topic, payload, opts = {}) {
      await client.publishAsync(topic, payload, { qos: opts.qos ?? 1, retain: opts.retain ?? false });
    },
    async close() {
      await client.endAsync();
    },
  };
}

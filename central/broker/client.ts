/**
 * Central's one code path to the broker: an mqtt.js client, to the embedded aedes over loopback or to
 * an external Mosquitto / EMQX. With an external broker the site topics are subscribed through a
 * shared subscription (`$share/<group>/…`) so several central instances split the load.
 *
 * Sessions are persistent: a stable client id per central worker (`broker.clientId`, default
 * `bk-central-<hostname>-1`), `clean: false` and QoS 1 subscriptions, so the broker keeps queueing
 * the sites' messages for central while it is down or restarting and hands them over when it comes
 * back. Each worker of a shared-subscription group needs its own client id: two workers with the same
 * id would keep taking each other's session over.
 *
 * After the first connect the client reconnects forever, with back-off (1 s doubling to 5 s, with
 * jitter), and subscribes again after every reconnect.
 */
import mqtt, { type MqttClient } from 'mqtt';
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { childLog } from '../../common/log.js';
import { CENTRAL_CLIENT_PREFIX } from './acl.js';

const log = childLog({ mod: 'central.mqtt' });

export const RECONNECT_MIN_MS = 1000;
export const RECONNECT_MAX_MS = 5000;

/** `bk-central-<hostname>-<worker>`: the default client id of a central worker (hostname reduced to [A-Za-z0-9_.-]). */
export function defaultCentralClientId(worker: number | string = 1, host: string = hostname()): string {
  const h = host.replace(/[^A-Za-z0-9_.-]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 64) || 'host';
  return `${CENTRAL_CLIENT_PREFIX}${h}-${worker}`;
}

export interface CentralMqttOptions {
  url: string;
  username: string;
  password: string;
  caFile?: string;
  prefix: string;
  /** Set for an external broker: subscribe as `$share/<group>/<filter>`. */
  sharedGroup?: string;
  /** Stable client id of this central worker (persistent session); must start with `bk-central-`. Default: defaultCentralClientId(). */
  clientId?: string;
  /** Reconnect back-off bounds (ms); tests shorten them. */
  reconnect?: { minMs?: number; maxMs?: number };
  /**
   * Takes one message. The promise it returns settles once the message is handled (stored, or
   * rejected): a QoS 1 message is acknowledged only then.
   */
  onMessage(topic: string, payload: Buffer): Promise<void>;
  /** Resolves when central may take the next QoS 0 message (null: now); until then the broker holds them. */
  ready?(): Promise<void> | null;
}

export interface CentralMqtt {
  client: MqttClient;
  clientId: string;
  publish(topic: string, payload: string | Buffer, opts?: { qos?: 0 | 1; retain?: boolean }): Promise<void>;
  /** The filters actually subscribed (with $share when shared). */
  filters: string[];
  close(): Promise<void>;
}

export async function connectCentralMqtt(o: CentralMqttOptions): Promise<CentralMqtt> {
  const base = `${o.prefix}/site/+/`;
  // Only what central consumes: never voice/command (central's own output).
  const work = [`${base}event`, `${base}snapshot/+/+`, `${base}clip/+`, `${base}clip/+/+`, `${base}stats`, `${base}voice/status`];
  // Retained status topics stay plain subscriptions even in a shared group: a broker never sends
  // retained messages to a $share subscription (MQTT 5 §4.8.2), so a worker that starts after a
  // site came online would never learn it. Every worker gets them; applying a status twice is harmless.
  const retained = [`${base}status`, `${base}camera/+/status`];
  const filters = o.sharedGroup ? [...work.map((f) => `$share/${o.sharedGroup}/${f}`), ...retained] : [...work, ...retained];
  const clientId = o.clientId ?? defaultCentralClientId();
  if (!clientId.startsWith(CENTRAL_CLIENT_PREFIX)) throw new Error(`broker.clientId: "${clientId}" must start with "${CENTRAL_CLIENT_PREFIX}"`);
  const minMs = o.reconnect?.minMs ?? RECONNECT_MIN_MS;
  const maxMs = Math.max(minMs, o.reconnect?.maxMs ?? RECONNECT_MAX_MS);
  const client = mqtt.connect(o.url, {
    clientId,
    username: o.username,
    password: o.password,
    protocolVersion: 4, // aedes speaks 3.1.1; Mosquitto and EMQX accept $share on 3.1.1 too
    clean: false, // persistent session: the broker queues QoS 1 messages for central while it is away
    resubscribe: false, // done below, with the grants checked
    reconnectPeriod: minMs,
    connectTimeout: 10_000,
    ca: o.caFile ? readFileSync(o.caFile) : undefined,
  });
  // mqtt.js acknowledges a packet and reads the next one when handleMessage calls back. A QoS 1
  // message is acknowledged once it is stored, so that a central killed before that loses nothing
  // (the broker sends it again, to this worker's session or another in the group); MQTT acknowledges
  // in order, so these are taken one at a time. QoS 0 (stats) only waits while ingest is behind.
  client.handleMessage = (packet, done) => {
    const handled = o.onMessage(packet.topic, packet.payload as Buffer);
    const wait = packet.qos > 0 ? handled : o.ready?.();
    if (wait) void wait.then(() => done(), () => done());
    else done();
  };
  client.on('error', (err) => log.warn({ err: err.message, clientId }, 'broker connection error'));
  client.on('offline', () => log.warn({ url: o.url, clientId }, 'broker offline; reconnecting'));
  // Back-off: mqtt.js arms its reconnect timer with options.reconnectPeriod at each failed attempt's
  // close, so growing it before every attempt spaces the attempts out; a successful connect resets it.
  let delay = minMs;
  client.on('reconnect', () => {
    delay = Math.min(maxMs, delay * 2);
    client.options.reconnectPeriod = Math.round(delay * (0.8 + Math.random() * 0.4));
  });
  const subscribe = async () => {
    const granted = await client.subscribeAsync(filters.map((f) => f), { qos: 1 });
    const refused = granted.filter((g) => g.qos !== 0 && g.qos !== 1 && g.qos !== 2);
    if (refused.length) throw new Error(`broker refused subscriptions: ${refused.map((g) => g.topic).join(', ')}`);
  };
  let first = true;
  client.on('connect', (ack) => {
    delay = minMs;
    client.options.reconnectPeriod = minMs;
    if (first) { first = false; return; } // the first subscribe is awaited below
    log.info({ url: o.url, clientId, sessionPresent: ack.sessionPresent }, 'broker reconnected');
    // Subscribe again even when the broker says it kept the session: Mosquitto 2.0.11 restarted from
    // its persistence file reports the session present but delivers nothing to its $share
    // subscriptions (seen in tests/faults outage). Subscribing again is idempotent.
    subscribe().then(
      () => log.info({ clientId, filters }, 'central re-subscribed'),
      (err: Error) => {
        log.error({ err: err.message }, 'resubscribe failed; reconnecting to try again');
        client.stream?.destroy(); // the reconnect that follows subscribes again
      },
    );
  });
  // The first connect must succeed (a wrong URL or credential stops central at start with a clear
  // message); both listeners are removed once it settles, so later connection errors only log.
  await new Promise<void>((resolve, reject) => {
    const settle = (err?: Error) => {
      clearTimeout(timer);
      client.off('connect', onConnect);
      client.off('error', onError);
      if (!err) return resolve();
      client.end(true);
      reject(new Error(`cannot connect to broker ${o.url} as "${o.username}": ${err.message}`));
    };
    const onConnect = () => settle();
    const onError = (err: Error) => settle(err);
    const timer = setTimeout(() => settle(new Error('timed out')), 15_000);
    client.on('connect', onConnect);
    client.on('error', onError);
  });
  try {
    await subscribe();
  } catch (err) {
    client.end(true);
    throw err;
  }
  log.info({ url: o.url, clientId, filters }, 'central subscribed');
  return {
    client,
    clientId,
    filters,
    async publish(topic, payload, opts = {}) {
      await client.publishAsync(topic, payload, { qos: opts.qos ?? 1, retain: opts.retain ?? false });
    },
    async close() {
      if (!client.connected) return client.endAsync(true); // nothing to wait for: stop reconnecting
      // a graceful DISCONNECT (the broker keeps the session), but never wait forever for PUBACKs
      let timer: NodeJS.Timeout | undefined;
      const gaveUp = await Promise.race([
        client.endAsync().then(() => false),
        new Promise<boolean>((r) => { timer = setTimeout(() => r(true), 5000); }),
      ]);
      clearTimeout(timer);
      if (gaveUp) {
        log.warn({ clientId }, 'broker did not acknowledge the last publishes within 5 s; closing anyway');
        client.stream?.destroy();
      }
    },
  };
}

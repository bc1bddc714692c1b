/** Wires config → store → broker → (mqtt.js client) → ingest → route → notify, and voice. */
import { childLog } from '../common/log.js';
import { Bus } from './bus.js';
import path from 'node:path';
import { connectCentralMqtt, defaultCentralClientId, type CentralMqtt } from './broker/client.js';
import { startEmbeddedBroker, type EmbeddedBroker } from './broker/embedded.js';
import type { CentralConfig } from './config/schema.js';
import type { Central, CentralMetrics } from './core.js';
import { Ingest } from './ingest/ingest.js';
import { Notifier } from './notify/notifier.js';
import type { postWebhook } from './notify/webhook.js';
import { Router } from './route/route.js';
import { openStore } from './store/open.js';
import { PostgresSql } from './store/sql.js';
import { bridgeBus } from './bus-bridge.js';
import type { Store } from './store/store.js';
import { Ticker } from './ticker.js';
import { VoiceService } from './voice/voice.js';

const log = childLog({ mod: 'central' });

/** Internals tests may look at (not part of the HTTP facade). */
export interface CentralInternals extends Central {
  internals: { store: Store; ingest: Ingest; router: Router; notifier: Notifier; voice: VoiceService; mqtt: CentralMqtt; broker: EmbeddedBroker | null };
}

export async function startCentral(config: CentralConfig, opts: { post?: typeof postWebhook } = {}): Promise<CentralInternals> {
  const store = await openStore({ dataDir: config.dataDir, store: config.store });
  // Run last to first: whatever writes to the store has stopped (and finished) before it closes.
  const cleanup: (() => Promise<void> | void)[] = [() => store.close()];
  try {
    await store.syncOrg(config.org);
    const bus = new Bus();
    store.onEventChanged = (e) => bus.emit('event', e);
    // several instances on one PostgreSQL: each one's live feed carries what the others saw
    if (store.sql instanceof PostgresSql) {
      const unbridge = bridgeBus(bus, store.sql, store);
      cleanup.unshift(unbridge);
    }
    let broker: EmbeddedBroker | null = null;
    let url: string, username: string, password: string, caFile: string | undefined, sharedGroup: string | undefined;
    if (config.broker.mode === 'embedded') {
      broker = await startEmbeddedBroker({
        host: config.broker.host, port: config.broker.port, tls: config.broker.tls, prefix: config.topicPrefix,
        maxPacketBytes: config.broker.maxPacketBytes,
        credentials: { siteHash: (id) => store.siteMqttHash(id), user: (name) => store.userForMqtt(name) },
        persistenceDir: path.join(config.dataDir, 'broker'), // sessions and queued QoS 1 messages survive a restart
      });
      const b = broker;
      cleanup.unshift(() => b.close());
      url = broker.url;
      ({ username, password } = broker.centralCredentials);
      caFile = config.broker.tls?.ca; // central's own client verifies its TLS broker (private CA)
    } else {
      url = config.broker.url;
      const u = process.env[config.broker.usernameEnv], p = process.env[config.broker.passwordEnv];
      if (!u) throw new Error(`broker.usernameEnv: environment variable ${config.broker.usernameEnv} is not set`);
      if (!p) throw new Error(`broker.passwordEnv: environment variable ${config.broker.passwordEnv} is not set`);
      username = u; password = p; caFile = config.broker.caFile; sharedGroup = config.broker.sharedGroup;
    }

    // Ingest exists before the broker connection: a persistent session's queued messages come right
    // after CONNACK, and each QoS 1 message is handled before the next packet (the SUBACK among
    // them) is read, so nothing may wait for the connection to handle one. Publishing waits for it.
    const clientId = config.broker.clientId ?? defaultCentralClientId();
    let connected!: (m: CentralMqtt) => void;
    const mqttReady = new Promise<CentralMqtt>((r) => { connected = r; });
    const publish = async (topic: string, payload: string) => (await mqttReady).publish(topic, payload, { qos: 1 });

    const notifier = new Notifier({ store, bus, config, publish, post: opts.post, instance: clientId });
    const router = new Router({ store, notifier, config });
    const voice = new VoiceService({ store, bus, config, publish });
    const ingest = new Ingest({
      store, bus, prefix: config.topicPrefix,
      maxJsonBytes: config.ingest.maxJsonBytes, maxSnapshotBytes: config.ingest.maxSnapshotBytes,
      insertOpts: (m) => router.insertOpts(m),
      routeNew: async (id) => {
        const send = await router.planNew(id);
        const e = await store.eventById(id);
        const preset = e && (await store.siteContext(e.siteId))?.site.autoReminder?.[e.kind];
        const cameraId = e && preset && (await store.cameraExists(e.siteId, e.cameraId)) ? e.cameraId : null;
        return () => {
          send();
          if (!e || !preset) return;
          // not awaited: the site's next message need not wait for the broker's PUBACK
          voice.issue('central', { siteId: e.siteId, cameraId, type: 'preset', presetId: preset })
            .catch((err: Error) => log.warn({ eventId: id, err: err.message }, 'auto reminder not sent'));
        };
      },
    });
    const mqtt = await connectCentralMqtt({
      url, username, password, caFile, sharedGroup, prefix: config.topicPrefix, clientId,
      onMessage: (topic, payload) => ingest.handle(topic, payload),
      ready: () => ingest.ready(),
    });
    connected(mqtt);
    cleanup.unshift(async () => {
      await mqtt.close();
      // no more messages come: store the ones received before the store closes (a store that is
      // down gets 10 s; messages still waiting then are logged as not stored)
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([ingest.idle(), new Promise((r) => { timer = setTimeout(r, 10_000); })]);
      clearTimeout(timer);
      ingest.stop();
      await ingest.idle();
    });
    const retention = new Ticker('clip retention', async () => {
      const r = await store.clips.enforceRetention(config.clips);
      if (r.clips) log.info({ ...r, ...config.clips }, 'clip retention: expired the oldest clips');
    }, log);
    await retention.run();
    retention.start(3_600_000, { unref: true });
    cleanup.unshift(() => retention.stop());
    await notifier.start();
    router.start();
    cleanup.unshift(async () => { await router.stop(); await notifier.stop(); });

    let stopped = false;
    const central: CentralInternals = {
      config,
      store,
      bus,
      brokerUrl: url,
      scopeOf: (user) => store.scopeOf(user),
      siteInScope: (scope, siteId) => store.siteInScope(scope, siteId),
      snapshotFile: (sha, scope) => store.snapshotFile(sha, scope),
      voice: {
        presets: () => voice.presets(),
        send: (user, req, meta) => voice.send(user, req, meta),
        publicKeyPem: voice.publicKeyPem,
      },
      metrics: async (): Promise<CentralMetrics> => {
        const { messages, rejected, duplicates, events, snapshots, clips } = ingest.counters;
        const t0 = performance.now();
        const deliveries = await store.deliveryCounts();
        const storeQuerySeconds = (performance.now() - t0) / 1000;
        const n = notifier.counters;
        return {
          messages, rejected, duplicates, events, snapshots, clips,
          routed: router.counters.routed, escalations: router.counters.escalations,
          webhookRequests: n.webhookRequests, webhookAlerts: n.webhookAlerts, mqttSent: n.mqttSent, notifyFailures: n.failures,
          robotQueueDepth: notifier.queueDepth(),
          brokerConnected: mqtt.client.connected,
          broker: broker ? broker.stats() : null,
          deliveries, storeQuerySeconds,
        };
      },
      async stop() {
        if (stopped) return;
        stopped = true;
        for (const f of cleanup) await f();
        bus.removeAllListeners();
        log.info('central stopped');
      },
      internals: { store, ingest, router, notifier, voice, mqtt, broker },
    };
    log.info({ broker: url, dataDir: config.dataDir, sites: config.org.sites.length, users: config.org.users.length }, 'central started');
    return central;
  } catch (err) {
    for (const f of cleanup) { try { await f(); } catch { /* already failing */ } }
    throw err;
  }
}

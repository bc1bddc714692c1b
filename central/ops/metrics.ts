/**
 * Central's Prometheus metrics (prom-client, a registry per HTTP server), read from the core at scrape
 * time: ingest, duplicates, routing and escalations, deliveries by channel and status, robot queue,
 * broker, SSE clients, and the time of one store query (a store-latency probe).
 */
import { Registry } from 'prom-client';
import { scraped, type Read } from '../../common/metrics.js';
import type { Central, CentralMetrics } from '../core.js';

const metric = scraped;

export function centralMetrics(central: Central, sseClients: () => number): Registry {
  const reg = new Registry();
  // One core snapshot per scrape (collect runs per metric; the store query should run once): the
  // promise is shared, so the metrics collected at once wait for the same query.
  let snap: { at: number; m: Promise<CentralMetrics> } | null = null;
  const m = () => {
    if (!snap || Date.now() - snap.at > 500) snap = { at: Date.now(), m: central.metrics() };
    return snap.m;
  };
  const one = (f: (x: CentralMetrics) => number): Read => async () => [[{}, f(await m())]];
  metric(reg, 'counter', 'bk_central_messages_total', 'MQTT messages received from sites.', [], one((x) => x.messages));
  metric(reg, 'counter', 'bk_central_messages_rejected_total', 'Messages refused (schema, topic, size, site mismatch).', [], one((x) => x.rejected));
  metric(reg, 'counter', 'bk_central_events_total', 'Events ingested (new).', [], one((x) => x.events));
  metric(reg, 'counter', 'bk_central_event_duplicates_total', 'Events received again (redelivery) and ignored.', [], one((x) => x.duplicates));
  metric(reg, 'counter', 'bk_central_snapshots_total', 'Snapshot images stored.', [], one((x) => x.snapshots));
  metric(reg, 'counter', 'bk_central_clips_total', 'Event clips assembled from their chunks and stored.', [], one((x) => x.clips));
  metric(reg, 'counter', 'bk_central_events_routed_total', 'Events routed to their recipients.', [], one((x) => x.routed));
  metric(reg, 'counter', 'bk_central_escalations_total', 'Escalations to the next level (vice-principal, office).', [], one((x) => x.escalations));
  metric(reg, 'counter', 'bk_central_webhook_requests_total', 'Robot webhook requests sent (WeCom, DingTalk).', [], one((x) => x.webhookRequests));
  metric(reg, 'counter', 'bk_central_mqtt_alerts_total', 'Per-recipient MQTT alerts published.', [], one((x) => x.mqttSent));
  metric(reg, 'counter', 'bk_central_delivery_failures_total', 'Failed delivery attempts (retried with back-off).', [], one((x) => x.notifyFailures));
  metric(reg, 'gauge', 'bk_central_deliveries', 'Deliveries in the store by channel and status.', ['channel', 'status'], async () => (await m()).deliveries.map((d) => [{ channel: d.channel, status: d.status }, d.n]));
  metric(reg, 'gauge', 'bk_central_robot_queue_depth', 'Robot messages waiting for their rate limit or back-off.', [], one((x) => x.robotQueueDepth));
  metric(reg, 'gauge', 'bk_central_broker_connected', "Whether central's client is connected to the broker.", [], one((x) => (x.brokerConnected ? 1 : 0)));
  metric(reg, 'gauge', 'bk_central_broker_clients', 'Clients connected to the embedded broker (absent with an external one).', [], async () => { const { broker } = await m(); return broker ? [[{}, broker.clients]] : []; });
  metric(reg, 'counter', 'bk_central_broker_auth_failures_total', 'Refused broker logins (embedded broker).', [], async () => { const { broker } = await m(); return broker ? [[{}, broker.authFailures]] : []; });
  metric(reg, 'gauge', 'bk_central_sse_clients', 'Dashboard live-feed (SSE) connections open.', [], () => [[{}, sseClients()]]);
  metric(reg, 'gauge', 'bk_central_store_query_seconds', 'Time of one store query at this scrape (deliveries by status).', [], one((x) => x.storeQuerySeconds));
  return reg;
}

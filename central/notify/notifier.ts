/**
 * Delivery of alerts on every channel, each recorded per recipient and channel in `deliveries`
 * (pending → sent, or retrying with exponential back-off; rows survive restarts and are resumed):
 *  - dashboard: bus 'alert' (the HTTP layer's SSE), marked sent at once;
 *  - mqtt: RecipientAlert to `<prefix>/user/<userId>/alert`, QoS 1 (sent = broker PUBACK);
 *  - wecom / dingtalk: one queue per robot URL, ≤ max messages per window, batching when backed up.
 */
import { childLog } from '../../common/log.js';
import { RecipientAlert } from '../../protocol/messages.js';
import { topics } from '../../protocol/topics.js';
import type { Bus } from '../bus.js';
import type { CentralConfig } from '../config/schema.js';
import type { DeliveryRow, Store } from '../store/store.js';
import type { OfficeRecord, EventView, UserRecord } from '../store/types.js';
import { Ticker } from '../ticker.js';
import { WindowLimiter } from './limiter.js';
import { alertText, markdownFor, postWebhook, type AlertText } from './webhook.js';

const log = childLog({ mod: 'central.notify' });

export interface NotifierDeps {
  store: Store;
  bus: Bus;
  config: CentralConfig;
  publish(topic: string, payload: string): Promise<void>;
  /** For tests: override how robots are reached. */
  post?: typeof postWebhook;
  /**
   * This instance's name in delivery leases (stable across its restarts: its MQTT client id), so
   * that with several instances on one database each delivery is sent by one of them.
   */
  instance: string;
}

/** One alert step's delivery rows (Notifier.record), to send once they are committed (Notifier.dispatch). */
export interface AlertPlan {
  event: EventView;
  level: number;
  users: UserRecord[];
  /** Delivery ids. */
  mqtt: number[];
  robots: number[];
}

interface Queue {
  type: 'wecom' | 'dingtalk';
  url: string;
  limiter: WindowLimiter;
  ids: number[];
  /** A pump is running (from its store reads to its store writes): the queue's rows are its own. */
  busy: boolean;
  /** Pumped again once the running pump is done (rows came, or a timer fired, meanwhile). */
  again: boolean;
  timer: NodeJS.Timeout | null;
}

export class Notifier {
  private readonly queues = new Map<string, Queue>();
  private readonly inFlight = new Set<number>();
  private readonly retry = new Ticker('delivery retry', () => this.retryDue(), log);
  private stopped = false;
  /** Robot requests made (for tests / health). */
  readonly counters = { webhookRequests: 0, webhookAlerts: 0, mqttSent: 0, failures: 0 };

  /** How long a delivery being sent is this instance's; past it (the instance died) another takes it. */
  private readonly leaseMs: number;

  constructor(private readonly d: NotifierDeps) {
    this.leaseMs = d.config.notify.deliveryLeaseSec * 1000;
  }

  private get t() { return topics(this.d.config.topicPrefix); }
  private snapshotUrl(e: EventView): string {
    return `${this.d.config.http.publicUrl.replace(/\/$/, '')}/api/snapshots/${e.snapshotSha256}`;
  }
  private backoff(attempts: number): number {
    const { baseMs, maxMs } = this.d.config.notify.retry;
    const ms = Math.min(maxMs, baseMs * 2 ** Math.max(0, attempts - 1));
    return Math.round(ms * (1 + Math.random() * 0.2));
  }

  /** Resume what a previous run left pending and start the retry loop. */
  async start(): Promise<void> {
    for (const row of await this.d.store.pendingDeliveries(['wecom', 'dingtalk'])) this.enqueue(row);
    void this.retry.run();
    this.retry.start(Math.min(1000, this.d.config.notify.retry.baseMs));
  }

  /**
   * Waits for a retry pass in progress. Sends and robot posts still in flight write nothing to the
   * store once stopped (their rows stay pending and are resumed at the next start).
   */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const q of this.queues.values()) if (q.timer) clearTimeout(q.timer);
    await this.retry.stop();
    await this.d.store.releaseDeliveries(this.d.instance).catch((err: Error) => log.warn({ err: err.message }, 'delivery leases not released (they run out)'));
  }

  /**
   * Writes the delivery rows of one alert step — these users on the dashboard (sent) and MQTT
   * (pending), these offices' robots (pending) — and returns what `dispatch` sends once the caller's
   * transaction committed. Rows and the step that causes them (an escalation) commit together, so an
   * instance that dies after the commit leaves pending rows that another instance sends.
   */
  async record(event: EventView, users: UserRecord[], offices: OfficeRecord[], level: number): Promise<AlertPlan> {
    const { store } = this.d;
    const plan: AlertPlan = { event, level, users, mqtt: [], robots: [] };
    for (const u of users) {
      await store.addDelivery({ eventId: event.id, recipientId: u.id, recipientName: u.name, role: u.role, channel: 'dashboard', level, status: 'sent' });
    }
    for (const u of users) {
      plan.mqtt.push(await store.addDelivery({ eventId: event.id, recipientId: u.id, recipientName: u.name, role: u.role, channel: 'mqtt', target: this.t.userAlert(u.id), level }));
    }
    for (const o of offices) {
      for (const w of o.webhooks) {
        plan.robots.push(await store.addDelivery({ eventId: event.id, recipientId: o.id, recipientName: o.name, role: o.level, channel: w.type, target: w.url, level }));
      }
    }
    return plan;
  }

  /** Sends what `record` wrote (after its transaction committed). Never rejects. */
  dispatch(plan: AlertPlan): void {
    if (plan.users.length) this.d.bus.emit('alert', { event: plan.event, level: plan.level, recipients: plan.users.map((u) => ({ userId: u.id, role: u.role })) });
    for (const id of plan.mqtt) void this.sendMqtt(id);
    for (const id of plan.robots) {
      this.d.store.delivery(id).then((row) => { if (row) this.enqueue(row); },
        (err: Error) => log.warn({ delivery: id, err: err.message }, 'robot delivery not queued now; the retry pass takes it'));
    }
  }

  private recipientAlert(row: DeliveryRow, e: EventView): RecipientAlert {
    // Plain text: an app or SMS gateway shows it as it is (the snapshot link is its own field).
    const { title, facts, en } = alertText({ event: e, level: row.level, snapshotUrl: this.snapshotUrl(e) }, this.d.config.timezone);
    return RecipientAlert.parse({
      v: 1, eventId: e.id, siteId: e.siteId, siteName: e.siteName, cameraId: e.cameraId, cameraName: e.cameraName,
      kind: e.kind, severity: e.severity, raisedAt: e.raisedAt, role: row.role, level: row.level,
      title, text: facts.join('\n'), textEn: en, snapshotUrl: this.snapshotUrl(e),
    });
  }

  /** Never rejects (its callers do not wait for it): a store failure is logged, the row retried later. */
  private async sendMqtt(id: number): Promise<void> {
    if (this.inFlight.has(id) || this.stopped) return;
    // In flight from the first read: a retry pass meanwhile must not send this row a second time.
    this.inFlight.add(id);
    try {
      // the lease: not sent, not failed, and not being sent by another instance
      const [row] = await this.d.store.claimDeliveries([id], this.d.instance, Date.now() + this.leaseMs);
      if (!row) return;
      const e = await this.d.store.eventById(row.event_id);
      if (this.stopped) return;
      if (!e) return await this.d.store.markDelivery(id, 'failed', { error: 'event gone' });
      try {
        await this.d.publish(this.t.userAlert(row.recipient_id), JSON.stringify(this.recipientAlert(row, e)));
        if (this.stopped) return;
        await this.d.store.markDelivery(id, 'sent');
        this.counters.mqttSent++;
      } catch (err) {
        if (this.stopped) return;
        this.counters.failures++;
        const next = Date.now() + this.backoff(row.attempts + 1);
        await this.d.store.markDelivery(id, 'retrying', { error: (err as Error).message, nextAttemptAt: next });
        log.warn({ delivery: id, err: (err as Error).message }, 'MQTT alert failed; will retry');
      }
    } catch (err) {
      log.error({ delivery: id, err: (err as Error).message }, 'MQTT alert: store failed');
    } finally {
      this.inFlight.delete(id);
    }
  }

  /** MQTT alerts due again, and robot deliveries no instance holds (one that held them died). */
  private async retryDue(): Promise<void> {
    const now = Date.now();
    for (const row of await this.d.store.pendingDeliveries(['mqtt', 'wecom', 'dingtalk'])) {
      if (row.channel !== 'mqtt') this.enqueue(row);
      else if ((row.next_attempt_at ?? 0) <= now && !this.inFlight.has(row.id)) void this.sendMqtt(row.id);
    }
  }

  // ----------------------------------------------------------- robots
  /** Robot messages waiting in the per-URL queues (rate limit, back-off). */
  queueDepth(): number {
    let n = 0;
    for (const q of this.queues.values()) n += q.ids.length;
    return n;
  }

  private enqueue(row: DeliveryRow): void {
    if (!row.target || (row.channel !== 'wecom' && row.channel !== 'dingtalk')) return;
    const key = `${row.channel} ${row.target}`;
    let q = this.queues.get(key);
    if (!q) {
      const { max, windowSec } = this.d.config.notify.webhookRateLimit;
      // The robot counts arrivals, we count departures: a safety margin absorbs network jitter.
      const windowMs = windowSec * 1000;
      q = { type: row.channel, url: row.target, limiter: new WindowLimiter(max, windowMs + Math.max(100, windowMs * 0.01)), ids: [], busy: false, again: false, timer: null };
      this.queues.set(key, q);
    }
    if (!q.ids.includes(row.id)) q.ids.push(row.id);
    this.pump(q);
  }

  private schedule(q: Queue, ms: number): void {
    if (this.stopped) return;
    if (q.timer) clearTimeout(q.timer);
    q.timer = setTimeout(() => { q.timer = null; this.pump(q); }, Math.max(5, ms));
  }

  private async secretFor(q: Queue): Promise<{ secret?: string; error?: string }> {
    if (q.type !== 'dingtalk') return {};
    const w = (await this.d.store.org.list('districts')).flatMap((d) => d.webhooks).find((x) => x.type === 'dingtalk' && x.url === q.url);
    if (!w?.secretEnv) return {};
    const secret = process.env[w.secretEnv];
    return secret ? { secret } : { error: `environment variable ${w.secretEnv} (DingTalk secret for ${q.url}) is not set` };
  }

  private pump(q: Queue): void {
    if (this.stopped || !q.ids.length) return;
    if (q.busy) { q.again = true; return; }
    q.busy = true;
    q.again = false;
    this.pumpOnce(q)
      .catch((err: Error) => { log.error({ url: q.url, type: q.type, err: err.message }, 'robot queue: store failed'); return false; })
      .then((sent) => {
        q.busy = false;
        if (sent || q.again) this.pump(q);
      });
  }

  /** One batch to the robot, if one is due; true when a request was made. */
  private async pumpOnce(q: Queue): Promise<boolean> {
    const ids = q.ids;
    const rows = (await Promise.all(ids.map((id) => this.d.store.delivery(id)))).filter((r): r is DeliveryRow => !!r && (r.status === 'pending' || r.status === 'retrying'));
    if (this.stopped) return false;
    // ids enqueued during the reads stay queued (the next pump reads them)
    const read = new Set(ids);
    q.ids = [...rows.map((r) => r.id), ...q.ids.filter((id) => !read.has(id))];
    const now = Date.now();
    const ready = rows.filter((r) => (r.next_attempt_at ?? 0) <= now);
    if (!ready.length) {
      if (rows.length) this.schedule(q, Math.min(...rows.map((r) => r.next_attempt_at ?? now)) - now);
      return false;
    }
    const wait = q.limiter.waitMs(now);
    if (wait > 0) {
      this.schedule(q, wait);
      return false;
    }
    // leased for the request: rows another instance is sending leave this queue
    const wanted = ready.slice(0, this.d.config.notify.maxBatch);
    const batch = await this.d.store.claimDeliveries(wanted.map((r) => r.id), this.d.instance, now + this.leaseMs + this.d.config.notify.webhookTimeoutMs);
    const got = new Set(batch.map((r) => r.id));
    const lost = new Set(wanted.filter((r) => !got.has(r.id)).map((r) => r.id));
    if (lost.size) q.ids = q.ids.filter((id) => !lost.has(id));
    if (!batch.length) return lost.size > 0;
    q.limiter.take(now);
    try {
      const alerts: AlertText[] = [];
      for (const r of batch) {
        const e = await this.d.store.eventById(r.event_id);
        if (e) alerts.push({ event: e, level: r.level, snapshotUrl: this.snapshotUrl(e) });
      }
      const { secret, error } = await this.secretFor(q);
      const post = this.d.post ?? postWebhook;
      this.counters.webhookRequests++;
      try {
        if (error) throw new Error(error);
        await post(q.type, q.url, secret, markdownFor(alerts, this.d.config.timezone), this.d.config.notify.webhookTimeoutMs);
      } catch (err) {
        if (this.stopped) return false;
        this.counters.failures++;
        log.warn({ url: q.url, type: q.type, alerts: batch.length, err: (err as Error).message }, 'robot webhook failed; will retry');
        for (const r of batch) await this.d.store.markDelivery(r.id, 'retrying', { error: (err as Error).message, nextAttemptAt: Date.now() + this.backoff(r.attempts + 1) });
        return true;
      }
      if (this.stopped) return false;
      this.counters.webhookAlerts += batch.length;
      for (const r of batch) await this.d.store.markDelivery(r.id, 'sent');
      const done = new Set(batch.map((r) => r.id));
      q.ids = q.ids.filter((id) => !done.has(id));
      return true;
    } finally {
      q.limiter.finished();
    }
  }

  /** Robot deliveries not yet sent (for tests / health). */
  webhookBacklog(): number {
    let n = 0;
    for (const q of this.queues.values()) n += q.ids.length;
    return n;
  }
}

/**
 * Uplink: drains the outbox to central's MQTT broker and receives voice commands.
 *
 * - One mqtt.js client per connection (`clientId = agent-<siteId>`, `clean: false` so the broker keeps
 *   our session and the QoS 1 voice commands sent while we are offline). Reconnects are ours, with
 *   exponential back-off and jitter (mqtt.js only has a fixed period); a fresh client per attempt means
 *   nothing from a dead connection is re-sent behind our back: after a reconnect the outbox is the
 *   only source of truth and the drain restarts from its first pending row.
 * - Drain: rows are published in id order at their QoS with at most `inFlight` awaiting PUBACK; a row
 *   is deleted only on its PUBACK (acks are batched into one transaction per tick). Enqueue wakes the
 *   drain at once (the outbox's `enqueued` event, or `notify()`); a slow poll is the safety net for
 *   rows written by another process.
 * - Site status: last will = retained `{online:false}`; on connect retained `{online:true}`; `stop()`
 *   publishes `{online:false}` itself before a clean DISCONNECT (which suppresses the will).
 * - Camera status (retained) and stats go straight to the broker when connected; the latest camera
 *   status per camera is re-published after every reconnect.
 */
import { redactUrl } from '../../common/redact.js';
import { EventEmitter } from 'node:events';
import { readFileSync } from 'node:fs';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { childLog } from '../../common/log.js';
import { CameraStatus, SiteStats, VoiceStatus, formatIssues, type SiteStatus } from '../../protocol/messages.js';
import { DEFAULT_PREFIX, topics, type TopicMap } from '../../protocol/topics.js';
import type { SiteConfig } from '../config/schema.js';
import type { Outbox, OutboxRow } from '../outbox/outbox.js';

export class UplinkConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UplinkConfigError';
  }
}

/** What the voice module returns for a command: a status to send back, or nothing. */
export type VoiceCommandHandler = (payload: Buffer, topic: string) => Promise<VoiceStatus | null | void> | VoiceStatus | null | void;

export interface UplinkOptions {
  siteId: string;
  /** mqtt://, mqtts://, ws://, wss:// */
  url: string;
  outbox: Outbox;
  topicPrefix?: string;
  /** Omit for an anonymous broker (tests). */
  credentials?: { username: string; password: string };
  /** CA certificate(s) (PEM) for mqtts / wss with a private CA. */
  ca?: string | Buffer;
  /** Default `agent-<siteId>`. */
  clientId?: string;
  keepaliveSec?: number;
  connectTimeoutMs?: number;
  reconnectMinMs?: number;
  reconnectMaxMs?: number;
  /** Max rows awaiting PUBACK. Default 16. */
  inFlight?: number;
  /** Safety-net poll of the outbox. Default 5000 ms. */
  pollMs?: number;
  /** How long `stop()` waits for in-flight PUBACKs and the offline status. Default 3000 ms. */
  stopTimeoutMs?: number;
  agentVersion?: string;
}

export type UplinkPhase = 'idle' | 'connecting' | 'connected' | 'reconnecting' | 'stopping' | 'stopped';

export interface UplinkState {
  phase: UplinkPhase;
  connected: boolean;
  inFlight: number;
  pending: number;
  /** Rows acknowledged by the broker since start. */
  delivered: number;
  /** Connection attempts since the last successful connect. */
  failedAttempts: number;
  lastError: string | null;
  connectedSince: number | null;
}

/**
 * Read the broker credentials from the environment variables named in the site config.
 * A missing (or empty) variable is an error that names it.
 */
export function readCredentials(usernameEnv: string, passwordEnv: string, env: NodeJS.ProcessEnv = process.env): { username: string; password: string } {
  const missing = [
    ['uplink.usernameEnv', usernameEnv],
    ['uplink.passwordEnv', passwordEnv],
  ].filter(([, name]) => !env[name!]);
  if (missing.length > 0) {
    throw new UplinkConfigError(
      missing.map(([field, name]) => `${field}: environment variable ${name} is not set (it must hold the broker ${field === 'uplink.usernameEnv' ? 'username' : 'password'} for this site)`).join('; '),
    );
  }
  return { username: env[usernameEnv]!, password: env[passwordEnv]! };
}

/** Build Uplink options from the site config (credentials from env, CA file read now). */
export function uplinkOptionsFromConfig(cfg: SiteConfig, outbox: Outbox, env: NodeJS.ProcessEnv = process.env): UplinkOptions {
  const u = cfg.uplink;
  if (!u) throw new UplinkConfigError('uplink: section missing from the site config (url, usernameEnv, passwordEnv)');
  let ca: Buffer | undefined;
  if (u.caFile) {
    try {
      ca = readFileSync(u.caFile);
    } catch (err) {
      throw new UplinkConfigError(`uplink.caFile: cannot read ${u.caFile}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
  }
  return {
    siteId: cfg.site.id,
    url: u.url,
    outbox,
    topicPrefix: u.topicPrefix,
    credentials: readCredentials(u.usernameEnv, u.passwordEnv, env),
    ...(ca ? { ca } : {}),
  };
}

/**
 * Events: `connected` ({ sessionPresent }), `disconnected` ({ reason }), `delivered` (ids: number[]).
 */
export class Uplink extends EventEmitter {
  private readonly opts: Required<Omit<UplinkOptions, 'credentials' | 'ca' | 'agentVersion'>> & Pick<UplinkOptions, 'credentials' | 'ca' | 'agentVersion'>;
  private readonly t: TopicMap;
  private readonly outbox: Outbox;
  private readonly log;
  private client: MqttClient | null = null;
  private gen = 0;
  private phase: UplinkPhase = 'idle';
  private connected = false;
  private connectedSince: number | null = null;
  private failedAttempts = 0;
  private lastError: string | null = null;
  private reconnectTimer: NodeJS.Timeout | null = null;
  private pollTimer: NodeJS.Timeout | null = null;
  private drainScheduled = false;
  private draining = false;
  /** Highest outbox id handed to the current connection. */
  private cursor = 0;
  private readonly inflight = new Set<number>();
  private ackBuffer: number[] = [];
  private ackScheduled = false;
  private delivered = 0;
  private readonly cameras = new Map<string, CameraStatus>();
  private voiceHandler: VoiceCommandHandler | null = null;
  private readonly earlyCommands: { payload: Buffer; topic: string }[] = [];
  private readonly onEnqueued = () => this.notify();

  constructor(opts: UplinkOptions) {
    super();
    if (!/^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/.test(opts.siteId)) throw new UplinkConfigError(`siteId: "${opts.siteId}" is not a valid id`);
    if (!/^(mqtts?|wss?|tcp|ssl):\/\/.+/.test(opts.url)) throw new UplinkConfigError(`uplink.url: expected an mqtt://, mqtts://, ws:// or wss:// URL (got "${opts.url}")`);
    this.opts = {
      topicPrefix: DEFAULT_PREFIX,
      clientId: `agent-${opts.siteId}`,
      keepaliveSec: 30,
      connectTimeoutMs: 10_000,
      reconnectMinMs: 500,
      reconnectMaxMs: 30_000,
      inFlight: 16,
      pollMs: 5000,
      stopTimeoutMs: 3000,
      ...opts,
    };
    if (this.opts.inFlight < 1) throw new UplinkConfigError(`inFlight: must be at least 1 (got ${this.opts.inFlight})`);
    this.outbox = opts.outbox;
    this.t = topics(this.opts.topicPrefix);
    this.log = childLog({ module: 'uplink', siteId: opts.siteId, url: redactUrl(opts.url) });
  }

  start(): void {
    if (this.phase !== 'idle' && this.phase !== 'stopped') return;
    this.phase = 'connecting';
    this.outbox.on('enqueued', this.onEnqueued);
    this.pollTimer = setInterval(() => this.notify(), this.opts.pollMs);
    this.pollTimer.unref();
    this.connect();
  }

  /** Publish `{online:false}`, wait (bounded) for in-flight PUBACKs, DISCONNECT cleanly. */
  async stop(): Promise<void> {
    if (this.phase === 'stopped' || this.phase === 'idle') {
      this.phase = 'stopped';
      return;
    }
    this.phase = 'stopping';
    this.outbox.off('enqueued', this.onEnqueued);
    if (this.pollTimer) clearInterval(this.pollTimer);
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.pollTimer = this.reconnectTimer = null;
    const client = this.client;
    const deadline = Date.now() + this.opts.stopTimeoutMs;
    if (client && this.connected) {
      while (this.inflight.size > 0 && this.connected && Date.now() < deadline) await sleep(20);
      const offline = this.siteStatus(false);
      await withTimeout(
        new Promise<void>((resolve) => client.publish(this.t.siteStatus(this.opts.siteId), JSON.stringify(offline), { qos: 1, retain: true }, () => resolve())),
        Math.max(100, deadline - Date.now()),
      );
      this.gen++; // ignore the close that follows
      await withTimeout(new Promise<void>((resolve) => client.end(false, {}, () => resolve())), 1000);
      if (!client.disconnected) client.end(true);
    } else if (client) {
      this.gen++;
      client.end(true);
    }
    this.flushAcks();
    this.client = null;
    this.connected = false;
    this.connectedSince = null;
    this.inflight.clear();
    this.phase = 'stopped';
    this.log.info({ pending: this.safePending() }, 'uplink stopped');
  }

  /** Wake the drain loop (called on enqueue; cheap to call often). */
  notify(): void {
    if (!this.connected || this.drainScheduled) return;
    this.drainScheduled = true;
    setImmediate(() => {
      this.drainScheduled = false;
      this.drain();
    });
  }

  state(): UplinkState {
    return {
      phase: this.phase,
      connected: this.connected,
      inFlight: this.inflight.size,
      pending: this.safePending(),
      delivered: this.delivered,
      failedAttempts: this.failedAttempts,
      lastError: this.lastError,
      connectedSince: this.connectedSince,
    };
  }

  /** Retained camera status; remembered and re-published after each reconnect. Returns false when invalid. */
  publishCameraStatus(s: CameraStatus): boolean {
    const r = CameraStatus.safeParse(s);
    if (!r.success) {
      this.log.error({ cameraId: (s as { cameraId?: unknown })?.cameraId, problem: formatIssues(r.error.issues) }, 'invalid camera status not published');
      return false;
    }
    if (r.data.siteId !== this.opts.siteId) {
      this.log.error({ cameraId: r.data.cameraId, siteId: r.data.siteId }, `camera status siteId "${r.data.siteId}" is not this site ("${this.opts.siteId}"): not published`);
      return false;
    }
    this.cameras.set(r.data.cameraId, r.data);
    if (this.connected) this.sendCameraStatus(r.data);
    return true;
  }

  /** Periodic stats (QoS 0, not retained); dropped when offline. Returns whether it was sent. */
  publishStats(s: SiteStats): boolean {
    const r = SiteStats.safeParse(s);
    if (!r.success) {
      this.log.error({ problem: formatIssues(r.error.issues) }, 'invalid site stats not published');
      return false;
    }
    if (!this.connected || !this.client) return false;
    this.client.publish(this.t.stats(this.opts.siteId), JSON.stringify(r.data), { qos: 0, retain: false });
    return true;
  }

  /** Queue a voice status reply through the outbox (QoS 1, survives outages and restarts). */
  publishVoiceStatus(s: VoiceStatus): boolean {
    const r = VoiceStatus.safeParse(s);
    if (!r.success) {
      this.log.error({ problem: formatIssues(r.error.issues) }, 'invalid voice status not published');
      return false;
    }
    this.outbox.enqueue([{ topic: this.t.voiceStatus(this.opts.siteId), payload: JSON.stringify(r.data), qos: 1 }]);
    return true;
  }

  /**
   * Receive raw voice-command payloads (QoS 1 subscription to our voice/command topic). A status the
   * handler returns goes back through the outbox. Commands that arrived before a handler was set are
   * handed over now (up to 32).
   */
  onVoiceCommand(handler: VoiceCommandHandler): void {
    this.voiceHandler = handler;
    if (this.connected) this.subscribeVoice();
    for (const c of this.earlyCommands.splice(0)) this.dispatchVoice(c.payload, c.topic);
  }

  // ───────────────────────────── connection ─────────────────────────────

  private siteStatus(online: boolean): SiteStatus {
    return { v: 1, siteId: this.opts.siteId, online, ts: Date.now(), ...(this.opts.agentVersion ? { agentVersion: this.opts.agentVersion } : {}) };
  }

  private connect(): void {
    const gen = ++this.gen;
    const options: IClientOptions = {
      clientId: this.opts.clientId,
      clean: false,
      protocolVersion: 4,
      keepalive: this.opts.keepaliveSec,
      connectTimeout: this.opts.connectTimeoutMs,
      reconnectPeriod: 0, // our own back-off, see scheduleReconnect
      resubscribe: false,
      will: { topic: this.t.siteStatus(this.opts.siteId), payload: Buffer.from(JSON.stringify(this.siteStatus(false))), qos: 1, retain: true },
      ...(this.opts.credentials ? { username: this.opts.credentials.username, password: this.opts.credentials.password } : {}),
      ...(this.opts.ca ? { ca: this.opts.ca } : {}),
    };
    this.log.debug({ gen, attempt: this.failedAttempts + 1 }, 'connecting');
    let client: MqttClient;
    try {
      client = mqtt.connect(this.opts.url, options);
    } catch (err) {
      this.lastError = `cannot create MQTT client for ${redactUrl(this.opts.url)}: ${(err as Error).message}`;
      this.log.error({ err: this.lastError }, 'uplink connect failed');
      this.scheduleReconnect();
      return;
    }
    this.client = client;
    client.on('connect', (connack) => {
      if (gen !== this.gen) return;
      // small QoS 1 packets: Nagle + the broker's delayed ACK would add ~40 ms stalls on the hot path
      (client.stream as { setNoDelay?: (on: boolean) => void } | undefined)?.setNoDelay?.(true);
      this.onConnected(client, connack.sessionPresent);
    });
    client.on('message', (topic, payload) => {
      if (gen !== this.gen) return;
      if (topic === this.t.voiceCommand(this.opts.siteId)) this.dispatchVoice(payload, topic);
      else this.log.warn({ topic }, 'message on an unexpected topic ignored');
    });
    client.on('error', (err: Error & { code?: string | number }) => {
      if (gen !== this.gen) return;
      const msg = describeMqttError(err);
      if (msg !== this.lastError) this.log.warn({ err: msg }, 'uplink error');
      this.lastError = msg;
    });
    client.on('close', () => {
      if (gen !== this.gen) return;
      this.onClosed(client);
    });
  }

  private onConnected(client: MqttClient, sessionPresent: boolean): void {
    this.connected = true;
    this.connectedSince = Date.now();
    this.phase = 'connected';
    if (this.failedAttempts > 0) this.log.info({ afterAttempts: this.failedAttempts }, 'uplink reconnected');
    this.failedAttempts = 0;
    this.lastError = null;
    this.cursor = 0;
    this.inflight.clear();
    this.log.info({ sessionPresent, pending: this.safePending() }, 'uplink connected');
    client.publish(this.t.siteStatus(this.opts.siteId), JSON.stringify(this.siteStatus(true)), { qos: 1, retain: true });
    if (this.voiceHandler) this.subscribeVoice();
    for (const s of this.cameras.values()) this.sendCameraStatus(s);
    this.emit('connected', { sessionPresent });
    this.notify();
  }

  private onClosed(client: MqttClient): void {
    const was = this.connected;
    this.connected = false;
    this.connectedSince = null;
    // rows that died in flight: count the attempt (a row that keeps killing the connection shows up
    // as the head row with a growing `attempts` and this lastError)
    if (this.inflight.size > 0 && !this.outbox.isClosed) {
      const reason = `connection closed before PUBACK${this.lastError ? ` (${this.lastError})` : ''}`;
      try {
        for (const id of this.inflight) this.outbox.recordAttempt(id, reason);
      } catch (err) {
        this.log.warn({ err: (err as Error).message }, 'cannot record publish attempts');
      }
    }
    this.inflight.clear();
    this.cursor = 0;
    this.flushAcks();
    client.removeAllListeners('connect');
    client.removeAllListeners('message');
    client.on('error', () => {}); // late errors of a dead client must not throw
    client.end(true);
    if (this.client === client) this.client = null;
    if (was) {
      this.log.warn({ err: this.lastError, pending: this.safePending() }, 'uplink disconnected');
      this.emit('disconnected', { reason: this.lastError ?? 'connection closed' });
    }
    if (this.phase === 'stopping' || this.phase === 'stopped') return;
    this.phase = 'reconnecting';
    this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    if (this.reconnectTimer || this.phase === 'stopping' || this.phase === 'stopped') return;
    this.failedAttempts++;
    const base = Math.min(this.opts.reconnectMaxMs, this.opts.reconnectMinMs * 2 ** Math.min(20, this.failedAttempts - 1));
    const delay = Math.round(base * (0.8 + Math.random() * 0.4));
    if (this.failedAttempts === 1 || this.failedAttempts % 10 === 0) this.log.info({ delayMs: delay, attempt: this.failedAttempts, err: this.lastError }, 'uplink will reconnect');
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null;
      if (this.phase === 'stopping' || this.phase === 'stopped') return;
      this.connect();
    }, delay);
  }

  private subscribeVoice(): void {
    const topic = this.t.voiceCommand(this.opts.siteId);
    this.client?.subscribe(topic, { qos: 1 }, (err, granted) => {
      if (err) this.log.error({ topic, err: err.message }, 'voice command subscription failed');
      else if (granted?.some((g) => g.qos === 128)) this.log.error({ topic }, 'broker refused the voice command subscription (check the ACL for this site)');
    });
  }

  private dispatchVoice(payload: Buffer, topic: string): void {
    const handler = this.voiceHandler;
    if (!handler) {
      if (this.earlyCommands.length < 32) this.earlyCommands.push({ payload, topic });
      else this.log.error({ topic }, 'voice command dropped: no handler registered and 32 already waiting');
      return;
    }
    Promise.resolve()
      .then(() => handler(payload, topic))
      .then((status) => {
        if (status) this.publishVoiceStatus(status);
      })
      .catch((err: Error) => this.log.error({ err: err.message }, 'voice command handler threw'));
  }

  private sendCameraStatus(s: CameraStatus): void {
    this.client?.publish(this.t.cameraStatus(this.opts.siteId, s.cameraId), JSON.stringify(s), { qos: 1, retain: true });
  }

  // ───────────────────────────── drain ─────────────────────────────

  private drain(): void {
    const client = this.client;
    if (!client || !this.connected || this.draining || this.outbox.isClosed) return;
    this.draining = true;
    const gen = this.gen;
    try {
      while (this.inflight.size < this.opts.inFlight && this.connected && gen === this.gen) {
        const rows = this.outbox.peek(this.opts.inFlight - this.inflight.size, this.cursor);
        if (rows.length === 0) break;
        for (const row of rows) {
          this.cursor = row.id;
          this.inflight.add(row.id);
          client.publish(row.topic, row.payload, { qos: row.qos, retain: row.retain }, (err) => this.onPublished(row, gen, err));
        }
      }
    } catch (err) {
      this.lastError = `drain failed: ${(err as Error).message}`;
      this.log.error({ err: this.lastError }, 'uplink drain failed');
    } finally {
      this.draining = false;
    }
  }

  private onPublished(row: OutboxRow, gen: number, err: Error | undefined): void {
    if (!err) {
      // a PUBACK is a PUBACK, whichever connection it came on
      this.ackBuffer.push(row.id);
      this.scheduleAckFlush();
    }
    if (gen !== this.gen) return;
    this.inflight.delete(row.id);
    if (err) {
      this.log.warn({ id: row.id, topic: row.topic, err: err.message }, 'publish failed; row stays in the outbox');
      if (!this.outbox.isClosed) this.outbox.recordAttempt(row.id, err.message);
    }
    this.notify();
  }

  private scheduleAckFlush(): void {
    if (this.ackScheduled) return;
    this.ackScheduled = true;
    setImmediate(() => {
      this.ackScheduled = false;
      this.flushAcks();
    });
  }

  private flushAcks(): void {
    if (this.ackBuffer.length === 0 || this.outbox.isClosed) return;
    const ids = this.ackBuffer;
    this.ackBuffer = [];
    try {
      this.outbox.ackMany(ids);
      this.delivered += ids.length;
      this.emit('delivered', ids);
    } catch (err) {
      this.log.error({ err: (err as Error).message, ids: ids.length }, 'cannot delete delivered rows from the outbox (they will be sent again)');
    }
  }

  private safePending(): number {
    try {
      return this.outbox.isClosed ? 0 : this.outbox.pending();
    } catch {
      return -1;
    }
  }
}

function describeMqttError(err: Error & { code?: string | number }): string {
  const code = err.code;
  if (code === 4 || code === 134) return 'broker refused the connection: bad username or password';
  if (code === 5 || code === 135) return 'broker refused the connection: not authorized';
  if (code === 2) return 'broker refused the connection: client identifier rejected';
  if (code === 'ECONNREFUSED') return `connection refused (${err.message})`;
  return err.message || String(code);
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

async function withTimeout(p: Promise<void>, ms: number): Promise<void> {
  let t: NodeJS.Timeout | undefined;
  await Promise.race([p, new Promise<void>((r) => (t = setTimeout(r, ms)))]);
  if (t) clearTimeout(t);
}

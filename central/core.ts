/**
 * The facade the HTTP layer (central/http/) uses. Stable: change only in backwards-compatible ways.
 *
 *   const central = await startCentral(config);                     // from './central.js'
 *   const user = await central.store.userByUsername('zhang');      // with passwordHash
 *   if (user && await verifyPassword(password, user.passwordHash)) …
 *   const scope = await central.scopeOf(user);                      // per request (org may change)
 *   await central.store.events(scope, { siteId, limit: 50 });       // every store call returns a Promise
 *   central.bus.on('alert', (n) => …);                              // SSE
 *   await central.voice.send(user, { siteId, type: 'preset', presetId: 'hat-mask' });
 *   await central.stop();
 */
import type { CentralConfig } from './config/schema.js';
import type { Bus } from './bus.js';
import type { CentralStore, Scope, UserRecord, VoiceRecord } from './store/types.js';
import type { VoiceRequest } from './voice/types.js';

export type { CentralConfig } from './config/schema.js';
export { loadCentralConfig, parseCentralConfig, ConfigError } from './config/load.js';
export type { AlertNotice, BusEvents } from './bus.js';
export { Bus } from './bus.js';
export * from './store/types.js';
export { hashPassword, verifyPassword } from './auth/password.js';
export type { VoiceRequest } from './voice/types.js';

export interface Central {
  readonly config: CentralConfig;
  readonly store: CentralStore;
  readonly bus: Bus;
  /** What this user may see; compute per request (the org is editable). */
  scopeOf(user: UserRecord): Promise<Scope>;
  siteInScope(scope: Scope, siteId: string): Promise<boolean>;
  /**
   * Absolute path of a stored snapshot JPEG, or null when no event (in `scope`, if given) references
   * it or the bytes have not arrived.
   */
  snapshotFile(sha256: string, scope?: Scope): Promise<string | null>;
  voice: {
    presets(): { id: string; text: string }[];
    /** Authorise, sign, publish (QoS 1), record and audit-log. Throws CoreError. */
    send(user: UserRecord, request: VoiceRequest, meta?: { ip?: string }): Promise<VoiceRecord>;
    /** Central's Ed25519 public key (PEM) the agents verify commands with. */
    publicKeyPem: string;
  };
  /** The broker address sites and phone apps connect to (embedded: actual bound port). */
  brokerUrl: string;
  /** Counters for tests and health checks. */
  metrics(): Promise<CentralMetrics>;
  stop(): Promise<void>;
}

export interface CentralMetrics {
  messages: number;
  rejected: number;
  duplicates: number;
  events: number;
  snapshots: number;
  /** Event clips assembled and stored. */
  clips: number;
  /** Events routed to recipients, and escalations to the next level. */
  routed: number;
  escalations: number;
  /** Robot webhook requests and the alerts they carried, MQTT alerts sent, failed attempts. */
  webhookRequests: number;
  webhookAlerts: number;
  mqttSent: number;
  notifyFailures: number;
  robotQueueDepth: number;
  /** Central's own client holds a connection to the broker. */
  brokerConnected: boolean;
  /** The embedded broker's counters (null with an external broker). */
  broker: { clients: number; authFailures: number; denied: number } | null;
  /** Deliveries by channel and status, and how long that store query took (a store-latency probe). */
  deliveries: { channel: string; status: string; n: number }[];
  storeQuerySeconds: number;
}

// startCentral lives in central.ts, which implements this facade (importing it here made a cycle).

/**
 * Ingest: every message from the sites is parsed with the protocol schemas. A bad message is rejected
 * with a logged reason (topic + zod path) and counted; nothing a site sends can stop ingest.
 * The store is asynchronous, so the messages of one site go through a promise chain of their own and
 * are handled in arrival order (a snapshot after its event, a status after the one before); sites
 * run in parallel. The broker client acknowledges a QoS 1 message once `handle` has settled and only
 * then reads the next packet, so handling must never wait for the broker (a publish's PUBACK).
 */
import { childLog } from '../../common/log.js';
import {
  CLIP_CHUNK_MAX_BYTES, CLIP_MAX_CHUNKS, CameraStatus, ClipManifest, EventMessage, SiteStats, SiteStatus, VoiceStatus, parsePayload,
} from '../../protocol/messages.js';
import { parseSiteTopic } from '../../protocol/topics.js';
import type { Bus } from '../bus.js';
import type { ClipResult } from '../store/clips.js';
import { isTransientStoreError } from '../store/sql.js';
import { isJpeg, sha256Hex, type Store } from '../store/store.js';

const log = childLog({ mod: 'central.ingest' });
/** Messages waiting beyond which the broker connection is paused, and below which it resumes. */
const HIGH_WATER = 2000;
const LOW_WATER = 500;
type SiteTopic = NonNullable<ReturnType<typeof parseSiteTopic>>;

export interface IngestCounters {
  messages: number;
  rejected: number;
  duplicates: number;
  events: number;
  snapshots: number;
  /** Clips assembled and stored. */
  clips: number;
  /** Reason → count (first words of the reason), for tests and health output. */
  reasons: Record<string, number>;
  /** The last 50 rejections, "topic: reason". */
  recent: string[];
}

export interface IngestDeps {
  store: Store;
  bus: Bus;
  prefix: string;
  maxJsonBytes: number;
  maxSnapshotBytes: number;
  /** Deadline and first escalation time for a new event (routing policy). */
  insertOpts(m: EventMessage): { receivedAt: number; deadlineAt: number; nextEscalationAt: number | null };
  /**
   * Routing of a new (not duplicate) event, run inside the transaction that stores it; the function
   * it returns (sending the alerts) runs after the commit, before the site's next message.
   */
  routeNew(eventId: string): Promise<() => void>;
  /** A voice status update was applied. */
  onVoiceStatus?(commandId: string): void;
}

export class Ingest {
  readonly counters: IngestCounters = { messages: 0, rejected: 0, duplicates: 0, events: 0, snapshots: 0, clips: 0, reasons: {}, recent: [] };

  /** Per site, the tail of its chain of messages; removed once drained. */
  private readonly chains = new Map<string, Promise<void>>();
  /** Messages received and not yet handled; above HIGH_WATER the broker connection is paused. */
  private pending = 0;
  private drained: { promise: Promise<void>; resolve: () => void } | null = null;
  private stopped = false;
  /** The store was unreachable when this outage began (null: it answers). */
  private outageSince: number | null = null;

  constructor(private readonly d: IngestDeps) {}

  private reject(topic: string, reason: string, extra: Record<string, unknown> = {}): void {
    this.counters.rejected++;
    const key = reason.split(':')[0]!.slice(0, 60);
    this.counters.reasons[key] = (this.counters.reasons[key] ?? 0) + 1;
    this.counters.recent.push(`${topic}: ${reason}`);
    if (this.counters.recent.length > 50) this.counters.recent.shift();
    log.warn({ topic, reason, ...extra }, 'message rejected');
  }

  /**
   * Never throws or rejects; the message is handled after the earlier ones of its site (see `idle`),
   * and the promise resolves once it is (stored, or rejected with a logged reason).
   */
  handle(topic: string, payload: Buffer): Promise<void> {
    this.counters.messages++;
    const t = parseSiteTopic(topic, this.d.prefix);
    if (!t) { this.reject(topic, 'unknown topic'); return Promise.resolve(); }
    this.pending++;
    const tail: Promise<void> = (this.chains.get(t.siteId) ?? Promise.resolve())
      .then(() => this.untilStored(() => this.dispatch(topic, t, payload)))
      // an error is this message's alone: the site's later messages still run
      .catch((err: Error) => this.reject(topic, `internal error: ${err?.message ?? String(err)}`))
      .then(() => {
        if (this.chains.get(t.siteId) === tail) this.chains.delete(t.siteId);
        if (--this.pending <= LOW_WATER && this.drained) { this.drained.resolve(); this.drained = null; }
      });
    this.chains.set(t.siteId, tail);
    return tail;
  }

  /**
   * Null while ingest keeps up; while too many messages wait (the store is down or slow) a promise
   * that resolves once they are few again. The broker client waits for it before taking the next
   * message, so the broker holds the rest in central's session instead of central's memory.
   */
  ready(): Promise<void> | null {
    if (this.pending < HIGH_WATER) return this.drained?.promise ?? null;
    if (!this.drained) {
      let resolve!: () => void;
      const promise = new Promise<void>((r) => { resolve = r; });
      this.drained = { promise, resolve };
      log.warn({ pending: this.pending }, 'ingest backlog: pausing the broker connection until the store catches up');
    }
    return this.drained.promise;
  }

  /** Stops retrying: a message waiting for the store at shutdown is redelivered by the broker or the agent. */
  stop(): void {
    this.stopped = true;
  }

  /**
   * Runs one message's store work again, with back-off, while the store is unreachable (a database
   * restart must lose nothing). Other failures are the message's own and go to the caller.
   */
  private async untilStored<T>(fn: () => Promise<T>): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      try {
        const out = await fn();
        if (this.outageSince !== null) {
          log.info({ seconds: Math.round((Date.now() - this.outageSince) / 1000) }, 'store reachable again; ingest resumed');
          this.outageSince = null;
        }
        return out;
      } catch (err) {
        if (!isTransientStoreError(err) || this.stopped) throw err;
        if (this.outageSince === null) {
          this.outageSince = Date.now();
          log.error({ err: (err as Error).message }, 'store unreachable; messages wait and are retried');
        }
        await new Promise((r) => setTimeout(r, Math.min(5000, 200 * 2 ** Math.min(attempt, 5))));
      }
    }
  }

  /** Resolves once every message received so far (and any that came meanwhile) has been handled. */
  async idle(): Promise<void> {
    while (this.chains.size) await Promise.all(this.chains.values());
  }

  private async dispatch(topic: string, t: SiteTopic, payload: Buffer): Promise<void> {
    const { store, bus } = this.d;
    if (t.kind === 'snapshot') return this.snapshot(topic, t.siteId, t.eventId, t.variant, payload);
    if (t.kind === 'clip-chunk') return this.clipChunk(topic, t.siteId, t.eventId, t.index, payload);
    if (t.kind === 'voice/command') return; // central's own output (not subscribed; ignore if seen)
    if (payload.length > this.d.maxJsonBytes) return this.reject(topic, `payload too large: ${payload.length} bytes > ${this.d.maxJsonBytes}`);
    if (!(await store.siteContext(t.siteId))) return this.reject(topic, `unknown site: "${t.siteId}" is not in the org`);
    const wrongSite = (siteId: string) => {
      if (siteId === t.siteId) return false;
      this.reject(topic, `wrong site: payload siteId "${siteId}" does not match the topic's "${t.siteId}"`);
      return true;
    };
    switch (t.kind) {
      case 'event': {
        const r = parsePayload(EventMessage, payload, this.d.maxJsonBytes);
        if (!r.ok) return this.reject(topic, `invalid event: ${r.reason}`);
        const m = r.value;
        if (wrongSite(m.siteId)) return;
        if (!(await store.siteContext(m.siteId))) return this.reject(topic, `unknown site: "${m.siteId}"`);
        // Stored once by id (a re-sent event: agent retry, second central), together with its first
        // alerts' delivery rows: a central killed after the commit leaves them for another to send.
        const send = await store.sql.tx(async () => (await store.insertEvent(m, this.d.insertOpts(m))) ? this.d.routeNew(m.id) : null);
        if (!send) {
          this.counters.duplicates++;
          log.debug({ eventId: m.id }, 'duplicate event ignored');
          return;
        }
        this.counters.events++;
        send();
        return;
      }
      case 'status': {
        const r = parsePayload(SiteStatus, payload, this.d.maxJsonBytes);
        if (!r.ok) return this.reject(topic, `invalid site status: ${r.reason}`);
        if (wrongSite(r.value.siteId)) return;
        const view = await store.applySiteStatus(r.value);
        if (view) bus.emit('site', view);
        return;
      }
      case 'stats': {
        const r = parsePayload(SiteStats, payload, this.d.maxJsonBytes);
        if (!r.ok) return this.reject(topic, `invalid stats: ${r.reason}`);
        if (wrongSite(r.value.siteId)) return;
        const view = await store.applyStats(r.value);
        if (view) bus.emit('site', view);
        return;
      }
      case 'camera': {
        const r = parsePayload(CameraStatus, payload, this.d.maxJsonBytes);
        if (!r.ok) return this.reject(topic, `invalid camera status: ${r.reason}`);
        if (wrongSite(r.value.siteId)) return;
        if (r.value.cameraId !== t.cameraId) return this.reject(topic, `wrong camera: payload cameraId "${r.value.cameraId}" does not match the topic's "${t.cameraId}"`);
        const view = await store.applyCameraStatus(r.value);
        if (view) bus.emit('camera', view);
        return;
      }
      case 'clip': {
        const r = parsePayload(ClipManifest, payload, this.d.maxJsonBytes);
        if (!r.ok) return this.reject(topic, `invalid clip manifest: ${r.reason}`);
        if (wrongSite(r.value.siteId)) return;
        if (r.value.eventId !== t.eventId) return this.reject(topic, `wrong event: manifest eventId "${r.value.eventId}" does not match the topic's "${t.eventId}"`);
        const ev = await store.eventRow(t.eventId);
        if (ev && ev.site_id !== t.siteId) return this.reject(topic, `wrong site: event "${t.eventId}" belongs to site "${ev.site_id}"`);
        return this.clipResult(topic, t.eventId, await store.clips.saveManifest(r.value));
      }
      case 'voice/status': {
        const r = parsePayload(VoiceStatus, payload, this.d.maxJsonBytes);
        if (!r.ok) return this.reject(topic, `invalid voice status: ${r.reason}`);
        if (wrongSite(r.value.siteId)) return;
        const res = await store.updateVoice(r.value.commandId, r.value.siteId, r.value.state, r.value.at, r.value.error);
        if (!res) return this.reject(topic, `unknown voice command: "${r.value.commandId}" was not sent to site "${t.siteId}"`);
        const rec = res.record;
        if (!res.applied) {
          // the first final state from the site stands (a replayed / redelivered copy's "rejected" must not overwrite "played")
          log.info({ commandId: rec.id, siteId: rec.siteId, kept: rec.state, ignored: r.value.state, error: r.value.error }, 'later voice status ignored');
          return;
        }
        bus.emit('voice', rec);
        this.d.onVoiceStatus?.(rec.id);
        return;
      }
    }
  }

  private async clipChunk(topic: string, siteId: string, eventId: string, index: number, bytes: Buffer): Promise<void> {
    if (bytes.length === 0 || bytes.length > CLIP_CHUNK_MAX_BYTES) return this.reject(topic, `clip chunk of ${bytes.length} bytes: expected 1 to ${CLIP_CHUNK_MAX_BYTES}`);
    if (index >= CLIP_MAX_CHUNKS) return this.reject(topic, `clip chunk index ${index}: at most ${CLIP_MAX_CHUNKS} chunks`);
    if (!(await this.d.store.siteContext(siteId))) return this.reject(topic, `unknown site: "${siteId}" is not in the org`);
    const ev = await this.d.store.eventRow(eventId);
    if (ev && ev.site_id !== siteId) return this.reject(topic, `wrong site: event "${eventId}" belongs to site "${ev.site_id}"`);
    return this.clipResult(topic, eventId, await this.d.store.clips.saveChunk(siteId, eventId, index, bytes));
  }

  private async clipResult(topic: string, eventId: string, r: ClipResult): Promise<void> {
    if (!r.ok) return this.reject(topic, r.reason);
    if (r.state === 'duplicate') return;
    if (r.state === 'complete') this.counters.clips++;
    // A manifest shows "clip arriving" on the alert, the last chunk the player.
    const view = await this.d.store.eventById(eventId);
    if (view && (r.state === 'complete' || topic.endsWith(eventId))) this.d.bus.emit('event', view);
  }

  private async snapshot(topic: string, siteId: string, eventId: string, variant: 'annotated' | 'clean', bytes: Buffer): Promise<void> {
    const { store, bus } = this.d;
    if (bytes.length > this.d.maxSnapshotBytes) return this.reject(topic, `snapshot too large: ${bytes.length} bytes > ${this.d.maxSnapshotBytes}`);
    if (!isJpeg(bytes)) return this.reject(topic, 'snapshot is not a JPEG: bytes must start with FFD8FF and end with FFD9');
    if (!(await store.siteContext(siteId))) return this.reject(topic, `unknown site: "${siteId}" is not in the org`);
    const sha = sha256Hex(bytes);
    const ev = await store.eventRow(eventId);
    if (ev) {
      if (ev.site_id !== siteId) return this.reject(topic, `wrong site: event "${eventId}" belongs to site "${ev.site_id}"`);
      const declared = variant === 'annotated' ? ev.snap_annotated : ev.snap_clean;
      if (declared !== sha) return this.reject(topic, `snapshot sha256 mismatch: event "${eventId}" declares ${variant} ${declared}, bytes hash to ${sha}`);
    }
    // Before its event: stored by hash anyway; served only once an event references that hash.
    const fresh = await store.saveSnapshot(sha, bytes, siteId);
    if (fresh) this.counters.snapshots++;
    if (ev && fresh) {
      const view = await store.eventById(eventId);
      if (view) bus.emit('event', view);
    }
  }
}


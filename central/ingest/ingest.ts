/**
 * Ingest: every message from the sites is parsed with the protocol schemas. A bad message is rejected
 * with a logged reason (topic + zod path) and counted; nothing a site sends can stop ingest.
 */
import { childLog } from '../../common/log.js';
import {
  CLIP_CHUNK_MAX_BYTES, CLIP_MAX_CHUNKS, CameraStatus, ClipManifest, EventMessage, SiteStats, SiteStatus, VoiceStatus, parsePayload,
} from '../../protocol/messages.js';
import { parseSiteTopic } from '../../protocol/topics.js';
import type { Bus } from '../bus.js';
import { isJpeg, sha256Hex, type Store } from '../store/store.js';

const log = childLog({ mod: 'central.ingest' });

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
  /** A new (not duplicate) event was stored. */
  onNewEvent(eventId: string): void;
  /** A voice status update was applied. */
  onVoiceStatus?(commandId: string): void;
}

export class Ingest {
  readonly counters: IngestCounters = { messages: 0, rejected: 0, duplicates: 0, events: 0, snapshots: 0, clips: 0, reasons: {}, recent: [] };

  constructor(private readonly d: IngestDeps) {}

  private reject(topic: string, reason: string, extra: Record<string, unknown> = {}): void {
    this.counters.rejected++;
    const key = reason.split(':')[0]!.slice(0, 60);
    this.counters.reasons[key] = (this.counters.reasons[key] ?? 0) + 1;
    this.counters.recent.push(`${topic}: ${reason}`);
    if (this.counters.recent.length > 50) this.counters.recent.shift();
    log.warn({ topic, reason, ...extra }, 'message rejected');
  }

  /** Never throws. */
  handle(topic: string, payload: Buffer): void {
    this.counters.messages++;
    try {
      this.dispatch(topic, payload);
    } catch (err) {
      this.reject(topic, `internal error: ${(err as Error).message}`);
    }
  }

  private dispatch(topic: string, payload: Buffer): void {
    const t = parseSiteTopic(topic, this.d.prefix);
    if (!t) return this.reject(topic, 'unknown topic');
    const { store, bus } = this.d;
    if (t.kind === 'snapshot') return this.snapshot(topic, t.siteId, t.eventId, t.variant, payload);
    if (t.kind === 'clip-chunk') return this.clipChunk(topic, t.siteId, t.eventId, t.index, payload);
    if (t.kind === 'voice/command') return; // central's own output (not subscribed; ignore if seen)
    if (payload.length > this.d.maxJsonBytes) return this.reject(topic, `payload too large: ${payload.length} bytes > ${this.d.maxJsonBytes}`);
    if (!store.siteContext(t.siteId)) return this.reject(topic, `unknown site: "${t.siteId}" is not in the org`);
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
        if (!store.siteContext(m.siteId)) return this.reject(topic, `unknown site: "${m.siteId}"`);
        // INSERT OR IGNORE on the id: a re-sent event (agent retry, second central) is stored once.
        if (!store.insertEvent(m, this.d.insertOpts(m))) {
          this.counters.duplicates++;
          log.debug({ eventId: m.id }, 'duplicate event ignored');
          return;
        }
        this.counters.events++;
        this.d.onNewEvent(m.id);
        return;
      }
      case 'status': {
        const r = parsePayload(SiteStatus, payload, this.d.maxJsonBytes);
        if (!r.ok) return this.reject(topic, `invalid site status: ${r.reason}`);
        if (wrongSite(r.value.siteId)) return;
        const view = store.applySiteStatus(r.value);
        if (view) bus.emit('site', view);
        return;
      }
      case 'stats': {
        const r = parsePayload(SiteStats, payload, this.d.maxJsonBytes);
        if (!r.ok) return this.reject(topic, `invalid stats: ${r.reason}`);
        if (wrongSite(r.value.siteId)) return;
        const view = store.applyStats(r.value);
        if (view) bus.emit('site', view);
        return;
      }
      case 'camera': {
        const r = parsePayload(CameraStatus, payload, this.d.maxJsonBytes);
        if (!r.ok) return this.reject(topic, `invalid camera status: ${r.reason}`);
        if (wrongSite(r.value.siteId)) return;
        if (r.value.cameraId !== t.cameraId) return this.reject(topic, `wrong camera: payload cameraId "${r.value.cameraId}" does not match the topic's "${t.cameraId}"`);
        const view = store.applyCameraStatus(r.value);
        if (view) bus.emit('camera', view);
        return;
      }
      case 'clip': {
        const r = parsePayload(ClipManifest, payload, this.d.maxJsonBytes);
        if (!r.ok) return this.reject(topic, `invalid clip manifest: ${r.reason}`);
        if (wrongSite(r.value.siteId)) return;
        if (r.value.eventId !== t.eventId) return this.reject(topic, `wrong event: manifest eventId "${r.value.eventId}" does not match the topic's "${t.eventId}"`);
        const ev = store.eventRow(t.eventId);
        if (ev && ev.site_id !== t.siteId) return this.reject(topic, `wrong site: event "${t.eventId}" belongs to site "${ev.site_id}"`);
        return this.clipResult(topic, t.eventId, store.clips.saveManifest(r.value));
      }
      case 'voice/status': {
        const r = parsePayload(VoiceStatus, payload, this.d.maxJsonBytes);
        if (!r.ok) return this.reject(topic, `invalid voice status: ${r.reason}`);
        if (wrongSite(r.value.siteId)) return;
        const res = store.updateVoice(r.value.commandId, r.value.siteId, r.value.state, r.value.at, r.value.error);
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

  private clipChunk(topic: string, siteId: string, eventId: string, index: number, bytes: Buffer): void {
    if (bytes.length === 0 || bytes.length > CLIP_CHUNK_MAX_BYTES) return this.reject(topic, `clip chunk of ${bytes.length} bytes: expected 1 to ${CLIP_CHUNK_MAX_BYTES}`);
    if (index >= CLIP_MAX_CHUNKS) return this.reject(topic, `clip chunk index ${index}: at most ${CLIP_MAX_CHUNKS} chunks`);
    if (!this.d.store.siteContext(siteId)) return this.reject(topic, `unknown site: "${siteId}" is not in the org`);
    const ev = this.d.store.eventRow(eventId);
    if (ev && ev.site_id !== siteId) return this.reject(topic, `wrong site: event "${eventId}" belongs to site "${ev.site_id}"`);
    this.clipResult(topic, eventId, this.d.store.clips.saveChunk(siteId, eventId, index, bytes));
  }

  private clipResult(topic: string, eventId: string, r: ReturnType<Store['clips']['saveChunk']>): void {
    if (!r.ok) return this.reject(topic, r.reason);
    if (r.state === 'duplicate') return;
    if (r.state === 'complete') this.counters.clips++;
    // A manifest shows "clip arriving" on the alert, the last chunk the player.
    const view = this.d.store.eventById(eventId);
    if (view && (r.state === 'complete' || topic.endsWith(eventId))) this.d.bus.emit('event', view);
  }

  private snapshot(topic: string, siteId: string, eventId: string, variant: 'annotated' | 'clean', bytes: Buffer): void {
    const { store, bus } = this.d;
    if (bytes.length > this.d.maxSnapshotBytes) return this.reject(topic, `snapshot too large: ${bytes.length} bytes > ${this.d.maxSnapshotBytes}`);
    if (!isJpeg(bytes)) return this.reject(topic, 'snapshot is not a JPEG: bytes must start with FFD8FF and end with FFD9');
    if (!store.siteContext(siteId)) return this.reject(topic, `unknown site: "${siteId}" is not in the org`);
    const sha = sha256Hex(bytes);
    const ev = store.eventRow(eventId);
    if (ev) {
      if (ev.site_id !== siteId) return this.reject(topic, `wrong site: event "${eventId}" belongs to site "${ev.site_id}"`);
      const declared = variant === 'annotated' ? ev.snap_annotated : ev.snap_clean;
      if (declared !== sha) return this.reject(topic, `snapshot sha256 mismatch: event "${eventId}" declares ${variant} ${declared}, bytes hash to ${sha}`);
    }
    // Before its event: stored by hash anyway; served only once an event references that hash.
    const fresh = store.saveSnapshot(sha, bytes, siteId);
    if (fresh) this.counters.snapshots++;
    if (ev && fresh) {
      const view = store.eventById(eventId);
      if (view) bus.emit('event', view);
    }
  }
}


/**
 * Event clips at central: chunks arrive (in any order, possibly twice, possibly before their
 * manifest or their event) and wait in the database, so a restart loses none; once the manifest
 * and every chunk are in, the bytes are joined, checked against the manifest's sha256 and stored
 * content-addressed (`clips/ab/<sha256>.mp4`), and the chunks are deleted.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { ClipManifest } from '../../protocol/messages.js';
import type { DB } from './db.js';

export type ClipState = 'complete' | 'incomplete' | 'failed' | 'expired';

export interface ClipView {
  url: string;
  state: ClipState;
  durationMs: number;
  bytes: number;
  /** e.g. `avc1.42e01f`; `hvc1` (H.265) plays in Safari and in Chrome only where the hardware decodes it. */
  codec: string;
  /** Chunks received of the manifest's total (while incomplete). */
  chunksReceived: number;
  chunks: number;
}

export type ClipResult =
  | { ok: true; state: 'waiting' | 'complete' | 'duplicate' }
  | { ok: false; reason: string };

/** Chunks of clips whose manifest never came are dropped after this. */
const STALE_CHUNK_MS = 24 * 3_600_000;

export class ClipStore {
  private lastSweep = 0;

  constructor(
    private readonly db: DB,
    private readonly dataDir: string,
    /** Bytes of not-yet-assembled chunks one site may hold (a misbehaving agent cannot fill the disk). */
    private readonly maxPendingBytesPerSite = 256 * 1024 * 1024,
    private readonly now: () => number = Date.now,
  ) {}

  path(sha: string): string {
    return path.join(this.dataDir, 'clips', sha.slice(0, 2), `${sha}.mp4`);
  }

  /** One chunk of an event's clip. */
  saveChunk(siteId: string, eventId: string, index: number, data: Buffer): ClipResult {
    this.sweep();
    const clip = this.db.prepare('SELECT site_id, chunks, complete_at, error FROM clips WHERE event_id = ?').get(eventId) as
      { site_id: string; chunks: number; complete_at: number | null; error: string | null } | undefined;
    if (clip && clip.site_id !== siteId) return { ok: false, reason: `wrong site: the clip of event "${eventId}" belongs to site "${clip.site_id}"` };
    if (clip && (clip.complete_at !== null || clip.error !== null)) return { ok: true, state: 'duplicate' };
    if (clip && index >= clip.chunks) return { ok: false, reason: `clip chunk ${index} of event "${eventId}": the manifest declares ${clip.chunks} chunks` };
    const other = this.db.prepare('SELECT site_id FROM clip_chunks WHERE event_id = ? LIMIT 1').pluck().get(eventId) as string | undefined;
    if (other && other !== siteId) return { ok: false, reason: `wrong site: chunks of event "${eventId}" came from site "${other}"` };
    const pending = this.db.prepare('SELECT COALESCE(SUM(LENGTH(data)), 0) FROM clip_chunks WHERE site_id = ?').pluck().get(siteId) as number;
    if (pending + data.length > this.maxPendingBytesPerSite) {
      return { ok: false, reason: `clip chunks of site "${siteId}" waiting for their manifests exceed ${this.maxPendingBytesPerSite} bytes` };
    }
    this.db.prepare('INSERT OR REPLACE INTO clip_chunks (event_id, idx, site_id, data, received_at) VALUES (?, ?, ?, ?, ?)').run(eventId, index, siteId, data, this.now());
    return this.assemble(eventId);
  }

  /** The manifest that closes a clip (after its chunks, or before them after a redelivery). */
  saveManifest(m: ClipManifest): ClipResult {
    const prev = this.db.prepare('SELECT site_id, sha256 FROM clips WHERE event_id = ?').get(m.eventId) as { site_id: string; sha256: string } | undefined;
    if (prev) {
      if (prev.site_id !== m.siteId) return { ok: false, reason: `wrong site: the clip of event "${m.eventId}" belongs to site "${prev.site_id}"` };
      if (prev.sha256 !== m.sha256) return { ok: false, reason: `clip of event "${m.eventId}" already declared with sha256 ${prev.sha256}` };
      return { ok: true, state: 'duplicate' };
    }
    const other = this.db.prepare('SELECT site_id FROM clip_chunks WHERE event_id = ? LIMIT 1').pluck().get(m.eventId) as string | undefined;
    if (other && other !== m.siteId) return { ok: false, reason: `wrong site: chunks of event "${m.eventId}" came from site "${other}"` };
    this.db.prepare(`INSERT INTO clips (event_id, site_id, camera_id, sha256, bytes, chunks, codec, start_at, duration_ms, received_at)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`).run(m.eventId, m.siteId, m.cameraId, m.sha256, m.bytes, m.chunks, m.codec, m.startAt, m.durationMs, this.now());
    return this.assemble(m.eventId);
  }

  private assemble(eventId: string): ClipResult {
    const clip = this.db.prepare('SELECT sha256, bytes, chunks, complete_at FROM clips WHERE event_id = ?').get(eventId) as
      { sha256: string; bytes: number; chunks: number; complete_at: number | null } | undefined;
    if (!clip || clip.complete_at !== null) return { ok: true, state: 'waiting' };
    const have = this.db.prepare('SELECT COUNT(*) FROM clip_chunks WHERE event_id = ? AND idx < ?').pluck().get(eventId, clip.chunks) as number;
    if (have < clip.chunks) return { ok: true, state: 'waiting' };
    const parts = this.db.prepare('SELECT data FROM clip_chunks WHERE event_id = ? AND idx < ? ORDER BY idx').pluck().all(eventId, clip.chunks) as Buffer[];
    const bytes = Buffer.concat(parts);
    const sha = createHash('sha256').update(bytes).digest('hex');
    const done = this.db.transaction((error: string | null) => {
      this.db.prepare('DELETE FROM clip_chunks WHERE event_id = ?').run(eventId);
      this.db.prepare('UPDATE clips SET complete_at = ?, error = ? WHERE event_id = ?').run(error ? null : this.now(), error, eventId);
    });
    if (sha !== clip.sha256 || bytes.length !== clip.bytes) {
      const reason = `clip of event "${eventId}": the chunks join to ${bytes.length} bytes hashing to ${sha}, the manifest declares ${clip.bytes} bytes, ${clip.sha256}`;
      done(reason.slice(0, 500));
      return { ok: false, reason };
    }
    const file = this.path(sha);
    if (!existsSync(file)) {
      mkdirSync(path.dirname(file), { recursive: true });
      writeFileSync(`${file}.tmp`, bytes);
      renameSync(`${file}.tmp`, file);
    }
    done(null);
    return { ok: true, state: 'complete' };
  }

  /** Drops chunks that waited a day for a manifest (at most once a minute). */
  private sweep(): void {
    const t = this.now();
    if (t - this.lastSweep < 60_000) return;
    this.lastSweep = t;
    this.db.prepare('DELETE FROM clip_chunks WHERE received_at < ? AND event_id NOT IN (SELECT event_id FROM clips)').run(t - STALE_CHUNK_MS);
  }

  /**
   * Deletes the files of clips completed before `maxAgeDays`, then the oldest while the stored clips
   * exceed `maxTotalMB`; their rows stay, marked expired. Returns what it removed.
   */
  enforceRetention(o: { maxAgeDays: number; maxTotalMB: number }): { clips: number; bytes: number } {
    const t = this.now();
    const live = this.db.prepare('SELECT event_id, sha256, bytes, complete_at FROM clips WHERE complete_at IS NOT NULL AND expired_at IS NULL ORDER BY complete_at')
      .all() as { event_id: string; sha256: string; bytes: number; complete_at: number }[];
    let total = live.reduce((n, c) => n + c.bytes, 0);
    const cutoff = t - o.maxAgeDays * 86_400_000;
    const max = o.maxTotalMB * 1024 * 1024;
    const out = { clips: 0, bytes: 0 };
    for (const c of live) {
      if (c.complete_at >= cutoff && total <= max) break;
      this.db.prepare('UPDATE clips SET expired_at = ? WHERE event_id = ?').run(t, c.event_id);
      total -= c.bytes;
      out.clips++;
      out.bytes += c.bytes;
      // content-addressed: another live clip may hold the same bytes
      const shared = this.db.prepare('SELECT 1 FROM clips WHERE sha256 = ? AND complete_at IS NOT NULL AND expired_at IS NULL').get(c.sha256);
      if (!shared) rmSync(this.path(c.sha256), { force: true });
    }
    return out;
  }

  /** The clip's view for an event, or null when none was announced. */
  view(eventId: string): ClipView | null {
    const c = this.db.prepare('SELECT * FROM clips WHERE event_id = ?').get(eventId) as Record<string, unknown> | undefined;
    if (!c) return null;
    const received = c.complete_at !== null ? (c.chunks as number) : (this.db.prepare('SELECT COUNT(*) FROM clip_chunks WHERE event_id = ?').pluck().get(eventId) as number);
    return {
      url: `/api/events/${encodeURIComponent(eventId)}/clip.mp4`,
      state: c.expired_at !== null ? 'expired' : c.complete_at !== null ? 'complete' : c.error !== null ? 'failed' : 'incomplete',
      durationMs: c.duration_ms as number, bytes: c.bytes as number, codec: c.codec as string,
      chunksReceived: received, chunks: c.chunks as number,
    };
  }

  /** The file of a complete clip, or null. Scope checks are the caller's (it knows the event). */
  file(eventId: string): string | null {
    const sha = this.db.prepare('SELECT sha256 FROM clips WHERE event_id = ? AND complete_at IS NOT NULL AND expired_at IS NULL').pluck().get(eventId) as string | undefined;
    if (!sha) return null;
    const file = this.path(sha);
    return existsSync(file) ? file : null;
  }
}

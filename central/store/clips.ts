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
import type { Sql } from './sql.js';

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
    private readonly sql: Sql,
    private readonly dataDir: string,
    /** Bytes of not-yet-assembled chunks one site may hold (a misbehaving agent cannot fill the disk). */
    private readonly maxPendingBytesPerSite = 256 * 1024 * 1024,
    private readonly now: () => number = Date.now,
  ) {}

  path(sha: string): string {
    return path.join(this.dataDir, 'clips', sha.slice(0, 2), `${sha}.mp4`);
  }

  /** One chunk of an event's clip. */
  async saveChunk(siteId: string, eventId: string, index: number, data: Buffer): Promise<ClipResult> {
    await this.sweep();
    const clip = (await this.sql.get('SELECT site_id, chunks, complete_at, error FROM clips WHERE event_id = ?', [eventId])) as
      { site_id: string; chunks: number; complete_at: number | null; error: string | null } | undefined;
    if (clip && clip.site_id !== siteId) return { ok: false, reason: `wrong site: the clip of event "${eventId}" belongs to site "${clip.site_id}"` };
    if (clip && (clip.complete_at !== null || clip.error !== null)) return { ok: true, state: 'duplicate' };
    if (clip && index >= clip.chunks) return { ok: false, reason: `clip chunk ${index} of event "${eventId}": the manifest declares ${clip.chunks} chunks` };
    const other = (await this.sql.value('SELECT site_id FROM clip_chunks WHERE event_id = ? LIMIT 1', [eventId])) as string | undefined;
    if (other && other !== siteId) return { ok: false, reason: `wrong site: chunks of event "${eventId}" came from site "${other}"` };
    const pending = (await this.sql.value('SELECT COALESCE(SUM(LENGTH(data)), 0) FROM clip_chunks WHERE site_id = ?', [siteId])) as number;
    if (pending + data.length > this.maxPendingBytesPerSite) {
      return { ok: false, reason: `clip chunks of site "${siteId}" waiting for their manifests exceed ${this.maxPendingBytesPerSite} bytes` };
    }
    await this.sql.run(`INSERT INTO clip_chunks (event_id, idx, site_id, data, received_at) VALUES (?, ?, ?, ?, ?)
      ON CONFLICT (event_id, idx) DO UPDATE SET site_id = excluded.site_id, data = excluded.data, received_at = excluded.received_at`, [eventId, index, siteId, data, this.now()]);
    return await this.assemble(eventId);
  }

  /** The manifest that closes a clip (after its chunks, or before them after a redelivery). */
  async saveManifest(m: ClipManifest): Promise<ClipResult> {
    const prev = (await this.sql.get('SELECT site_id, sha256 FROM clips WHERE event_id = ?', [m.eventId])) as { site_id: string; sha256: string } | undefined;
    if (prev) {
      if (prev.site_id !== m.siteId) return { ok: false, reason: `wrong site: the clip of event "${m.eventId}" belongs to site "${prev.site_id}"` };
      if (prev.sha256 !== m.sha256) return { ok: false, reason: `clip of event "${m.eventId}" already declared with sha256 ${prev.sha256}` };
      return { ok: true, state: 'duplicate' };
    }
    const other = (await this.sql.value('SELECT site_id FROM clip_chunks WHERE event_id = ? LIMIT 1', [m.eventId])) as string | undefined;
    if (other && other !== m.siteId) return { ok: false, reason: `wrong site: chunks of event "${m.eventId}" came from site "${other}"` };
    await this.sql.run(`INSERT INTO clips (event_id, site_id, camera_id, sha256, bytes, chunks, codec, start_at, duration_ms, received_at)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, [m.eventId, m.siteId, m.cameraId, m.sha256, m.bytes, m.chunks, m.codec, m.startAt, m.durationMs, this.now()]);
    return await this.assemble(m.eventId);
  }

  private async assemble(eventId: string): Promise<ClipResult> {
    const clip = (await this.sql.get('SELECT sha256, bytes, chunks, complete_at FROM clips WHERE event_id = ?', [eventId])) as
      { sha256: string; bytes: number; chunks: number; complete_at: number | null } | undefined;
    if (!clip || clip.complete_at !== null) return { ok: true, state: 'waiting' };
    const have = (await this.sql.value('SELECT COUNT(*) FROM clip_chunks WHERE event_id = ? AND idx < ?', [eventId, clip.chunks])) as number;
    if (have < clip.chunks) return { ok: true, state: 'waiting' };
    const parts = (await this.sql.values('SELECT data FROM clip_chunks WHERE event_id = ? AND idx < ? ORDER BY idx', [eventId, clip.chunks])) as Buffer[];
    const bytes = Buffer.concat(parts);
    const sha = createHash('sha256').update(bytes).digest('hex');
    // With several instances the last chunks may reach two of them at once: the first to close the
    // clip wins; the other (which may have read the chunks after they were deleted) is a duplicate.
    const done = (error: string | null) => this.sql.tx(async () => {
      const r = await this.sql.run('UPDATE clips SET complete_at = ?, error = ? WHERE event_id = ? AND complete_at IS NULL AND error IS NULL',
        [error ? null : this.now(), error, eventId]);
      if (r.changes) await this.sql.run('DELETE FROM clip_chunks WHERE event_id = ?', [eventId]);
      return r.changes > 0;
    });
    if (sha !== clip.sha256 || bytes.length !== clip.bytes) {
      const reason = `clip of event "${eventId}": the chunks join to ${bytes.length} bytes hashing to ${sha}, the manifest declares ${clip.bytes} bytes, ${clip.sha256}`;
      return (await done(reason.slice(0, 500))) ? { ok: false, reason } : { ok: true, state: 'duplicate' };
    }
    const file = this.path(sha);
    if (!existsSync(file)) {
      mkdirSync(path.dirname(file), { recursive: true });
      writeFileSync(`${file}.tmp`, bytes);
      renameSync(`${file}.tmp`, file);
    }
    return (await done(null)) ? { ok: true, state: 'complete' } : { ok: true, state: 'duplicate' };
  }

  /** Drops chunks that waited a day for a manifest (at most once a minute). */
  private async sweep(): Promise<void> {
    const t = this.now();
    if (t - this.lastSweep < 60_000) return;
    this.lastSweep = t;
    await this.sql.run('DELETE FROM clip_chunks WHERE received_at < ? AND event_id NOT IN (SELECT event_id FROM clips)', [t - STALE_CHUNK_MS]);
  }

  /**
   * Deletes the files of clips completed before `maxAgeDays`, then the oldest while the stored clips
   * exceed `maxTotalMB`; their rows stay, marked expired. Returns what it removed.
   */
  async enforceRetention(o: { maxAgeDays: number; maxTotalMB: number }): Promise<{ clips: number; bytes: number }> {
    const t = this.now();
    const live = (await this.sql.all('SELECT event_id, sha256, bytes, complete_at FROM clips WHERE complete_at IS NOT NULL AND expired_at IS NULL ORDER BY complete_at')) as { event_id: string; sha256: string; bytes: number; complete_at: number }[];
    let total = live.reduce((n, c) => n + c.bytes, 0);
    const cutoff = t - o.maxAgeDays * 86_400_000;
    const max = o.maxTotalMB * 1024 * 1024;
    const out = { clips: 0, bytes: 0 };
    for (const c of live) {
      if (c.complete_at >= cutoff && total <= max) break;
      await this.sql.run('UPDATE clips SET expired_at = ? WHERE event_id = ?', [t, c.event_id]);
      total -= c.bytes;
      out.clips++;
      out.bytes += c.bytes;
      // content-addressed: another live clip may hold the same bytes
      const shared = (await this.sql.get('SELECT 1 FROM clips WHERE sha256 = ? AND complete_at IS NOT NULL AND expired_at IS NULL', [c.sha256]));
      if (!shared) rmSync(this.path(c.sha256), { force: true });
    }
    return out;
  }

  /**
   * Columns (prefixed `clip_`) that `clipView` reads, for a query joining `clips` as `alias` to the
   * events row whose id is `eventId`: an event's view then needs no query of its own.
   */
  static columns(alias: string, eventId: string): string {
    return `${alias}.event_id AS clip_event, ${alias}.chunks AS clip_chunks, ${alias}.complete_at AS clip_complete_at,
      ${alias}.expired_at AS clip_expired_at, ${alias}.error AS clip_error, ${alias}.duration_ms AS clip_duration_ms,
      ${alias}.bytes AS clip_bytes, ${alias}.codec AS clip_codec,
      CASE WHEN ${alias}.event_id IS NOT NULL AND ${alias}.complete_at IS NULL
        THEN (SELECT COUNT(*) FROM clip_chunks k WHERE k.event_id = ${eventId}) END AS clip_received`;
  }

  /** The clip's view for an event, or null when none was announced. */
  async view(eventId: string): Promise<ClipView | null> {
    return clipView(await this.sql.get(`SELECT ${ClipStore.columns('cl', 'cl.event_id')} FROM clips cl WHERE cl.event_id = ?`, [eventId]) ?? {});
  }

  /** The file of a complete clip, or null. Scope checks are the caller's (it knows the event). */
  async file(eventId: string): Promise<string | null> {
    const sha = (await this.sql.value('SELECT sha256 FROM clips WHERE event_id = ? AND complete_at IS NOT NULL AND expired_at IS NULL', [eventId])) as string | undefined;
    if (!sha) return null;
    const file = this.path(sha);
    return existsSync(file) ? file : null;
  }
}

/** The view of the clip in a row carrying `ClipStore.columns`, or null when the event has none. */
export function clipView(r: Record<string, unknown>): ClipView | null {
  if (r.clip_event == null) return null;
  const complete = r.clip_complete_at !== null;
  return {
    url: `/api/events/${encodeURIComponent(r.clip_event as string)}/clip.mp4`,
    state: r.clip_expired_at !== null ? 'expired' : complete ? 'complete' : r.clip_error !== null ? 'failed' : 'incomplete',
    durationMs: r.clip_duration_ms as number, bytes: r.clip_bytes as number, codec: r.clip_codec as string,
    chunksReceived: complete ? (r.clip_chunks as number) : (r.clip_received as number), chunks: r.clip_chunks as number,
  };
}

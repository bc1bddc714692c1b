/**
 * Event clips. While a camera decodes fully, its ffmpeg also copies the stream into MPEG-TS segments
 * in a rolling buffer (agent/camera/ffmpeg.ts, clipSegmentOutput). When an event is raised, this
 * waits out the post-roll, joins the segments around the event without re-encoding (ffmpeg's concat
 * demuxer, `-c copy`) into an MP4 next to the event's snapshots, and queues it in the outbox as
 * chunks followed by a manifest: the event itself left seconds earlier and never waits for its clip.
 *
 * Segment times are wall-clock from the files: a segment ends when ffmpeg last wrote it (mtime, it
 * closes a segment when the next keyframe arrives), and starts where the one before it ended.
 */
import { execFile } from 'node:child_process';
import { promises as fsp, rmSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { childLog } from '../../common/log.js';
import { CLIP_CHUNK_MAX_BYTES, PROTOCOL_VERSION, type ClipManifest, type EventMessage } from '../../protocol/messages.js';
import { DEFAULT_PREFIX, topics } from '../../protocol/topics.js';
import type { SiteConfig } from '../config/schema.js';
import type { Outbox, OutboxMessage } from '../outbox/index.js';
import { sha256, type EvidenceStore } from './store.js';

const log = childLog({ stage: 'clips' });
const run = promisify(execFile);

export type ClipsConfig = SiteConfig['clips'];

/** Chunk size on the wire: a quarter of a typical 1 MiB broker packet limit, well under CLIP_CHUNK_MAX_BYTES. */
export const CLIP_CHUNK_BYTES = 256 * 1024;
const SEGMENT_FILE = /^(\d+)-(\d{6})\.ts$/;

export interface Segment {
  file: string;
  /** ms epoch */
  startAt: number;
  endAt: number;
}

/** The buffer's segments, oldest first (by ffmpeg run, then index). */
export async function listSegments(dir: string, segmentSec: number): Promise<Segment[]> {
  let names: string[];
  try {
    names = await fsp.readdir(dir);
  } catch {
    return [];
  }
  const found: { file: string; run: number; index: number; mtime: number }[] = [];
  for (const name of names) {
    const m = SEGMENT_FILE.exec(name);
    if (!m) continue;
    const file = path.join(dir, name);
    const st = await fsp.stat(file).catch(() => null);
    if (st && st.size > 0) found.push({ file, run: Number(m[1]), index: Number(m[2]), mtime: st.mtimeMs });
  }
  found.sort((a, b) => a.run - b.run || a.index - b.index);
  return found.map((f, i) => {
    const prev = found[i - 1];
    // The first segment of a run: it began at most one segment before it was closed, and not before ffmpeg started.
    const startAt = prev && prev.run === f.run ? prev.mtime : Math.max(f.run, f.mtime - segmentSec * 1000);
    return { file: f.file, startAt, endAt: f.mtime };
  });
}

/**
 * The segments of a clip of `durationMs` meant to start at `fromMs`. It starts on the segment
 * boundary (a keyframe) nearest to fromMs that is not after the event (`atMs`), and takes the
 * segments until the duration is covered. Empty when the buffer holds nothing of that time.
 */
export function selectSegments(segments: readonly Segment[], fromMs: number, durationMs: number, atMs: number): Segment[] {
  let first = -1;
  for (let i = 0; i < segments.length; i++) {
    const s = segments[i]!;
    if (s.endAt <= fromMs - 1000 || s.startAt > atMs) continue;
    if (first < 0 || Math.abs(s.startAt - fromMs) < Math.abs(segments[first]!.startAt - fromMs)) first = i;
  }
  if (first < 0) return [];
  const end = segments[first]!.startAt + durationMs;
  const out: Segment[] = [];
  for (let i = first; i < segments.length; i++) {
    out.push(segments[i]!);
    if (segments[i]!.endAt >= end) break;
  }
  return out;
}

export interface CutResult {
  bytes: number;
  durationMs: number;
  /** As browsers name it (`avc1.64001f`, `hvc1`). */
  codec: string;
}

/** Joins segments into an MP4 of at most durationMs and maxBytes (copied, faststart). */
export async function cutClip(segments: readonly Segment[], durationMs: number, maxBytes: number, out: string, ffmpegPath = 'ffmpeg'): Promise<CutResult> {
  const list = `${out}.ffconcat`;
  const lines = ['ffconcat version 1.0', ...segments.map((s) => `file '${s.file.replace(/'/g, "'\\''")}'`)];
  await fsp.mkdir(path.dirname(out), { recursive: true });
  await fsp.writeFile(list, `${lines.join('\n')}\n`);
  try {
    await run(ffmpegPath, [
      '-hide_banner', '-nostdin', '-loglevel', 'error', '-y',
      '-f', 'concat', '-safe', '0', '-i', list,
      '-map', '0:v:0', '-c', 'copy', '-t', (durationMs / 1000).toFixed(3), '-fs', String(Math.floor(maxBytes)),
      '-movflags', '+faststart', '-f', 'mp4', out,
    ], { timeout: 30_000 });
  } finally {
    await fsp.rm(list, { force: true });
  }
  const probe = await run(ffmpegPath.replace(/ffmpeg$/, 'ffprobe'), [
    '-v', 'error', '-select_streams', 'v:0', '-show_entries', 'stream=codec_name,profile,level:format=duration,size', '-of', 'json', out,
  ], { timeout: 10_000 });
  const info = JSON.parse(probe.stdout) as { streams?: { codec_name?: string; profile?: string; level?: number }[]; format?: { duration?: string; size?: string } };
  const st = info.streams?.[0];
  const durationSec = Number(info.format?.duration);
  if (!st || !(durationSec > 0)) throw new Error(`the clip ${out} has no video (ffprobe: ${probe.stdout.slice(0, 200)})`);
  return { bytes: Number(info.format?.size ?? 0), durationMs: Math.round(durationSec * 1000), codec: browserCodec(st.codec_name, st.profile, st.level) };
}

/** RFC 6381 codec string of a stream as ffprobe describes it. */
export function browserCodec(name?: string, profile?: string, level?: number): string {
  if (name === 'hevc') return 'hvc1';
  if (name !== 'h264') return name ?? 'unknown';
  const idc: Record<string, string> = { 'Constrained Baseline': '42e0', Baseline: '4200', Main: '4d00', High: '6400' };
  const lv = typeof level === 'number' && level > 0 ? level.toString(16).padStart(2, '0') : '1f';
  return `avc1.${idc[profile ?? ''] ?? '6400'}${lv}`;
}

/** The outbox messages of a clip: its chunks (droppable under the outbox cap), then the manifest. */
export function clipOutboxMessages(manifest: Omit<ClipManifest, 'v' | 'chunks' | 'sha256' | 'bytes'>, mp4: Buffer, prefix = DEFAULT_PREFIX, chunkBytes = CLIP_CHUNK_BYTES): OutboxMessage[] {
  if (chunkBytes > CLIP_CHUNK_MAX_BYTES) throw new Error(`clip chunks of ${chunkBytes} bytes exceed the protocol's ${CLIP_CHUNK_MAX_BYTES}`);
  const t = topics(prefix);
  const chunks = Math.max(1, Math.ceil(mp4.length / chunkBytes));
  const out: OutboxMessage[] = [];
  for (let i = 0; i < chunks; i++) {
    out.push({ topic: t.clipChunk(manifest.siteId, manifest.eventId, i), payload: mp4.subarray(i * chunkBytes, (i + 1) * chunkBytes), qos: 1, droppable: true });
  }
  const full: ClipManifest = { v: PROTOCOL_VERSION, ...manifest, sha256: sha256(mp4), bytes: mp4.length, chunks };
  // Not droppable: if the chunks were dropped, central still learns that a clip existed and is gone.
  out.push({ topic: t.clip(manifest.siteId, manifest.eventId), payload: JSON.stringify(full), qos: 1 });
  return out;
}

export interface ClipCounters {
  cut: number;
  failed: number;
  /** Events on cameras without a buffer of that moment (still camera, buffer off). */
  skipped: number;
  bytes: number;
}

interface Pending {
  event: EventMessage;
  timer: NodeJS.Timeout | null;
  deadline: number;
}

/** The clip buffers of a site's cameras and the cutting of event clips. */
export class EventClips {
  readonly counters: ClipCounters = { cut: 0, failed: 0, skipped: 0, bytes: 0 };
  private readonly root: string;
  private readonly cameras: Set<string>;
  private readonly pending = new Map<string, Pending>();
  private readonly cutting = new Set<Promise<void>>();
  private pruneTimer: NodeJS.Timeout | null = null;
  private stopped = false;

  constructor(
    private readonly cfg: ClipsConfig,
    private readonly deps: {
      siteId: string;
      /** Cameras that keep a buffer. */
      cameraIds: readonly string[];
      /** The buffer's root directory (per site: two agents on one box keep apart). */
      root: string;
      evidence: EvidenceStore;
      outbox: Outbox;
      topicPrefix?: string;
      ffmpegPath?: string;
      now?: () => number;
    },
  ) {
    this.root = deps.root;
    this.cameras = new Set(deps.cameraIds);
  }

  /** The camera's buffer directory, or undefined when it keeps none. */
  bufferDir(cameraId: string): string | undefined {
    return this.cameras.has(cameraId) ? path.join(this.root, cameraId) : undefined;
  }

  /** Seconds of segments kept: the clip window plus the time a cut may wait for its last segment. */
  private get keepMs(): number {
    return (this.cfg.preSec + this.cfg.postSec + 4 * this.cfg.segmentSec) * 1000 + 10_000;
  }

  private now(): number {
    return this.deps.now?.() ?? Date.now();
  }

  /** Empties the buffers left by an earlier run and starts pruning. */
  start(): void {
    for (const id of this.cameras) rmSync(path.join(this.root, id), { recursive: true, force: true });
    this.pruneTimer = setInterval(() => void this.prune(), Math.max(1000, this.cfg.segmentSec * 1000)).unref();
  }

  private async prune(): Promise<void> {
    const cutoff = this.now() - this.keepMs;
    for (const id of this.cameras) {
      for (const s of await listSegments(path.join(this.root, id), this.cfg.segmentSec)) {
        if (s.endAt < cutoff) await fsp.rm(s.file, { force: true }).catch(() => undefined);
      }
    }
  }

  /** An event was raised: its clip is cut once the post-roll is in the buffer. */
  request(event: EventMessage): void {
    if (this.stopped) return;
    if (!this.cameras.has(event.cameraId)) {
      this.counters.skipped++;
      return;
    }
    const end = event.capturedAt + this.cfg.postSec * 1000;
    // The segment holding the end closes at the next keyframe after it; give up waiting 3 segments later.
    const p: Pending = { event, timer: null, deadline: end + 3 * this.cfg.segmentSec * 1000 + 2000 };
    this.pending.set(event.id, p);
    this.schedule(p, Math.max(0, end - this.now()) + 500);
  }

  private schedule(p: Pending, delayMs: number): void {
    p.timer = setTimeout(() => void this.tryCut(p), delayMs);
  }

  private async tryCut(p: Pending, force = false): Promise<void> {
    if (!this.pending.has(p.event.id)) return;
    const { event } = p;
    const from = event.capturedAt - this.cfg.preSec * 1000;
    const durationMs = (this.cfg.preSec + this.cfg.postSec) * 1000;
    const segments = await listSegments(path.join(this.root, event.cameraId), this.cfg.segmentSec);
    const chosen = selectSegments(segments, from, durationMs, event.capturedAt);
    const covered = chosen.length > 0 && chosen[chosen.length - 1]!.endAt >= chosen[0]!.startAt + durationMs;
    // The last chosen segment must be closed (a later one exists) unless time is up.
    const closed = covered && segments.indexOf(chosen[chosen.length - 1]!) < segments.length - 1;
    if (!force && !closed && this.now() < p.deadline) {
      this.schedule(p, 500);
      return;
    }
    this.pending.delete(event.id);
    if (chosen.length === 0) {
      this.counters.skipped++;
      log.info({ eventId: event.id, camera: event.cameraId }, 'no clip: the camera\'s buffer holds nothing of that moment (still picture or buffer off)');
      return;
    }
    const job = this.cut(event, chosen, durationMs).finally(() => this.cutting.delete(job));
    this.cutting.add(job);
    await job;
  }

  private async cut(event: EventMessage, chosen: Segment[], durationMs: number): Promise<void> {
    const { evidence, outbox } = this.deps;
    const file = evidence.clipPathFor(event.id, event.capturedAt);
    try {
      const r = await cutClip(chosen, durationMs, this.cfg.maxMB * 1024 * 1024, `${file}.tmp`, this.deps.ffmpegPath);
      const kept = await evidence.attachClip(event.id, event.capturedAt);
      const mp4 = await fsp.readFile(kept ?? `${file}.tmp`);
      if (!kept) await fsp.rm(`${file}.tmp`, { force: true });
      outbox.enqueue(clipOutboxMessages({
        eventId: event.id, siteId: event.siteId, cameraId: event.cameraId, mime: 'video/mp4', codec: r.codec,
        startAt: Math.round(chosen[0]!.startAt), durationMs: r.durationMs,
      }, mp4, this.deps.topicPrefix));
      this.counters.cut++;
      this.counters.bytes += mp4.length;
      log.info({ eventId: event.id, camera: event.cameraId, bytes: mp4.length, durationMs: r.durationMs, segments: chosen.length }, 'clip queued');
    } catch (err) {
      this.counters.failed++;
      await fsp.rm(`${file}.tmp`, { force: true }).catch(() => undefined);
      log.error({ err, eventId: event.id, camera: event.cameraId }, `clip of event ${event.id} failed: ${(err as Error).message.slice(0, 300)}`);
    }
  }

  /** Cuts what is pending with what the buffers hold (the cameras have stopped), then stops pruning. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.pruneTimer) clearInterval(this.pruneTimer);
    const waiting = [...this.pending.values()];
    for (const p of waiting) if (p.timer) clearTimeout(p.timer);
    await Promise.allSettled([...waiting.map((p) => this.tryCut(p, true)), ...this.cutting]);
  }
}

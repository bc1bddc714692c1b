/**
 * Evidence files on the box: `<dir>/evidence/YYYY-MM-DD/<eventId>-{annotated,clean}.jpg` and, when
 * the camera kept a clip buffer, `<eventId>-clip.mp4` (date in the site's time zone), with retention
 * by age and by total size; an event's files are kept and evicted together.
 *
 * - An in-memory index (oldest first) of every evidence file and its size is built once by `init()`
 *   (one scan of the tree); afterwards retention only looks at the front of the index, so checking
 *   it after every write costs nothing.
 * - Writes go to `<name>.tmp` and are renamed into place, so a crash never leaves a torn JPEG under
 *   the final name (stray .tmp files are removed at `init()`).
 * - A failed write is logged with the path and the cause. When the disk is full (ENOSPC / EDQUOT)
 *   the oldest evidence is evicted before the one retry; for other errors (permissions, a file where
 *   a directory should be) evicting would destroy evidence without helping, so it only retries.
 *   If the retry fails too, `save` resolves with `error` set and `path: null`, keeping the hashes
 *   and bytes so the event can still go out without stored files. `save` never rejects.
 */
import { createHash } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { childLog } from '../../common/log.js';
import { Id } from '../../protocol/messages.js';

const log = childLog({ stage: 'evidence' });

export interface EvidenceStoreOptions {
  /** `storage.dir` of the site config; files go under `<dir>/evidence/`. */
  dir: string;
  maxAgeDays: number;
  maxTotalMB: number;
  /** Time zone of the date folders; default Asia/Shanghai. */
  timezone?: string;
  /** Periodic retention sweep (ms); 0 disables the timer. Default 1 h. */
  retentionIntervalMs?: number;
  /** Clock (ms), for tests. */
  now?: () => number;
  /** File writer, for tests that simulate a full disk. Default fs.promises.writeFile. */
  writeFile?: (file: string, data: Buffer) => Promise<void>;
}

export interface StoredFile {
  /** Absolute path, or null when the file could not be stored. */
  path: string | null;
  sha256: string;
  bytes: number;
  data: Buffer;
}

export interface SaveResult {
  annotated: StoredFile;
  clean: StoredFile;
  /** Why the files are not on disk; null on success. */
  error: EvidenceError | null;
}

export interface RetentionReport {
  deletedFiles: number;
  freedBytes: number;
}

export class EvidenceError extends Error {
  constructor(
    message: string,
    readonly code: string | undefined,
    readonly file: string | undefined,
  ) {
    super(message);
    this.name = 'EvidenceError';
  }
}

/** One event's files (annotated + clean) are kept and evicted together. */
interface Entry {
  /** `<day dir>/<eventId>` */
  key: string;
  files: string[];
  bytes: number;
  time: number;
}

const DAY_DIR = /^\d{4}-\d{2}-\d{2}$/;
const EVENT_FILE = /^(.+)-(annotated|clean|clip)\.(jpg|mp4)$/;
const SPACE_ERRORS = new Set(['ENOSPC', 'EDQUOT']);

export class EvidenceStore {
  readonly root: string;
  private readonly maxAgeMs: number;
  private readonly maxBytes: number;
  private readonly dayFormat: Intl.DateTimeFormat;
  private readonly now: () => number;
  private readonly writeFile: (file: string, data: Buffer) => Promise<void>;
  private readonly intervalMs: number;
  /** oldest first; entries before `head` are consumed */
  private index: Entry[] = [];
  private head = 0;
  private byKey = new Map<string, Entry>();
  private perDir = new Map<string, number>();
  private total = 0;
  private timer: NodeJS.Timeout | null = null;

  constructor(opts: EvidenceStoreOptions) {
    if (!opts.dir) throw new Error('EvidenceStore: storage.dir is empty');
    if (!(opts.maxAgeDays > 0)) throw new Error(`EvidenceStore: storage.evidence.maxAgeDays must be > 0, got ${opts.maxAgeDays}`);
    if (!(opts.maxTotalMB > 0)) throw new Error(`EvidenceStore: storage.evidence.maxTotalMB must be > 0, got ${opts.maxTotalMB}`);
    this.root = path.resolve(opts.dir, 'evidence');
    this.maxAgeMs = opts.maxAgeDays * 86_400_000;
    this.maxBytes = opts.maxTotalMB * 1024 * 1024;
    const timeZone = opts.timezone ?? 'Asia/Shanghai';
    try {
      this.dayFormat = new Intl.DateTimeFormat('en-CA', { timeZone, year: 'numeric', month: '2-digit', day: '2-digit' });
    } catch {
      throw new Error(`EvidenceStore: time zone "${timeZone}" is not a valid IANA time zone`);
    }
    this.now = opts.now ?? Date.now;
    this.writeFile = opts.writeFile ?? ((f, d) => fsp.writeFile(f, d));
    this.intervalMs = opts.retentionIntervalMs ?? 3_600_000;
  }

  get totalBytes(): number {
    return this.total;
  }

  get fileCount(): number {
    let n = 0;
    for (const e of this.byKey.values()) n += e.files.length;
    return n;
  }

  /** Number of events with files on disk. */
  get eventCount(): number {
    return this.byKey.size;
  }

  /**
   * Scans the tree once, removes stray temp files, applies retention and starts the periodic sweep.
   * Never rejects: a tree that cannot be read is logged (saves will then report their own errors).
   */
  async init(): Promise<RetentionReport> {
    this.index = [];
    this.head = 0;
    this.byKey.clear();
    this.perDir.clear();
    this.total = 0;
    const found = new Map<string, Entry>();
    try {
      await fsp.mkdir(this.root, { recursive: true });
      for (const day of await fsp.readdir(this.root, { withFileTypes: true })) {
        if (!day.isDirectory() || !DAY_DIR.test(day.name)) continue;
        const dir = path.join(this.root, day.name);
        for (const f of await fsp.readdir(dir, { withFileTypes: true })) {
          if (!f.isFile()) continue;
          const file = path.join(dir, f.name);
          if (f.name.endsWith('.tmp')) {
            await fsp.rm(file, { force: true });
            continue;
          }
          if (!f.name.endsWith('.jpg') && !f.name.endsWith('.mp4')) continue;
          const st = await fsp.stat(file);
          const key = path.join(dir, EVENT_FILE.exec(f.name)?.[1] ?? f.name);
          const e = found.get(key);
          if (e) {
            e.files.push(file);
            e.bytes += st.size;
            e.time = Math.max(e.time, st.mtimeMs);
          } else found.set(key, { key, files: [file], bytes: st.size, time: st.mtimeMs });
        }
      }
    } catch (err) {
      log.error({ err, dir: this.root }, `evidence: cannot scan ${this.root}: ${describe(err)}`);
    }
    for (const e of [...found.values()].sort((a, b) => a.time - b.time)) this.add(e);
    const report = await this.enforceRetention();
    log.info({ dir: this.root, files: this.fileCount, totalMB: +(this.total / 1048576).toFixed(1), ...report }, 'evidence store ready');
    if (this.intervalMs > 0 && !this.timer) {
      this.timer = setInterval(() => void this.enforceRetention(), this.intervalMs);
      this.timer.unref();
    }
    return report;
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** Where the files of an event go (does not touch the disk). */
  pathsFor(eventId: string, ts: number): { annotated: string; clean: string } {
    const dir = path.join(this.root, this.day(ts));
    return { annotated: path.join(dir, `${eventId}-annotated.jpg`), clean: path.join(dir, `${eventId}-clean.jpg`) };
  }

  /** Where an event's clip goes; write it to `<path>.tmp` and hand it to attachClip. */
  clipPathFor(eventId: string, ts: number): string {
    return path.join(this.root, this.day(ts), `${eventId}-clip.mp4`);
  }

  /**
   * Moves a clip written to `clipPathFor(…) + '.tmp'` into place and counts it with the event's
   * snapshots (evicted together). Resolves with the final path, or null (logged) if it cannot.
   */
  async attachClip(eventId: string, ts: number): Promise<string | null> {
    const file = this.clipPathFor(eventId, ts);
    try {
      await fsp.rename(`${file}.tmp`, file);
      const { size } = await fsp.stat(file);
      const key = path.join(path.dirname(file), eventId);
      const e = this.byKey.get(key);
      if (e) {
        e.files.push(file);
        e.bytes += size;
        this.total += size;
      } else this.add({ key, files: [file], bytes: size, time: this.now() });
      await this.enforceRetention(new Set([key]));
      return file;
    } catch (err) {
      await fsp.rm(`${file}.tmp`, { force: true }).catch(() => undefined);
      log.error({ err, eventId }, `evidence: cannot keep the clip of event ${eventId} at ${file}: ${describe(err)}`);
      return null;
    }
  }

  /** Stores both JPEGs of an event captured at `ts` (ms). Never rejects; see SaveResult.error. */
  async save(eventId: string, ts: number, files: { annotated: Buffer; clean: Buffer }): Promise<SaveResult> {
    const result: SaveResult = {
      annotated: { path: null, sha256: sha256(files.annotated), bytes: files.annotated.length, data: files.annotated },
      clean: { path: null, sha256: sha256(files.clean), bytes: files.clean.length, data: files.clean },
      error: null,
    };
    if (!Id.safeParse(eventId).success) {
      result.error = new EvidenceError(`evidence: event id "${eventId}" is not a safe file name (letters, digits, "_" or "-", max 64)`, 'EINVAL', undefined);
      log.error({ eventId }, result.error.message);
      return result;
    }
    if (!Number.isFinite(ts)) {
      result.error = new EvidenceError(`evidence: capture time of event ${eventId} is not a number (${ts})`, 'EINVAL', undefined);
      log.error({ eventId }, result.error.message);
      return result;
    }
    const target = this.pathsFor(eventId, ts);
    const pending = [
      { file: target.annotated, data: files.annotated },
      { file: target.clean, data: files.clean },
    ];
    const needed = files.annotated.length + files.clean.length;
    for (let attempt = 1; attempt <= 2; attempt++) {
      const err = await this.writeAll(pending);
      if (!err) {
        const key = path.join(path.dirname(target.annotated), eventId);
        this.add({ key, files: [target.annotated, target.clean], bytes: needed, time: this.now() });
        result.annotated.path = target.annotated;
        result.clean.path = target.clean;
        await this.enforceRetention(new Set([key]));
        return result;
      }
      const msg = `evidence: cannot write ${err.file ?? target.annotated} for event ${eventId}: ${err.message}`;
      if (attempt === 1) {
        const evict = err.code !== undefined && SPACE_ERRORS.has(err.code);
        log.error({ err, eventId, code: err.code }, `${msg}; ${evict ? 'evicting the oldest evidence and retrying once' : 'retrying once'}`);
        if (evict) await this.evictOldest(Math.max(needed * 4, this.maxBytes * 0.05));
      } else {
        result.error = new EvidenceError(`${msg} (gave up after a retry; the event goes out without stored evidence)`, err.code, err.file);
        log.error({ err, eventId, code: err.code }, result.error.message);
      }
    }
    return result;
  }

  /** Deletes files older than maxAgeDays, then the oldest while over maxTotalMB. Never rejects. */
  async enforceRetention(keep: ReadonlySet<string> = new Set()): Promise<RetentionReport> {
    const report: RetentionReport = { deletedFiles: 0, freedBytes: 0 };
    const cutoff = this.now() - this.maxAgeMs;
    const victims: Entry[] = [];
    while (this.head < this.index.length) {
      const e = this.index[this.head]!;
      if (this.byKey.get(e.key) !== e) {
        this.head++; // superseded by a rewrite of the same event
        continue;
      }
      const overSize = this.total > this.maxBytes;
      if (!(e.time < cutoff || overSize)) break;
      if (keep.has(e.key)) {
        // only the files just written are left, and they alone exceed the budget: keep them
        log.warn({ totalBytes: this.total, maxBytes: this.maxBytes }, 'evidence: the newest event alone exceeds storage.evidence.maxTotalMB; kept it');
        break;
      }
      this.head++;
      this.remove(e);
      victims.push(e);
    }
    for (const e of victims) {
      await this.unlink(e);
      report.deletedFiles += e.files.length;
      report.freedBytes += e.bytes;
    }
    this.compact();
    if (report.deletedFiles) log.info({ ...report, totalBytes: this.total }, 'evidence retention');
    return report;
  }

  private async evictOldest(bytes: number): Promise<void> {
    let freed = 0;
    let n = 0;
    while (freed < bytes && this.head < this.index.length) {
      const e = this.index[this.head++]!;
      if (this.byKey.get(e.key) !== e) continue;
      this.remove(e);
      await this.unlink(e);
      freed += e.bytes;
      n++;
    }
    this.compact();
    log.warn({ files: n, freedBytes: freed }, 'evidence: evicted the oldest files to make room');
  }

  private async writeAll(files: { file: string; data: Buffer }[]): Promise<(Error & { code?: string; file?: string }) | null> {
    const written: string[] = [];
    let current = files[0]?.file;
    try {
      current = path.dirname(files[0]!.file);
      await fsp.mkdir(current, { recursive: true });
      for (const f of files) {
        current = f.file;
        const tmp = `${f.file}.tmp`;
        written.push(tmp);
        await this.writeFile(tmp, f.data);
        await fsp.rename(tmp, f.file);
        written.push(f.file);
      }
      return null;
    } catch (e) {
      for (const w of written) await fsp.rm(w, { force: true }).catch(() => undefined);
      const err = e as Error & { code?: string; file?: string };
      const out = new Error(describe(err)) as Error & { code?: string; file?: string };
      out.code = err.code;
      out.file = current;
      return out;
    }
  }

  private add(e: Entry): void {
    const prev = this.byKey.get(e.key);
    if (prev) this.remove(prev); // same event saved again: the new files replace it
    this.byKey.set(e.key, e);
    // usually appended; keep the index sorted if a clock step produced an older time
    const last = this.index[this.index.length - 1];
    if (!last || last.time <= e.time) this.index.push(e);
    else {
      let lo = this.head;
      let hi = this.index.length;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (this.index[mid]!.time <= e.time) lo = mid + 1;
        else hi = mid;
      }
      this.index.splice(lo, 0, e);
    }
    this.total += e.bytes;
    const dir = path.dirname(e.key);
    this.perDir.set(dir, (this.perDir.get(dir) ?? 0) + 1);
  }

  /** Drops an entry from the accounting (the caller advances `head` or it is superseded). */
  private remove(e: Entry): void {
    if (this.byKey.get(e.key) !== e) return;
    this.byKey.delete(e.key);
    this.total -= e.bytes;
    const dir = path.dirname(e.key);
    this.perDir.set(dir, (this.perDir.get(dir) ?? 1) - 1);
  }

  private async unlink(e: Entry): Promise<void> {
    for (const file of e.files) {
      try {
        await fsp.rm(file, { force: true });
      } catch (err) {
        log.warn({ err, file }, `evidence: cannot delete ${file}: ${describe(err)}`);
      }
    }
    const dir = path.dirname(e.key);
    if ((this.perDir.get(dir) ?? 0) <= 0) {
      this.perDir.delete(dir);
      await fsp.rmdir(dir).catch(() => undefined); // not empty (foreign files) or already gone
    }
  }

  private compact(): void {
    if (this.head > 1024 && this.head * 2 > this.index.length) {
      this.index = this.index.slice(this.head);
      this.head = 0;
    }
  }

  private day(ts: number): string {
    const p: Record<string, string> = {};
    for (const part of this.dayFormat.formatToParts(new Date(ts))) p[part.type] = part.value;
    return `${p.year}-${p.month}-${p.day}`;
  }
}

export function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

function describe(err: unknown): string {
  const e = err as { code?: string; message?: string };
  const hint: Record<string, string> = {
    ENOSPC: 'no space left on the device',
    EDQUOT: 'disk quota exceeded',
    EACCES: 'permission denied (check the owner and mode of storage.dir)',
    EPERM: 'operation not permitted (check the owner and mode of storage.dir)',
    EROFS: 'the file system is read-only',
    ENOTDIR: 'a part of the path is a file, not a directory (check storage.dir)',
    EEXIST: 'a file exists where a directory is needed (check storage.dir)',
  };
  const h = e.code ? hint[e.code] : undefined;
  return h ? `${h} [${e.code}] (${e.message})` : (e.message ?? String(err));
}

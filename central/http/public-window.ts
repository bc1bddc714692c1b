/**
 * The public window (社会公众): a page anyone may open, without logging in, for a site that opted in
 * (`org.sites[].public` in central's config): the canteen's name, a still of one chosen camera
 * refreshed every few seconds, and the month's rectification record if the site publishes it.
 *
 *   GET /public/<slug>                      the page (public/window.html + window.js)
 *   GET /api/public/<slug>                  {canteen, school, district, still, record, …}
 *   GET /api/public/<slug>/still.jpg        the camera's picture, at most `stillTtlMs` old
 *   GET /api/public/<slug>/images/<sha256>  an alert's annotated picture (only with violationImages)
 *
 * What keeps it public-only: sites are found by their random slug alone, never by id; a site that
 * did not opt in answers exactly like an unknown slug (the same 404); the session is never read, so
 * a dashboard cookie widens nothing; answers carry names of the canteen, school and district and
 * counts, kinds, times and states, never a user, a note, a camera id or URL. Every request counts
 * against a per-address limit, and N viewers of one camera cost one ffmpeg pull per `stillTtlMs`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { childLog } from '../../common/log.js';
import type { Central } from '../core.js';
import type { SitePublicConfig } from '../config/schema.js';
import { isJpeg } from '../store/store.js';
import { monthStart } from '../store/public-record.js';
import type { CentralStore } from '../store/types.js';
import { queryOf } from './body.js';
import type { Ctx } from './context.js';
import { HttpError, notFound } from './errors.js';
import { sendFile } from './files.js';
import { checkLiveUrl } from './live.js';
import { RequestLimiter } from './ratelimit.js';
import type { Router } from './router.js';
import * as S from './schemas.js';

const log = childLog({ mod: 'central/http/public' });

export interface PublicWindowOptions {
  /** Requests per client address per window, all public endpoints together (default 120 a minute). */
  maxPerIp?: number;
  windowMs?: number;
  /** A pulled still is served to everyone this long (default 5 s). */
  stillTtlMs?: number;
  /** After a failed pull, wait this long before the next try (default 10 s). */
  failTtlMs?: number;
  /** A pull that has no picture after this long is killed (default 10 s). */
  pullTimeoutMs?: number;
  /** Cameras pulled at the same time, over all public sites (default 4). */
  maxPulls?: number;
  /** The JSON answer is reused this long per site (default 10 s). */
  recordTtlMs?: number;
  /** How often the page asks for a new still (seconds). */
  refreshSec?: number;
  ffmpegPath?: string;
}

const SLUG = /^[A-Za-z0-9_-]{16,64}$/;
const MAX_STILL_BYTES = 5 * 1024 * 1024;

interface PublicSite {
  siteId: string;
  slug: string;
  cfg: SitePublicConfig;
}

interface Still {
  at: number;
  bytes: Buffer | null;
  inflight: Promise<void> | null;
}

export class PublicWindow {
  private readonly bySlug = new Map<string, PublicSite>();
  private readonly limiter: RequestLimiter;
  private readonly stills = new Map<string, Still>();
  private readonly records = new Map<string, { at: number; body: string }>();
  private readonly procs = new Set<ChildProcess>();
  private readonly o: Required<Omit<PublicWindowOptions, 'maxPerIp' | 'windowMs'>>;
  private readonly store: CentralStore;
  private pulls = 0;

  constructor(private readonly central: Central, private readonly publicDir: string, opts: PublicWindowOptions = {}) {
    for (const s of central.config.org.sites) {
      if (s.public?.enabled && s.public.slug) this.bySlug.set(s.public.slug, { siteId: s.id, slug: s.public.slug, cfg: s.public });
    }
    this.limiter = new RequestLimiter(opts.maxPerIp ?? 120, opts.windowMs ?? 60_000);
    this.o = {
      stillTtlMs: opts.stillTtlMs ?? 5_000, failTtlMs: opts.failTtlMs ?? 10_000, pullTimeoutMs: opts.pullTimeoutMs ?? 10_000,
      maxPulls: opts.maxPulls ?? 4, recordTtlMs: opts.recordTtlMs ?? 10_000, refreshSec: opts.refreshSec ?? 5, ffmpegPath: opts.ffmpegPath ?? 'ffmpeg',
    };
    this.store = central.store;
  }

  /** Rate limit, then the opted-in site of this slug or the one 404 every other slug gets. */
  private async site(ctx: Ctx, slug: string | undefined): Promise<PublicSite> {
    const wait = this.limiter.take(ctx.ip);
    if (wait > 0) throw new HttpError(429, 'too_many_requests', undefined, undefined, { 'Retry-After': String(wait) });
    const s = slug && SLUG.test(slug) ? this.bySlug.get(slug) : undefined;
    // Deleted through the org API since start: gone from the public too.
    if (!s || !(await this.store.siteContext(s.siteId))) throw notFound();
    return s;
  }

  register(router: Router<Ctx>): void {
    router.add('GET', '/api/public/:slug', async (ctx, p) => {
      const s = await this.site(ctx, p.slug);
      queryOf(ctx.url, S.EmptyQuery);
      const body = await this.recordBody(s);
      ctx.res.writeHead(200, { 'Content-Type': 'application/json; charset=utf-8', 'Cache-Control': 'no-store', 'Content-Length': Buffer.byteLength(body) });
      ctx.res.end(body);
    });
    router.add('GET', '/api/public/:slug/still.jpg', async (ctx, p) => {
      const s = await this.site(ctx, p.slug);
      queryOf(ctx.url, S.EmptyQuery);
      if (!s.cfg.snapshot || !s.cfg.camera) throw notFound();
      const still = await this.still(s);
      const { bytes, at } = still;
      if (!bytes && s.cfg.violationImages) {
        // No live picture: the latest alert's clean picture, which shows the violation scene (hence the opt-in).
        const pub = this.store.publicRecords;
        const snap = (await pub.latestCleanSnapshot(s.siteId, s.cfg.camera)) ?? (await pub.latestCleanSnapshot(s.siteId));
        const file = snap && (await this.central.snapshotFile(snap.sha256));
        if (snap && file) {
          ctx.res.setHeader('X-Captured-At', String(snap.raisedAt));
          ctx.res.setHeader('X-Still-Source', 'alert');
          await sendFile(ctx.req, ctx.res, file, 'image/jpeg', { 'Cache-Control': 'no-store' });
          return;
        }
      }
      if (!bytes) throw new HttpError(503, 'unavailable', undefined, 'no picture from the camera');
      ctx.res.writeHead(200, { 'Content-Type': 'image/jpeg', 'Content-Length': bytes.length, 'Cache-Control': 'no-store', 'X-Captured-At': String(at), 'X-Still-Source': 'live' });
      ctx.res.end(bytes);
    });
    router.add('GET', '/api/public/:slug/images/:sha256', async (ctx, p) => {
      const s = await this.site(ctx, p.slug);
      queryOf(ctx.url, S.EmptyQuery);
      const sha = S.Sha256Param.safeParse(p.sha256);
      if (!s.cfg.violationImages || !s.cfg.rectifications || !sha.success) throw notFound();
      // Only the pictures the month record lists: this site's alerts of this month.
      const since = monthStart(Date.now(), this.central.config.timezone).start;
      if (!(await this.store.publicRecords.violationImage(s.siteId, sha.data, since))) throw notFound();
      const file = await this.central.snapshotFile(sha.data);
      if (!file) throw notFound();
      await sendFile(ctx.req, ctx.res, file, 'image/jpeg', { 'Cache-Control': 'public, max-age=300', 'Content-Disposition': 'inline' });
    });
  }

  /**
   * `GET /public/<slug>`: true when the path is under /public/ (answered here, page or 404), false
   * for every other path. `rawPath` is still percent-encoded: a slug is plain letters, so an encoded
   * one is simply not a slug.
   */
  async page(ctx: Ctx, rawPath: string): Promise<boolean> {
    if (rawPath !== '/public' && !rawPath.startsWith('/public/')) return false;
    const m = /^\/public\/([^/]+)$/.exec(rawPath);
    await this.site(ctx, m?.[1]);
    await sendFile(ctx.req, ctx.res, path.join(this.publicDir, 'window.html'), 'text/html; charset=utf-8', { 'Cache-Control': 'no-store' });
    return true;
  }

  private async recordBody(s: PublicSite): Promise<string> {
    const t = Date.now();
    const cached = this.records.get(s.siteId);
    if (cached && t - cached.at < this.o.recordTtlMs) return cached.body;
    const ctx = await this.store.siteContext(s.siteId);
    if (!ctx) throw notFound(); // deleted since site() looked
    const tz = this.central.config.timezone;
    const images = s.cfg.violationImages;
    let record = null;
    if (s.cfg.rectifications) {
      const r = await this.store.publicRecords.monthRecord(s.siteId, { at: t, timeZone: tz, images });
      record = { ...r, recent: r.recent.map((x) => ({ ...x, image: x.image ? `/api/public/${s.slug}/images/${x.image}` : null })) };
    }
    const body = JSON.stringify({
      canteen: ctx.site.name, school: ctx.school.name, district: ctx.district.name, timezone: tz,
      still: s.cfg.snapshot && s.cfg.camera ? { url: `/api/public/${s.slug}/still.jpg`, refreshSec: this.o.refreshSec } : null,
      violationImages: images, record, generatedAt: t,
    });
    this.records.set(s.siteId, { at: t, body });
    return body;
  }

  /** The cached still of the site's public camera; one pull at a time per camera, shared by every viewer. */
  private async still(s: PublicSite): Promise<Still> {
    let st = this.stills.get(s.siteId);
    if (!st) this.stills.set(s.siteId, (st = { at: 0, bytes: null, inflight: null }));
    const age = Date.now() - st.at;
    const fresh = st.bytes ? age < this.o.stillTtlMs : age < this.o.failTtlMs;
    if (!fresh && !st.inflight) {
      const entry = st;
      // in flight from the camera lookup on: viewers meanwhile wait for this refresh, not start their own
      entry.inflight = this.refresh(s, entry, age).finally(() => { entry.inflight = null; });
    }
    if (st.inflight) await st.inflight;
    return st;
  }

  private async refresh(s: PublicSite, entry: Still, age: number): Promise<void> {
    const cam = await this.store.org.get('cameras', `${s.siteId}/${s.cfg.camera}`);
    const url = cam?.liveUrl && checkLiveUrl(cam.liveUrl) ? cam.liveUrl : null;
    if (!url || this.pulls >= this.o.maxPulls) {
      // Nothing to pull, or busy: keep a still that is not too stale rather than none.
      if (!url || age > this.o.failTtlMs * 3) Object.assign(entry, { at: Date.now(), bytes: null });
      return;
    }
    try {
      const bytes = await this.pull(url);
      Object.assign(entry, { at: Date.now(), bytes }); // fresh from when the pull ended
    } catch (err) {
      log.warn({ siteId: s.siteId, err: (err as Error).message }, 'public still not pulled');
      Object.assign(entry, { at: Date.now(), bytes: null });
    }
  }

  /** One JPEG frame from the camera (the live view's ffmpeg input options; argv, no shell). */
  private pull(url: string): Promise<Buffer> {
    const input = url.startsWith('rtsp') ? ['-rtsp_transport', 'tcp'] : [];
    const args = [
      '-hide_banner', '-loglevel', 'error', '-nostdin', ...input, '-analyzeduration', '1000000', '-probesize', '1000000',
      '-i', url, '-an', '-frames:v', '1', '-vf', "scale='min(1280,iw)':-2", '-f', 'image2pipe', '-c:v', 'mjpeg', '-q:v', '5', '-',
    ];
    this.pulls++;
    return new Promise<Buffer>((resolve, reject) => {
      const proc = spawn(this.o.ffmpegPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
      this.procs.add(proc);
      const chunks: Buffer[] = [];
      let size = 0, stderr = '';
      const timer = setTimeout(() => proc.kill('SIGKILL'), this.o.pullTimeoutMs);
      proc.stdout!.on('data', (d: Buffer) => {
        size += d.length;
        if (size > MAX_STILL_BYTES) proc.kill('SIGKILL');
        else chunks.push(d);
      });
      proc.stderr!.on('data', (d: Buffer) => { stderr = (stderr + d.toString()).slice(-500); });
      proc.on('error', (err) => { clearTimeout(timer); this.procs.delete(proc); this.pulls--; reject(err); });
      proc.on('close', (code, signal) => {
        clearTimeout(timer);
        if (!this.procs.delete(proc)) return; // 'error' already settled it
        this.pulls--;
        const bytes = Buffer.concat(chunks);
        if (code === 0 && isJpeg(bytes)) resolve(bytes);
        else reject(new Error(signal ? `ffmpeg killed (${signal})` : `ffmpeg exited ${code}: ${stderr.trim().split('\n').pop() ?? ''}`));
      });
    });
  }

  async close(): Promise<void> {
    for (const p of this.procs) p.kill('SIGKILL');
  }
}

/**
 * Central's HTTP layer: JSON API (docs/central-api.md), SSE, live view WebSocket and the dashboard.
 *
 *   const http = await startHttp(central, { port: 0 });   // → { url, close() }
 *
 * Order of checks on every API request: route → session (401) → CSRF on state changes (403) →
 * body limit (413) / JSON (400) / zod (400 naming the field) → scope (404) → role (403).
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { childLog } from '../../common/log.js';
import { LABEL_TEXT } from '../../protocol/labels.js';
import { SEVERITIES, VIOLATION_KINDS, VIOLATION_TEXT } from '../../protocol/violations.js';
import { CoreError, hashPassword, verifyPassword, type AuditInput, type Central, type EventView, type Scope, type UserRecord } from '../core.js';
import { DEFAULT_BODY_LIMIT, AUDIO_BODY_LIMIT, PHOTO_BODY_LIMIT, jsonBody, queryOf } from './body.js';
import { HttpError, errorBody, forbidden, langOf, notFound, type Lang } from './errors.js';
import { LiveManager, LIVE_WS_PATH, checkLiveUrl, type LiveOptions } from './live.js';
import { LoginLimiter, type LoginLimiterOptions } from './ratelimit.js';
import { Router } from './router.js';
import * as S from './schemas.js';
import { SESSION_COOKIE, SessionStore, clearCookie, parseCookies, safeEqual, sessionCookie, type Session, type SessionOptions } from './session.js';
import { openSse } from './sse.js';
import type { Ctx } from './context.js';
import { centralMetrics } from '../ops/metrics.js';
import { csv, eventRows, xlsx } from '../report/export.js';
import { sendFile } from './files.js';
import { serveStatic } from './static.js';
import { PublicWindow, type PublicWindowOptions } from './public-window.js';

/** Most rows one CSV export holds. */
const EXPORT_MAX = 10_000;

const log = childLog({ mod: 'central/http' });
export const PUBLIC_DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), 'public');

export interface HttpOptions {
  /** Default: central.config.http.host (127.0.0.1). */
  host?: string;
  /** Default: central.config.http.port; 0 = any free port. */
  port?: number;
  /** HTTPS: PEM file paths (or PEM text). Cookies get `Secure`, responses HSTS. */
  tls?: { cert: string; key: string };
  publicDir?: string;
  session?: SessionOptions;
  login?: LoginLimiterOptions;
  live?: LiveOptions;
  /** SSE heartbeat comment interval (default 15 s). */
  sseHeartbeatMs?: number;
  /** Take the client address from the first X-Forwarded-For entry (only behind a trusted proxy). */
  trustProxy?: boolean;
  /** The public window's limits and still cache (public-window.ts). */
  publicWindow?: PublicWindowOptions;
  /** Bearer token that opens /metrics to other hosts (default: central.config.http.metricsTokenEnv's value; without one, loopback only). */
  metricsToken?: string;
}

export interface HttpHandle {
  url: string;
  server: Server;
  sessions: SessionStore;
  live: LiveManager;
  close(): Promise<void>;
}

export type { Ctx } from './context.js';
type Authed = Ctx & { session: Session; user: UserRecord };

/**
 * The live view's player (@cycjimmy/jsmpeg-player, MIT), served from node_modules at a fixed path. Its
 * package exports only `.` (import / require), so the UMD build is found next to the resolved entry.
 */
export const JSMPEG_PATH = '/vendor/jsmpeg-player.js';
export function jsmpegPlayerFile(): string {
  const entry = createRequire(import.meta.url).resolve('@cycjimmy/jsmpeg-player');
  return path.join(path.dirname(entry), 'jsmpeg-player.umd.min.js');
}
/**
 * CSP hashes for the one style sheet the jsmpeg script injects as an inline <style> when it loads (for
 * its VideoElement, which the dashboard does not use). It appends the <style> element while still
 * empty and adds the text afterwards, and the browser checks both states: the hash of "" (an empty
 * sheet, harmless) and the hash of its CSS. Allowing exactly these is narrower than 'unsafe-inline';
 * without them Chromium logs a CSP violation on every live view. Pinned to 6.1.2: other CSS in another
 * version shows up in tests/browser/live.test.ts (the hash check and `securitypolicyviolation`).
 */
export const JSMPEG_STYLE_HASHES = ["'sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU='", "'sha256-lRyplcblLyRa4o+ZUBNzXETDGwKXzgKgrWbiYOwfTLg='"] as const;

const SECURITY_HEADERS: Record<string, string> = {
  // connect-src 'self' covers ws:/wss: to the same host (the live view's WebSocket). No
  // 'wasm-unsafe-eval': the live view runs jsmpeg's JavaScript decoder (disableWebAssembly).
  'Content-Security-Policy':
    `default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; connect-src 'self'; style-src 'self' ${JSMPEG_STYLE_HASHES.join(' ')}; script-src 'self'; ` +
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
  'X-Content-Type-Options': 'nosniff',
  'X-Frame-Options': 'DENY',
  'Referrer-Policy': 'no-referrer',
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Resource-Policy': 'same-origin',
  'Permissions-Policy': 'camera=(), geolocation=(), microphone=(self)',
};

const pemOf = (v: string) => (v.includes('-----BEGIN') ? v : readFileSync(v, 'utf8'));

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', 'Cache-Control': 'no-store', 'Content-Length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

function coreToHttp(err: CoreError): HttpError {
  switch (err.code) {
    case 'not_found': return new HttpError(404, 'not_found');
    case 'forbidden': return new HttpError(403, 'forbidden');
    case 'conflict': return new HttpError(409, 'conflict', err.field, err.message);
    case 'invalid': return new HttpError(400, 'invalid', err.field, err.message);
  }
}

export async function startHttp(central: Central, opts: HttpOptions = {}): Promise<HttpHandle> {
  const secure = Boolean(opts.tls);
  const publicDir = opts.publicDir ?? PUBLIC_DIR;
  const sessions = new SessionStore(central.store.sessions, opts.session);
  const limiter = new LoginLimiter(central.store.sessions, opts.login);
  const store = central.store;
  /** A failed audit write is logged, never fails the request. */
  const writeAudit = async (entry: AuditInput) => {
    try {
      await store.audit(entry);
    } catch (err) {
      log.error({ err: (err as Error).message, action: entry.action }, 'audit write failed');
    }
  };
  const audit = (ctx: Ctx, action: string, target: string, detail?: string | null, siteId?: string | null, userId?: string) =>
    writeAudit({ userId: userId ?? ctx.user?.id ?? '-', action, target, detail: detail ?? null, ip: ctx.ip, siteId: siteId ?? null });
  const live = new LiveManager(opts.live ?? {}, (key) => sessions.alive(key), (v) => {
    void writeAudit({ userId: v.userId, action: 'live_view_open', target: `${v.siteId}/${v.cameraId}`, detail: null, ip: v.ip, siteId: v.siteId });
  });
  // Read once; a missing package only disables the live view's pictures (404), not the dashboard.
  let jsmpeg: { body: Buffer; etag: string } | null = null;
  try {
    const body = readFileSync(jsmpegPlayerFile());
    jsmpeg = { body, etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"` };
  } catch (err) {
    log.error({ err: (err as Error).message }, 'jsmpeg player not found: the live view will show no pictures');
  }
  // Unknown usernames still pay for one scrypt, so timing does not reveal which usernames exist.
  let dummyHash: Promise<string> | null = null;

  const scope = (ctx: Authed): Promise<Scope> => central.scopeOf(ctx.user);
  const requireSite = async (ctx: Authed, siteId: string): Promise<Scope> => {
    const s = await scope(ctx);
    if (!(await central.siteInScope(s, siteId))) throw notFound();
    return s;
  };
  const requireRole = (ctx: Authed, ...roles: UserRecord['role'][]) => {
    if (!roles.includes(ctx.user.role)) throw forbidden();
  };
  const eventInScope = async (ctx: Authed, id: string) => {
    const eid = S.Id.safeParse(id);
    if (!eid.success) throw notFound();
    const ev = await store.event(await scope(ctx), id);
    if (!ev) throw notFound();
    return ev;
  };
  // timezone: the zone every time on the dashboard is shown in (central's, which its sites share),
  // not the browser's: the list, the detail and the snapshot header must agree.
  const publicUser = (u: UserRecord) => ({ id: u.id, name: u.name, role: u.role, lang: u.lang, timezone: central.config.timezone });

  const router = new Router<Ctx>();
  const authed = (fn: (ctx: Authed, p: Record<string, string>) => Promise<void>) => async (ctx: Ctx, p: Record<string, string>) => {
    if (!ctx.session || !ctx.user) throw new HttpError(401, 'unauthenticated');
    await fn(ctx as Authed, p);
  };

  // ---- auth ----
  router.add('POST', '/api/login', async (ctx) => {
    const body = await jsonBody(ctx.req, S.LoginBody);
    const wait = await limiter.retryAfterSec(body.username, ctx.ip);
    if (wait > 0) throw new HttpError(429, 'rate_limited', undefined, undefined, { 'Retry-After': String(wait) });
    const user = await store.userByUsername(body.username);
    let ok = false;
    if (user && !user.disabled) ok = await verifyPassword(body.password, user.passwordHash);
    else await verifyPassword(body.password, await (dummyHash ??= hashPassword('dummy-password-for-timing')));
    if (!ok || !user) {
      await limiter.fail(body.username, ctx.ip);
      await audit(ctx, 'login_failed', `user:${body.username.slice(0, 64)}`, null, null, user?.id ?? '-');
      const after = await limiter.retryAfterSec(body.username, ctx.ip);
      if (after > 0) throw new HttpError(429, 'rate_limited', undefined, undefined, { 'Retry-After': String(after) });
      throw new HttpError(401, 'bad_credentials');
    }
    await limiter.succeed(body.username, ctx.ip);
    const { id, session } = await sessions.create(user.id, ctx.ip);
    await audit(ctx, 'login', `user:${user.id}`, null, null, user.id);
    sendJson(ctx.res, 200, { user: publicUser(user), csrfToken: session.csrfToken }, {
      'Set-Cookie': sessionCookie(id, { secure, maxAgeSec: Math.floor(sessions.absoluteMs / 1000) }),
    });
  });
  router.add('POST', '/api/logout', authed(async (ctx) => {
    await sessions.destroy(ctx.session);
    await audit(ctx, 'logout', `user:${ctx.user.id}`);
    sendJson(ctx.res, 200, {}, { 'Set-Cookie': clearCookie(secure) });
  }));
  router.add('GET', '/api/me', authed(async (ctx) => {
    sendJson(ctx.res, 200, { user: publicUser(ctx.user), csrfToken: ctx.session.csrfToken });
  }));
  // The dashboard's boot probe: "not logged in yet" is an answer, not an error (no 401 in the console).
  router.add('GET', '/api/session', async (ctx) => {
    queryOf(ctx.url, S.EmptyQuery);
    sendJson(ctx.res, 200, ctx.session && ctx.user ? { user: publicUser(ctx.user), csrfToken: ctx.session.csrfToken } : { user: null });
  });

  // ---- sites and events ----
  router.add('GET', '/api/sites', authed(async (ctx) => {
    queryOf(ctx.url, S.EmptyQuery);
    sendJson(ctx.res, 200, await store.sites(await scope(ctx)));
  }));
  router.add('GET', '/api/events', authed(async (ctx) => {
    const q = queryOf(ctx.url, S.EventsQuery);
    const s = q.siteId ? await requireSite(ctx, q.siteId) : await scope(ctx);
    sendJson(ctx.res, 200, { events: await store.events(s, q) });
  }));
  router.add('GET', '/api/events/:id', authed(async (ctx, p) => {
    sendJson(ctx.res, 200, await eventInScope(ctx, p.id!));
  }));
  router.add('POST', '/api/events/:id/ack', authed(async (ctx, p) => {
    const ev = await eventInScope(ctx, p.id!);
    const body = await jsonBody(ctx.req, S.AckBody);
    const out = await store.acknowledge(ctx.user, ev.id, body.note, { ip: ctx.ip }); // the store audit-logs it
    sendJson(ctx.res, 200, out);
  }));
  router.add('POST', '/api/events/:id/rectify', authed(async (ctx, p) => {
    const ev = await eventInScope(ctx, p.id!);
    const body = await jsonBody(ctx.req, S.RectifyBody, PHOTO_BODY_LIMIT);
    let photo: { bytes: Buffer; mime: 'image/jpeg' | 'image/png' } | undefined;
    if (body.photoBase64 && body.photoMime) {
      const bytes = Buffer.from(body.photoBase64, 'base64');
      if (bytes.length > S.MAX_PHOTO_BYTES) throw new HttpError(413, 'too_large', 'photoBase64', '> 5 MB');
      // The store decodes the bytes: a complete JPEG / PNG of that type or 400 naming the field.
      photo = { bytes, mime: body.photoMime };
    }
    const out = await store.rectify(ctx.user, ev.id, photo ? { note: body.note, photo } : { note: body.note }, { ip: ctx.ip });
    sendJson(ctx.res, 200, out);
  }));
  router.add('POST', '/api/events/:id/review', authed(async (ctx, p) => {
    const ev = await eventInScope(ctx, p.id!);
    const body = await jsonBody(ctx.req, S.ReviewBody);
    requireRole(ctx, 'inspector', 'admin');
    const out = await store.review(ctx.user, ev.id, body.decision, body.note, { ip: ctx.ip });
    sendJson(ctx.res, 200, out);
  }));
  // The filtered alert list as CSV or XLSX (the list's filters and scope; every matching alert up to EXPORT_MAX).
  const exportEvents = (format: 'csv' | 'xlsx') => authed(async (ctx) => {
    const q = queryOf(ctx.url, S.EventsQuery);
    const s = q.siteId ? await requireSite(ctx, q.siteId) : await scope(ctx);
    const seen = new Set<string>();
    const out: EventView[] = [];
    let before = q.before;
    while (out.length < EXPORT_MAX) {
      const page = await store.events(s, { ...q, before, limit: 500 });
      const fresh = page.filter((e) => !seen.has(e.id));
      for (const e of fresh) (seen.add(e.id), out.push(e));
      if (page.length < 500 || fresh.length === 0) break;
      before = page[page.length - 1]!.raisedAt + 1; // <= the last one's time: ties are kept, repeats dropped
    }
    await audit(ctx, 'export_events', `events:${out.length}`, format);
    const rows = eventRows(out.slice(0, EXPORT_MAX), ctx.lang, central.config.timezone);
    const day = new Date().toLocaleDateString('sv-SE', { timeZone: central.config.timezone }).replace(/-/g, '');
    const body = format === 'csv' ? Buffer.from(csv(rows)) : await xlsx(ctx.lang === 'zh' ? '告警明细' : 'alerts', rows);
    const type = format === 'csv' ? 'text/csv; charset=utf-8' : 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet';
    ctx.res.writeHead(200, { 'Content-Type': type, 'Content-Disposition': `attachment; filename="alerts-${day}.${format}"`, 'Cache-Control': 'no-store' });
    ctx.res.end(body);
  });
  router.add('GET', '/api/events.csv', exportEvents('csv'));
  router.add('GET', '/api/events.xlsx', exportEvents('xlsx'));
  router.add('GET', '/api/overdue', authed(async (ctx) => {
    queryOf(ctx.url, S.EmptyQuery);
    sendJson(ctx.res, 200, { events: await store.overdue(await scope(ctx)) });
  }));

  // ---- images: only when an event / rectification in the caller's scope references them ----
  router.add('GET', '/api/snapshots/:sha256', authed(async (ctx, p) => {
    const sha = S.Sha256Param.safeParse(p.sha256);
    if (!sha.success) throw notFound();
    const file = await central.snapshotFile(sha.data, await scope(ctx));
    if (!file) throw notFound();
    await sendFile(ctx.req, ctx.res, file, 'image/jpeg');
  }));
  router.add('GET', '/api/events/:id/clip.mp4', authed(async (ctx, p) => {
    const ev = await eventInScope(ctx, p.id!);
    const file = await store.clips.file(ev.id);
    if (!file) throw notFound();
    await sendFile(ctx.req, ctx.res, file, 'video/mp4');
  }));
  router.add('GET', '/api/rectifications/:id/photo', authed(async (ctx, p) => {
    if (!/^\d{1,12}$/.test(p.id!)) throw notFound();
    const photo = await store.rectificationPhoto(await scope(ctx), Number(p.id));
    if (!photo) throw notFound();
    await sendFile(ctx.req, ctx.res, photo.path, photo.mime === 'image/png' ? 'image/png' : 'image/jpeg');
  }));

  // ---- push ----
  router.add('GET', '/api/stream', authed(async (ctx) => {
    await openSse(ctx, central, sessions, opts.sseHeartbeatMs ?? 15_000, sseOpen);
  }));

  // ---- voice ----
  router.add('GET', '/api/voice/presets', authed(async (ctx) => {
    sendJson(ctx.res, 200, central.voice.presets());
  }));
  router.add('POST', '/api/voice', authed(async (ctx) => {
    const body = await jsonBody(ctx.req, S.VoiceBody, AUDIO_BODY_LIMIT);
    await requireSite(ctx, body.siteId);
    const manages = ctx.user.role === 'canteen_manager' && ctx.user.siteIds.includes(body.siteId);
    if (!manages && ctx.user.role !== 'inspector' && ctx.user.role !== 'admin') throw forbidden();
    if (body.cameraId) {
      const cam = await store.org.get('cameras', `${body.siteId}/${body.cameraId}`);
      if (!cam) throw new HttpError(400, 'invalid', 'cameraId', 'no such camera at this site');
    }
    const rec = await central.voice.send(ctx.user, {
      siteId: body.siteId, cameraId: body.cameraId ?? null, type: body.type,
      ...(body.text !== undefined ? { text: body.text } : {}),
      ...(body.presetId !== undefined ? { presetId: body.presetId } : {}),
      ...(body.audioBase64 !== undefined ? { audioBase64: body.audioBase64 } : {}),
      ...(body.mime !== undefined ? { mime: body.mime } : {}),
    }, { ip: ctx.ip });
    sendJson(ctx.res, 200, { id: rec.id, state: rec.state, issuedAt: rec.issuedAt });
  }));
  router.add('GET', '/api/voice', authed(async (ctx) => {
    const q = queryOf(ctx.url, S.VoiceQuery);
    const s = q.siteId ? await requireSite(ctx, q.siteId) : await scope(ctx);
    sendJson(ctx.res, 200, await store.voiceCommands(s, q.siteId));
  }));

  // ---- statistics and audit ----
  router.add('GET', '/api/stats', authed(async (ctx) => {
    const q = queryOf(ctx.url, S.StatsQuery);
    sendJson(ctx.res, 200, await store.stats(await scope(ctx), q, central.config.timezone));
  }));
  router.add('GET', '/api/audit', authed(async (ctx) => {
    requireRole(ctx, 'admin', 'inspector');
    const q = queryOf(ctx.url, S.AuditQuery);
    sendJson(ctx.res, 200, await store.auditList(await scope(ctx), q));
  }));

  // ---- org (admin) ----
  const orgKind = (k: string) => {
    if (!(S.ORG_KINDS as readonly string[]).includes(k)) throw notFound();
    return k as (typeof S.ORG_KINDS)[number];
  };
  const orgInput = async (kind: (typeof S.ORG_KINDS)[number], body: Record<string, unknown>) => {
    if (kind === 'users' && typeof body.password === 'string') {
      const { password, ...rest } = body;
      return { ...rest, passwordHash: await hashPassword(password as string) };
    }
    return body;
  };
  const orgId = (p: Record<string, string>) => (p.cameraId ? `${p.id}/${p.cameraId}` : p.id!);
  for (const suffix of ['', '/:id', '/:id/:cameraId']) {
    const pattern = `/api/org/:kind${suffix}`;
    if (suffix === '') {
      router.add('GET', pattern, authed(async (ctx, p) => {
        requireRole(ctx, 'admin');
        sendJson(ctx.res, 200, await store.org.list(orgKind(p.kind!)));
      }));
      router.add('POST', pattern, authed(async (ctx, p) => {
        requireRole(ctx, 'admin');
        const kind = orgKind(p.kind!);
        const body = await jsonBody(ctx.req, S.OrgBodies[kind]);
        const rec = await store.org.create(ctx.user, kind, (await orgInput(kind, body)) as never);
        sendJson(ctx.res, 201, rec);
      }));
      continue;
    }
    // cameras are addressed as /api/org/cameras/<siteId>/<cameraId>; org mutations are audit-logged by the store
    router.add('GET', pattern, authed(async (ctx, p) => {
      requireRole(ctx, 'admin');
      const rec = await store.org.get(orgKind(p.kind!), orgId(p));
      if (!rec) throw notFound();
      sendJson(ctx.res, 200, rec);
    }));
    router.add('PUT', pattern, authed(async (ctx, p) => {
      requireRole(ctx, 'admin');
      const kind = orgKind(p.kind!);
      const body = await jsonBody(ctx.req, S.OrgBodies[kind]);
      const rec = await store.org.update(ctx.user, kind, orgId(p), (await orgInput(kind, body)) as never);
      if (kind === 'users' && ((body as { disabled?: boolean }).disabled || (body as { password?: string }).password)) await sessions.destroyUser(orgId(p));
      sendJson(ctx.res, 200, rec);
    }));
    router.add('DELETE', pattern, authed(async (ctx, p) => {
      requireRole(ctx, 'admin');
      const kind = orgKind(p.kind!);
      await store.org.remove(ctx.user, kind, orgId(p));
      if (kind === 'users') await sessions.destroyUser(orgId(p));
      sendJson(ctx.res, 200, {});
    }));
  }

  // ---- live view ----
  router.add('POST', '/api/live/:siteId/:cameraId', authed(async (ctx, p) => {
    const siteId = S.Id.safeParse(p.siteId);
    const cameraId = S.Id.safeParse(p.cameraId);
    if (!siteId.success || !cameraId.success) throw notFound();
    await requireSite(ctx, siteId.data);
    const cam = await store.org.get('cameras', `${siteId.data}/${cameraId.data}`);
    if (!cam) throw notFound();
    if (!cam.liveUrl || !checkLiveUrl(cam.liveUrl)) throw new HttpError(409, 'conflict', undefined, 'camera has no live URL');
    const { token, expiresAt } = live.issueToken({ sessionKey: ctx.session.key, userId: ctx.user.id, siteId: siteId.data, cameraId: cameraId.data, url: cam.liveUrl });
    await audit(ctx, 'live_view', `camera:${siteId.data}/${cameraId.data}`, null, siteId.data);
    const host = /^[A-Za-z0-9.\-:[\]]+$/.test(ctx.req.headers.host ?? '') ? ctx.req.headers.host! : `${addr.host}:${addr.port}`;
    sendJson(ctx.res, 200, { wsUrl: `${secure ? 'wss' : 'ws'}://${host}${LIVE_WS_PATH}?token=${token}`, expiresAt });
  }));

  // ---- public window (社会公众): no session, opted-in sites only ----
  const publicWindow = new PublicWindow(central, publicDir, { ffmpegPath: opts.live?.ffmpegPath, ...opts.publicWindow });
  publicWindow.register(router);

  // ---- the wire contract's texts, as an ES module for the dashboard ----
  const protocolJs = [
    '// Generated from protocol/ by central/http: the single source of kind and label texts.',
    `export const VIOLATION_KINDS = ${JSON.stringify(VIOLATION_KINDS)};`,
    `export const VIOLATION_TEXT = ${JSON.stringify(VIOLATION_TEXT)};`,
    `export const LABEL_TEXT = ${JSON.stringify(LABEL_TEXT)};`,
    `export const SEVERITIES = ${JSON.stringify(SEVERITIES)};`,
    '',
  ].join('\n');

  // ---- operations: /healthz (alive), /readyz (broker and store), /metrics (loopback or a bearer token) ----
  const sseOpen = { n: 0 };
  const registry = centralMetrics(central, () => sseOpen.n);
  const metricsToken = opts.metricsToken ?? (central.config.http.metricsTokenEnv ? process.env[central.config.http.metricsTokenEnv] : undefined);
  const loopback = (req: IncomingMessage) => {
    const a = req.socket.remoteAddress ?? '';
    // A proxy on this host forwards remote clients from 127.0.0.1: a forwarded request is not local.
    return (a === '127.0.0.1' || a === '::1' || a === '::ffff:127.0.0.1') && req.headers['x-forwarded-for'] === undefined;
  };
  async function ops(req: IncomingMessage, res: ServerResponse, pathname: string): Promise<void> {
    const send = (status: number, type: string, body: string) => {
      res.writeHead(status, { 'Content-Type': type, 'Cache-Control': 'no-store' });
      res.end(req.method === 'HEAD' ? undefined : body);
    };
    if (pathname === '/healthz') return send(200, 'application/json; charset=utf-8', JSON.stringify({ status: 'ok' }));
    if (pathname === '/readyz') {
      const problems: string[] = [];
      let storeOk = true;
      try {
        if (!(await central.metrics()).brokerConnected) problems.push('central is not connected to the broker');
      } catch (err) {
        storeOk = false;
        problems.push(`store: ${(err as Error).message}`);
      }
      return send(problems.length ? 503 : 200, 'application/json; charset=utf-8', JSON.stringify({ ready: problems.length === 0, store: storeOk, problems }));
    }
    const auth = String(req.headers.authorization ?? '');
    const tokenOk = !!metricsToken && auth.startsWith('Bearer ') && safeEqual(auth.slice(7), metricsToken);
    if (!loopback(req) && !tokenOk) throw new HttpError(403, 'forbidden');
    return send(200, registry.contentType, await registry.metrics());
  }

  const clientIp = (req: IncomingMessage) => {
    if (opts.trustProxy) {
      const fwd = String(req.headers['x-forwarded-for'] ?? '').split(',')[0]?.trim();
      if (fwd) return fwd;
    }
    return req.socket.remoteAddress ?? '-';
  };

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    for (const [k, v] of Object.entries(SECURITY_HEADERS)) res.setHeader(k, v);
    if (secure) res.setHeader('Strict-Transport-Security', 'max-age=31536000');
    const lang = langOf(req.headers['accept-language']);
    const ctx: Ctx = { req, res, url: new URL('http://x/'), ip: clientIp(req), lang, session: null, user: null };
    const started = Date.now();
    try {
      const rawUrl = req.url ?? '/';
      if (!rawUrl.startsWith('/') || rawUrl.length > 4096) throw new HttpError(400, 'bad_request', 'url');
      ctx.url = new URL(rawUrl, 'http://localhost');
      const method = req.method ?? 'GET';
      const pathname = ctx.url.pathname;
      if (pathname === '/api/protocol.js' && (method === 'GET' || method === 'HEAD')) {
        res.writeHead(200, { 'Content-Type': 'text/javascript; charset=utf-8', 'Cache-Control': 'no-cache' });
        res.end(method === 'HEAD' ? undefined : protocolJs);
        return;
      }
      if (pathname === JSMPEG_PATH && jsmpeg && (method === 'GET' || method === 'HEAD')) {
        if (req.headers['if-none-match'] === jsmpeg.etag) {
          res.writeHead(304, { ETag: jsmpeg.etag, 'Cache-Control': 'no-cache' });
          res.end();
          return;
        }
        res.writeHead(200, { 'Content-Type': 'text/javascript; charset=utf-8', 'Content-Length': jsmpeg.body.length, ETag: jsmpeg.etag, 'Cache-Control': 'no-cache' });
        res.end(method === 'HEAD' ? undefined : jsmpeg.body);
        return;
      }
      if ((pathname === '/healthz' || pathname === '/readyz' || pathname === '/metrics') && (method === 'GET' || method === 'HEAD')) {
        await ops(req, res, pathname);
        return;
      }
      if (!pathname.startsWith('/api/')) {
        if (method !== 'GET' && method !== 'HEAD') throw new HttpError(405, 'method_not_allowed');
        // The raw (still encoded) path goes to the static resolver, which decodes exactly once.
        const rawPath = rawUrl.split('?')[0]!.split('#')[0]!;
        if (await publicWindow.page(ctx, rawPath)) return;
        await serveStatic(publicDir, req, res, rawPath === '/' ? '/index.html' : rawPath);
        return;
      }
      const { handler, params } = router.match(method, pathname);
      // Session
      const cookie = parseCookies(req.headers.cookie)[SESSION_COOKIE];
      const session = await sessions.get(cookie);
      if (session) {
        const user = await store.user(session.userId);
        if (user && !user.disabled) {
          ctx.session = session;
          ctx.user = user;
        } else await sessions.destroy(session);
      }
      if (method !== 'GET' && method !== 'HEAD') {
        // Cross-site requests: a foreign Origin is refused outright; a session also needs its CSRF token.
        const origin = req.headers.origin;
        if (origin && origin !== 'null') {
          let host = '';
          try { host = new URL(origin).host; } catch { /* bad origin */ }
          if (host !== req.headers.host) throw new HttpError(403, 'csrf', 'Origin');
        } else if (origin === 'null') throw new HttpError(403, 'csrf', 'Origin');
        if (pathname !== '/api/login') {
          if (!ctx.session) throw new HttpError(401, 'unauthenticated');
          const token = req.headers['x-csrf-token'];
          if (typeof token !== 'string' || !safeEqual(token, ctx.session.csrfToken)) throw new HttpError(403, 'csrf', 'X-CSRF-Token');
        }
      }
      await handler(ctx, params);
    } catch (e) {
      let err: HttpError;
      if (e instanceof HttpError) err = e;
      else if (e instanceof CoreError) err = coreToHttp(e);
      else {
        log.error({ err: (e as Error).stack ?? String(e), url: req.url, method: req.method }, 'request failed');
        err = new HttpError(500, 'internal');
      }
      if (res.headersSent) {
        res.destroy();
        return;
      }
      if (err.status === 404 && !ctx.url.pathname.startsWith('/api/') && (req.method === 'GET' || req.method === 'HEAD')) {
        res.writeHead(404, { 'Content-Type': 'text/plain; charset=utf-8' });
        res.end('404');
        return;
      }
      sendJson(res, err.status, errorBody(err, lang), err.headers);
      if (err.status >= 400 && err.status !== 401 && err.status !== 404) {
        log.info({ method: req.method, path: ctx.url.pathname, status: err.status, code: err.code, field: err.field, user: ctx.user?.id, ip: ctx.ip }, 'request refused');
      }
    } finally {
      log.debug({ method: req.method, path: ctx.url.pathname, status: res.statusCode, ms: Date.now() - started, user: ctx.user?.id }, 'request');
    }
  }

  const listener = (req: IncomingMessage, res: ServerResponse) => {
    handle(req, res).catch((err) => {
      log.error({ err: String(err) }, 'unhandled');
      res.destroy();
    });
  };
  const server: Server = secure
    ? (createHttpsServer({ cert: pemOf(opts.tls!.cert), key: pemOf(opts.tls!.key) }, listener) as unknown as Server)
    : createHttpServer(listener);
  server.headersTimeout = 15_000;
  server.requestTimeout = 120_000;
  server.on('upgrade', (req, socket, head) => {
    socket.on('error', () => socket.destroy());
    if (!live.handleUpgrade(req, socket, head, clientIp(req))) socket.destroy();
  });
  server.on('clientError', (_err, socket) => {
    if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
  });

  const host = opts.host ?? central.config.http.host;
  const port = opts.port ?? central.config.http.port;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const a = server.address() as AddressInfo;
  const addr = { host: a.family === 'IPv6' ? `[${a.address}]` : a.address, port: a.port };
  const url = `${secure ? 'https' : 'http'}://${addr.host}:${addr.port}`;
  log.info({ url }, 'http listening');

  let closed = false;
  return {
    url,
    server,
    sessions,
    live,
    async close() {
      if (closed) return;
      closed = true;
      await live.close();
      await publicWindow.close();
      await sessions.close();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}

/**
 * `GET /api/stream`: Server-Sent Events forwarding the core's bus, filtered by the user's scope.
 * `alert` goes to the recipients the router picked (others in scope get it as `event`, so their
 * lists still refresh); `event`, `site`, `camera`, `voice` go to everyone whose scope holds the site.
 * A comment line every heartbeat keeps proxies from closing the stream and tells us when the
 * client is gone; the stream ends when the session does.
 */
import type { Central, Scope, UserRecord } from '../core.js';
import type { AlertNotice } from '../bus.js';
import type { CameraView, EventView, SiteView, VoiceRecord, VoiceView } from '../store/types.js';
import type { Ctx } from './context.js';
import type { SessionStore } from './session.js';

const SCOPE_TTL_MS = 10_000;

/** `open` counts the streams of one HTTP server (metrics). */
export function openSse(ctx: Ctx, central: Central, sessions: SessionStore, heartbeatMs: number, open: { n: number } = { n: 0 }): void {
  const { req, res } = ctx;
  open.n++;
  const user = ctx.user as UserRecord;
  const sessionKey = ctx.session!.key;
  res.writeHead(200, {
    'Content-Type': 'text/event-stream; charset=utf-8',
    'Cache-Control': 'no-store',
    Connection: 'keep-alive',
    'X-Accel-Buffering': 'no',
  });
  res.write(`retry: 3000\n: connected\n\n`);
  req.socket.setKeepAlive(true);
  req.socket.setTimeout(0);

  let scope: Scope = central.scopeOf(user);
  let scopeAt = Date.now();
  const inScope = (siteId: string) => {
    if (Date.now() - scopeAt > SCOPE_TTL_MS) {
      const fresh = central.store.user(user.id);
      if (!fresh || fresh.disabled) {
        end();
        return false;
      }
      scope = central.scopeOf(fresh);
      scopeAt = Date.now();
    }
    return central.siteInScope(scope, siteId);
  };
  const send = (name: string, data: unknown) => {
    if (!res.writableEnded) res.write(`event: ${name}\ndata: ${JSON.stringify(data)}\n\n`);
  };

  const onAlert = (n: AlertNotice) => {
    if (!inScope(n.event.siteId)) return;
    if (n.recipients.some((r) => r.userId === user.id)) send('alert', { ...n.event, level: n.level });
    else send('event', n.event);
  };
  const onEvent = (e: EventView) => { if (inScope(e.siteId)) send('event', e); };
  const onSite = (s: SiteView) => { if (inScope(s.id)) send('site', s); };
  const onCamera = (c: CameraView & { siteId: string }) => { if (inScope(c.siteId)) send('camera', c); };
  // A command just sent comes from the voice module without the issuer's name; rows read back carry it.
  const voiceView = (v: VoiceRecord | VoiceView): VoiceView =>
    'issuedByName' in v ? v : { ...v, issuedByName: central.store.user(v.issuedBy)?.name ?? null };
  const onVoice = (v: VoiceRecord) => { if (inScope(v.siteId)) send('voice', voiceView(v)); };
  const bus = central.bus;
  bus.on('alert', onAlert);
  bus.on('event', onEvent);
  bus.on('site', onSite);
  bus.on('camera', onCamera);
  bus.on('voice', onVoice);

  const heartbeat = setInterval(() => {
    if (!sessions.alive(sessionKey)) {
      end();
      return;
    }
    res.write(`: ping ${Date.now()}\n\n`);
  }, heartbeatMs);
  heartbeat.unref();

  let ended = false;
  function end() {
    if (ended) return;
    ended = true;
    open.n--;
    clearInterval(heartbeat);
    bus.off('alert', onAlert);
    bus.off('event', onEvent);
    bus.off('site', onSite);
    bus.off('camera', onCamera);
    bus.off('voice', onVoice);
    if (!res.writableEnded) res.end();
  }
  res.on('close', end);
}

/**
 * `GET /api/stream`: Server-Sent Events forwarding the core's bus, filtered by the user's scope.
 * `alert` goes to the recipients the router picked (others in scope get it as `event`, so their
 * lists still refresh); `event`, `site`, `camera`, `voice` go to everyone whose scope holds the site;
 * `resync` to everyone when updates may have been missed (the client reloads its lists).
 * A comment line every heartbeat keeps proxies from closing the stream and tells us when the
 * client is gone; the stream ends when the session does.
 */
import { childLog } from '../../common/log.js';
import type { Central, Scope, UserRecord } from '../core.js';
import type { AlertNotice } from '../bus.js';
import type { CameraView, EventView, SiteView, VoiceRecord, VoiceView } from '../store/types.js';
import type { Ctx } from './context.js';
import type { SessionStore } from './session.js';

const SCOPE_TTL_MS = 10_000;
const log = childLog({ mod: 'central/http/sse' });

/** `open` counts the streams of one HTTP server (metrics). */
export async function openSse(ctx: Ctx, central: Central, sessions: SessionStore, heartbeatMs: number, open: { n: number } = { n: 0 }): Promise<void> {
  const { req, res } = ctx;
  const user = ctx.user as UserRecord;
  const sessionKey = ctx.session!.key;
  let scope: Scope = await central.scopeOf(user); // before the headers: a store failure is still a 500
  let scopeAt = Date.now();
  if (req.socket.destroyed) return; // gone while its scope was read ('close' has been and gone)
  open.n++;
  res.writeHead(200, {
    'Content-Type': 'text/event-stream; charset=utf-8',
    'Cache-Control': 'no-store',
    Connection: 'keep-alive',
    'X-Accel-Buffering': 'no',
  });
  res.write(`retry: 3000\n: connected\n\n`);
  req.socket.setKeepAlive(true);
  req.socket.setTimeout(0);

  const inScope = async (siteId: string) => {
    if (Date.now() - scopeAt > SCOPE_TTL_MS) {
      const fresh = await central.store.user(user.id);
      if (!fresh || fresh.disabled) {
        end();
        return false;
      }
      scope = await central.scopeOf(fresh);
      scopeAt = Date.now();
    }
    return central.siteInScope(scope, siteId);
  };
  // The bus calls its listeners synchronously; the scope checks are asynchronous. One chain per
  // stream keeps the client's events in the order they happened.
  let chain = Promise.resolve();
  let ended = false;
  const deliver = (siteId: string, fn: () => unknown) => {
    chain = chain
      .then(async () => { if (!ended && (await inScope(siteId))) await fn(); })
      .catch((err: Error) => log.error({ err: err.message, user: user.id }, 'live feed: event not sent'));
  };
  const send = (name: string, data: unknown) => {
    if (!res.writableEnded) res.write(`event: ${name}\ndata: ${JSON.stringify(data)}\n\n`);
  };

  const onAlert = (n: AlertNotice) => deliver(n.event.siteId, () => {
    if (n.recipients.some((r) => r.userId === user.id)) send('alert', { ...n.event, level: n.level });
    else send('event', n.event);
  });
  const onEvent = (e: EventView) => deliver(e.siteId, () => send('event', e));
  const onSite = (s: SiteView) => deliver(s.id, () => send('site', s));
  const onCamera = (c: CameraView & { siteId: string }) => deliver(c.siteId, () => send('camera', c));
  // A command just sent comes from the voice module without the issuer's name; rows read back carry it.
  const voiceView = async (v: VoiceRecord | VoiceView): Promise<VoiceView> =>
    'issuedByName' in v ? v : { ...v, issuedByName: (await central.store.user(v.issuedBy))?.name ?? null };
  const onVoice = (v: VoiceRecord) => deliver(v.siteId, async () => send('voice', await voiceView(v)));
  // in the chain, so that it comes after what was already on its way
  const onResync = () => { chain = chain.then(() => send('resync', {})); };
  const bus = central.bus;
  bus.on('resync', onResync);
  bus.on('alert', onAlert);
  bus.on('event', onEvent);
  bus.on('site', onSite);
  bus.on('camera', onCamera);
  bus.on('voice', onVoice);

  const heartbeat = setInterval(() => {
    sessions.alive(sessionKey).then((alive) => {
      if (!alive) end();
      else if (!res.writableEnded) res.write(`: ping ${Date.now()}\n\n`);
    }, (err: Error) => log.error({ err: err.message, user: user.id }, 'live feed: session check failed'));
  }, heartbeatMs);
  heartbeat.unref();

  function end() {
    if (ended) return;
    ended = true;
    open.n--;
    clearInterval(heartbeat);
    bus.off('resync', onResync);
    bus.off('alert', onAlert);
    bus.off('event', onEvent);
    bus.off('site', onSite);
    bus.off('camera', onCamera);
    bus.off('voice', onVoice);
    if (!res.writableEnded) res.end();
  }
  res.on('close', end);
}

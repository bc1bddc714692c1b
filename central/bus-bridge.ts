/**
 * Several central instances on one PostgreSQL: a dashboard user's live feed (SSE) comes from the
 * instance they are connected to, but any instance may ingest the event, route the alert or send the
 * voice command. Each instance forwards what its bus carries to the others with NOTIFY and emits
 * theirs on its own bus, so the HTTP layer keeps reading one local bus.
 */
import { randomUUID } from 'node:crypto';
import { childLog } from '../common/log.js';
import type { Bus, BusEvents } from './bus.js';
import type { PostgresSql } from './store/sql.js';
import type { Store } from './store/store.js';

const log = childLog({ mod: 'central.bus-bridge' });
const CHANNEL = 'bk_bus';
/** NOTIFY payloads are limited to 8000 bytes; larger messages travel as a reference read back from the store. */
const MAX_PAYLOAD_BYTES = 7900;
const NAMES = ['alert', 'event', 'site', 'camera', 'voice'] as const satisfies readonly (keyof BusEvents)[];
type Name = (typeof NAMES)[number];

interface Wire { o: string; n: Name; d?: unknown; ref?: { eventId?: string; siteId?: string; level?: number; recipients?: unknown } }

export function bridgeBus(bus: Bus, sql: PostgresSql, store: Store): () => Promise<void> {
  const origin = randomUUID();
  let relaying = false;

  const forward = (n: Name, d: unknown) => {
    if (relaying) return; // came from another instance
    let payload = JSON.stringify({ o: origin, n, d } satisfies Wire);
    if (Buffer.byteLength(payload) > MAX_PAYLOAD_BYTES) {
      const x = d as { id?: string; siteId?: string; event?: { id: string }; level?: number; recipients?: unknown };
      const ref = n === 'alert' ? { eventId: x.event!.id, level: x.level, recipients: x.recipients } : n === 'event' ? { eventId: x.id } : n === 'site' ? { siteId: x.id } : null;
      if (!ref) { log.warn({ name: n, bytes: Buffer.byteLength(payload) }, 'live update too large for other instances; not forwarded'); return; }
      payload = JSON.stringify({ o: origin, n, ref } satisfies Wire);
    }
    sql.notify(CHANNEL, payload).catch((err: Error) => log.warn({ name: n, err: err.message }, 'live update not forwarded to other instances'));
  };
  const listeners = NAMES.map((n) => [n, (d: unknown) => forward(n, d)] as const);
  for (const [n, f] of listeners) bus.on(n, f as never);

  /** A reference read back from the store (the rows are committed before the NOTIFY is sent). */
  const resolve = async (w: Wire): Promise<unknown> => {
    if (!w.ref) return w.d;
    if (w.n === 'site') return store.siteView(w.ref.siteId!);
    const event = await store.eventById(w.ref.eventId!);
    if (!event) return null;
    return w.n === 'alert' ? { event, level: w.ref.level, recipients: w.ref.recipients } : event;
  };
  // One chain keeps the other instances' updates in the order they arrived.
  let chain = Promise.resolve();
  let interrupted = false;
  const stop = sql.listen(CHANNEL, (payload) => {
    let w: Wire;
    try { w = JSON.parse(payload) as Wire; } catch { return; }
    if (w.o === origin || !NAMES.includes(w.n)) return;
    chain = chain.then(async () => {
      const d = await resolve(w);
      if (d == null) return;
      relaying = true;
      try { bus.emit(w.n, d as never); } finally { relaying = false; }
    }).catch((err: Error) => log.warn({ name: w.n, err: err.message }, 'live update from another instance dropped'));
  }, (up, err) => {
    if (!up) {
      interrupted = true;
      log.warn({ err: err?.message }, 'live updates from other instances interrupted; reconnecting');
      return;
    }
    log.info('listening for other instances\' live updates');
    // NOTIFYs sent while we were not listening are gone: tell the dashboards to reload
    if (interrupted) { interrupted = false; bus.emit('resync'); }
  });

  return async () => {
    for (const [n, f] of listeners) bus.off(n, f as never);
    await stop();
    await chain;
  };
}

/**
 * Simulated canteen sites: one mqtt.js connection per site as the agent's uplink makes it
 * (client id `agent-<siteId>`, its own account, clean: false, keepalive 30 s, retained
 * `{online:false}` as last will), retained site and camera status at start, then events at a steady
 * rate with two real JPEG snapshots each, published in the agent's outbox order (annotated, clean,
 * event JSON), QoS 1, and the agent's periodic stats (QoS 0, every `statsIntervalSec`, 60 s by default
 * in the agent's config). An event counts as sent once the broker acknowledged its JSON (PUBACK).
 */
import { createHash } from 'node:crypto';
import mqtt, { type MqttClient } from 'mqtt';
import { topics, PROTOCOL_VERSION, EventMessage, SiteStatus, SiteStats, CameraStatus } from '../../protocol/index.js';
import type { ViolationKind } from '../../protocol/violations.js';
import type { SiteSpec } from './org.js';
import { tagJpeg, type SnapshotSet } from './jpeg.js';

const T = topics('bk/v1');
/** A kitchen's mix: mostly hats and masks (tier 2), some boards, a few smoking and rodents (tier 1). */
const KINDS: [ViolationKind, 1 | 2 | 3][] = [
  ['no_mask', 2], ['no_hat', 2], ['no_mask', 2], ['no_hat', 2], ['no_mask', 2], ['no_hat', 2], ['no_mask', 2], ['mixed_boards', 2], ['smoking', 1], ['rodent', 1],
];

export interface SentEvent {
  id: string;
  siteId: string;
  raisedAt: number;
  /** ms from the first publish to the event JSON's PUBACK. */
  ackMs: number | null;
  error?: string;
}

export interface SiteFleet {
  clients: Map<string, MqttClient>;
  connectSeconds: number;
  statusSeconds: number;
  /** Events whose JSON the broker acknowledged. */
  sent: SentEvent[];
  /** Events published but not (yet) acknowledged, or failed. */
  inFlight: number;
  failed: SentEvent[];
  messages: number;
  bytes: number;
  statsSent: number;
  /** Send events for `seconds`; resolves when every publish settled or `settleMs` more passed. */
  run(seconds: number, settleMs: number, onTick?: (elapsedSec: number) => void): Promise<void>;
  close(): Promise<void>;
}

export async function connectSites(o: {
  url: string;
  sites: SiteSpec[];
  eventsPerSitePerMin: number;
  snapshots: SnapshotSet;
  runId: string;
  concurrency: number;
  /** Seconds between a site's stats messages; 0: none. */
  statsIntervalSec: number;
  progress: (msg: string) => void;
}): Promise<SiteFleet> {
  const clients = new Map<string, MqttClient>();
  const t0 = performance.now();
  let next = 0;
  let failures = 0;
  const worker = async () => {
    while (next < o.sites.length) {
      const s = o.sites[next++]!;
      const will = JSON.stringify({ v: PROTOCOL_VERSION, siteId: s.id, online: false, ts: Date.now() } satisfies SiteStatus);
      for (let attempt = 1; ; attempt++) {
        try {
          const c = await mqtt.connectAsync(o.url, {
            clientId: `agent-${s.id}`, username: s.id, password: s.password, clean: false, keepalive: 30,
            reconnectPeriod: 2000, connectTimeout: 30_000, protocolVersion: 4,
            will: { topic: T.siteStatus(s.id), payload: Buffer.from(will), qos: 1, retain: true },
          });
          c.on('error', () => { /* reconnects; counted by failed publishes */ });
          clients.set(s.id, c);
          break;
        } catch (err) {
          failures++;
          if (attempt >= 5) throw new Error(`site ${s.id} could not connect to ${o.url}: ${(err as Error).message}`);
          await new Promise((r) => setTimeout(r, 500 * attempt));
        }
      }
      if (clients.size % 500 === 0) o.progress(`${clients.size} of ${o.sites.length} sites connected`);
    }
  };
  await Promise.all(Array.from({ length: Math.min(o.concurrency, o.sites.length) }, worker));
  const connectSeconds = (performance.now() - t0) / 1000;
  if (failures) o.progress(`${failures} connection attempts failed and were retried`);

  // Retained status as the agent publishes it on connect: the site, then each camera online.
  const t1 = performance.now();
  const statusPubs: Promise<unknown>[] = [];
  for (const s of o.sites) {
    const c = clients.get(s.id)!;
    const now = Date.now();
    const st: SiteStatus = SiteStatus.parse({ v: PROTOCOL_VERSION, siteId: s.id, online: true, ts: now, agentVersion: 'load-0.1' });
    statusPubs.push(c.publishAsync(T.siteStatus(s.id), JSON.stringify(st), { qos: 1, retain: true }));
    for (const cam of s.cameras) {
      const cs: CameraStatus = CameraStatus.parse({ v: PROTOCOL_VERSION, siteId: s.id, cameraId: cam, name: cam, state: 'online', lastFrameAt: now, fps: 2, error: null, ts: now });
      statusPubs.push(c.publishAsync(T.cameraStatus(s.id, cam), JSON.stringify(cs), { qos: 1, retain: true }));
    }
  }
  await Promise.all(statusPubs);
  const statusSeconds = (performance.now() - t1) / 1000;

  const sent: SentEvent[] = [];
  const failed: SentEvent[] = [];
  let inFlight = 0;
  let messages = statusPubs.length;
  let bytes = 0;
  let statsSent = 0;
  const began = Date.now();
  const publishStats = (s: SiteSpec) => {
    const c = clients.get(s.id)!;
    const st: SiteStats = { v: PROTOCOL_VERSION, siteId: s.id, ts: Date.now(), uptimeSec: (Date.now() - began) / 1000, inferencesPerSec: 8, framesProcessed: 1000, framesDropped: 0, outboxPending: 0, eventsRaised: seq.get(s.id) ?? 0 };
    c.publish(T.stats(s.id), JSON.stringify(st), { qos: 0 });
    statsSent++;
    messages++;
  };
  const seq = new Map<string, number>();
  const sha = (b: Buffer) => ({ sha256: createHash('sha256').update(b).digest('hex'), bytes: b.length });

  const publishEvent = (s: SiteSpec): Promise<void> => {
    const c = clients.get(s.id)!;
    const n = (seq.get(s.id) ?? 0) + 1;
    seq.set(s.id, n);
    const id = `${o.runId}-${s.id.slice(3)}-${n}`;
    const [a0, c0] = o.snapshots.pairs[(n + s.id.length) % o.snapshots.pairs.length]!;
    const annotated = tagJpeg(a0, `${id} annotated`);
    const clean = tagJpeg(c0, `${id} clean`);
    const [kind, severity] = KINDS[(n + Number(s.id.slice(4))) % KINDS.length]!;
    const cameraId = s.cameras[n % s.cameras.length]!;
    const now = Date.now();
    const box: [number, number, number, number] = [224, 90, 384, 288];
    const ev = EventMessage.parse({
      v: PROTOCOL_VERSION, id, siteId: s.id, cameraId, cameraName: cameraId, kind, severity, ruleId: kind, trackId: n,
      label: kind === 'rodent' ? 'rat' : kind === 'smoking' ? 'cigarette' : 'head', score: 0.87, box, zone: null,
      startedAt: now - 3000, capturedAt: now, raisedAt: now, durationSec: 3,
      frame: { width: o.snapshots.width, height: o.snapshots.height }, detections: [{ label: 'head', score: 0.87, box, trackId: n }],
      snapshots: { annotated: sha(annotated), clean: sha(clean) },
    } satisfies EventMessage);
    const json = JSON.stringify(ev);
    inFlight++;
    messages += 3;
    bytes += annotated.length + clean.length + json.length;
    const rec: SentEvent = { id, siteId: s.id, raisedAt: now, ackMs: null };
    const t = performance.now();
    return Promise.all([
      c.publishAsync(T.snapshot(s.id, id, 'annotated'), annotated, { qos: 1 }),
      c.publishAsync(T.snapshot(s.id, id, 'clean'), clean, { qos: 1 }),
      c.publishAsync(T.event(s.id), json, { qos: 1 }).then(() => { rec.ackMs = performance.now() - t; }),
    ]).then(
      () => { inFlight--; sent.push(rec); },
      (err: Error) => { inFlight--; rec.error = err.message; failed.push(rec); },
    );
  };

  const fleet: SiteFleet = {
    clients, connectSeconds, statusSeconds, sent, failed,
    get inFlight() { return inFlight; },
    get messages() { return messages; },
    get bytes() { return bytes; },
    get statsSent() { return statsSent; },
    async run(seconds, settleMs, onTick) {
      // Each site sends every `period` ms, starting at a random phase: a steady city-wide rate.
      const period = 60_000 / o.eventsPerSitePerMin;
      const start = performance.now();
      const due = o.sites.map((s) => ({ s, at: start + Math.random() * period }));
      due.sort((a, b) => a.at - b.at);
      const pending: Promise<void>[] = [];
      const statsPeriod = o.statsIntervalSec * 1000;
      const statsDue = statsPeriod > 0 ? o.sites.map((s) => ({ s, at: start + Math.random() * statsPeriod })).sort((a, b) => a.at - b.at) : [];
      let statsHead = 0;
      let lastTick = 0;
      const end = start + seconds * 1000;
      // A min-ordered list is enough: each firing moves a site `period` later; re-insert by binary search.
      const insert = (d: { s: SiteSpec; at: number }) => {
        let lo = 0, hi = due.length;
        while (lo < hi) { const mid = (lo + hi) >> 1; if (due[mid]!.at <= d.at) lo = mid + 1; else hi = mid; }
        due.splice(lo, 0, d);
      };
      for (;;) {
        const now = performance.now();
        if (now >= end) break;
        while (due.length && due[0]!.at <= now && due[0]!.at < end) {
          const d = due.shift()!;
          pending.push(publishEvent(d.s));
          d.at += period;
          insert(d);
        }
        // Stats come round in the same order every period: a rotating pointer is enough.
        while (statsDue.length && statsDue[statsHead]!.at <= now) {
          const d = statsDue[statsHead]!;
          publishStats(d.s);
          d.at += statsPeriod;
          statsHead = (statsHead + 1) % statsDue.length;
        }
        const el = Math.floor((now - start) / 1000);
        if (onTick && el > lastTick) { lastTick = el; onTick(el); }
        const wait = Math.max(1, Math.min(50, (due[0]?.at ?? end) - now, end - now));
        await new Promise((r) => setTimeout(r, wait));
      }
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([Promise.all(pending), new Promise((r) => { timer = setTimeout(r, settleMs); })]);
      clearTimeout(timer);
    },
    async close() {
      await Promise.all([...clients.values()].map((c) => c.endAsync(true).catch(() => {})));
    },
  };
  return fleet;
}

/**
 * What arrives, seen the way people see it: a recipient's phone (an MQTT client logged in with the
 * user's own broker account, persistent session, QoS 1 on its alert topic) and a dashboard (HTTP
 * login, then GET /api/stream held open, Server-Sent Events parsed). Both parse payloads with the
 * project's schemas and note, per event id, when each copy arrived.
 */
import mqtt, { type MqttClient } from 'mqtt';
import { z } from 'zod';
import { RecipientAlert, topics } from '../../protocol/index.js';

export interface Arrivals {
  /** event id → arrival times (ms since epoch) of each copy. */
  byEvent: Map<string, number[]>;
  /** latency of the first copy of each event: arrival − the event's raisedAt (ms). */
  latencies: number[];
  /** (arrival time, latency) of first copies, for the timeline. */
  series: [number, number][];
  invalid: number;
}

const newArrivals = (): Arrivals => ({ byEvent: new Map(), latencies: [], series: [] , invalid: 0 });

function note(a: Arrivals, eventId: string, raisedAt: number): void {
  const now = Date.now();
  const seen = a.byEvent.get(eventId);
  if (seen) { seen.push(now); return; }
  a.byEvent.set(eventId, [now]);
  a.latencies.push(now - raisedAt);
  a.series.push([now, now - raisedAt]);
}

export interface Recipient extends Arrivals {
  client: MqttClient;
  close(): Promise<void>;
}

export async function startRecipient(url: string, user: { id: string; mqttPassword: string }): Promise<Recipient> {
  const a = newArrivals();
  const client = await mqtt.connectAsync(url, {
    clientId: `phone-${user.id}`, username: user.id, password: user.mqttPassword, clean: false, keepalive: 30, reconnectPeriod: 1000, protocolVersion: 4,
  });
  const granted = await client.subscribeAsync(topics('bk/v1').userAlert(user.id), { qos: 1 });
  if (granted[0]?.qos !== 1) throw new Error(`recipient ${user.id}: subscription not granted at QoS 1 (${JSON.stringify(granted)})`);
  client.on('message', (_topic, payload) => {
    const r = RecipientAlert.safeParse(safeJson(payload.toString()));
    if (!r.success) { a.invalid++; return; }
    note(a, r.data.eventId, r.data.raisedAt);
  });
  return Object.assign(a, { client, close: () => client.endAsync(true) });
}

function safeJson(s: string): unknown {
  try { return JSON.parse(s); } catch { return null; }
}

/** The fields of the dashboard's Event this counter reads (the rest passes). */
const SseAlert = z.looseObject({ id: z.string(), raisedAt: z.number(), siteId: z.string() });

export interface Dashboard extends Arrivals {
  /** `event` messages (updates, e.g. a snapshot arriving). */
  updates: number;
  connected: boolean;
  error: string | null;
  /**
   * Opens the stream again with the same session cookie (after its central restarted): the HTTP
   * status of the new stream, 200 when the session was still valid.
   */
  resume(): Promise<number>;
  close(): void;
}

/** Log in as `username` and hold the alert stream of one central. */
export async function startDashboard(base: string, username: string, password: string): Promise<Dashboard> {
  const login = await fetch(`${base}/api/login`, {
    method: 'POST', headers: { 'Content-Type': 'application/json', 'Accept-Language': 'en' }, body: JSON.stringify({ username, password }),
  });
  if (!login.ok) throw new Error(`dashboard login as ${username} at ${base}: HTTP ${login.status} ${await login.text()}`);
  const cookie = (login.headers.get('set-cookie') ?? '').split(';')[0]!;
  let ctl = new AbortController();
  const d: Dashboard = Object.assign(newArrivals(), {
    updates: 0, connected: false, error: null as string | null,
    close: () => ctl.abort(),
    resume: async () => {
      ctl.abort();
      ctl = new AbortController();
      return open();
    },
  });
  const onBlock = (block: string) => {
    let name = 'message';
    const data: string[] = [];
    for (const line of block.split('\n')) {
      if (line.startsWith('event:')) name = line.slice(6).trim();
      else if (line.startsWith('data:')) data.push(line.slice(5).trimStart());
    }
    if (name === 'event') d.updates++;
    if (name !== 'alert' || !data.length) return;
    const r = SseAlert.safeParse(safeJson(data.join('\n')));
    if (!r.success) { d.invalid++; return; }
    note(d, r.data.id, r.data.raisedAt);
  };
  const open = async (): Promise<number> => {
    const signal = ctl.signal;
    const res = await fetch(`${base}/api/stream`, { headers: { Cookie: cookie, Accept: 'text/event-stream' }, signal });
    if (!res.ok || !res.body) return res.status;
    d.connected = true;
    d.error = null;
    void (async () => {
      const decoder = new TextDecoder();
      let buf = '';
      try {
        for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
          buf += decoder.decode(chunk, { stream: true });
          let i;
          while ((i = buf.indexOf('\n\n')) >= 0) {
            onBlock(buf.slice(0, i));
            buf = buf.slice(i + 2);
          }
        }
      } catch (err) {
        if (!signal.aborted) d.error = (err as Error).message;
      } finally {
        if (!signal.aborted) d.connected = false;
      }
    })();
    return res.status;
  };
  const status = await open();
  if (status !== 200) throw new Error(`dashboard stream at ${base}: HTTP ${status}`);
  return d;
}

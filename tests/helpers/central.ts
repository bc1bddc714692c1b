/**
 * A real central (store, embedded broker, ingest, routing, voice) plus its HTTP layer, with a small
 * org: two districts, three schools, three sites and one user of each role. Events arrive the way
 * they do in production: a site publishes its event and snapshot JPEGs over MQTT.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import mqtt from 'mqtt';
import sharp from 'sharp';
import { parseCentralConfig, hashPassword, type EventDetail } from '../../central/core.js';
import { startCentral } from '../../central/central.js';
import { startHttp, type HttpHandle, type HttpOptions } from '../../central/http/index.js';
import { topics, PROTOCOL_VERSION, type EventMessage } from '../../protocol/index.js';
import { createHash } from 'node:crypto';
import { clipOutboxMessages } from '../../agent/evidence/clips.js';
import { scopeOf } from '../integration/central-fixture.js';
import { testStore } from './postgres.js';

export const PASSWORD = 'correct-horse-9';
export const SITE_PASSWORD = 'site-secret-1';

export const USERS = {
  mgrA: { id: 'u-mgr-a', username: 'mgr_a', role: 'canteen_manager', name: '王经理' },
  mgrB: { id: 'u-mgr-b', username: 'mgr_b', role: 'canteen_manager', name: '李经理' },
  vpA: { id: 'u-vp-a', username: 'vp_a', role: 'vice_principal', name: '赵副校长' },
  inspector: { id: 'u-insp-1', username: 'insp_1', role: 'inspector', name: '陈监管' },
  inspector2: { id: 'u-insp-2', username: 'insp_2', role: 'inspector', name: '周监管' },
  admin: { id: 'u-admin', username: 'admin', role: 'admin', name: '管理员' },
  /** Only with startFixture({ threeLevels: true }): the township office over 第一中学, the city over both districts. */
  townInspector: { id: 'u-insp-town', username: 'insp_town', role: 'inspector', name: '孙所长' },
  cityInspector: { id: 'u-insp-city', username: 'insp_city', role: 'inspector', name: '钱处长' },
} as const;

export interface Fixture {
  central: Awaited<ReturnType<typeof startCentral>>;
  http: HttpHandle;
  url: string;
  dir: string;
  /** Publish an event (and its two snapshots) as the site over MQTT; resolves once stored with snapshots. */
  publishEvent(siteId: string, over?: Partial<EventMessage>): Promise<EventDetail>;
  /** Publish an MP4 as an event's clip the way the agent does (chunks, then the manifest); resolves once stored. */
  publishClip(siteId: string, eventId: string, mp4: Buffer, durationMs: number): Promise<void>;
  /** Stops HTTP and central (keeping the data directory) and starts both again on it: `url` changes. */
  restart(): Promise<void>;
  close(): Promise<void>;
}

/** A JPEG that is unique per `text` (content-addressed snapshots must not collide between events). */
export async function makeJpeg(width = 320, height = 240, rgb = { r: 200, g: 60, b: 40 }, text = '', box?: [number, number, number, number]): Promise<Buffer> {
  const esc = (s: string) => s.replace(/[<>&"]/g, (c) => `&#${c.charCodeAt(0)};`);
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}">
    ${box ? `<rect x="${box[0]}" y="${box[1]}" width="${box[2] - box[0]}" height="${box[3] - box[1]}" fill="none" stroke="#ff2d2d" stroke-width="4"/>` : ''}
    <text x="12" y="${height - 14}" font-family="WenQuanYi Micro Hei" font-size="${Math.max(10, Math.round(height / 14))}" fill="#ffffff">${esc(text)}</text></svg>`;
  return sharp({ create: { width, height, channels: 3, background: rgb } })
    .composite([{ input: Buffer.from(svg), top: 0, left: 0 }])
    .jpeg({ quality: 80 })
    .toBuffer();
}

export async function startFixture(opts: {
  liveUrl?: string;
  http?: HttpOptions;
  /** `public` (the public window) of some sites, by site id. */
  sitePublic?: Record<string, Record<string, unknown>>;
  /** The three-level network: a city over both districts, a township office over 第一中学 (site-a), and their inspectors. */
  threeLevels?: boolean;
} = {}): Promise<Fixture> {
  const dir = mkdtempSync(path.join(tmpdir(), 'bk-central-http-'));
  // Cheap scrypt parameters: tests log in many times on a 2-core machine.
  const hash = await hashPassword(PASSWORD, { N: 1024 });
  const siteHash = await hashPassword(SITE_PASSWORD, { N: 1024 });
  const user = (u: (typeof USERS)[keyof typeof USERS], extra: Record<string, unknown>) => ({ ...u, passwordHash: hash, ...extra });
  const org = {
      districts: [{ id: 'd-east', name: '东城区' }, { id: 'd-west', name: '西城区' }],
      schools: [
        { id: 'sch-1', name: '第一中学', districtId: 'd-east' },
        { id: 'sch-2', name: '第二小学', districtId: 'd-east' },
        { id: 'sch-3', name: '西城实验学校', districtId: 'd-west' },
      ],
      sites: [
        { id: 'site-a', name: '第一中学学生食堂', schoolId: 'sch-1', mqttPasswordHash: siteHash,
          cameras: [{ id: 'cam-hot', name: '热菜操作间', ...(opts.liveUrl ? { liveUrl: opts.liveUrl } : {}) }, { id: 'cam-cold', name: '凉菜间' }] },
        { id: 'site-b', name: '第二小学食堂', schoolId: 'sch-2', mqttPasswordHash: siteHash,
          cameras: [{ id: 'cam-b1', name: '操作间', liveUrl: 'rtsp://127.0.0.1:9/none' }] },
        { id: 'site-c', name: '西城实验学校食堂', schoolId: 'sch-3', mqttPasswordHash: siteHash, cameras: [{ id: 'cam-c1', name: '后厨' }] },
      ].map((site) => (opts.sitePublic?.[site.id] ? { ...site, public: opts.sitePublic[site.id] } : site)),
      users: [
        user(USERS.mgrA, { siteIds: ['site-a'] }),
        user(USERS.mgrB, { siteIds: ['site-b'] }),
        user(USERS.vpA, { schoolId: 'sch-1' }),
        user(USERS.inspector, { districtId: 'd-east' }),
        user(USERS.inspector2, { districtId: 'd-west' }),
        user(USERS.admin, {}),
      ],
  };
  if (opts.threeLevels) {
    Object.assign(org, {
      cities: [{ id: 'city-1', name: '某市' }],
      townships: [{ id: 't-east-1', name: '东城第一市场监管所', districtId: 'd-east' }],
      districts: org.districts.map((d) => ({ ...d, cityId: 'city-1' })),
      schools: org.schools.map((x) => (x.id === 'sch-1' ? { ...x, townshipId: 't-east-1' } : x)),
      users: [...org.users, user(USERS.townInspector, { townshipId: 't-east-1' }), user(USERS.cityInspector, { cityId: 'city-1' })],
    });
  }
  const store = await testStore(); // PostgreSQL in the vitest project "postgres"; else SQLite in `dir`
  const config = parseCentralConfig({
    dataDir: dir,
    ...(store ? { store } : {}),
    http: { host: '127.0.0.1', port: 0, publicUrl: 'http://127.0.0.1:1' },
    broker: { mode: 'embedded', host: '127.0.0.1', port: 0 },
    org,
  });
  let central = await startCentral(config);
  let http = await startHttp(central, { port: 0, ...opts.http });
  const clients = new Map<string, mqtt.MqttClient>();
  const clientFor = async (siteId: string) => {
    let c = clients.get(siteId);
    if (!c) {
      c = await mqtt.connectAsync(central.brokerUrl, { username: siteId, password: SITE_PASSWORD, clientId: `test-${siteId}-${process.pid}`, reconnectPeriod: 0 });
      clients.set(siteId, c);
    }
    return c;
  };
  let n = 0;
  const fx: Fixture = {
    central, http, url: http.url, dir,
    async publishEvent(siteId, over = {}) {
      const t = topics(central.config.topicPrefix);
      const id = over.id ?? `ev-${Date.now().toString(36)}-${n++}`;
      const box = over.box ?? [220, 90, 380, 300];
      const annotated = await makeJpeg(640, 360, { r: 70, g: 90, b: 110 }, `${siteId} ${id} 未戴口罩`, box);
      const clean = await makeJpeg(640, 360, { r: 70, g: 90, b: 110 }, `${siteId} ${id}`);
      const ref = (b: Buffer) => ({ sha256: createHash('sha256').update(b).digest('hex'), bytes: b.length });
      const now = Date.now();
      const msg: EventMessage = {
        v: PROTOCOL_VERSION, id, siteId, cameraId: siteId === 'site-a' ? 'cam-hot' : siteId === 'site-b' ? 'cam-b1' : 'cam-c1', cameraName: '热菜操作间',
        kind: 'no_mask', severity: 2, ruleId: 'no_mask', trackId: 1, label: 'face', score: 0.91, box, zone: null,
        startedAt: now - 3000, capturedAt: now - 100, raisedAt: now, durationSec: 3,
        frame: { width: 640, height: 360 }, detections: [{ label: 'face', score: 0.91, box, trackId: 1 }],
        snapshots: { annotated: ref(annotated), clean: ref(clean) },
        ...over,
      };
      const c = await clientFor(siteId);
      await c.publishAsync(t.event(siteId), JSON.stringify(msg), { qos: 1 });
      await c.publishAsync(t.snapshot(siteId, id, 'annotated'), annotated, { qos: 1 });
      await c.publishAsync(t.snapshot(siteId, id, 'clean'), clean, { qos: 1 });
      const deadline = Date.now() + 10_000;
      for (;;) {
        const ev = await central.store.event(await scopeOf(central, USERS.admin.id), id);
        if (ev && ev.snapshotReceived && (await central.snapshotFile(msg.snapshots.annotated.sha256))) return ev;
        if (Date.now() > deadline) throw new Error(`event ${id} not stored within 10 s (${ev ? 'no snapshot' : 'no event'})`);
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    async publishClip(siteId, eventId, mp4, durationMs) {
      const c = await clientFor(siteId);
      const cameraId = siteId === 'site-a' ? 'cam-hot' : siteId === 'site-b' ? 'cam-b1' : 'cam-c1';
      const msgs = clipOutboxMessages({ eventId, siteId, cameraId, mime: 'video/mp4', codec: 'avc1.42e01f', startAt: Date.now() - durationMs, durationMs }, mp4, central.config.topicPrefix);
      for (const m of msgs) await c.publishAsync(m.topic, m.payload as Buffer, { qos: 1 });
      const deadline = Date.now() + 10_000;
      const view = () => central.store.clips.view(eventId);
      for (let clip = await view(); clip?.state !== 'complete'; clip = await view()) {
        if (Date.now() > deadline) throw new Error(`clip of ${eventId} not stored within 10 s: ${JSON.stringify(clip)}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    async restart() {
      for (const c of clients.values()) await c.endAsync(true).catch(() => {});
      clients.clear();
      await http.close();
      await central.stop();
      central = await startCentral(config);
      http = await startHttp(central, { port: 0, ...opts.http });
      Object.assign(fx, { central, http, url: http.url });
    },
    async close() {
      for (const c of clients.values()) await c.endAsync(true).catch(() => {});
      await http.close();
      await central.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return fx;
}

/** A cookie-keeping API client for one user. */
export class ApiClient {
  cookie = '';
  csrf = '';
  constructor(readonly base: string, readonly lang = 'en') {}

  async login(username: string, password = PASSWORD): Promise<Response> {
    const res = await this.req('POST', '/api/login', { username, password });
    if (res.ok) {
      const setCookie = res.headers.get('set-cookie') ?? '';
      this.cookie = setCookie.split(';')[0]!;
      this.csrf = ((await res.clone().json()) as { csrfToken: string }).csrfToken;
    }
    return res;
  }

  req(method: string, p: string, body?: unknown, headers: Record<string, string> = {}): Promise<Response> {
    const h: Record<string, string> = { 'Accept-Language': this.lang, ...headers };
    if (this.cookie) h.Cookie = this.cookie;
    if (method !== 'GET' && this.csrf && !('X-CSRF-Token' in headers)) h['X-CSRF-Token'] = this.csrf;
    let payload: string | undefined;
    if (body !== undefined) {
      payload = typeof body === 'string' ? body : JSON.stringify(body);
      h['Content-Type'] ??= 'application/json';
    }
    return fetch(this.base + p, { method, headers: h, body: payload, redirect: 'manual' });
  }

  async json<T = any>(method: string, p: string, body?: unknown): Promise<{ status: number; body: T }> {
    const res = await this.req(method, p, body);
    const text = await res.text();
    return { status: res.status, body: (text ? JSON.parse(text) : null) as T };
  }
}

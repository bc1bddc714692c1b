/**
 * Fixture for central core tests: a real central (SQLite in a temp dir, or PostgreSQL in the vitest
 * project "postgres"; embedded aedes or an external broker) with a small org, plus helpers to act as
 * a site or a recipient over real MQTT.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import sharp from 'sharp';
import { hashPassword, hashPasswordMosquitto } from '../../central/auth/password.js';
import { startCentral, type CentralInternals } from '../../central/central.js';
import { parseCentralConfig } from '../../central/config/load.js';
import type { CentralConfigInput, StoreConfig } from '../../central/config/schema.js';
import type { postWebhook } from '../../central/notify/webhook.js';
import type { Scope, UserRecord } from '../../central/store/types.js';
import { PROTOCOL_VERSION, topics, type EventMessage } from '../../protocol/index.js';
import { testStore } from '../helpers/postgres.js';

export const PW = 'pw-correct-1';
export const T = topics('bk/v1');

export async function jpeg(seed: string): Promise<Buffer> {
  const h = createHash('sha256').update(seed).digest();
  return sharp({ create: { width: 16, height: 16, channels: 3, background: { r: h[0]!, g: h[1]!, b: h[2]! } } }).jpeg({ quality: 90 }).toBuffer();
}
export const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** A valid event for site/camera with snapshots of these bytes. */
export function eventMsg(id: string, siteId: string, snaps: { annotated: Buffer; clean: Buffer }, over: Partial<EventMessage> = {}): EventMessage {
  const now = Date.now();
  return {
    v: PROTOCOL_VERSION, id, siteId, cameraId: 'cam-1', cameraName: '热菜间', kind: 'no_mask', severity: 1, ruleId: 'r-mask',
    trackId: 1, label: 'face', score: 0.9, box: [10, 10, 50, 50], zone: null, startedAt: now - 3000, capturedAt: now - 100,
    raisedAt: now, durationSec: 3, frame: { width: 640, height: 360 }, detections: [{ label: 'face', score: 0.9, box: [10, 10, 50, 50] }],
    snapshots: { annotated: { sha256: sha(snaps.annotated), bytes: snaps.annotated.length }, clean: { sha256: sha(snaps.clean), bytes: snaps.clean.length } },
    ...over,
  };
}

let cheap: { scrypt: string; mosq: string } | null = null;
/** Hashes of PW: scrypt with small N (tests log in often) and Mosquitto $7$. */
export async function hashes(): Promise<{ scrypt: string; mosq: string }> {
  cheap ??= { scrypt: await hashPassword(PW, { N: 1024 }), mosq: await hashPasswordMosquitto(PW) };
  return cheap;
}

/** Org: district d1 (sch1 → site-a, site-b), district d2 (sch2 → site-c); one user per role. */
export async function orgConfig(h: { scrypt: string; mosq: string }, mqttHash = h.mosq) {
  const u = (id: string, role: string, extra: Record<string, unknown>) => ({ id, username: id.replace('u-', ''), name: id, role, passwordHash: h.scrypt, mqttPasswordHash: mqttHash, ...extra });
  return {
    districts: [{ id: 'd1', name: '东城区', webhooks: [] as unknown[] }, { id: 'd2', name: '西城区' }],
    schools: [{ id: 'sch1', name: '第一中学', districtId: 'd1' }, { id: 'sch2', name: '第二中学', districtId: 'd2' }],
    sites: [
      { id: 'site-a', name: '一中食堂', schoolId: 'sch1', mqttPasswordHash: mqttHash, cameras: [{ id: 'cam-1', name: '热菜间' }] },
      { id: 'site-b', name: '一中二食堂', schoolId: 'sch1', mqttPasswordHash: mqttHash, cameras: [{ id: 'cam-1', name: '操作间' }] },
      { id: 'site-c', name: '二中食堂', schoolId: 'sch2', mqttPasswordHash: mqttHash, cameras: [{ id: 'cam-1', name: '后厨' }] },
    ],
    users: [
      u('u-mgr', 'canteen_manager', { siteIds: ['site-a'] }),
      u('u-vp', 'vice_principal', { schoolId: 'sch1' }),
      u('u-insp', 'inspector', { districtId: 'd1' }),
      u('u-insp2', 'inspector', { districtId: 'd2' }),
      u('u-admin', 'admin', {}),
    ],
  };
}

/** A user of the org, by id, and the scope central gives them. */
export async function userOf(central: Pick<CentralInternals, 'store'>, id: string): Promise<UserRecord> {
  const u = await central.store.user(id);
  if (!u) throw new Error(`no user "${id}"`);
  return u;
}
export async function scopeOf(central: Pick<CentralInternals, 'store' | 'scopeOf'>, userId: string): Promise<Scope> {
  return central.scopeOf(await userOf(central, userId));
}

/** The store of each data directory: a central restarted on the directory finds its database again. */
const stores = new Map<string, StoreConfig | undefined>();

export interface CoreFixture {
  central: CentralInternals;
  dir: string;
  config: ReturnType<typeof parseCentralConfig>;
  connect(username: string, password?: string, opts?: mqtt.IClientOptions): Promise<MqttClient>;
  close(): Promise<void>;
}

export async function startCore(over: (c: CentralConfigInput & Record<string, unknown>) => void = () => {},
  opts: { dir?: string; post?: typeof postWebhook; keepDir?: boolean } = {}): Promise<CoreFixture> {
  const dir = opts.dir ?? mkdtempSync(path.join(tmpdir(), 'bk-central-core-'));
  const h = await hashes();
  const raw: CentralConfigInput & Record<string, unknown> = {
    dataDir: dir,
    broker: { mode: 'embedded', host: '127.0.0.1', port: 0 },
    http: { host: '127.0.0.1', port: 0, publicUrl: 'http://central.test:8080' },
    org: (await orgConfig(h)) as CentralConfigInput['org'],
    routing: { checkIntervalSec: 0.1 },
  };
  over(raw);
  if (!raw.store) {
    if (!stores.has(dir)) stores.set(dir, await testStore());
    raw.store = stores.get(dir);
  }
  const config = parseCentralConfig(raw);
  const central = await startCentral(config, { post: opts.post });
  const clients: MqttClient[] = [];
  return {
    central, dir, config,
    async connect(username, password = PW, o = {}) {
      const c = mqtt.connect(central.brokerUrl, { username, password, reconnectPeriod: 0, connectTimeout: 5000, ...o });
      clients.push(c);
      await new Promise<void>((resolve, reject) => {
        c.once('connect', () => resolve());
        c.once('error', reject);
        c.once('close', () => reject(new Error(`connection closed for ${username}`)));
      });
      return c;
    },
    async close() {
      await Promise.all(clients.map((c) => c.endAsync(true).catch(() => {})));
      await central.stop();
      if (!opts.keepDir) rmSync(dir, { recursive: true, force: true });
    },
  };
}

type Falsy = undefined | null | false | 0 | '';
export async function until<T>(fn: () => T | Falsy | Promise<T | Falsy>, timeoutMs = 5000, what = 'condition'): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

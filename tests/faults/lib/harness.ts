/**
 * Shared pieces of the fault and hostile-input scenarios: temp dirs, a test video, a real central
 * (in this process, on a fixed broker port so agents can reconnect after a restart), a real agent in a
 * child process (agent-child.ts), counting of what was sent / received / lost / duplicated, and the
 * result rows that the tests assert and scripts/faults.ts writes to docs/reliability.md.
 *
 * Everything binds 127.0.0.1; every wait is bounded in time.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import mqtt, { type MqttClient } from 'mqtt';
import { startCentral, type CentralInternals } from '../../../central/central.js';
import { parseCentralConfig } from '../../../central/config/load.js';
import type { CentralConfig } from '../../../central/config/schema.js';
import { hashPasswordMosquitto } from '../../../central/auth/password.js';

export const HERE = path.dirname(fileURLToPath(import.meta.url));
export const ROOT = path.resolve(HERE, '../../..');

// ───────────────────────────── results ─────────────────────────────

export interface Row {
  /** Scenario group, e.g. "fault", "hostile", "security". */
  group: string;
  name: string;
  expected: string;
  observed: string;
  sent: number | null;
  received: number | null;
  lost: number | null;
  duplicated: number | null;
  pass: boolean;
  /** Who should fix it when it fails (file and behaviour). */
  owner?: string;
  seconds?: number;
}

export function row(r: Omit<Row, 'sent' | 'received' | 'lost' | 'duplicated'> & Partial<Pick<Row, 'sent' | 'received' | 'lost' | 'duplicated'>>): Row {
  return { sent: null, received: null, lost: null, duplicated: null, ...r };
}

// ───────────────────────────── waiting ─────────────────────────────

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Poll `cond` every 50 ms; false when `timeoutMs` passes first (never throws). */
export async function waitUntil(cond: () => boolean | Promise<boolean>, timeoutMs: number, stepMs = 50): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await cond()) return true;
    if (Date.now() > deadline) return false;
    await sleep(stepMs);
  }
}

export async function mustWait(cond: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  if (!(await waitUntil(cond, timeoutMs))) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

// ───────────────────────────── temp dirs ─────────────────────────────

export class Scratch {
  private readonly dirs: string[] = [];
  private readonly cleanups: (() => Promise<void> | void)[] = [];
  dir(prefix: string): string {
    const d = mkdtempSync(path.join(tmpdir(), `bk-faults-${prefix}-`));
    this.dirs.push(d);
    return d;
  }
  defer(fn: () => Promise<void> | void): void {
    this.cleanups.push(fn);
  }
  async dispose(): Promise<void> {
    for (const f of this.cleanups.splice(0).reverse()) {
      try {
        await f();
      } catch {
        /* keep cleaning */
      }
    }
    for (const d of this.dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  }
}

/** A small looping H.264 test video (testsrc, 320x240, 10 fps, 4 s), made once per process. */
let videoFile: string | null = null;
export function testVideo(): string {
  if (videoFile && existsSync(videoFile)) return videoFile;
  const dir = mkdtempSync(path.join(tmpdir(), 'bk-faults-video-'));
  const file = path.join(dir, 'testsrc.mp4');
  const r = spawnSync('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-y', '-f', 'lavfi', '-i', 'testsrc=size=320x240:rate=10', '-t', '4',
    '-c:v', 'libx264', '-preset', 'ultrafast', '-g', '10', '-pix_fmt', 'yuv420p', file], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`ffmpeg could not make the test video: ${r.stderr}`);
  videoFile = file;
  return file;
}

// ───────────────────────────── central ─────────────────────────────

export const SITE_PASSWORD = 'site-pass-7';
export const USER_MQTT_PASSWORD = 'phone-pass-7';
export const USER_PASSWORD = 'correct-horse-9';

export const SITES = ['site-a', 'site-b'] as const;
export const RECIPIENT = 'u-mgr-a';

let hashes: Promise<{ site: string; user: string }> | null = null;
/** `$7$` hashes: accepted by the embedded broker and by Mosquitto (same org config for both). */
export function credentialHashes(): Promise<{ site: string; user: string }> {
  return (hashes ??= (async () => ({ site: await hashPasswordMosquitto(SITE_PASSWORD), user: await hashPasswordMosquitto(USER_MQTT_PASSWORD) }))());
}

export interface CentralSetup {
  dataDir: string;
  brokerPort: number;
  tls?: { cert: string; key: string; ca?: string };
  external?: { url: string; caFile?: string };
  /** Cameras of site-a known to central. */
  cameras?: string[];
}

export async function centralConfig(s: CentralSetup): Promise<CentralConfig> {
  const h = await credentialHashes();
  const cams = (s.cameras ?? ['cam1']).map((id) => ({ id, name: `camera ${id}` }));
  return parseCentralConfig({
    dataDir: s.dataDir,
    http: { host: '127.0.0.1', port: 0, publicUrl: 'http://127.0.0.1:1' },
    broker: s.external
      ? { mode: 'external', url: s.external.url, usernameEnv: 'BK_FAULTS_CENTRAL_USER', passwordEnv: 'BK_FAULTS_CENTRAL_PASS', ...(s.external.caFile ? { caFile: s.external.caFile } : {}) }
      : { mode: 'embedded', host: '127.0.0.1', port: s.brokerPort, ...(s.tls ? { tls: s.tls } : {}) },
    org: {
      districts: [{ id: 'd-east', name: '东城区' }],
      schools: [{ id: 'sch-1', name: '第一中学', districtId: 'd-east' }, { id: 'sch-2', name: '第二小学', districtId: 'd-east' }],
      sites: [
        { id: 'site-a', name: '第一中学食堂', schoolId: 'sch-1', mqttPasswordHash: h.site, cameras: cams },
        { id: 'site-b', name: '第二小学食堂', schoolId: 'sch-2', mqttPasswordHash: h.site, cameras: [{ id: 'cam1', name: 'b cam' }] },
      ],
      users: [
        { id: RECIPIENT, username: 'mgr_a', name: '王经理', role: 'canteen_manager', siteIds: ['site-a'], passwordHash: h.user, mqttPasswordHash: h.user },
        { id: 'u-mgr-b', username: 'mgr_b', name: '李经理', role: 'canteen_manager', siteIds: ['site-b'], passwordHash: h.user, mqttPasswordHash: h.user },
        { id: 'u-insp', username: 'insp', name: '陈监管', role: 'inspector', districtId: 'd-east', passwordHash: h.user },
      ],
    },
    // tier 1 (smoking) alerts everyone at once, on MQTT too
    routing: { checkIntervalSec: 1 },
  });
}

export const CENTRAL_ACCOUNT = { username: 'bk-central', password: 'central-pass-7' };

export async function startCentralAt(cfg: CentralConfig): Promise<CentralInternals> {
  if (cfg.broker.mode === 'external') {
    process.env.BK_FAULTS_CENTRAL_USER = CENTRAL_ACCOUNT.username;
    process.env.BK_FAULTS_CENTRAL_PASS = CENTRAL_ACCOUNT.password;
  }
  return startCentral(cfg);
}

/** Ids of the events central has stored, read from its SQLite file (a second, read-only connection). */
export function centralEventIds(dataDir: string): string[] {
  const file = path.join(dataDir, 'central.db');
  if (!existsSync(file)) return [];
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    return (db.prepare('SELECT id FROM events').all() as { id: string }[]).map((r) => r.id);
  } finally {
    db.close();
  }
}

/** Event ids with a complete clip at central. */
export function centralClipIds(dataDir: string): string[] {
  const file = path.join(dataDir, 'central.db');
  if (!existsSync(file)) return [];
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    return db.prepare('SELECT event_id FROM clips WHERE complete_at IS NOT NULL').pluck().all() as string[];
  } finally {
    db.close();
  }
}

/** Event ids whose clip the agent cut (kept beside the snapshots in its evidence store). */
export function agentClipIds(storageDir: string): string[] {
  const root = path.join(storageDir, 'evidence');
  if (!existsSync(root)) return [];
  return readdirSync(root).flatMap((day) => readdirSync(path.join(root, day)).filter((f) => f.endsWith('-clip.mp4')).map((f) => f.slice(0, -'-clip.mp4'.length)));
}

/** Events whose alert was routed more than once to the same recipient, channel and level (a duplicate at central). */
export function centralDuplicateAlerts(dataDir: string): number {
  const db = new Database(path.join(dataDir, 'central.db'), { readonly: true, fileMustExist: true });
  try {
    return (db.prepare('SELECT count(*) AS n FROM (SELECT event_id FROM deliveries GROUP BY event_id, recipient_id, channel, level HAVING count(*) > 1)').get() as { n: number }).n;
  } finally {
    db.close();
  }
}

/** Stored events whose annotated snapshot bytes never arrived. */
export function centralMissingSnapshots(dataDir: string): number {
  const db = new Database(path.join(dataDir, 'central.db'), { readonly: true, fileMustExist: true });
  try {
    return (db.prepare('SELECT count(*) AS n FROM events e LEFT JOIN snapshots s ON s.sha256 = e.snap_annotated WHERE s.sha256 IS NULL').get() as { n: number }).n;
  } finally {
    db.close();
  }
}

// ───────────────────────────── agent ─────────────────────────────

export interface AgentSetup {
  siteId?: string;
  storageDir: string;
  brokerUrl: string;
  cameras?: { id: string; url: string; fps?: number; frameWidth?: number }[];
  /** Seconds between events per camera (the smoking rule's cooldown). */
  cooldownSec?: number;
  caFile?: string;
  voiceDir?: string;
  centralPublicKeyFile?: string;
  evidenceMaxMB?: number;
  /** Event clips (off by default here: at a 0.5 s cooldown a clip per event is mostly cutting). */
  clips?: boolean;
}

export function writeAgentConfig(dir: string, s: AgentSetup): string {
  const cfg = {
    site: { id: s.siteId ?? 'site-a', name: '第一中学食堂', timezone: 'Asia/Shanghai' },
    models: { pack: [{ manifest: 'yolox_nano' }] }, // not loaded: the child replaces the detector
    cameras: (s.cameras ?? [{ id: 'cam1', url: `file://${testVideo()}` }]).map((c) => ({
      id: c.id, name: `camera ${c.id}`, url: c.url, fps: c.fps ?? 5, frameWidth: c.frameWidth ?? 320,
    })),
    rules: [{ id: 'smoking', kind: 'smoking', labels: ['cigarette'], minScore: 0.5, minDurationSec: 0, cooldownSec: s.cooldownSec ?? 0.5, severity: 1 }],
    uplink: { url: s.brokerUrl, statsIntervalSec: 5, ...(s.caFile ? { caFile: s.caFile } : {}) },
    storage: { dir: s.storageDir, evidence: { maxAgeDays: 30, maxTotalMB: s.evidenceMaxMB ?? 200 } },
    clips: { enabled: s.clips ?? false, preSec: 3, postSec: 3, bufferDir: path.join(s.storageDir, 'clip-buffer') },
    voice: s.voiceDir
      ? { enabled: true, centralPublicKeyFile: s.centralPublicKeyFile, sink: { type: 'file', dir: s.voiceDir }, maxAgeSec: 120 }
      : { enabled: false },
  };
  const file = path.join(dir, 'site.yaml');
  writeFileSync(file, JSON.stringify(cfg, null, 2)); // JSON is YAML: read by the real loadSiteConfig
  return file;
}

export interface AgentLine {
  t: string;
  [k: string]: unknown;
}

export class AgentProc {
  readonly lines: AgentLine[] = [];
  readonly logs: Record<string, unknown>[] = [];
  stderrTail = '';
  exit: { code: number | null; signal: NodeJS.Signals | null } | null = null;
  private readonly exited: Promise<void>;

  private constructor(readonly child: ChildProcess) {
    let buf = '';
    child.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      let i: number;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        try {
          this.lines.push(JSON.parse(line) as AgentLine);
        } catch {
          /* not ours */
        }
      }
    });
    let ebuf = '';
    child.stderr!.on('data', (d: Buffer) => {
      const s = d.toString();
      this.stderrTail = (this.stderrTail + s).slice(-4000);
      ebuf += s;
      let i: number;
      while ((i = ebuf.indexOf('\n')) >= 0) {
        const line = ebuf.slice(0, i);
        ebuf = ebuf.slice(i + 1);
        if (this.logs.length >= 20_000) this.logs.splice(0, 5000);
        try {
          this.logs.push(JSON.parse(line) as Record<string, unknown>);
        } catch {
          this.logs.push({ msg: line, raw: true });
        }
      }
    });
    this.exited = new Promise((resolve) => child.once('exit', (code, signal) => {
      this.exit = { code, signal };
      resolve();
    }));
  }

  /** Start an agent child on `configFile` and wait for its "ready" line. */
  static async start(configFile: string, env: Record<string, string> = {}, readyTimeoutMs = 30_000): Promise<AgentProc> {
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(HERE, 'agent-child.ts'), configFile], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, LOG_LEVEL: 'info', BK_MQTT_USERNAME: 'site-a', BK_MQTT_PASSWORD: SITE_PASSWORD, VITEST: '', ...env },
    });
    const p = new AgentProc(child);
    const ok = await waitUntil(() => p.lines.some((l) => l.t === 'ready') || p.exit !== null, readyTimeoutMs);
    if (!ok || p.exit) {
      p.child.kill('SIGKILL');
      throw new Error(`agent child did not start (${p.exit ? `exit ${p.exit.code ?? p.exit.signal}` : 'timeout'}): ${p.stderrTail.slice(-1500)}`);
    }
    return p;
  }

  eventIds(): string[] {
    return this.lines.filter((l) => l.t === 'event').map((l) => l.id as string);
  }

  cameraStates(cam: string): AgentLine[] {
    return this.lines.filter((l) => l.t === 'camera' && l.cam === cam);
  }

  /** Log lines whose msg or err matches. */
  logsMatching(re: RegExp): Record<string, unknown>[] {
    return this.logs.filter((l) => re.test(String(l.msg ?? '')) || re.test(JSON.stringify(l.err ?? '')) || re.test(String(l.reason ?? '')));
  }

  get alive(): boolean {
    return this.exit === null;
  }

  /** SIGUSR2: stop the cameras (no new events) while the uplink keeps draining. */
  async stopCameras(timeoutMs = 15_000): Promise<void> {
    this.child.kill('SIGUSR2');
    await mustWait(() => this.lines.some((l) => l.t === 'cameras-stopped'), timeoutMs, 'the agent to stop its cameras');
  }

  async kill9(): Promise<void> {
    if (this.exit) return;
    this.child.kill('SIGKILL');
    await this.exited;
  }

  /** SIGTERM, clean stop (bounded; SIGKILL after timeoutMs). */
  async stop(timeoutMs = 15_000): Promise<void> {
    if (this.exit) return;
    this.child.kill('SIGTERM');
    const done = await Promise.race([this.exited.then(() => true), sleep(timeoutMs).then(() => false)]);
    if (!done) await this.kill9();
  }
}

// ───────────────────────────── MQTT observers ─────────────────────────────

export interface Observed {
  client: MqttClient;
  got: { topic: string; payload: Buffer }[];
}

/** An MQTT client that logs in, subscribes and records what arrives (bounded connect time). */
export async function observe(url: string, o: { username?: string; password?: string; clientId?: string; clean?: boolean; filters: string[]; ca?: Buffer }): Promise<Observed> {
  const got: Observed['got'] = [];
  const client = await mqtt.connectAsync(url, {
    clientId: o.clientId ?? `obs-${Math.random().toString(36).slice(2)}`,
    clean: o.clean ?? true,
    reconnectPeriod: 500,
    connectTimeout: 5000,
    protocolVersion: 4,
    ...(o.username ? { username: o.username, password: o.password } : {}),
    ...(o.ca ? { ca: o.ca } : {}),
  });
  client.on('error', () => {});
  client.on('message', (topic, payload) => got.push({ topic, payload }));
  if (o.filters.length) await client.subscribeAsync(o.filters, { qos: 1 });
  return { client, got };
}

/** Count the values appearing more than once. */
export function dupCount(ids: readonly string[]): number {
  const seen = new Map<string, number>();
  for (const id of ids) seen.set(id, (seen.get(id) ?? 0) + 1);
  return [...seen.values()].filter((n) => n > 1).length;
}

export function fmtSec(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}

/** Rows still in an agent's outbox (read-only second connection; -1 when unreadable). */
export function outboxPending(storageDir: string): number {
  const file = path.join(storageDir, 'outbox.sqlite');
  if (!existsSync(file)) return -1;
  try {
    const db = new Database(file, { readonly: true, fileMustExist: true, timeout: 2000 });
    try {
      return (db.prepare('SELECT count(*) AS n FROM outbox').get() as { n: number }).n;
    } finally {
      db.close();
    }
  } catch {
    return -1;
  }
}

/**
 * Wait until central holds every id in `sent`; give up early when the agent's outbox has been empty
 * and central's count unchanged for `settleMs` (the rest was acknowledged by the broker and lost), or
 * after `timeoutMs`. True when all arrived.
 */
export async function waitDelivered(dataDir: string, sent: readonly string[], storageDir: string, timeoutMs = 90_000, settleMs = 8000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  let lastCount = -1;
  let stableSince = Date.now();
  for (;;) {
    const got = new Set(centralEventIds(dataDir));
    if (sent.every((id) => got.has(id))) return true;
    if (got.size !== lastCount || outboxPending(storageDir) !== 0) {
      lastCount = got.size;
      stableSince = Date.now();
    } else if (Date.now() - stableSince > settleMs) return false;
    if (Date.now() > deadline) return false;
    await sleep(200);
  }
}

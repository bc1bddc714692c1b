/**
 * The agent end to end on real parts: photos of people served as H.264 by the real RTSP server,
 * the real agent (ffmpeg ingest, ONNX face/mask model, tracker, rules, evidence, SQLite outbox,
 * MQTT uplink), real brokers (embedded aedes, Mosquitto) and plain MQTT subscribers.
 *
 * The camera alternates bare faces and masked faces, 5 s each, so every bare-face showing is one
 * episode: one `no_mask` event per showing, not one per frame.
 */
import { spawn } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import mqtt from 'mqtt';
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Agent } from '../../agent/agent.js';
import { SiteConfigSchema, type SiteConfig } from '../../agent/config/schema.js';
import { ModelPack, REPO_ROOT } from '../../agent/detect/index.js';
import { EventMessage } from '../../protocol/messages.js';
import { freePort, mosquittoSub, startAedes, startMosquitto, waitForPort } from '../helpers/brokers.js';
import { MASK_IMAGES, startSimCamera, stopAllSimCameras, type SimCamera } from '../helpers/rtsp.js';

const SITE = 'site-e2e';
// bare face, masked, bare face, masked (checked with `npm run detect`)
const PHOTOS = ['11-photo.jpg', '15-photo.jpg', '13-photo.jpg', '17-photo.jpg'];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let work: string;
let camera: SimCamera;
let pack: ModelPack;

beforeAll(async () => {
  work = mkdtempSync(path.join(tmpdir(), 'bk-e2e-'));
  const photos = path.join(work, 'photos');
  mkdirSync(photos);
  PHOTOS.forEach((p, i) => copyFileSync(path.join(MASK_IMAGES, p), path.join(photos, `${i}-${p}`)));
  camera = await startSimCamera({ source: photos, imageSeconds: 5 });
  pack = await ModelPack.load({ pack: [{ manifest: 'rfb640_masked_face' }], threads: 1 });
});

afterAll(async () => {
  await pack?.close();
  await stopAllSimCameras();
  rmSync(work, { recursive: true, force: true });
});

function siteConfig(name: string, brokerUrl: string): SiteConfig {
  return SiteConfigSchema.parse({
    site: { id: SITE, name: '端到端测试食堂' },
    serviceHours: [{ from: '00:00', to: '23:59' }],
    models: { dir: path.join(REPO_ROOT, 'var/models'), manifests: path.join(REPO_ROOT, 'models'), pack: [{ manifest: 'rfb640_masked_face' }], threads: 1 },
    cameras: [{ id: 'cam1', name: '后厨', url: camera.url, fps: 2 }],
    uplink: { url: brokerUrl, usernameEnv: 'BK_E2E_USER', passwordEnv: 'BK_E2E_PASS' },
    storage: { dir: path.join(work, name) },
  });
}
const env = { BK_E2E_USER: SITE, BK_E2E_PASS: 'unused' };

describe('agent end to end', () => {
  it('photos over RTSP → no_mask events with snapshots, one per episode, to a plain mosquitto_sub', async () => {
    const broker = await startAedes();
    const events = mosquittoSub(broker.port, `bk/v1/site/${SITE}/event`, true);
    const snaps = mosquittoSub(broker.port, `bk/v1/site/${SITE}/snapshot/#`, false);
    await sleep(500);
    const agent = await Agent.start(siteConfig('a', broker.url), { detector: pack, env });
    try {
      await sleep(24_000);
    } finally {
      await agent.stop();
    }
    await sleep(300);
    events.proc.kill();
    snaps.proc.kill();
    await broker.close();

    const received = events.lines.map((l) => EventMessage.parse(JSON.parse(Buffer.from(l.split('\t')[2]!, 'latin1').toString('utf8'))));
    const counters = agent.pipeline.counters().cam1!;
    // 24 s at 2 fps: ~48 frames (a slideshow, so the motion gate skips most of them), of which ~20
    // show a bare face; two or three showings → two or three events.
    expect(counters.framesProcessed + counters.framesSkippedStill).toBeGreaterThan(30);
    expect(received.length).toBeGreaterThanOrEqual(2);
    expect(received.length).toBeLessThanOrEqual(3);
    expect(received.length).toBe(counters.eventsRaised);
    for (const e of received) {
      expect(e.kind).toBe('no_mask');
      expect(e.siteId).toBe(SITE);
      expect(e.capturedAt - e.startedAt).toBeGreaterThanOrEqual(3000);
      // Both snapshots arrived, with the sizes the event declares.
      for (const variant of ['annotated', 'clean'] as const) {
        const line = snaps.lines.find((l) => l.startsWith(`bk/v1/site/${SITE}/snapshot/${e.id}/${variant}\t`));
        expect(line, `${variant} snapshot of ${e.id}`).toBeDefined();
        expect(Number(line!.split('\t')[1])).toBe(e.snapshots[variant].bytes);
      }
    }
    // One event per episode: distinct tracks, at least 5 s apart (a showing lasts 5 s).
    expect(new Set(received.map((e) => e.trackId)).size).toBe(received.length);
    for (let i = 1; i < received.length; i++) expect(received[i]!.capturedAt - received[i - 1]!.capturedAt).toBeGreaterThan(5000);
  }, 90_000);

  it('Mosquitto down for 12 s while violations keep coming: every event arrives afterwards, none twice', async () => {
    const broker = await startMosquitto();
    const sub = await mqtt.connectAsync(broker.url, { clientId: 'e2e-sub', clean: false, reconnectPeriod: 300 });
    await sub.subscribeAsync(`bk/v1/site/${SITE}/event`, { qos: 1 });
    const got: string[] = [];
    sub.on('message', (_t, p) => got.push(EventMessage.parse(JSON.parse(p.toString())).id));
    const agent = await Agent.start(siteConfig('b', broker.url), { detector: pack, env });
    const raised: string[] = [];
    agent.pipeline.on('event', (e) => raised.push(e.id));
    let raisedWhileDown = 0;
    try {
      await sleep(4_000);
      await broker.stop();
      const before = raised.length;
      await sleep(12_000);
      raisedWhileDown = raised.length - before;
      await broker.restart();
      await sleep(6_000);
    } finally {
      await agent.stop();
    }
    // Wait for the last deliveries to reach the subscriber.
    for (let i = 0; i < 50 && got.length < raised.length; i++) await sleep(200);
    await sub.endAsync();
    await broker.stop();
    expect(raisedWhileDown).toBeGreaterThanOrEqual(1);
    expect(new Set(got).size).toBe(got.length); // none twice
    expect(new Set(got)).toEqual(new Set(raised)); // none lost
  }, 90_000);

  it('an agent killed with SIGKILL sends what was left in its outbox after a restart', async () => {
    const port = await freePort(); // nothing listens yet: events stay in the outbox
    const cfg = siteConfig('c', `mqtt://127.0.0.1:${port}`);
    const file = path.join(work, 'c.yaml');
    writeFileSync(file, stringify({ ...cfg, models: { ...cfg.models, pack: [{ manifest: 'rfb640_masked_face' }] } }));
    const startAgent = () =>
      spawn(process.execPath, ['--import', 'tsx', path.join(REPO_ROOT, 'agent/main.ts'), '--config', file], { cwd: REPO_ROOT, env: { ...process.env, ...env, LOG_LEVEL: 'warn' } });
    const outboxEvents = () => {
      const db = new Database(path.join(cfg.storage.dir, 'outbox.sqlite'), { readonly: true, fileMustExist: true });
      try {
        return (db.prepare(`SELECT payload FROM outbox WHERE topic = ?`).all(`bk/v1/site/${SITE}/event`) as { payload: Buffer }[]).map(
          (r) => EventMessage.parse(JSON.parse(r.payload.toString())).id,
        );
      } finally {
        db.close();
      }
    };
    const first = startAgent();
    let queued: string[] = [];
    for (let i = 0; i < 120 && queued.length === 0; i++) {
      await sleep(500);
      try {
        queued = outboxEvents();
      } catch {
        /* not created yet */
      }
    }
    expect(queued.length).toBeGreaterThanOrEqual(1);
    first.kill('SIGKILL');
    await new Promise((r) => first.once('exit', r));
    queued = outboxEvents(); // whatever was committed before the kill

    const broker = await startAedes({ port });
    await waitForPort(port);
    const sub = await mqtt.connectAsync(broker.url, { clientId: 'e2e-sub-c' });
    await sub.subscribeAsync(`bk/v1/site/${SITE}/event`, { qos: 1 });
    const got = new Set<string>();
    sub.on('message', (_t, p) => got.add(EventMessage.parse(JSON.parse(p.toString())).id));
    const second = startAgent();
    try {
      for (let i = 0; i < 60 && !queued.every((id) => got.has(id)); i++) await sleep(500);
    } finally {
      second.kill('SIGTERM');
      await new Promise((r) => second.once('exit', r));
      await sub.endAsync();
      await broker.close();
    }
    for (const id of queued) expect(got.has(id), `event ${id} left in the outbox at the kill`).toBe(true);
  }, 120_000);
});

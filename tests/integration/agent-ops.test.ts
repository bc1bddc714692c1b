/**
 * The agent's health and metrics endpoint on the real agent: a simulated RTSP camera showing a bare
 * face, an aedes broker, and a second camera that never answers. /metrics is scraped twice: the
 * camera's frame counter grows and the outbox drains to 0 once the events are delivered.
 */
import { mkdirSync, mkdtempSync, copyFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Agent } from '../../agent/agent.js';
import { SiteConfigSchema } from '../../agent/config/schema.js';
import { ModelPack, REPO_ROOT } from '../../agent/detect/index.js';
import { freeTcpPort } from '../../common/net.js';
import { installModels } from '../../scripts/install-models.js';
import { startAedes } from '../helpers/brokers.js';
import { startSimCamera, stopAllSimCameras, type SimCamera } from '../helpers/rtsp.js';

const SITE = 'site-ops';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
let work: string;
let camera: SimCamera;
let pack: ModelPack;

beforeAll(async () => {
  await installModels();
  work = mkdtempSync(path.join(tmpdir(), 'bk-ops-'));
  mkdirSync(path.join(work, 'photos'));
  copyFileSync(path.resolve(REPO_ROOT, '../shared/data/masks/images/11-photo.jpg'), path.join(work, 'photos', 'bare.jpg'));
  camera = await startSimCamera({ source: path.join(work, 'photos'), imageSeconds: 60, width: 640, height: 360 });
  pack = await ModelPack.load({ pack: [{ manifest: 'rfb640_masked_face' }], threads: 1 });
});

afterAll(async () => {
  await pack?.close();
  await stopAllSimCameras();
  rmSync(work, { recursive: true, force: true });
});

/** Prometheus text → value of one series (name + exact label set), or undefined. */
function series(text: string, name: string, labels = ''): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${name}${labels ? `{${labels}}` : ''} `));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
}

describe('agent health and metrics', () => {
  it('/healthz, /readyz (camera and uplink state), /metrics with live counters; loopback only', async () => {
    const broker = await startAedes();
    const deadPort = await freeTcpPort(0);
    const config = SiteConfigSchema.parse({
      site: { id: SITE, name: '运维测试食堂' },
      serviceHours: [{ from: '00:00', to: '00:00' }],
      models: { dir: path.join(REPO_ROOT, 'var/models'), manifests: path.join(REPO_ROOT, 'models'), pack: [{ manifest: 'rfb640_masked_face' }], threads: 1 },
      cameras: [
        { id: 'cam1', name: '后厨', url: camera.url, fps: 2 },
        { id: 'cam-dead', name: '仓库', url: `rtsp://127.0.0.1:${deadPort}/none`, fps: 2 },
      ],
      uplink: { url: broker.url, usernameEnv: 'BK_OPS_USER', passwordEnv: 'BK_OPS_PASS' },
      storage: { dir: path.join(work, 'agent') },
      health: { port: 0 },
    });
    const agent = await Agent.start(config, { detector: pack, env: { BK_OPS_USER: SITE, BK_OPS_PASS: 'unused' } });
    const base = `http://127.0.0.1:${agent.ops!.port}`;
    try {
      expect(config.health!.host).toBe('127.0.0.1');
      const alive = await fetch(`${base}/healthz`);
      expect(alive.status).toBe(200);
      expect(await alive.json()).toMatchObject({ status: 'ok' });

      await sleep(6000); // frames flow, the face persists 3 s: an event and its snapshots go out
      const m1 = await (await fetch(`${base}/metrics`)).text();
      await sleep(3000);
      const res2 = await fetch(`${base}/metrics`);
      expect(res2.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
      const m2 = await res2.text();
      const f1 = series(m1, 'bk_camera_frames_total', 'camera="cam1"')!;
      const f2 = series(m2, 'bk_camera_frames_total', 'camera="cam1"')!;
      expect(f1).toBeGreaterThan(0);
      expect(f2).toBeGreaterThan(f1 + 3); // ~2 fps over 3 s
      expect(series(m2, 'bk_camera_up', 'camera="cam1"')).toBe(1);
      expect(series(m2, 'bk_camera_up', 'camera="cam-dead"')).toBe(0);
      expect(series(m2, 'bk_uplink_connected')).toBe(1);
      expect(series(m2, 'bk_camera_events_total', 'camera="cam1"')).toBeGreaterThanOrEqual(1);
      expect(series(m2, 'bk_detect_frames_total')).toBeGreaterThan(0);
      expect(m2).toMatch(/# TYPE bk_camera_frames_total counter/);
      expect(m2).toMatch(/# TYPE bk_outbox_depth gauge/);
      // delivered: the outbox is back to 0
      let depth = series(m2, 'bk_outbox_depth');
      for (let i = 0; i < 20 && depth !== 0; i++) {
        await sleep(250);
        depth = series(await (await fetch(`${base}/metrics`)).text(), 'bk_outbox_depth');
      }
      expect(depth).toBe(0);

      // not ready: one camera never answers; the answer says which
      const ready = await fetch(`${base}/readyz`);
      expect(ready.status).toBe(503);
      const r = (await ready.json()) as { ready: boolean; problems: string[]; uplink: { connected: boolean } };
      expect(r.ready).toBe(false);
      expect(r.uplink.connected).toBe(true);
      expect(r.problems.join(' ')).toMatch(/camera cam-dead (connecting|offline)/);
      expect(r.problems.join(' ')).not.toMatch(/cam1/);

      expect((await fetch(`${base}/metrics`, { method: 'POST' })).status).toBe(405);
      expect((await fetch(`${base}/nope`)).status).toBe(404);
    } finally {
      await agent.stop();
      await broker.close();
    }
    await expect(fetch(`${base}/healthz`)).rejects.toThrow(); // closed with the agent
  }, 60_000);
});

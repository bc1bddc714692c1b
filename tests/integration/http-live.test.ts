/**
 * Live view: a real RTSP source (scripts/sim-camera: GStreamer RTSP server fed by ffmpeg; ffmpeg 5.1's
 * own `-rtsp_flags listen` works only for input, not as a serving output), an authorised
 * user gets a single-use token, receives MPEG-TS over the WebSocket; other sites' managers get 404;
 * the ffmpeg behind the stream stops after the last viewer leaves.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { startSimCamera, type SimCamera } from '../../scripts/sim-camera.js';
import { ApiClient, USERS, startFixture, type Fixture } from '../helpers/central.js';
import { alive } from '../helpers/process.js';

let fx: Fixture;
let cam: SimCamera;
let dir: string;

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'bk-live-'));
  const clip = path.join(dir, 'clip.mp4');
  const enc = spawnSync('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-f', 'lavfi', '-i', 'testsrc=size=320x240:rate=10', '-t', '3',
    '-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p', clip]);
  if (enc.status !== 0) throw new Error(`ffmpeg: ${enc.stderr.toString()}`);
  cam = await startSimCamera({ source: clip, path: 'live', fps: 10, width: 320, height: 240, gop: 10, loop: true });
  fx = await startFixture({ liveUrl: cam.url, http: { live: { graceMs: 300 } } });
});
afterAll(async () => {
  await fx?.close();
  await cam?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('live view', () => {
  it('streams MPEG-TS to an authorised viewer and stops ffmpeg after the viewer leaves', async () => {
    const b = new ApiClient(fx.url);
    await b.login(USERS.mgrB.username);
    expect((await b.json('POST', '/api/live/site-a/cam-hot')).status).toBe(404);

    const a = new ApiClient(fx.url);
    await a.login(USERS.mgrA.username);
    const noCsrf = await a.req('POST', '/api/live/site-a/cam-hot', undefined, { 'X-CSRF-Token': '' });
    expect(noCsrf.status).toBe(403);
    const r = await a.json('POST', '/api/live/site-a/cam-hot');
    expect(r.status).toBe(200);
    const { wsUrl } = r.body as { wsUrl: string; expiresAt: number };
    expect(wsUrl).toMatch(/^ws:\/\/127\.0\.0\.1:\d+\/api\/live\/ws\?token=[A-Za-z0-9_-]{43}$/);

    // a forged token is refused at the upgrade
    const forged = new WebSocket(wsUrl.replace(/token=.*/, `token=${'A'.repeat(43)}`));
    const forgedResult = await new Promise<string>((resolve) => {
      forged.on('unexpected-response', (_req, res) => resolve(`http ${res.statusCode}`));
      forged.on('open', () => resolve('open'));
      forged.on('error', () => resolve('error'));
    });
    expect(forgedResult).toMatch(/401|error/);

    const ws = new WebSocket(wsUrl);
    let bytes = 0;
    let tsPackets = 0;
    let first: Buffer | null = null;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`only ${bytes} bytes in 20 s`)), 20_000);
      ws.on('message', (data: Buffer) => {
        first ??= data;
        bytes += data.length;
        for (let i = 0; i < data.length; i += 188) if (data[i] === 0x47) tsPackets++;
        if (bytes > 50_000) {
          clearTimeout(timer);
          resolve();
        }
      });
      ws.on('error', reject);
    });
    expect(first![0]).toBe(0x47); // MPEG-TS sync byte
    expect(tsPackets).toBeGreaterThan(100);
    const streams = fx.http.live.list();
    expect(streams).toHaveLength(1);
    const pid = streams[0]!.pid!;
    expect(alive(pid)).toBe(true);

    // the token was single-use
    const again = new WebSocket(wsUrl);
    const againResult = await new Promise<string>((resolve) => {
      again.on('unexpected-response', (_req, res) => resolve(`http ${res.statusCode}`));
      again.on('open', () => resolve('open'));
      again.on('error', () => resolve('error'));
    });
    expect(againResult).not.toBe('open');

    ws.close();
    const deadline = Date.now() + 8000;
    while (alive(pid) && Date.now() < deadline) await new Promise((res) => setTimeout(res, 100));
    expect(alive(pid)).toBe(false);
    expect(fx.http.live.list()).toHaveLength(0);

    const audit = await (async () => {
      const admin = new ApiClient(fx.url);
      await admin.login(USERS.admin.username);
      return (await admin.json('GET', '/api/audit')).body as { action: string; userId: string }[];
    })();
    expect(audit.some((x) => x.action === 'live_view' && x.userId === USERS.mgrA.id)).toBe(true);
  });
});

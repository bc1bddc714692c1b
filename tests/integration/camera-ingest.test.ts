/**
 * Camera ingest against real parts: GStreamer RTSP server fed by ffmpeg from the shared mask photos
 * (tests/helpers/rtsp.ts), one real ffmpeg per CameraSource. Each case runs for seconds.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { connect, createServer, type Server } from 'node:net';
import { getPriority, tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { CameraSource, DECODE_NICE, type CameraSourceStatus, type Frame } from '../../agent/camera/index.js';
import type { CameraIngestConfig, CameraSourceOptions } from '../../agent/camera/types.js';
import { freeTcpPort, MASK_IMAGES, startSimCamera, stopAllSimCameras, type SimCamera } from '../helpers/rtsp.js';
import { alive } from '../helpers/process.js';

const sources: CameraSource[] = [];
function camera(cfg: Partial<CameraIngestConfig> & { id: string; url: string }, opts?: CameraSourceOptions) {
  const cam = new CameraSource({ fps: 2, keyframesOnly: false, frameWidth: 320, ...cfg }, opts);
  const frames: Frame[] = [];
  const statuses: Array<CameraSourceStatus & { at: number }> = [];
  cam.on('frame', (f) => frames.push(f));
  cam.on('status', (s) => statuses.push({ ...s, at: Date.now() }));
  sources.push(cam);
  return { cam, frames, statuses };
}

function until(cond: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const t0 = Date.now();
  return new Promise((res, rej) => {
    const tick = () => {
      if (cond()) return res();
      if (Date.now() - t0 > timeoutMs) return rej(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`));
      setTimeout(tick, 50);
    };
    tick();
  });
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Mean of every 7th byte: cheap, and differs between different pictures. */
function mean(f: Frame): number {
  let s = 0;
  let n = 0;
  for (let i = 0; i < f.data.length; i += 7, n++) s += f.data[i]!;
  return s / n;
}

let sim: SimCamera; // cam1 and cam2, shared by the cases that do not restart it

beforeAll(async () => {
  sim = await startSimCamera({ source: MASK_IMAGES, count: 2, width: 640, height: 360, fps: 15, gop: 15 });
});

afterEach(async () => {
  await Promise.all(sources.splice(0).map((s) => s.stop()));
});

afterAll(async () => {
  await stopAllSimCameras();
});

describe('CameraSource on a simulated RTSP camera', () => {
  it('delivers real RGB frames at the configured rate and size', async () => {
    const { cam, frames, statuses } = camera({ id: 'c-rate', url: sim.urls[0]!, fps: 2, frameWidth: 320 });
    cam.start();
    expect(cam.status().state).toBe('connecting');
    await until(() => frames.length > 0, 10_000, 'first frame');
    const first = frames[0]!.capturedAt;
    await sleep(4_000);
    const inWindow = frames.filter((f) => f.capturedAt > first && f.capturedAt <= first + 4_000).length;
    expect(inWindow).toBeGreaterThanOrEqual(6); // 2 fps for 4 s = 8
    expect(inWindow).toBeLessThanOrEqual(10);
    const st = cam.status();
    expect(st.state).toBe('online');
    expect(st.error).toBeNull();
    expect(st.fps).toBeGreaterThan(1.4);
    expect(st.fps).toBeLessThan(2.6);
    expect(st.frames).toBe(frames.length);
    expect(statuses.map((s) => s.state)).toEqual(['connecting', 'online']);
    // The decoder yields to detection when both want a core.
    expect(getPriority(cam.ffmpegPids[0]!)).toBe(DECODE_NICE);
    for (const f of frames) {
      expect([f.cameraId, f.width, f.height, f.data.length]).toEqual(['c-rate', 320, 180, 320 * 180 * 3]);
    }
    expect(frames.map((f) => f.seq)).toEqual(frames.map((_, i) => i + 1));
    // Real pictures: not black, and the slideshow (one photo per second) shows different ones.
    const means = frames.map(mean);
    expect(Math.max(...means)).toBeGreaterThan(20);
    expect(new Set(means.map((m) => Math.round(m))).size).toBeGreaterThanOrEqual(2);
    // Letterboxed 16:9 picture of portrait photos: the left edge column is black, the centre is not.
    const f = frames.at(-1)!;
    const px = (x: number, y: number) => f.data[(y * f.width + x) * 3]! + f.data[(y * f.width + x) * 3 + 1]! + f.data[(y * f.width + x) * 3 + 2]!;
    expect(px(1, 90)).toBeLessThan(30);
  });

  it('keyframesOnly still yields frames, at most one per GOP', async () => {
    // GOP 15 at 15 fps = one keyframe per second; ask for 5 fps.
    const { cam, frames } = camera({ id: 'c-key', url: sim.urls[1]!, fps: 5, keyframesOnly: true, frameWidth: 256 });
    cam.start();
    await until(() => frames.length > 0, 10_000, 'first keyframe');
    const first = frames[0]!.capturedAt;
    await sleep(3_500);
    const n = frames.filter((f) => f.capturedAt > first + 100 && f.capturedAt <= first + 3_100).length;
    expect(n).toBeGreaterThanOrEqual(2); // ~3 keyframes in 3 s
    expect(n).toBeLessThanOrEqual(4); // not 15 as at 5 fps
    expect(frames[0]!.width).toBe(256);
    expect(frames[0]!.height).toBe(144);
    expect(Math.max(...frames.map(mean))).toBeGreaterThan(20);
  });

  it('switches to one keyframe every idleFrameEverySec and back while staying online (setIdleDecode)', async () => {
    const { cam, frames, statuses } = camera({ id: 'c-idle', url: sim.urls[1]!, fps: 5, frameWidth: 256, idleFrameEverySec: 2 });
    cam.start();
    await until(() => frames.length > 0, 10_000, 'first frame');
    const rate = async (ms: number) => {
      const n0 = frames.length;
      await sleep(ms);
      return (frames.length - n0) / (ms / 1000);
    };
    await sleep(1_000);
    expect(await rate(2_000)).toBeGreaterThan(3.5); // full decoding at 5 fps
    const fullPids = cam.ffmpegPids;
    expect(fullPids).toHaveLength(1);
    cam.setIdleDecode(true);
    expect(cam.keyframesOnly).toBe(true);
    // The agent receives the stream itself (rtsp-receiver.ts); one ffmpeg decodes what it keeps.
    await until(() => cam.ffmpegPids.length === 1 && cam.ffmpegPids[0] !== fullPids[0], 5_000, 'the decoder of idle sampling');
    const idlePids = cam.ffmpegPids;
    expect(getPriority(idlePids[0]!)).toBe(DECODE_NICE);
    expect(alive(fullPids[0]!)).toBe(false);
    await sleep(2_500);
    const cpu0 = cam.receiveCpuMs;
    // GOP 1 s, one keyframe every 2 s kept: 0.5 frames/s (full decoding of keyframes would give 1).
    const idleRate = await rate(8_000);
    expect(idleRate).toBeGreaterThanOrEqual(0.25);
    expect(idleRate).toBeLessThanOrEqual(0.75);
    // Receiving is priced (the bench adds it to the camera's cost), and it is small: < 2 % of the time.
    expect(cam.receiveCpuMs).toBeGreaterThan(cpu0);
    expect(cam.receiveCpuMs - cpu0).toBeLessThan(160);
    expect(Math.max(...frames.slice(-3).map(mean))).toBeGreaterThan(20);
    cam.setIdleDecode(false);
    await sleep(1_500);
    expect(await rate(2_000)).toBeGreaterThan(3.5);
    // Planned restarts: no offline or connecting status, no reconnect counted.
    expect(statuses.map((s) => s.state)).toEqual(['connecting', 'online']);
    expect(cam.status().reconnects).toBe(0);
    expect(cam.status().state).toBe('online');
    // Back to full decoding: the decoder of idle sampling has exited.
    expect(cam.ffmpegPids).toHaveLength(1);
    for (const pid of idlePids) expect(alive(pid)).toBe(false);
  });

  it('a camera with a sub-stream: detection decodes it, the clip buffer copies the main stream, idle sampling takes the sub-stream', async () => {
    // Told apart by shape: the main stream is 16:9 (640x360), the sub-stream 4:3 (640x480).
    const subSim = await startSimCamera({ source: MASK_IMAGES, count: 1, width: 640, height: 480, fps: 15, gop: 15 });
    const dir = mkdtempSync(join(tmpdir(), 'bk-sub-clips-'));
    try {
      const { cam, frames, statuses } = camera({ id: 'c-sub', url: sim.urls[0]!, substreamUrl: subSim.urls[0]!, fps: 2, frameWidth: 320, idleFrameEverySec: 1 },
        { clipSegments: { dir, segmentSec: 1 } });
      cam.start();
      await until(() => frames.length >= 6, 15_000, 'frames of the sub-stream');
      for (const f of frames) expect([f.width, f.height]).toEqual([320, 240]);
      expect(cam.ffmpegPids).toHaveLength(1); // one process: two inputs, two outputs
      await until(() => readdirSync(dir).filter((n) => n.endsWith('.ts')).length >= 3, 10_000, 'clip segments');
      const seg = join(dir, readdirSync(dir).filter((n) => n.endsWith('.ts')).sort()[1]!);
      const size = execFileSync('ffprobe', ['-v', 'error', '-select_streams', 'v:0', '-show_entries', 'stream=width,height', '-of', 'csv=p=0', seg]).toString().trim().split(/\s+/)[0];
      expect(size).toBe('640,360');
      cam.setIdleDecode(true);
      const n0 = frames.length;
      await until(() => frames.length >= n0 + 2, 10_000, 'idle-sampled frames');
      for (const f of frames.slice(n0)) expect([f.width, f.height]).toEqual([320, 240]);
      expect(statuses.map((s) => s.state)).toEqual(['connecting', 'online']);
    } finally {
      await subSim.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a sub-stream camera whose main stream fails: clips pause, detection goes on with the sub-stream', async () => {
    const dead = `rtsp://127.0.0.1:${await freeTcpPort()}/main`;
    const dir = mkdtempSync(join(tmpdir(), 'bk-sub-dead-'));
    try {
      const { cam, frames } = camera({ id: 'c-sub-dead', url: dead, substreamUrl: sim.urls[1]!, fps: 2, frameWidth: 320 }, { clipSegments: { dir, segmentSec: 1 }, backoff: { initialMs: 200 } });
      cam.start();
      await until(() => frames.length >= 3, 20_000, 'frames of the sub-stream after the main stream failed');
      expect(cam.status().state).toBe('online');
      expect(readdirSync(dir).filter((n) => n.endsWith('.ts'))).toEqual([]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('setIdleDecode before the camera is online applies to the connection in progress', async () => {
    const { cam, frames } = camera({ id: 'c-idle-early', url: sim.urls[0]!, fps: 5, frameWidth: 256, idleFrameEverySec: 1 });
    cam.start();
    cam.setIdleDecode(true);
    await until(() => frames.length > 0, 15_000, 'first frame');
    expect(cam.ffmpegPids).toHaveLength(1);
    expect(cam.receiveCpuMs).toBeGreaterThan(0);
    expect(cam.status().reconnects).toBe(0);
  });

  it('idle sampling: a 503 to the agent\'s receiver is retried once, without going offline or falling back to ffmpeg', async () => {
    // A proxy in front of the simulator answers the agent's first connection with 503, as a server
    // tearing down the stream the full decoder just left does; everything else passes through.
    const upstream = new URL(sim.urls[0]!);
    let refused = 0;
    const port = await freeTcpPort();
    const proxy = createServer((client) => {
      client.on('error', () => undefined);
      client.once('data', (first) => {
        const text = first.toString('latin1');
        if (refused === 0 && text.includes('bright-kitchen-agent')) {
          refused++;
          client.end(`RTSP/1.0 503 Service Unavailable\r\nCSeq: ${/CSeq: (\d+)/i.exec(text)?.[1] ?? 1}\r\n\r\n`);
          return;
        }
        const up = connect(Number(upstream.port), upstream.hostname, () => up.write(first));
        up.on('error', () => client.destroy());
        client.on('close', () => up.destroy());
        up.on('close', () => client.destroy());
        client.pipe(up);
        up.pipe(client);
      });
    });
    await new Promise<void>((r) => proxy.listen(port, '127.0.0.1', r));
    try {
      const { cam, frames, statuses } = camera({ id: 'c-503', url: `rtsp://127.0.0.1:${port}${upstream.pathname}`, fps: 5, frameWidth: 256, idleFrameEverySec: 1 });
      cam.start();
      await until(() => frames.length > 0, 10_000, 'first frame (full decoding)');
      cam.setIdleDecode(true);
      await until(() => refused === 1, 5_000, 'the 503');
      const n0 = frames.length;
      await until(() => frames.length >= n0 + 2, 10_000, 'sampled keyframes after the retry');
      expect(cam.ffmpegPids).toHaveLength(1); // the agent's receiver, not ffmpeg's
      expect(cam.idleReceiver).toBe('agent');
      expect(cam.receiveCpuMs).toBeGreaterThan(0);
      expect(statuses.map((s) => s.state)).toEqual(['connecting', 'online']);
      expect(cam.status().reconnects).toBe(0);
    } finally {
      proxy.close();
    }
  });

  it.each(['digest', 'basic'] as const)('idle sampling of a camera that requires %s authentication: the agent receives the stream', async (method) => {
    const authed = await startSimCamera({ source: MASK_IMAGES, auth: { method, user: 'admin', password: 'pa ss:w0rd' } });
    try {
      const { cam, frames, statuses } = camera({ id: `c-auth-${method}`, url: authed.url, fps: 5, frameWidth: 256, idleFrameEverySec: 1 });
      cam.start();
      await until(() => frames.length > 0, 10_000, 'first frame (full decoding)');
      cam.setIdleDecode(true);
      await until(() => cam.receiveCpuMs > 0, 8_000, 'the agent receiving');
      const n0 = frames.length;
      await until(() => frames.length >= n0 + 2, 8_000, 'sampled keyframes');
      // One decoder: the agent's receiver authenticated (a fallback to ffmpeg's receiver would be two processes).
      expect(cam.ffmpegPids).toHaveLength(1);
      expect(cam.idleReceiver).toBe('agent');
      expect(statuses.map((s) => s.state)).toEqual(['connecting', 'online']);
      expect(Math.max(...frames.slice(-2).map(mean))).toBeGreaterThan(20);

      // Wrong password while idle: the agent's receiver gives way to ffmpeg's, whose error becomes the status.
      const bad = camera({ id: `c-auth-bad-${method}`, url: authed.url.replace('pa%20ss', 'nope') }, { backoff: { initialMs: 300 } });
      bad.cam.setIdleDecode(true);
      bad.cam.start();
      expect(bad.cam.idleReceiver).toBe('agent');
      await until(() => bad.cam.status().error !== null, 10_000, 'the bad camera\'s error');
      expect(bad.cam.status().error).toBe('unauthorized (RTSP 401): wrong or missing credentials');
      expect(bad.cam.idleReceiver).toBe('ffmpeg');
      expect(bad.frames).toHaveLength(0);
    } finally {
      await authed.stop();
    }
  });

  it('reports an unreachable camera with a clear error and backs off, while another camera keeps delivering', async () => {
    const closed = await freeTcpPort();
    const good = camera({ id: 'c-good', url: sim.urls[0]! });
    const bad = camera({ id: 'c-bad', url: `rtsp://admin:secret@127.0.0.1:${closed}/cam1` }, { backoff: { initialMs: 400, maxMs: 5_000 } });
    good.cam.start();
    bad.cam.start();
    await until(() => bad.statuses.filter((s) => s.state === 'connecting').length >= 4, 10_000, 'three reconnects of the bad camera');
    const st = bad.cam.status();
    expect(['offline', 'connecting']).toContain(st.state);
    expect(st.error).toBe('connection refused');
    expect(st.reconnects).toBeGreaterThanOrEqual(3);
    expect(JSON.stringify(bad.statuses)).not.toContain('secret');
    // Back-off: gaps between offline and the next attempt grow 400, 800, 1600 ms.
    const seq = bad.statuses;
    const gaps: number[] = [];
    for (let i = 1; i < seq.length; i++) if (seq[i]!.state === 'connecting' && seq[i - 1]!.state === 'offline') gaps.push(seq[i]!.at - seq[i - 1]!.at);
    expect(gaps.length).toBeGreaterThanOrEqual(3);
    expect(gaps[0]!).toBeGreaterThanOrEqual(350);
    expect(gaps[0]!).toBeLessThan(1_000);
    expect(gaps[1]!).toBeGreaterThan(gaps[0]! * 1.6);
    expect(gaps[2]!).toBeGreaterThan(gaps[1]! * 1.6);
    // The good camera was unaffected (its first frame may take a second under load: wait for 4, then check).
    await until(() => good.frames.length >= 4, 5_000, 'four frames of the good camera');
    expect(good.cam.status().state).toBe('online');
    expect(good.frames.length).toBeGreaterThanOrEqual(4);
    expect(good.statuses.filter((s) => s.state === 'offline')).toHaveLength(0);
  });

  it('names a wrong stream path', async () => {
    const { cam, statuses } = camera({ id: 'c-404', url: sim.url.replace(/cam1$/, 'nope') });
    cam.start();
    await until(() => statuses.some((s) => s.state === 'offline'), 10_000, 'offline');
    expect(cam.status().error).toBe('stream path not found (RTSP 404)');
  });
});

describe('CameraSource when the camera goes away', () => {
  it('goes offline with an error when the RTSP server stops, and back online when it returns', async () => {
    const own = await startSimCamera({ source: MASK_IMAGES, path: 'door', width: 640, height: 360, gop: 15 });
    try {
      const { cam, frames, statuses } = camera({ id: 'c-restart', url: own.url }, { backoff: { initialMs: 500 } });
      cam.start();
      await until(() => frames.length >= 2, 10_000, 'frames before the outage');
      const before = frames.length;
      const restarting = own.restart(2_500);
      await until(() => cam.status().state === 'offline', 8_000, 'offline');
      const off = cam.status();
      expect(off.error).toMatch(/stream ended|connection (refused|closed)/);
      await restarting;
      await until(() => frames.length >= before + 2, 15_000, 'frames after the outage');
      const st = cam.status();
      expect(st.state).toBe('online');
      expect(st.error).toBeNull();
      expect(st.reconnects).toBeGreaterThanOrEqual(1);
      const states = statuses.map((s) => s.state);
      expect(states.slice(0, 3)).toEqual(['connecting', 'online', 'offline']);
      expect(states.at(-1)).toBe('online');
      // While the server was down, attempts were refused with a readable reason.
      expect(statuses.some((s) => s.error === 'connection refused')).toBe(true);
      const after = frames.slice(before);
      expect(after[0]!.seq).toBe(before + 1);
      expect(Math.max(...after.map(mean))).toBeGreaterThan(20);
    } finally {
      await own.stop();
    }
  });

  it('restarts a camera that stalls with its connection open (watchdog), and recovers', async () => {
    const own = await startSimCamera({ source: MASK_IMAGES, path: 'frozen', width: 640, height: 360, gop: 15 });
    try {
      const { cam, frames, statuses } = camera({ id: 'c-stall', url: own.url }, { stallTimeoutMs: 2_000, backoff: { initialMs: 300 } });
      cam.start();
      await until(() => frames.length >= 2, 10_000, 'frames before the freeze');
      own.pause();
      const frozenAt = Date.now();
      await until(() => cam.status().state === 'offline', 6_000, 'offline after the freeze');
      expect(cam.status().error).toMatch(/^stalled: no frame for 2\.\d s$/);
      expect(Date.now() - frozenAt).toBeGreaterThanOrEqual(1_500);
      own.resume();
      const n = frames.length;
      await until(() => frames.length >= n + 2, 15_000, 'frames after resuming');
      expect(cam.status().state).toBe('online');
      expect(statuses.filter((s) => s.error?.startsWith('stalled')).length).toBeGreaterThanOrEqual(1);
    } finally {
      await own.stop();
    }
  });

  it('restarts a camera whose server accepts but never answers, and one that sends garbage', async () => {
    const garbage = Buffer.alloc(64 * 1024, 0x5a);
    const servers: Server[] = [];
    const listen = async (onConn: (s: import('node:net').Socket) => void) => {
      const port = await freeTcpPort();
      const srv = createServer(onConn);
      await new Promise<void>((r) => srv.listen(port, '127.0.0.1', r));
      servers.push(srv);
      return port;
    };
    const silentPort = await listen(() => undefined);
    const junkPort = await listen((s) => {
      s.on('error', () => undefined);
      s.on('data', () => s.write(garbage));
    });
    try {
      const silent = camera({ id: 'c-silent', url: `rtsp://127.0.0.1:${silentPort}/x` }, { connectTimeoutMs: 1_500, backoff: { initialMs: 300 } });
      const junk = camera({ id: 'c-junk', url: `rtsp://127.0.0.1:${junkPort}/x` }, { connectTimeoutMs: 1_500, backoff: { initialMs: 300 } });
      silent.cam.start();
      junk.cam.start();
      await until(() => silent.cam.status().reconnects >= 1 && junk.cam.status().reconnects >= 1, 10_000, 'both restarted');
      const errs = (x: typeof silent) => x.statuses.map((s) => s.error).filter(Boolean);
      expect(errs(silent)[0]).toMatch(/no frame within 1.5 s|timed out/);
      expect(errs(junk)[0]).toMatch(/invalid data|no frame within|RTSP|ffmpeg exited/);
      expect(silent.frames.length + junk.frames.length).toBe(0);
    } finally {
      for (const s of servers) s.close();
    }
  });
});

describe('CameraSource lifecycle', () => {
  it('reads a file:// video (looping) and stop() resolves after ffmpeg has exited', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cam-file-'));
    try {
      const clip = join(dir, 'clip.mp4');
      const imgs = readdirSync(MASK_IMAGES).filter((f) => f.endsWith('.jpg')).slice(0, 3);
      const inputs = imgs.flatMap((f) => ['-loop', '1', '-t', '1', '-i', join(MASK_IMAGES, f)]);
      const chain = imgs.map((_, i) => `[${i}:v]scale=480:270:force_original_aspect_ratio=decrease,pad=480:270:(ow-iw)/2:(oh-ih)/2,setsar=1,fps=10[v${i}]`).join(';');
      execFileSync('ffmpeg', ['-hide_banner', '-loglevel', 'error', ...inputs, '-filter_complex', `${chain};${imgs.map((_, i) => `[v${i}]`).join('')}concat=n=${imgs.length}:v=1[out]`, '-map', '[out]', '-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p', clip]);
      const { cam, frames } = camera({ id: 'c-file', url: pathToFileURL(clip).href, fps: 4, frameWidth: 240 });
      cam.start();
      await until(() => frames.length >= 14, 10_000, '14 frames (longer than the 3 s clip: it loops)');
      expect([frames[0]!.width, frames[0]!.height]).toEqual([240, 134]);
      expect(new Set(frames.map((f) => Math.round(mean(f)))).size).toBeGreaterThanOrEqual(2);
      // Idle sampling of a file goes through ffmpeg's receiver (the agent's own receives RTSP): two processes.
      cam.setIdleDecode(true);
      await until(() => cam.ffmpegPids.length === 2, 5_000, "ffmpeg's receiver and the decoder");
      const n0 = frames.length;
      await until(() => frames.length > n0, 10_000, 'a sampled frame');
      expect(cam.receiveCpuMs).toBe(0);
      expect(cam.idleReceiver).toBe('ffmpeg');
      const pgrep = () => spawnSync('pgrep', ['-f', clip], { encoding: 'utf8' }).stdout.trim();
      expect(pgrep()).not.toBe('');
      await cam.stop();
      expect(pgrep()).toBe('');
      expect(cam.status()).toMatchObject({ state: 'offline', error: 'stopped' });
      const n = frames.length;
      await sleep(600);
      expect(frames.length).toBe(n);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('never throws out of a listener or into other cameras', async () => {
    const { cam, frames } = camera({ id: 'c-throw', url: sim.urls[1]! });
    cam.on('frame', () => {
      throw new Error('listener bug');
    });
    cam.start();
    await until(() => frames.length >= 3, 10_000, 'frames despite a throwing listener');
    expect(cam.status().state).toBe('online');
  });
});

/**
 * CPU cost of one camera ingest (agent/camera) against ffmpeg decoding the same stream alone.
 *
 *   npx tsx scripts/bench-camera.ts [--source <image folder | video>] [--noise] [--seconds 20]
 *                                   [--size 1280x720] [--in-fps 15] [--gop 30] [--fps 2] [--width 640]
 *
 * Starts one simulated camera (scripts/sim-camera.ts) and measures, one after the other, for
 * `seconds` each after a warm-up: a bare `ffmpeg -i rtsp://... -f null -` (full decode, nothing
 * else), the CameraSource with full decoding, the same with the clip buffer (stream copied into
 * segments: `fullDecodeClips`), with keyframesOnly, and idle (a still camera: the
 * agent receives the stream, one ffmpeg decodes a keyframe every 5 s; `receivePct`, the agent's
 * receiving, is part of `nodePct`). CPU is read
 * from /proc/<pid>/stat of the ffmpeg child (user+system), Node's own share from process.cpuUsage().
 * `--noise` serves a generated clip with moving content and sensor-like noise (real cameras cost
 * more than a slideshow of still photos). Prints one JSON object on stdout.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CameraSource } from '../agent/camera/index.js';
import { startSimCamera } from './sim-camera.js';

const args = process.argv.slice(2);
const opt = (name: string, def: string): string => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] ? args[i + 1]! : def;
};
const seconds = Number(opt('seconds', '20'));
const [w, h] = opt('size', '1280x720').split('x').map(Number) as [number, number];
const inFps = Number(opt('in-fps', '15'));
const gop = Number(opt('gop', '30'));
const fps = Number(opt('fps', '2'));
const width = Number(opt('width', '640'));
const noise = args.includes('--noise');
const TICK = 100; // CLK_TCK on Linux

function cpuTicks(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(f[11]) + Number(f[12]); // utime + stime (fields 14, 15)
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** % of one core used by `pid` over `secs`, plus Node's own % over the same interval. */
async function measure(pids: readonly number[], secs: number): Promise<{ ffmpegPct: number; nodePct: number }> {
  const ticks = () => pids.reduce((sum, pid) => sum + cpuTicks(pid), 0);
  const t0 = process.hrtime.bigint();
  const c0 = ticks();
  const n0 = process.cpuUsage();
  await sleep(secs * 1000);
  const c1 = ticks();
  const n1 = process.cpuUsage(n0);
  const el = Number(process.hrtime.bigint() - t0) / 1e9;
  return {
    ffmpegPct: Math.round(((c1 - c0) / TICK / el) * 1000) / 10,
    nodePct: Math.round(((n1.user + n1.system) / 1e6 / el) * 1000) / 10,
  };
}

async function main(): Promise<void> {
  let tmp: string | null = null;
  let source = opt('source', new URL('../../shared/data/masks/images', import.meta.url).pathname);
  if (noise) {
    tmp = mkdtempSync(join(tmpdir(), 'bench-camera-'));
    source = join(tmp, 'noise.mp4');
    const r = spawnSync('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-f', 'lavfi', '-i', `testsrc2=size=${w}x${h}:rate=${inFps}:duration=10`,
      '-vf', 'noise=alls=12:allf=t', '-c:v', 'libx264', '-preset', 'ultrafast', '-b:v', '4M', '-pix_fmt', 'yuv420p', source]);
    if (r.status !== 0) throw new Error(`cannot make the noise clip: ${r.stderr}`);
  }
  const sim = await startSimCamera({ source, width: w, height: h, fps: inFps, gop, loop: true });
  const result: Record<string, unknown> = { source: noise ? 'generated 1280x720 moving test pattern + noise' : source, size: `${w}x${h}`, inFps, gop, fps, width, seconds };
  try {
    // Bare decode, same input flags as the ingest.
    const bare = spawn('ffmpeg', ['-hide_banner', '-nostdin', '-loglevel', 'error', '-rtsp_transport', 'tcp', '-analyzeduration', '0', '-probesize', '32', '-threads', '1', '-i', sim.url, '-f', 'null', '-'], { stdio: 'ignore' });
    await sleep(3000);
    result.bareDecode = (await measure([bare.pid!], seconds)).ffmpegPct;
    bare.kill('SIGKILL');
    const clipDir = mkdtempSync(join(tmpdir(), 'bk-bench-clips-'));
    for (const mode of ['fullDecode', 'fullDecodeClips', 'keyframesOnly', 'idle'] as const) {
      // fullDecodeClips: the same ffmpeg also copies the stream into the clip buffer's segments (agent/evidence/clips.ts).
      const cam = new CameraSource({ id: 'bench', url: sim.url, fps, keyframesOnly: mode === 'keyframesOnly', frameWidth: width },
        mode === 'fullDecodeClips' ? { clipSegments: { dir: clipDir, segmentSec: 2 } } : {});
      let frames = 0;
      cam.on('frame', () => frames++);
      cam.start();
      const t0 = Date.now();
      while (cam.status().state !== 'online' && Date.now() - t0 < 20_000) await sleep(100);
      // idle: what a still camera runs (the agent receives the stream, one ffmpeg decodes a keyframe every 5 s)
      if (mode === 'idle') cam.setIdleDecode(true);
      await sleep(mode === 'idle' ? 8000 : 3000);
      const f0 = frames;
      const r0 = cam.receiveCpuMs;
      const m = await measure(cam.ffmpegPids, seconds);
      // The agent's receiving (its socket handler), part of nodePct.
      const receivePct = Math.round(((cam.receiveCpuMs - r0) / 10 / seconds) * 100) / 100;
      result[mode] = { ...m, ...(mode === 'idle' ? { receivePct } : {}), framesPerSec: Math.round(((frames - f0) / seconds) * 100) / 100 };
      await cam.stop();
    }
    rmSync(clipDir, { recursive: true, force: true });
  } finally {
    await sim.stop();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  }
  process.stdout.write(JSON.stringify(result) + '\n');
}

main().catch((err) => {
  process.stderr.write(`bench-camera: ${(err as Error).message}\n`);
  process.exit(1);
});

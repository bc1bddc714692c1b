/**
 * Benchmark footage, encoded once and cached under var/bench/: a "busy" clip (photos of people from
 * the shared data sets, each held a few seconds while the view pans slowly, so every frame differs as
 * a real camera's would) and a "still" clip (one photo repeated). Both 15 fps H.264 with a fixed GOP,
 * encoded like scripts/sim-camera.ts encodes (libx264 ultrafast/zerolatency, one slice per frame,
 * SPS/PPS before every keyframe), stored as MPEG-TS so feeders can stream them with `-c copy`.
 *
 * Why not startSimCamera(): it re-encodes every mount live (one libx264 per camera). On a 2-core box
 * 16 live encoders would take most of the CPU the agent is being measured on; copying a pre-encoded
 * stream into the same GStreamer RTSP server costs next to nothing.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readdir, rename, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { REPO_ROOT } from '../../agent/detect/pack.js';

export const SHARED_DATA = path.resolve(REPO_ROOT, '../shared/data');
export const CACHE_DIR = path.join(REPO_ROOT, 'var/bench');

/** Mild temporal sensor noise, as a real camera has (and an encoder then has to spend bits on). */
const NOISE = 'noise=alls=3:allf=t';

export interface ClipOptions {
  width: number;
  height: number;
  fps: number;
  gop: number;
  /** Seconds each photo is held in the busy clip (long enough for the 3 s persistence of rules). */
  holdSec: number;
  /** Number of photos in the busy clip. */
  images: number;
}

export interface Clips {
  busy: string;
  still: string;
  busySeconds: number;
}

function run(cmd: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    p.stderr.setEncoding('utf8').on('data', (s: string) => (err = (err + s).slice(-3000)));
    p.once('error', reject);
    p.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`${cmd} exited ${code}: ${err.trim()}`))));
  });
}

function encoderArgs(o: ClipOptions, bitRate = '2500k'): string[] {
  return [
    // Like a real camera: a fixed bit rate (real cameras stream 2-4 Mbps at 720p), so decoding costs what it costs there.
    '-b:v', bitRate, '-maxrate', bitRate, '-bufsize', bitRate,
    '-c:v', 'libx264', '-preset', 'ultrafast', '-tune', 'zerolatency',
    '-g', String(o.gop), '-keyint_min', String(o.gop), '-sc_threshold', '0', '-bf', '0',
    '-x264-params', 'slices=1:sliced-threads=0:repeat-headers=1',
    '-pix_fmt', 'yuv420p', '-f', 'mpegts',
  ];
}

/** Photos for the busy clip: mostly the masks set (bare and masked faces), some COCO scenes. */
async function pickImages(n: number): Promise<string[]> {
  const list = async (d: string) => (await readdir(d)).filter((f) => /\.(jpe?g|png)$/i.test(f)).sort().map((f) => path.join(d, f));
  const masks = await list(path.join(SHARED_DATA, 'masks/images'));
  const coco = await list(path.join(SHARED_DATA, 'coco-sample'));
  const nCoco = Math.min(coco.length, Math.floor(n / 4));
  const picked: string[] = [];
  const nMasks = n - nCoco;
  for (let i = 0; i < nMasks && masks.length; i++) picked.push(masks[Math.floor((i * masks.length) / nMasks)]!);
  for (let i = 0; i < nCoco; i++) picked.push(coco[Math.floor((i * coco.length) / nCoco)]!);
  // Interleave so neighbouring cameras (offset by whole photos) do not all show COCO at once.
  return picked.sort((a, b) => createHash('md5').update(a).digest()[0]! - createHash('md5').update(b).digest()[0]!);
}

export async function prepareClips(o: ClipOptions, progress: (msg: string) => void): Promise<Clips> {
  const key = createHash('sha256').update(JSON.stringify({ v: 3, ...o })).digest('hex').slice(0, 12);
  const dir = path.join(CACHE_DIR, `clips-${key}`);
  const busy = path.join(dir, 'busy.ts');
  const still = path.join(dir, 'still.ts');
  const busySeconds = o.images * o.holdSec;
  if (existsSync(busy) && existsSync(still)) return { busy, still, busySeconds };
  await mkdir(CACHE_DIR, { recursive: true });
  const work = await mkdtemp(path.join(tmpdir(), 'bk-bench-'));
  try {
    const images = await pickImages(o.images);
    if (images.length === 0) throw new Error(`no images found under ${SHARED_DATA}/masks/images or coco-sample`);
    // Slightly larger than the output so the view can pan (every frame differs, like a real camera).
    const bw = Math.round(o.width * 1.1 / 2) * 2;
    const bh = Math.round(o.height * 1.1 / 2) * 2;
    progress(`encoding benchmark footage (${images.length} photos, ${busySeconds} s, once; cached in ${path.relative(REPO_ROOT, dir)})`);
    for (let i = 0; i < images.length; i++) {
      await sharp(images[i]!).rotate().resize(bw, bh, { fit: 'cover' }).removeAlpha().jpeg({ quality: 92 }).toFile(path.join(work, `${String(i).padStart(5, '0')}.jpg`));
    }
    const mx = (bw - o.width) / 2;
    const my = (bh - o.height) / 2;
    const tmpBusy = path.join(work, 'busy.ts');
    await run('ffmpeg', [
      '-hide_banner', '-nostdin', '-loglevel', 'error', '-y',
      '-framerate', `1/${o.holdSec}`, '-i', path.join(work, '%05d.jpg'),
      '-vf', `fps=${o.fps},tpad=stop_mode=clone:stop_duration=${o.holdSec},crop=${o.width}:${o.height}:x='${mx}+${mx - 2}*sin(2*PI*t/7)':y='${my}+${my - 2}*sin(2*PI*t/5)',${NOISE}`,
      '-t', String(busySeconds), ...encoderArgs(o), tmpBusy,
    ]);
    const tmpStill = path.join(work, 'still.ts');
    await run('ffmpeg', [
      '-hide_banner', '-nostdin', '-loglevel', 'error', '-y',
      '-loop', '1', '-framerate', String(o.fps), '-i', path.join(work, '00000.jpg'),
      '-vf', `crop=${o.width}:${o.height},${NOISE}`, '-t', '20', ...encoderArgs(o), tmpStill,
    ]);
    await mkdir(dir, { recursive: true });
    // Copy (tmp may be another file system), still first: busy.ts present means both are complete.
    await copyFile(tmpStill, still);
    await copyFile(tmpBusy, busy + '.part');
    await rename(busy + '.part', busy);
    return { busy, still, busySeconds };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/**
 * A camera's sub-stream (the second, smaller stream IP cameras offer for analytics): the busy and
 * still clips scaled to `o.width` x `o.height` at a sub-stream's bit rate (768 kbit/s; cameras ship
 * 512-1024 at 640x360), same rate and GOP, so frame for frame the same footage as the main stream.
 */
export async function prepareSubstream(main: Clips, o: ClipOptions, progress: (msg: string) => void): Promise<Clips> {
  const dir = path.dirname(main.busy);
  const tag = `sub-${o.width}x${o.height}`;
  const busy = path.join(dir, `busy-${tag}.ts`);
  const still = path.join(dir, `still-${tag}.ts`);
  if (existsSync(busy) && existsSync(still)) return { busy, still, busySeconds: main.busySeconds };
  progress(`encoding the sub-stream footage (${o.width}x${o.height}, once; cached in ${path.relative(REPO_ROOT, dir)})`);
  for (const [src, dst] of [[main.still, still], [main.busy, busy]] as const) {
    await run('ffmpeg', ['-hide_banner', '-nostdin', '-loglevel', 'error', '-y', '-i', src, '-vf', `scale=${o.width}:${o.height}`, ...encoderArgs(o, '768k'), dst + '.part']);
    await rename(dst + '.part', dst);
  }
  return { busy, still, busySeconds: main.busySeconds };
}

/**
 * Simulated RTSP camera: serves a video file or a folder of images as H.264 over RTSP on 127.0.0.1.
 *
 *   npm run sim-camera -- <video file | image folder> [--port 8554] [--path cam1 ...] [--count N]
 *                         [--fps 15] [--size 1280x720] [--gop 30] [--image-seconds 1] [--loop]
 *                         [--auth basic|digest:USER:PASSWORD]
 *
 * One GStreamer RTSP server process (scripts/rtsp-server.py) serves every mount point; one ffmpeg per
 * mount encodes the source (libx264 ultrafast/zerolatency, one slice per frame, SPS/PPS repeated before
 * every keyframe, fixed GOP) and sends RTP/H.264 over UDP to the server's udpsrc for that mount.
 * Image folders are first normalised with sharp (EXIF rotation, letterboxed to the size, JPEG; cached
 * in $TMPDIR/sim-camera-cache), since ffmpeg's concat/image2 demuxers cannot mix PNG and JPEG in one
 * stream; each mount starts at a different image so that several cameras do not show the same picture.
 *
 * Children are started under `setpriv --pdeathsig KILL` so they die with this process even when it is
 * killed with SIGKILL (a UDP sender would otherwise keep encoding forever).
 *
 * Library use (tests, benchmarks): `startSimCamera(options)`; see tests/helpers/rtsp.ts.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, statSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, extname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import sharp from 'sharp';
import { childLog } from '../common/log.js';
import { freeTcpPort, freeUdpPorts } from '../common/net.js';

export { freeTcpPort };

const logger = childLog({ mod: 'sim-camera' });
const HERE = dirname(fileURLToPath(import.meta.url));
const SERVER_SCRIPT = join(HERE, 'rtsp-server.py');
const PYTHON = '/usr/bin/python3'; // Debian's python has gi; a pyenv python on PATH does not
const IMAGE_EXTS = new Set(['.jpg', '.jpeg', '.png', '.webp', '.bmp', '.tif', '.tiff', '.gif']);
const PATH_RE = /^[A-Za-z0-9._-]+(\/[A-Za-z0-9._-]+)*$/;

export interface SimCameraOptions {
  /** A video file (any format ffmpeg reads) or a folder of images (jpg, png, webp, ...). */
  source: string;
  /** RTSP port; 0 or omitted picks a free port. */
  port?: number;
  /** Mount path(s), e.g. "cam1". Default ["cam1"], or cam1..camN with `count`. */
  path?: string | string[];
  /** Number of mount points cam1..camN (ignored when `path` is given). */
  count?: number;
  /** Output frame rate (default 15). */
  fps?: number;
  /** Output size; the source is scaled and letterboxed to it (default 1280x720). */
  width?: number;
  height?: number;
  /** Keyframe interval in frames (default 30). */
  gop?: number;
  /** Image folders: seconds each image is shown (default 1). */
  imageSeconds?: number;
  /** Loop the source forever (default true here; the CLI loops only with --loop). */
  loop?: boolean;
  /** Require these credentials, as real cameras do; `urls` then carry them (user:password@). */
  auth?: { method: 'basic' | 'digest'; user: string; password: string };
}

export interface SimCamera {
  /** URL of the first mount point, e.g. rtsp://127.0.0.1:40123/cam1. */
  readonly url: string;
  /** URLs of all mount points, in the order of `path` / cam1..camN. */
  readonly urls: string[];
  readonly port: number;
  /** Stop the server and the encoders (resolves when they have exited). Idempotent. */
  stop(): Promise<void>;
  /** Stop everything, stay down `downMs` (default 0), then serve again on the same port and paths. */
  restart(downMs?: number): Promise<void>;
  /** Start again after stop() on the same port and paths (no-op when running). */
  start(): Promise<void>;
  /**
   * Freeze the picture while connections stay open (SIGSTOP the encoders): what a hung camera looks
   * like to a client. `resume()` continues. Both are no-ops when stopped.
   */
  pause(): void;
  resume(): void;
  /** Resolves when the source ends (loop=false) or a child fails; rejects on a failure. */
  readonly done: Promise<void>;
}

interface Resolved {
  source: string;
  isDir: boolean;
  paths: string[];
  fps: number;
  width: number;
  height: number;
  gop: number;
  imageSeconds: number;
  loop: boolean;
  auth: SimCameraOptions['auth'] | null;
}

function resolveOptions(o: SimCameraOptions): Resolved {
  const source = resolve(o.source);
  if (!existsSync(source)) throw new Error(`sim-camera: source "${o.source}" does not exist`);
  const isDir = statSync(source).isDirectory();
  let paths: string[];
  if (o.path !== undefined) paths = (Array.isArray(o.path) ? o.path : [o.path]).map((p) => p.replace(/^\/+|\/+$/g, ''));
  else paths = Array.from({ length: o.count ?? 1 }, (_, i) => `cam${i + 1}`);
  if (paths.length === 0) throw new Error('sim-camera: expected at least one path');
  for (const p of paths) if (!PATH_RE.test(p)) throw new Error(`sim-camera: bad path "${p}" (letters, digits, ".", "_", "-", "/")`);
  if (new Set(paths).size !== paths.length) throw new Error(`sim-camera: duplicate path in ${paths.join(', ')}`);
  const fps = o.fps ?? 15;
  const width = o.width ?? 1280;
  const height = o.height ?? 720;
  const gop = o.gop ?? 30;
  const imageSeconds = o.imageSeconds ?? 1;
  if (!(fps > 0 && fps <= 60)) throw new Error(`sim-camera: fps ${fps} out of range (0, 60]`);
  for (const [k, v] of [['width', width], ['height', height]] as const)
    if (!Number.isInteger(v) || v < 16 || v > 4096 || v % 2) throw new Error(`sim-camera: ${k} ${v} must be an even integer 16..4096`);
  if (!Number.isInteger(gop) || gop < 1 || gop > 1000) throw new Error(`sim-camera: gop ${gop} must be an integer 1..1000`);
  if (!(imageSeconds > 0)) throw new Error(`sim-camera: image-seconds ${imageSeconds} must be > 0`);
  if (o.port !== undefined && (!Number.isInteger(o.port) || o.port < 0 || o.port > 65535))
    throw new Error(`sim-camera: port ${o.port} out of range`);
  return { source, isDir, paths, fps, width, height, gop, imageSeconds, loop: o.loop ?? true, auth: o.auth ?? null };
}


/**
 * Letterbox every image of `dir` to width x height JPEGs named 00000.jpg... Cached under
 * $TMPDIR/sim-camera-cache/<hash of folder, size, names, sizes and mtimes>, so a second start (tests,
 * benchmarks, the demo) costs nothing; a changed folder gets a new entry.
 */
async function prepareImages(dir: string, width: number, height: number): Promise<{ dir: string; count: number }> {
  const files = (await readdir(dir)).filter((f) => IMAGE_EXTS.has(extname(f).toLowerCase())).sort();
  if (files.length === 0) throw new Error(`sim-camera: no images (${[...IMAGE_EXTS].join(' ')}) in folder "${dir}"`);
  const h = createHash('sha1').update(`${dir}\n${width}x${height}\n`);
  for (const f of files) {
    const st = statSync(join(dir, f));
    h.update(`${f}\t${st.size}\t${st.mtimeMs}\n`);
  }
  const cacheRoot = join(tmpdir(), 'sim-camera-cache');
  const final = join(cacheRoot, h.digest('hex').slice(0, 16));
  const cached = await readdir(final).catch(() => null);
  if (cached) return { dir: final, count: cached.filter((f) => f.endsWith('.jpg')).length };

  await mkdir(cacheRoot, { recursive: true });
  const out = await mkdtemp(join(cacheRoot, 'tmp-'));
  let n = 0;
  const skipped: string[] = [];
  // Two at a time: the machine is small.
  for (let i = 0; i < files.length; i += 2) {
    const rs = await Promise.all(
      files.slice(i, i + 2).map(async (f) => {
        try {
          return await sharp(join(dir, f))
            .rotate()
            .resize(width, height, { fit: 'contain', background: { r: 0, g: 0, b: 0 } })
            .jpeg({ quality: 90 })
            .toBuffer();
        } catch {
          skipped.push(f);
          return null;
        }
      }),
    );
    for (const buf of rs) if (buf) await writeFile(join(out, `${String(n++).padStart(5, '0')}.jpg`), buf);
  }
  if (skipped.length) logger.warn({ dir, skipped }, 'sim-camera: unreadable images skipped');
  if (n === 0) {
    await rm(out, { recursive: true, force: true });
    throw new Error(`sim-camera: none of the ${files.length} images in "${dir}" could be read`);
  }
  try {
    await rename(out, final);
  } catch {
    // Another process prepared the same folder meanwhile: use theirs.
    await rm(out, { recursive: true, force: true });
  }
  return { dir: final, count: n };
}

/** Link folders ($TMPDIR/sim-camera-<pid>-*) left by processes that were killed before stop(). */
async function removeStaleLinkDirs(): Promise<void> {
  for (const d of await readdir(tmpdir()).catch(() => [] as string[])) {
    const m = /^sim-camera-(\d+)-/.exec(d);
    if (!m) continue;
    try {
      process.kill(Number(m[1]), 0);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ESRCH') await rm(join(tmpdir(), d), { recursive: true, force: true });
    }
  }
}

/** Per-mount folder (under `into`) of symlinks to `base`, rotated by `offset`, so mounts show different images. */
async function rotatedLinks(into: string, base: string, count: number, offset: number, name: string): Promise<string> {
  const d = join(into, `mount-${name.replace(/\//g, '_')}`);
  await mkdir(d, { recursive: true });
  for (let i = 0; i < count; i++) {
    const src = join(base, `${String((i + offset) % count).padStart(5, '0')}.jpg`);
    await symlink(src, join(d, `${String(i).padStart(5, '0')}.jpg`));
  }
  return d;
}

function encoderArgs(r: Resolved, udpPort: number): string[] {
  return [
    '-an',
    '-vf',
    r.isDir
      ? // Images arrive once per image-seconds: fps= would emit each image's frames in one burst when the
        // next image comes, so `realtime` paces the output like a real camera (and -re is not used).
        `fps=${r.fps},realtime,format=yuv420p`
      : `scale=${r.width}:${r.height}:force_original_aspect_ratio=decrease,pad=${r.width}:${r.height}:(ow-iw)/2:(oh-ih)/2,setsar=1,fps=${r.fps},format=yuv420p`,
    '-c:v', 'libx264',
    '-preset', 'ultrafast',
    '-tune', 'zerolatency',
    '-g', String(r.gop),
    '-keyint_min', String(r.gop),
    '-sc_threshold', '0',
    '-bf', '0',
    // One slice per frame and SPS/PPS before every keyframe: see rtsp-server.py on h264parse.
    '-x264-params', 'slices=1:sliced-threads=0:repeat-headers=1',
    '-threads', '1',
    '-f', 'rtp',
    `rtp://127.0.0.1:${udpPort}?pkt_size=1316`,
  ];
}

function spawnChild(cmd: string, args: string[], label: string): ChildProcess {
  const child = spawn('setpriv', ['--pdeathsig', 'KILL', '--', cmd, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let tail = '';
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (s: string) => {
    tail = (tail + s).slice(-2000);
  });
  (child as ChildProcess & { stderrTail: () => string }).stderrTail = () => tail.trim();
  child.on('error', (err) => logger.error({ err, label }, `sim-camera: cannot start ${cmd}`));
  return child;
}

function stderrTail(c: ChildProcess): string {
  return (c as ChildProcess & { stderrTail?: () => string }).stderrTail?.() ?? '';
}

/** Resolves when the child has exited; SIGKILL after `killAfterMs` if it has not. */
export function waitExit(c: ChildProcess, killAfterMs = 2000): Promise<void> {
  if (c.exitCode !== null || c.signalCode !== null) return Promise.resolve();
  return new Promise((res) => {
    const t = setTimeout(() => c.kill('SIGKILL'), killAfterMs);
    c.once('exit', () => {
      clearTimeout(t);
      res();
    });
  });
}

export async function startSimCamera(options: SimCameraOptions): Promise<SimCamera> {
  const r = resolveOptions(options);
  const autoPort = !options.port;
  let port = options.port || (await freeTcpPort());
  const udpPorts = await freeUdpPorts(r.paths.length);

  let prepared: { dir: string; count: number } | null = null;
  const mountDirs: string[] = [];
  if (r.isDir) {
    const images = await prepareImages(r.source, r.width, r.height);
    await removeStaleLinkDirs();
    prepared = { dir: await mkdtemp(join(tmpdir(), `sim-camera-${process.pid}-`)), count: images.count };
    const stride = Math.max(1, Math.floor(images.count / r.paths.length));
    for (let i = 0; i < r.paths.length; i++) mountDirs.push(await rotatedLinks(prepared.dir, images.dir, images.count, i * stride, r.paths[i]!));
  }

  let server: ChildProcess | null = null;
  let feeders: ChildProcess[] = [];
  let stopping = false;
  let running = false;
  let settleDone!: (err?: Error) => void;
  const done = new Promise<void>((res, rej) => {
    settleDone = (err) => (err ? rej(err) : res());
  });
  done.catch(() => undefined); // callers that never look at `done` must not see an unhandled rejection

  const feederArgs = (i: number): string[] => {
    const input = r.isDir
      ? ['-framerate', `1/${r.imageSeconds}`, ...(r.loop ? ['-loop', '1'] : []), '-i', join(mountDirs[i]!, '%05d.jpg')]
      : [...(r.loop ? ['-stream_loop', '-1'] : []), '-i', r.source];
    return ['-hide_banner', '-nostdin', '-loglevel', 'error', ...(r.isDir ? [] : ['-re']), ...input, ...encoderArgs(r, udpPorts[i]!)];
  };

  const launch = async (): Promise<void> => {
    stopping = false;
    const mountArgs = r.paths.flatMap((p, i) => ['--mount', `${p}=${udpPorts[i]}`]);
    if (r.auth) mountArgs.push('--auth', `${r.auth.method}:${r.auth.user}:${r.auth.password}`);
    for (let attempt = 0; ; attempt++) {
      const srv = spawnChild(PYTHON, [SERVER_SCRIPT, '--port', String(port), ...mountArgs], 'rtsp-server');
      const ok = await new Promise<boolean>((res) => {
        let out = '';
        srv.stdout!.setEncoding('utf8');
        srv.stdout!.on('data', (s: string) => {
          out += s;
          if (/^READY \d+/m.test(out)) res(true);
        });
        srv.once('exit', () => res(false));
      });
      if (ok) {
        server = srv;
        break;
      }
      const why = stderrTail(srv) || `exit code ${srv.exitCode}`;
      if (autoPort && attempt < 3 && /cannot listen/.test(why)) {
        port = await freeTcpPort();
        continue;
      }
      throw new Error(`sim-camera: RTSP server failed to start on 127.0.0.1:${port}: ${why}`);
    }
    server.on('exit', (code, sig) => {
      if (stopping) return;
      const why = `RTSP server exited (${sig ?? code}): ${stderrTail(server!)}`;
      logger.error(why);
      void stopAll().then(() => settleDone(new Error(`sim-camera: ${why}`)));
    });
    feeders = r.paths.map((p, i) => {
      const f = spawnChild('ffmpeg', feederArgs(i), `encoder ${p}`);
      f.on('exit', (code, sig) => {
        if (stopping) return;
        if (code === 0 && !r.loop) {
          logger.info({ path: p }, 'sim-camera: source ended');
          if (feeders.every((x) => x.exitCode !== null)) void stopAll().then(() => settleDone());
          return;
        }
        const why = `encoder for /${p} exited (${sig ?? code}): ${stderrTail(f)}`;
        logger.error(why);
        void stopAll().then(() => settleDone(new Error(`sim-camera: ${why}`)));
      });
      return f;
    });
    running = true;
  };

  const stopAll = async (): Promise<void> => {
    stopping = true;
    running = false;
    const kids = [...feeders, ...(server ? [server] : [])];
    for (const k of kids)
      if (k.exitCode === null && k.signalCode === null) {
        k.kill('SIGTERM');
        k.kill('SIGCONT'); // a paused encoder handles SIGTERM only once continued
      }
    await Promise.all(kids.map((k) => waitExit(k)));
    feeders = [];
    server = null;
  };

  try {
    await launch();
  } catch (err) {
    if (prepared) await rm(prepared.dir, { recursive: true, force: true });
    throw err;
  }
  const creds = r.auth ? `${encodeURIComponent(r.auth.user)}:${encodeURIComponent(r.auth.password)}@` : '';
  const urlOf = (p: string) => `rtsp://${creds}127.0.0.1:${port}/${p}`;
  logger.info({ urls: r.paths.map((p) => `rtsp://127.0.0.1:${port}/${p}`), source: r.source, auth: r.auth?.method ?? 'none' }, 'sim-camera: serving');
  let cleaned = false;

  return {
    get url() {
      return urlOf(r.paths[0]!);
    },
    get urls() {
      return r.paths.map(urlOf);
    },
    get port() {
      return port;
    },
    done,
    async stop() {
      await stopAll();
      if (prepared && !cleaned) {
        cleaned = true;
        await rm(prepared.dir, { recursive: true, force: true });
      }
      settleDone();
    },
    pause() {
      for (const f of feeders) if (f.exitCode === null) f.kill('SIGSTOP');
    },
    resume() {
      for (const f of feeders) if (f.exitCode === null) f.kill('SIGCONT');
    },
    async start() {
      if (running) return;
      if (cleaned) throw new Error('sim-camera: cannot start again after stop() removed its image links; use restart()');
      await launch();
    },
    async restart(downMs = 0) {
      await stopAll();
      if (downMs > 0) await new Promise((res) => setTimeout(res, downMs));
      await launch();
    },
  };
}

// ---------------------------------------------------------------------------------------------- CLI

function usage(): string {
  return 'usage: npm run sim-camera -- <video file | image folder> [--port 8554] [--path cam1 ...] [--count N] [--fps 15] [--size 1280x720] [--gop 30] [--image-seconds 1] [--loop] [--auth basic|digest:USER:PASSWORD]';
}

function parseCli(argv: string[]): SimCameraOptions {
  const o: SimCameraOptions = { source: '', port: 8554, loop: false };
  const paths: string[] = [];
  const num = (flag: string, v: string | undefined): number => {
    const n = Number(v);
    if (v === undefined || v === '' || !Number.isFinite(n)) throw new Error(`${flag}: expected a number, got "${v ?? ''}"`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const [flag, inline] = a.startsWith('--') && a.includes('=') ? [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)] : [a, undefined];
    const val = (): string | undefined => inline ?? argv[++i];
    switch (flag) {
      case '--port': o.port = num(flag, val()); break;
      case '--path': { const v = val(); if (!v) throw new Error('--path: expected a path such as cam1'); paths.push(v); break; }
      case '--count': o.count = num(flag, val()); break;
      case '--fps': o.fps = num(flag, val()); break;
      case '--gop': o.gop = num(flag, val()); break;
      case '--image-seconds': o.imageSeconds = num(flag, val()); break;
      case '--loop': o.loop = true; break;
      case '--auth': {
        const m = /^(basic|digest):([^:]+):(.*)$/.exec(val() ?? '');
        if (!m) throw new Error('--auth: expected basic|digest:USER:PASSWORD');
        o.auth = { method: m[1] as 'basic' | 'digest', user: m[2]!, password: m[3]! };
        break;
      }
      case '--size': {
        const v = val() ?? '';
        const m = /^(\d+)x(\d+)$/.exec(v);
        if (!m) throw new Error(`--size: expected WIDTHxHEIGHT such as 1280x720, got "${v}"`);
        o.width = Number(m[1]);
        o.height = Number(m[2]);
        break;
      }
      case '-h': case '--help': process.stdout.write(usage() + '\n'); process.exit(0);
      default:
        if (a.startsWith('-')) throw new Error(`unknown option "${a}"`);
        if (o.source) throw new Error(`unexpected argument "${a}" (source already "${o.source}")`);
        o.source = a;
    }
  }
  if (!o.source) throw new Error('expected a video file or image folder');
  if (paths.length) o.path = paths;
  return o;
}

async function main(): Promise<void> {
  let opts: SimCameraOptions;
  try {
    opts = parseCli(process.argv.slice(2));
  } catch (e) {
    process.stderr.write(`sim-camera: ${(e as Error).message}\n${usage()}\n`);
    process.exit(2);
  }
  let cam: SimCamera;
  try {
    cam = await startSimCamera(opts);
  } catch (e) {
    process.stderr.write(`${(e as Error).message}\n`);
    process.exit(1);
  }
  // The URLs are the program's output (one per line), for scripts and people alike.
  process.stdout.write(cam.urls.join('\n') + '\n');
  let exiting = false;
  const quit = (code: number) => {
    if (exiting) return;
    exiting = true;
    void cam.stop().then(() => process.exit(code));
  };
  process.on('SIGINT', () => quit(0));
  process.on('SIGTERM', () => quit(0));
  cam.done.then(
    () => quit(0),
    (err: Error) => {
      process.stderr.write(`${err.message}\n`);
      quit(1);
    },
  );
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) void main();

/**
 * CameraSource: one camera, one ffmpeg process. ffmpeg connects (RTSP over TCP, or a file for demos),
 * decodes, keeps the detection rate, scales to the configured width and writes RGB24 frames (PPM
 * framing, see ppm-splitter.ts) to stdout; this class cuts them into `frame` events, measures the
 * rate, and keeps the camera alive: any exit, stall or garbage ends the ffmpeg process and a new one
 * starts after an exponential back-off. Nothing here throws once constructed; failures become
 * `status` events (state offline + a readable error) and log lines.
 *
 * While the picture is still (setIdleDecode) only a keyframe every few seconds is decoded: the agent
 * receives an RTSP stream itself and feeds the sampled keyframes to the decoder (rtsp-receiver.ts);
 * a file, or a camera that receiver cannot serve, goes through a receiving ffmpeg (buildIdleIngest).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { mkdirSync } from 'node:fs';
import { setPriority } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { Writable, type Readable } from 'node:stream';
import ffmpeg, { type FfmpegCommand } from 'fluent-ffmpeg';
import { childLog, type Logger } from '../../common/log.js';
import { IDLE_FRAME_EVERY_SEC } from '../config/schema.js';
import { Backoff } from './backoff.js';
import { buildIdleIngest, buildIngestCommand, buildSampledDecoder, describeFfmpegExit, knownFfmpegReason, RTSP_IO_TIMEOUT_MS, type IngestCommand } from './ffmpeg.js';
import { redactUrl } from '../../common/redact.js';
import { PpmFrameSplitter } from './ppm-splitter.js';
import { RtspReceiver, RtspUnsupported } from './rtsp-receiver.js';
import { detectUrl, type CameraIngestConfig, type CameraSourceEvents, type CameraSourceOptions, type CameraSourceStatus, type CameraState, type Frame } from './types.js';

/**
 * Niceness of the decoders. When a decoder and a detection worker want the same core at the same
 * moment, detection goes first; a decoder still gets every cycle it needs while a core is free (a
 * 720p15 stream needs ~5 % of one), and at nice 10 it keeps about a quarter of a contended core.
 * Saturated 6 x 15 fps: 74 → 78 inferences/s with the decoders at nice 10 (docs/performance.md).
 */
export const DECODE_NICE = 10;

const STDERR_LINES = 40;
/** Kill reason of a planned restart with another decode mode (not a failure: no back-off, stays online). */
const MODE_SWITCH = 'decode mode switch';
const MAX_FRAME_TIMES = 256;
/** Idle sampling: wait before the one retry of a receiver that the camera answered with 5xx. */
const SERVER_BUSY_RETRY_MS = 500;

interface Attempt {
  id: number;
  cmd: FfmpegCommand;
  proc: ChildProcess | null;
  /** Idle sampling: the ffmpeg that receives the stream and passes one keyframe now and then to `proc`. */
  receiver: ChildProcess | null;
  /** Resolves once the receiver (if any) has exited. */
  receiverDone: Promise<void>;
  /** Idle sampling of an RTSP camera: the agent receives the stream itself and feeds `proc`. */
  rtsp: RtspReceiver | null;
  startedAt: number;
  onlineAt: number | null;
  stderr: string[];
  /** Set when this class ends the process on purpose (stall, corrupt data, stop). */
  killReason: string | null;
  killTimer: NodeJS.Timeout | null;
  settled: boolean;
  /** The clip segments' target of this run, or null. */
  segments: string | null;
  /** The main stream as the clip buffer's own input (a camera with a sub-stream), or null. */
  clipInput: string | null;
  done: Promise<void>;
  resolveDone: () => void;
}

export class CameraSource extends EventEmitter<CameraSourceEvents> {
  readonly id: string;
  private readonly cfg: CameraIngestConfig;
  private readonly log: Logger;
  private readonly stallMs: number;
  private readonly stallExplicit: boolean;
  /** Longest gap between two frames of the current connection (adapts the default stall timeout). */
  private longestGap = 0;
  private readonly connectMs: number;
  private readonly healthyMs: number;
  private readonly fpsWindowMs: number;
  private readonly ffmpegPath: string | undefined;
  private readonly backoff: Backoff;

  private running = false;
  private current: Attempt | null = null;
  private attempts = 0;
  private retryTimer: NodeJS.Timeout | null = null;
  private watchdog: NodeJS.Timeout | null = null;
  private frameTimes: number[] = [];
  private seq = 0;
  private st: CameraSourceStatus;
  /** The picture is still (setIdleDecode): one keyframe every idleFrameEverySec, see buildIdleIngest. */
  private idleKeyframes = false;
  /** ms between frames of the running idle sampling; 0 while decoding normally. */
  private samplingEveryMs = 0;
  /** The camera's server cannot serve the agent's RTSP receiver: idle sampling uses ffmpeg's. */
  private rtspUnsupported: string | null = null;
  private readonly clipSegments: { dir: string; segmentSec: number } | undefined;
  /** Why the clip buffer was switched off (it failed), or null. */
  private clipsFailed: string | null = null;
  /** When a paused clip buffer is tried again (its main stream failed), or null: off until restart. */
  private clipsRetryAt: number | null = null;
  /** CPU ms spent in the agent receiving this camera's stream (idle sampling), over ended attempts. */
  private receiveCpuEnded = 0;

  constructor(config: CameraIngestConfig, options: CameraSourceOptions = {}) {
    super();
    this.cfg = { ...config };
    this.id = config.id;
    this.log = childLog({ mod: 'camera', camera: config.id });
    if (!(config.fps > 0)) throw new Error(`camera ${config.id}: fps must be > 0, got ${config.fps}`);
    if (!Number.isInteger(config.frameWidth) || config.frameWidth < 2)
      throw new Error(`camera ${config.id}: frameWidth must be an integer >= 2, got ${config.frameWidth}`);
    for (const field of ['url', 'substreamUrl'] as const) {
      const u = config[field];
      if (u !== undefined && !/^(rtsps?|file):\/\/./.test(u)) throw new Error(`camera ${config.id}: ${field} must be rtsp://, rtsps:// or file://, got "${redactUrl(u)}"`);
    }
    this.stallMs = options.stallTimeoutMs ?? Math.max(10_000, 4_000 / config.fps);
    this.stallExplicit = options.stallTimeoutMs !== undefined;
    this.connectMs = options.connectTimeoutMs ?? Math.max(15_000, this.stallMs);
    this.healthyMs = options.backoff?.healthyMs ?? 30_000;
    this.fpsWindowMs = options.fpsWindowMs ?? 5_000;
    this.ffmpegPath = options.ffmpegPath ?? process.env.FFMPEG_PATH;
    this.clipSegments = options.clipSegments;
    this.backoff = new Backoff(options.backoff?.initialMs ?? 1_000, options.backoff?.maxMs ?? 30_000);
    this.st = { cameraId: config.id, state: 'offline', lastFrameAt: null, fps: 0, error: null, reconnects: 0, frames: 0, since: Date.now() };
  }

  /** Current status; fps is measured over the last few seconds. */
  status(): CameraSourceStatus {
    return { ...this.st, fps: this.measureFps(Date.now()) };
  }

  /** Process ids of the running ffmpeg (decoder first, then ffmpeg's receiver of idle sampling); empty between attempts. */
  get ffmpegPids(): number[] {
    const a = this.current;
    return [a?.proc?.pid, a?.receiver?.pid].filter((p): p is number => p !== undefined);
  }

  /** Who receives the stream during idle sampling: the agent itself (RTSP), or ffmpeg (files, fallback). */
  get idleReceiver(): 'agent' | 'ffmpeg' {
    return detectUrl(this.cfg).startsWith('rtsp://') && !this.rtspUnsupported ? 'agent' : 'ffmpeg';
  }

  /** CPU ms the agent itself spent receiving this camera's stream (idle sampling of an RTSP camera). */
  get receiveCpuMs(): number {
    return this.receiveCpuEnded + (this.current?.rtsp?.cpuMs ?? 0);
  }

  /** Connects and keeps reconnecting until stop(). Idempotent. */
  start(): void {
    if (this.running) return;
    this.running = true;
    this.backoff.reset();
    this.st.reconnects = 0;
    const sub = this.cfg.substreamUrl;
    this.log.info({ url: redactUrl(this.cfg.url), ...(sub ? { substreamUrl: redactUrl(sub) } : {}), fps: this.cfg.fps, frameWidth: this.cfg.frameWidth, keyframesOnly: this.cfg.keyframesOnly }, 'camera starting');
    this.watchdog = setInterval(() => this.checkWatchdog(), 250);
    this.watchdog.unref();
    this.connect();
  }

  /** Stops reconnecting and ends ffmpeg; resolves once the process has exited. */
  async stop(): Promise<void> {
    if (!this.running && !this.current) return;
    this.running = false;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    if (this.watchdog) clearInterval(this.watchdog);
    this.retryTimer = this.watchdog = null;
    const a = this.current;
    if (a) {
      this.kill(a, 'stopped');
      await Promise.all([a.done, a.receiverDone]);
    }
    this.current = null;
    this.frameTimes = [];
    this.setState('offline', 'stopped');
    this.log.info('camera stopped');
  }

  /**
   * Decode one keyframe every `idleFrameEverySec` (true) or every frame (false) from now on. Used while
   * the picture is still: decoding is then most of a camera's cost, and the motion gate needs only a
   * frame now and then to notice a change. Restarts ffmpeg at once, without going offline or counting
   * a reconnect; a camera configured `keyframesOnly` stays as it is.
   */
  setIdleDecode(keyframesOnly: boolean): void {
    if (this.idleKeyframes === keyframesOnly) return;
    this.idleKeyframes = keyframesOnly;
    if (this.cfg.keyframesOnly) return;
    this.log.info({ decode: keyframesOnly ? 'keyframes' : 'full' }, 'decode mode');
    const a = this.current;
    // Also while connecting: that attempt was started in the other mode. Between attempts the next one picks it up.
    if (this.running && a) this.kill(a, MODE_SWITCH);
  }

  /** Whether ffmpeg decodes keyframes only (configured, or sampled because the picture is still). */
  get keyframesOnly(): boolean {
    return this.cfg.keyframesOnly || this.idleKeyframes;
  }

  // ------------------------------------------------------------------------------------ internals

  private connect(): void {
    this.retryTimer = null;
    if (!this.running) return;
    const everySec = this.cfg.idleFrameEverySec ?? IDLE_FRAME_EVERY_SEC;
    const idle = this.idleKeyframes && !this.cfg.keyframesOnly;
    this.samplingEveryMs = idle ? everySec * 1000 : 0;
    let resolveDone!: () => void;
    const done = new Promise<void>((r) => (resolveDone = r));
    const a: Attempt = {
      id: ++this.attempts,
      cmd: ffmpeg({ stdoutLines: STDERR_LINES }),
      proc: null,
      receiver: null,
      receiverDone: Promise.resolve(),
      rtsp: null,
      startedAt: Date.now(),
      onlineAt: null,
      stderr: [],
      killReason: null,
      killTimer: null,
      settled: false,
      segments: null,
      clipInput: null,
      done,
      resolveDone,
    };
    this.current = a;
    this.frameTimes = [];
    this.longestGap = 0;
    // A decode-mode switch keeps the camera online (the watchdog still catches a stream that does not come back).
    if (this.st.state !== 'online') this.setState('connecting', this.st.error);

    if (!idle) this.launch(a, buildIngestCommand(this.cfg, this.segmentOutput()));
    else if (this.idleReceiver === 'agent') this.receiveRtsp(a, everySec);
    else {
      const { receiver, decoder } = buildIdleIngest(this.cfg, everySec);
      this.launch(a, decoder, this.startReceiver(a, receiver).stdout!);
    }
  }

  /** The clip buffer's output for the next full-decode run, unless it is off or has failed. */
  private segmentOutput() {
    const c = this.clipSegments;
    if (!c) return undefined;
    if (this.clipsFailed) {
      if (this.clipsRetryAt === null || Date.now() < this.clipsRetryAt) return undefined;
      this.clipsFailed = null;
      this.log.info('clip buffer: trying the main stream again');
    }
    try {
      mkdirSync(c.dir, { recursive: true });
    } catch (err) {
      this.disableClips(`cannot create ${c.dir}: ${(err as Error).message}`);
      return undefined;
    }
    return { dir: c.dir, prefix: String(Date.now()), segmentSec: c.segmentSec };
  }

  /** A broken clip buffer (full or read-only disk) must not take the camera down: decode without it. */
  private disableClips(reason: string, retryMs?: number): void {
    this.clipsFailed = reason;
    this.clipsRetryAt = retryMs === undefined ? null : Date.now() + retryMs;
    if (retryMs === undefined) this.log.error({ reason }, 'clip buffer off for this camera until the agent restarts; detection goes on');
    else this.log.error({ reason, retryInMs: retryMs }, 'clip buffer paused: the main stream failed; detection goes on with the sub-stream');
  }

  /**
   * Idle sampling of an RTSP camera: the agent receives the stream (rtsp-receiver.ts) and feeds the
   * sampled keyframes to a decoder. A server that cannot serve that receiver is remembered, and idle
   * sampling of this camera goes through ffmpeg's receiver from then on.
   */
  private receiveRtsp(a: Attempt, everySec: number, retried = false): void {
    let rx: RtspReceiver;
    try {
      rx = new RtspReceiver({ url: detectUrl(this.cfg), everySec, timeoutMs: RTSP_IO_TIMEOUT_MS });
    } catch (err) {
      this.rtspUnsupported = (err as Error).message;
      a.killReason = MODE_SWITCH;
      this.settle(a, null, null);
      return;
    }
    if (a.rtsp) this.receiveCpuEnded += a.rtsp.cpuMs; // the one retried
    a.rtsp = rx;
    // The connection ended while decoding: end the attempt with its reason (ffmpeg's wording).
    rx.on('closed', (reason) => this.fail(a, knownFfmpegReason([reason]) ?? reason));
    rx.start().then(
      (codec) => {
        if (a.killReason || a.settled) this.settle(a, null, null);
        else this.launch(a, buildSampledDecoder(this.cfg, codec === 'H264' ? 'h264' : 'hevc'), rx.output);
      },
      (err: Error) => {
        rx.stop();
        // A server that shares one stream among its clients may answer 503 while it tears down the
        // stream the full-decoding ffmpeg just left: once, try again shortly instead of going offline.
        if (!retried && !a.killReason && / failed: 5\d\d /.test(err.message)) {
          setTimeout(() => (a.killReason ? this.settle(a, null, null) : this.receiveRtsp(a, everySec, true)), SERVER_BUSY_RETRY_MS);
          return;
        }
        if (err instanceof RtspUnsupported) {
          this.rtspUnsupported = err.message;
          this.log.info({ reason: err.message }, 'idle sampling through ffmpeg: the camera cannot serve the agent\'s RTSP receiver');
          a.killReason ??= MODE_SWITCH;
        }
        keepStderr(a, err.message);
        this.settle(a, null, null);
      },
    );
  }

  /** Runs the decoding ffmpeg of an attempt: frames from its stdout become `frame` events. */
  private launch(a: Attempt, c: IngestCommand, input?: Readable): void {
    const cmd = a.cmd;
    const splitter = new PpmFrameSplitter((data, width, height) => this.onFrame(a, data, width, height));
    const sink = new Writable({
      write: (chunk: Buffer, _enc, cb) => {
        if (!a.killReason) {
          try {
            splitter.push(chunk);
          } catch (err) {
            this.fail(a, `corrupt frame data from ffmpeg: ${(err as Error).message}`);
          }
        }
        cb();
      },
    });
    sink.on('error', () => undefined);

    if (this.ffmpegPath) cmd.setFfmpegPath(this.ffmpegPath);
    a.segments = c.segments?.target ?? null;
    a.clipInput = c.clipInput?.input ?? null;
    cmd.input(input ?? c.input).inputOptions(...c.inputOptions);
    if (c.clipInput) cmd.input(c.clipInput.input).inputOptions(...c.clipInput.options);
    cmd
      .videoFilters(c.filter)
      .outputOptions(...c.outputOptions)
      .format(c.format)
      .videoCodec(c.codec)
      .on('start', (line: string) => {
        const proc = (cmd as unknown as { ffmpegProc?: ChildProcess }).ffmpegProc ?? null;
        a.proc = proc;
        this.log.debug({ cmd: redactUrl(line) }, 'ffmpeg started');
        if (!proc) return;
        try {
          if (proc.pid !== undefined) setPriority(proc.pid, DECODE_NICE);
        } catch {
          /* exited already: its 'close' settles the attempt */
        }
        proc.once('close', (code, signal) => this.settle(a, code, signal));
        if (a.killReason) this.signal(a);
      })
      .on('stderr', (line: string) => keepStderr(a, line))
      .on('error', (err: Error) => {
        // After a spawn, 'close' settles the attempt (it waits for the real exit); before one
        // (ffmpeg missing, capability check failed) this is the only signal.
        if (!a.proc || a.proc.pid === undefined) {
          a.stderr.push(err.message);
          this.settle(a, null, null);
        }
      })
      .on('end', () => {
        if (!a.proc) this.settle(a, 0, null);
      });
    try {
      // The frames first (the options above are theirs), then the clip segments if any.
      cmd.output(sink, { end: true });
      if (c.segments) cmd.output(c.segments.target).outputOptions(...c.segments.options);
      cmd.run();
    } catch (err) {
      a.stderr.push((err as Error).message);
      this.settle(a, null, null);
    }
  }

  /**
   * The receiving half of idle sampling. Its stdout feeds the decoder's stdin, its stderr joins the
   * attempt's (the reasons of a failed connection are there); when it exits the decoder reads the end
   * of its input and exits too, which ends the attempt as usual.
   */
  private startReceiver(a: Attempt, args: string[]): ChildProcess {
    const rx = spawn(this.ffmpegPath ?? 'ffmpeg', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    a.receiver = rx;
    a.receiverDone = new Promise((resolve) => {
      rx.once('close', () => resolve());
      rx.once('error', () => resolve()); // not started (its stdout ends, and the decoder with it)
    });
    createInterface({ input: rx.stderr! }).on('line', (line) => keepStderr(a, line));
    rx.on('error', (err) => keepStderr(a, err.message));
    try {
      if (rx.pid !== undefined) setPriority(rx.pid, DECODE_NICE);
    } catch {
      /* exited already */
    }
    return rx;
  }

  private onFrame(a: Attempt, data: Buffer, width: number, height: number): void {
    if (a !== this.current || a.killReason) return;
    const now = Date.now();
    if (a.onlineAt !== null && this.st.lastFrameAt !== null) this.longestGap = Math.max(this.longestGap, now - this.st.lastFrameAt);
    this.st.lastFrameAt = now;
    a.onlineAt ??= now;
    this.st.frames++;
    this.frameTimes.push(now);
    if (this.frameTimes.length > MAX_FRAME_TIMES) this.frameTimes.splice(0, this.frameTimes.length - MAX_FRAME_TIMES);
    if (this.st.state !== 'online') {
      this.setState('online', null);
      this.log.info({ width, height, afterMs: now - a.startedAt }, 'camera online');
    }
    const frame: Frame = { cameraId: this.id, seq: ++this.seq, capturedAt: now, width, height, data };
    try {
      this.emit('frame', frame);
    } catch (err) {
      this.log.error({ err }, 'a frame listener threw; frame dropped for the remaining listeners');
    }
  }

  private checkWatchdog(): void {
    const a = this.current;
    if (!a || a.killReason || !this.running) return;
    const now = Date.now();
    if (this.st.state === 'online') {
      const since = now - (this.st.lastFrameAt ?? a.startedAt);
      // Default timeout: at least 3x the longest gap seen on this connection (keyframes-only on a
      // camera with a long GOP delivers a frame every few seconds), at most 60 s.
      const usual = this.stallExplicit ? this.stallMs : Math.min(60_000, Math.max(this.stallMs, 3 * this.longestGap));
      // Idle sampling delivers a frame every idleFrameEverySec by design (plus up to a GOP after a restart).
      const limit = Math.max(usual, 3 * this.samplingEveryMs);
      if (since > limit) this.fail(a, `stalled: no frame for ${(since / 1000).toFixed(1)} s`);
    } else if (now - a.startedAt > this.connectMs) {
      const known = knownFfmpegReason(a.stderr);
      const base = `no frame within ${(this.connectMs / 1000).toFixed(1)} s of connecting`;
      this.fail(a, known ? `${known} (${base})` : base);
    }
  }

  /** End this attempt on purpose; the exit handler then reports `reason` and schedules a retry. */
  private fail(a: Attempt, reason: string): void {
    if (a.settled || a.killReason) return;
    this.log.warn({ reason }, 'restarting ffmpeg');
    this.kill(a, reason);
  }

  private kill(a: Attempt, reason: string): void {
    if (a.settled) return;
    a.killReason ??= reason;
    this.signal(a);
  }

  /** SIGTERM (ffmpeg quits at its next I/O check), SIGKILL if it is still there 1.5 s later. */
  private signal(a: Attempt): void {
    if (a.receiver?.exitCode === null) a.receiver.kill('SIGTERM');
    a.rtsp?.stop();
    const p = a.proc;
    // No decoder yet: a receiver still setting up settles the attempt when it fails or finishes (receiveRtsp).
    if (!p || a.settled || a.killTimer) return;
    p.kill('SIGTERM');
    a.killTimer = setTimeout(() => {
      if (!a.settled) p.kill('SIGKILL');
    }, 1_500);
  }

  private settle(a: Attempt, code: number | null, signal: NodeJS.Signals | string | null): void {
    if (a.settled) return;
    a.settled = true;
    if (a.killTimer) clearTimeout(a.killTimer);
    // The decoder is gone: its receiver has nobody to feed.
    if (a.receiver && a.receiver.exitCode === null && a.receiver.signalCode === null) a.receiver.kill('SIGKILL');
    if (a.rtsp) {
      a.rtsp.stop();
      this.receiveCpuEnded += a.rtsp.cpuMs;
    }
    a.resolveDone();
    if (a !== this.current) return;
    this.current = null;
    if (!this.running) return;
    if (a.killReason === MODE_SWITCH) {
      this.connect();
      return;
    }
    const mainFailed = a.clipInput && !a.killReason ? a.stderr.filter((l) => l.startsWith(`${a.clipInput}: `)).at(-1) : undefined;
    // ffmpeg names the output that failed ("…/1717-%06d.ts: No space left on device", "Failed to open segment").
    if (a.segments && !a.killReason && a.stderr.some((l) => l.includes(path.dirname(a.segments!)) || /segment/i.test(l))) {
      this.disableClips(a.stderr.slice(-3).join(' | ').slice(0, 300));
    }
    // ffmpeg names the input that failed ("rtsp://…/main: Connection refused"). The main stream of a
    // camera with a sub-stream feeds only the clips: its failure pauses them, not detection.
    else if (mainFailed) this.disableClips(`main stream: ${redactUrl(mainFailed)}`, CLIPS_RETRY_MS);
    let reason = a.killReason ?? describeFfmpegExit(a.stderr, code, signal,
      { network: !detectUrl(this.cfg).startsWith('file://'), gotFrame: a.onlineAt !== null, ranMs: Date.now() - a.startedAt });
    if (reason === 'stream ended' && !detectUrl(this.cfg).startsWith('file://')) reason = 'stream ended: the camera closed the connection';
    const now = Date.now();
    if (a.onlineAt !== null && now - a.onlineAt >= this.healthyMs) this.backoff.reset();
    const delay = this.backoff.next();
    this.frameTimes = [];
    this.setState('offline', reason);
    this.log.warn({ reason, code, signal, retryInMs: delay, stderr: a.stderr.slice(-5).map(redactUrl) }, 'camera offline');
    this.retryTimer = setTimeout(() => {
      this.st.reconnects++;
      this.connect();
    }, delay);
  }

  private setState(state: CameraState, error: string | null): void {
    const changed = state !== this.st.state || error !== this.st.error || state === 'connecting';
    if (!changed) return;
    if (state !== this.st.state) this.st.since = Date.now();
    this.st.state = state;
    this.st.error = error === null ? null : redactUrl(error);
    try {
      this.emit('status', this.status());
    } catch (err) {
      this.log.error({ err }, 'a status listener threw');
    }
  }

  private measureFps(now: number): number {
    if (this.st.state !== 'online' || this.frameTimes.length === 0) return 0;
    const from = now - this.fpsWindowMs;
    let n = 0;
    for (let i = this.frameTimes.length - 1; i >= 0 && this.frameTimes[i]! > from; i--) n++;
    const onlineAt = this.current?.onlineAt ?? now;
    if (now - onlineAt >= this.fpsWindowMs) return Math.round((n / (this.fpsWindowMs / 1000)) * 100) / 100;
    // Younger than the window: rate since the first frame of this connection.
    if (n < 2) return 0;
    const first = this.frameTimes[this.frameTimes.length - n]!;
    return Math.round(((n - 1) / (Math.max(1, now - first) / 1000)) * 100) / 100;
  }
}

/** A clip buffer paused because the main stream failed is tried again after this long. */
export const CLIPS_RETRY_MS = 10 * 60_000;

/** The last STDERR_LINES lines of an attempt's ffmpeg processes, for the reason of an exit. */
function keepStderr(a: Attempt, line: string): void {
  a.stderr.push(line);
  if (a.stderr.length > STDERR_LINES) a.stderr.shift();
}

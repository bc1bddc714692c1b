/**
 * The benchmark's phases. Each phase measures one thing, one after the other in the same process,
 * so the ratios (pipeline vs bare models, agent's ffmpeg vs bare ffmpeg) come from one run.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import mqtt from 'mqtt';
import sharp from 'sharp';
import { Agent } from '../../agent/agent.js';
import { buildIngestCommand } from '../../agent/camera/index.js';
import { SiteConfigSchema, type SiteConfig } from '../../agent/config/schema.js';
import { DEFAULT_PACK, ModelPack, type Detection, type RgbImage } from '../../agent/detect/index.js';
import { isWanted, type PackDetectOptions } from '../../agent/detect/model.js';
import type { WorkerPack } from '../../agent/detect/workers.js';
import type { Detector } from '../../agent/pipeline.js';
import { RuleEngine, rulesForSite } from '../../agent/rules/index.js';
import { topics } from '../../protocol/topics.js';
import { SHARED_DATA } from './media.js';
import { freeTcpPort, spawnChild, waitExit, type Feed } from './feed.js';
import { CpuMeter } from './procstat.js';

export interface BenchOptions {
  cameras: number;
  fps: number;
  seconds: number;
  threads: number;
  frameWidth: number;
  keyframesOnly: boolean;
  motion: boolean;
  warmupSec: number;
  bareSec: number;
  decodeSec: number;
  gateSec: number;
  /** Cameras' idleKeyframesAfterSec (default: the agent's). */
  idleAfterSec?: number;
  /**
   * Give every camera a whole-frame food zone: the animal rule is then active during service hours
   * too, so every model of the pack runs on every frame (the most expensive case). Without it the
   * cameras have no zones and, in service hours, only the face model is wanted by the rules.
   */
  foodZones: boolean;
  /** The kitchen is closed during the run (service hours elsewhere in the day): the night's models run. */
  night: boolean;
  /** Every camera gets a raw and a cooked zone (left and right half) and the site a board colour code. */
  boardZones: boolean;
  /** Clip buffers on the cameras (agent default). */
  clips: boolean;
  /** Every camera also streams a 640x360 sub-stream, which detection decodes (camera `substreamUrl`). */
  substream: boolean;
}

/** Service hours that exclude the next hours in the site's time zone (for --night). */
export function closedNow(timezone: string, now = Date.now()): { from: string; to: string }[] {
  const hour = Number(new Intl.DateTimeFormat('en-GB', { timeZone: timezone, hour: '2-digit', hourCycle: 'h23' }).format(now));
  const hh = (h: number) => `${String(((h % 24) + 24) % 24).padStart(2, '0')}:00`;
  return [{ from: hh(hour + 3), to: hh(hour + 4) }];
}

export const progress = (msg: string): void => void process.stderr.write(`bench: ${msg}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const SITE = 'bench-site';

export function quantile(xs: readonly number[], q: number): number | null {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  const i = (s.length - 1) * q;
  const lo = Math.floor(i);
  const hi = Math.ceil(i);
  return s[lo]! + (s[hi]! - s[lo]!) * (i - lo);
}

/** Whole-machine CPU busy seconds (all cores) from /proc/stat, to tell how busy others kept it. */
export function machineBusySec(): number {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const [user, nice, system, _idle, _iowait, irq, softirq, steal] = line as [number, number, number, number, number, number, number, number];
  return (user + nice + system + irq + softirq + steal) / 100;
}

export function loadAvg(): number {
  return Number(readFileSync('/proc/loadavg', 'utf8').split(' ')[0]);
}

/** One frame as the agent would see it: a photo of people at frameWidth (16:9). */
export async function sampleFrame(width: number): Promise<RgbImage> {
  const height = Math.round((width * 9) / 16 / 2) * 2;
  const { data, info } = await sharp(path.join(SHARED_DATA, 'masks/images/11-photo.jpg'))
    .resize(width, height, { fit: 'cover' })
    .removeAlpha()
    .raw()
    .toBuffer({ resolveWithObject: true });
  return { width: info.width, height: info.height, data };
}

// ------------------------------------------------------------------------------------ mosquitto

export interface Broker {
  url: string;
  pid: number | undefined;
  stop(): Promise<void>;
}

export async function startBroker(): Promise<Broker> {
  const port = await freeTcpPort();
  const dir = mkdtempSync(path.join(tmpdir(), 'bk-bench-mqtt-'));
  const conf = path.join(dir, 'mosquitto.conf');
  writeFileSync(conf, `listener ${port} 127.0.0.1\nallow_anonymous true\npersistence false\nlog_dest none\n`);
  const p = spawnChild('mosquitto', ['-c', conf]);
  const url = `mqtt://127.0.0.1:${port}`;
  for (let i = 0; ; i++) {
    try {
      const c = await mqtt.connectAsync(url, { reconnectPeriod: 0, connectTimeout: 1000 });
      await c.endAsync();
      break;
    } catch (err) {
      if (p.exitCode !== null || i > 50) throw new Error(`mosquitto did not start: ${p.tail() || (err as Error).message}`);
      await sleep(100);
    }
  }
  return {
    url,
    pid: p.pid,
    async stop() {
      p.kill('SIGTERM');
      await waitExit(p);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

// ------------------------------------------------------------------------------- bare decoding

/** ffmpeg alone, exactly the agent's ingest command per camera, frames thrown away: CPU % of one core. */
export async function bareDecode(o: BenchOptions, urls: readonly string[]): Promise<{ cpuPercent: number; perCamera: number; restarts: number }> {
  let stopping = false;
  let restarts = 0;
  const lastOutput: number[] = urls.map(() => 0);
  const kids: ReturnType<typeof spawnChild>[] = [];
  // Like the agent's camera, restart an ffmpeg that gives up (an RTSP mount answers only once its media runs).
  const launch = (i: number) => {
    const c = buildIngestCommand({ id: `cam${i}`, url: urls[i]!, fps: o.fps, keyframesOnly: o.keyframesOnly, frameWidth: o.frameWidth });
    const k = spawnChild('ffmpeg', [...c.inputOptions, '-i', c.input, '-filter:v', c.filter, ...c.outputOptions, '-f', c.format, '-c:v', c.codec, 'pipe:1']);
    kids[i] = k;
    // Frames are read and thrown away here (as cheap as it gets); their arrival says the camera decodes.
    k.stdout!.removeAllListeners('data');
    k.stdout!.on('data', () => (lastOutput[i] = Date.now()));
    k.once('exit', () => {
      if (stopping) return;
      restarts++;
      if (process.env.BENCH_DEBUG) progress(`decode ${i} exited: ${k.tail().slice(-300)}`);
      setTimeout(() => !stopping && launch(i), 500);
    });
  };
  urls.forEach((_, i) => launch(i));
  try {
    // Measure once every ffmpeg delivers frames (at most 30 s), after a short warm-up.
    const begun = Date.now();
    const live = () => lastOutput.every((t) => Date.now() - t < Math.max(1500, 2000 / o.fps));
    while (!live() && Date.now() - begun < 30_000) await sleep(250);
    if (!live()) progress(`bare decode: ${lastOutput.filter((t) => Date.now() - t >= 2000).length} camera(s) deliver no frames; measuring anyway`);
    await sleep(Math.min(2000, o.warmupSec * 1000));
    const meter = new CpuMeter(() => kids.map((k) => k.pid!).filter(Boolean));
    meter.sample();
    const t0 = performance.now();
    const r0 = restarts;
    for (let el = 0; el < o.decodeSec * 1000; el += 500) {
      await sleep(500);
      meter.sample(true);
    }
    const dt = (performance.now() - t0) / 1000;
    const cpuPercent = (meter.total() / dt) * 100;
    return { cpuPercent, perCamera: cpuPercent / urls.length, restarts: restarts - r0 };
  } finally {
    stopping = true;
    for (const k of kids) k.kill('SIGTERM');
    await Promise.all(kids.map((k) => waitExit(k)));
  }
}

// ------------------------------------------------------------------------------ bare inference

export interface BareResult {
  inferencesPerSec: number;
  msPerInference: number;
  cpuPercent: number;
  cpuSecPerInference: number;
  perModelMs: Record<string, number>;
}

/**
 * WorkerPack: each model the pipeline runs (those that can produce one of `labels`) bare in its own
 * worker, all at once; CPU of the whole process.
 */
export async function bareInferenceWorkers(wp: WorkerPack, frame: RgbImage, seconds: number, labels: ReadonlySet<string>): Promise<BareResult> {
  await wp.bare(frame, 1, labels); // warm-up
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const r = await wp.bare(frame, seconds, labels);
  const dt = (performance.now() - t0) / 1000;
  const c = process.cpuUsage(c0);
  const cpuSec = (c.user + c.system) / 1e6;
  // CPU per pack = Σ of each model's CPU per run, measured alone (see WorkerPack.bareCpuEach).
  const each = await wp.bareCpuEach(frame, Math.max(2, seconds / 2), labels);
  const cpuSecPerInference = Object.values(each).reduce((a, b) => a + b, 0);
  return { inferencesPerSec: r.inferencesPerSec, msPerInference: 1000 / r.inferencesPerSec, cpuPercent: (cpuSec / dt) * 100, cpuSecPerInference, perModelMs: r.perModel };
}

/** ModelPack: the models the pipeline runs (those that can produce one of `labels`) one after the other on a prepared tensor. */
export async function bareInference(pack: ModelPack, frame: RgbImage, seconds: number, concurrent: boolean, labels: ReadonlySet<string>): Promise<BareResult> {
  const models = pack.models.filter((m) => isWanted(m.labels, labels));
  for (const m of models) m.prepare(frame);
  const perModelMs: Record<string, number> = {};
  for (const m of models) {
    for (let i = 0; i < 3; i++) await m.runBare();
    const t0 = performance.now();
    let n = 0;
    while (performance.now() - t0 < Math.max(500, (seconds * 1000) / 4 / models.length)) {
      await m.runBare();
      n++;
    }
    perModelMs[m.name] = (performance.now() - t0) / n;
  }
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  let n = 0;
  while (performance.now() - t0 < seconds * 1000) {
    if (concurrent) await Promise.all(models.map((m) => m.runBare()));
    else for (const m of models) await m.runBare();
    n++;
  }
  const dt = (performance.now() - t0) / 1000;
  const c = process.cpuUsage(c0);
  const cpuSec = (c.user + c.system) / 1e6;
  return { inferencesPerSec: n / dt, msPerInference: (dt * 1000) / n, cpuPercent: (cpuSec / dt) * 100, cpuSecPerInference: cpuSec / n, perModelMs };
}

// ------------------------------------------------------------------------------------ the agent

export interface CameraSpec {
  id: string;
  url: string;
  substreamUrl?: string;
}

export function siteConfig(o: BenchOptions, cams: readonly CameraSpec[], brokerUrl: string, dir: string): SiteConfig {
  return SiteConfigSchema.parse({
    site: { id: SITE, name: 'benchmark canteen' },
    serviceHours: o.night ? closedNow('Asia/Shanghai') : [{ from: '00:00', to: '23:59' }],
    ...(o.boardZones ? { boards: { raw: ['red', 'blue', 'green'], cooked: ['yellow', 'white'] } } : {}),
    models: { pack: DEFAULT_PACK, threads: o.threads },
    cameras: cams.map((c) => ({
      id: c.id,
      name: c.id,
      url: c.url,
      ...(c.substreamUrl ? { substreamUrl: c.substreamUrl } : {}),
      fps: o.fps,
      keyframesOnly: o.keyframesOnly,
      frameWidth: o.frameWidth,
      ...(o.idleAfterSec === undefined ? {} : { idleKeyframesAfterSec: o.idleAfterSec }),
      zones: [
        ...(o.foodZones ? [{ id: 'food', name: '备餐区', kind: 'food', points: [[0, 0], [1, 0], [1, 1], [0, 1]] }] : []),
        ...(o.boardZones
          ? [
              { id: 'raw', name: '生食区', kind: 'raw', points: [[0, 0.3], [0.49, 0.3], [0.49, 1], [0, 1]] },
              { id: 'cooked', name: '熟食区', kind: 'cooked', points: [[0.51, 0.3], [1, 0.3], [1, 1], [0.51, 1]] },
            ]
          : []),
      ],
    })),
    uplink: { url: brokerUrl, statsIntervalSec: 3600 },
    storage: { dir },
    clips: { enabled: o.clips, bufferDir: path.join(dir, 'clip-buffer') },
  });
}

/** Labels the rules want from the bench's cameras now (all cameras are alike): the models they select run. */
export function wantedLabels(config: SiteConfig): ReadonlySet<string> {
  const cam = config.cameras[0]!;
  return new RuleEngine({ rules: rulesForSite(config.rules), zones: cam.zones, serviceHours: config.serviceHours, timezone: config.site.timezone, cameraId: cam.id }).wantedLabels(Date.now());
}

export interface AgentRun {
  seconds: number;
  inferences: number;
  inferenceMs: number;
  /** Head crops the classifier judged during the run. */
  headCrops: number;
  /** Board checks of raw / cooked zones during the run, and their main-thread time. */
  boardChecks: number;
  boardMs: number;
  perCamera: Record<string, { frames: number; inferences: number; skippedStill: number; dropped: number; framesIn: number; ffmpegCpuSec: number; receiveCpuSec: number }>;
  agentCpuSec: number;
  ffmpegCpuSec: number;
  harnessCpuSec: number;
  machineBusySec: number;
  rssMB: number[];
  latencyMs: number[];
  afterPersistenceMs: number[];
  raiseMs: number[];
  deliverMs: number[];
  lagMs: { t: number; lag: number }[];
  events: number;
  loadavg: [number, number];
  /** Decode-mode switches per camera during the whole run (warm-up included), e.g. ["keyframes"]. */
  decodeModes: Record<string, string[]>;
}

/**
 * Start the agent in this process on `cams`, wait until every camera delivers frames, warm up, then
 * measure `seconds`. Events are received by an MQTT subscriber on the same broker as the uplink.
 */
export async function runAgent(
  o: BenchOptions,
  pack: Detector,
  cams: readonly CameraSpec[],
  broker: Broker,
  feed: Feed,
  seconds: number,
  label: string,
): Promise<AgentRun> {
  const dir = mkdtempSync(path.join(tmpdir(), 'bk-bench-agent-'));
  const config = siteConfig(o, cams, broker.url, dir);
  // The rules in force: the built-ins merged with the site's (config.rules holds only the site's).
  const rules = rulesForSite(config.rules);
  let measuring = false;
  let tStart = 0;
  const lagMs: { t: number; lag: number }[] = [];
  // The pack is shared by the phases; the agent must not close it. Frame lag = queue wait before detection.
  const detector: Detector = {
    detect(img: RgbImage, opts?: PackDetectOptions): Promise<Detection[]> {
      const at = (img as RgbImage & { capturedAt?: number }).capturedAt;
      if (measuring && at) lagMs.push({ t: Date.now() - tStart, lag: Date.now() - at });
      return pack.detect(img, opts);
    },
  };
  const latencyMs: number[] = [];
  const afterPersistenceMs: number[] = [];
  const raiseMs: number[] = [];
  const deliverMs: number[] = [];
  let events = 0;
  const sub = await mqtt.connectAsync(broker.url, { clientId: `bench-sub-${process.pid}`, reconnectPeriod: 500 });
  await sub.subscribeAsync(topics().event(SITE), { qos: 1 });
  sub.on('message', (_topic, payload) => {
    const now = Date.now();
    try {
      const e = JSON.parse(payload.toString()) as { capturedAt: number; raisedAt: number; durationSec: number; kind: string; ruleId: string };
      if (!measuring) return;
      events++;
      latencyMs.push(now - e.capturedAt);
      // Split: capture → event built (queue wait, detection, evidence JPEGs) and built → arrival (outbox, uplink, broker).
      raiseMs.push(e.raisedAt - e.capturedAt);
      deliverMs.push(now - e.raisedAt);
      // First alert of an episode (not a repeat after the cooldown): how long after the persistence
      // time had passed did it arrive? = frame-rate quantisation + capture-to-arrival latency.
      const minDur = rules.find((r) => r.id === e.ruleId)?.minDurationSec ?? 0;
      // Later first alerts (a track that alerted before and came back within its cooldown) wait for the cooldown by design.
      if (e.durationSec - minDur <= 2) afterPersistenceMs.push(now - e.capturedAt + (e.durationSec - minDur) * 1000);
    } catch {
      /* not ours */
    }
  });

  const agent = await Agent.start(config, { detector, motion: o.motion ? undefined : false, env: { BK_MQTT_USERNAME: 'bench', BK_MQTT_PASSWORD: 'bench' } });
  const decodeModes: Record<string, string[]> = {};
  agent.pipeline.on('decode', (id, mode) => (decodeModes[id] ??= []).push(mode));
  // The agent's ffmpeg processes, and whose camera each is.
  const pidCamera = new Map<number, string>();
  const agentFfmpegs = () => agent.cameras.flatMap((c) => c.ffmpegPids.map((pid) => (pidCamera.set(pid, c.id), pid)));
  const ffmpegMeter = new CpuMeter(agentFfmpegs);
  const harnessPids = [...feed.pids(), ...(broker.pid ? [broker.pid] : [])];
  const harnessMeter = new CpuMeter(() => harnessPids);
  try {
    // Wait for frames from every camera (RTSP connect, first keyframe).
    const deadline = Date.now() + 30_000;
    for (;;) {
      const c = agent.pipeline.counters();
      const waiting = cams.filter((x) => (c[x.id]?.framesIn ?? 0) === 0).length;
      if (waiting === 0) break;
      if (Date.now() > deadline) throw new Error(`${label}: ${waiting} of ${cams.length} cameras delivered no frame within 30 s`);
      await sleep(200);
    }
    progress(`${label}: all ${cams.length} cameras online; warming up ${o.warmupSec} s`);
    await sleep(o.warmupSec * 1000);

    const c0 = agent.pipeline.counters();
    const t0 = agent.pipeline.totals();
    // CPU the agent spends receiving still cameras' streams itself (idle sampling, rtsp-receiver.ts).
    const receiveMs = () => new Map(agent.cameras.map((c) => [c.id, c.receiveCpuMs]));
    const r0 = receiveMs();
    ffmpegMeter.sample();
    harnessMeter.sample();
    const cpu0 = process.cpuUsage();
    const m0 = machineBusySec();
    const la0 = loadAvg();
    const rssMB: number[] = [process.memoryUsage().rss / 2 ** 20];
    tStart = Date.now();
    measuring = true;
    const started = performance.now();
    let nextReport = 5;
    while ((performance.now() - started) / 1000 < seconds) {
      await sleep(Math.min(1000, seconds * 1000 - (performance.now() - started)));
      ffmpegMeter.sample(true);
      harnessMeter.sample();
      rssMB.push(process.memoryUsage().rss / 2 ** 20);
      const el = (performance.now() - started) / 1000;
      if (el >= nextReport || el >= seconds) {
        nextReport += 5;
        const t = agent.pipeline.totals();
        progress(
          `${label}: ${el.toFixed(0)}/${seconds} s  ${((t.inferences - t0.inferences) / el).toFixed(2)} inf/s  dropped ${t.framesDropped - t0.framesDropped}  events ${events}  rss ${rssMB.at(-1)!.toFixed(0)} MB`,
        );
      }
    }
    const elapsed = (performance.now() - started) / 1000;
    measuring = false;
    const cpu = process.cpuUsage(cpu0);
    const m1 = machineBusySec();
    ffmpegMeter.sample();
    harnessMeter.sample();
    const c1 = agent.pipeline.counters();
    const t1 = agent.pipeline.totals();
    const r1 = receiveMs();
    // ffmpeg CPU per camera.
    const camCpu = new Map<string, number>();
    for (const [pid, sec] of ffmpegMeter.perPid()) {
      const cam = pidCamera.get(pid);
      if (cam) camCpu.set(cam, (camCpu.get(cam) ?? 0) + sec);
    }
    const perCamera: AgentRun['perCamera'] = {};
    for (const cam of cams) {
      const a = c0[cam.id]!;
      const b = c1[cam.id]!;
      perCamera[cam.id] = {
        frames: b.framesProcessed - a.framesProcessed + (b.framesSkippedStill - a.framesSkippedStill),
        inferences: b.framesProcessed - a.framesProcessed,
        skippedStill: b.framesSkippedStill - a.framesSkippedStill,
        dropped: b.framesDropped - a.framesDropped,
        framesIn: b.framesIn - a.framesIn,
        ffmpegCpuSec: camCpu.get(cam.id) ?? 0,
        receiveCpuSec: ((r1.get(cam.id) ?? 0) - (r0.get(cam.id) ?? 0)) / 1000,
      };
    }
    rssMB.push(process.memoryUsage().rss / 2 ** 20);
    return {
      seconds: elapsed,
      inferences: t1.inferences - t0.inferences,
      inferenceMs: t1.inferenceMs - t0.inferenceMs,
      headCrops: t1.headCrops - t0.headCrops,
      boardChecks: t1.boardChecks - t0.boardChecks,
      boardMs: t1.boardMs - t0.boardMs,
      perCamera,
      agentCpuSec: (cpu.user + cpu.system) / 1e6,
      ffmpegCpuSec: ffmpegMeter.total(),
      harnessCpuSec: harnessMeter.total(),
      machineBusySec: m1 - m0,
      rssMB,
      latencyMs,
      afterPersistenceMs,
      raiseMs,
      deliverMs,
      lagMs,
      events,
      loadavg: [la0, loadAvg()],
      decodeModes,
    };
  } finally {
    measuring = false;
    await agent.stop();
    await sub.endAsync().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  }
}

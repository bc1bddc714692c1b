/**
 * End-to-end benchmark of the edge agent on simulated RTSP cameras.
 *
 *   npm run bench -- --cameras N --fps F --seconds S [--json]
 *        [--threads 1] [--frame-width 640] [--keyframes-only] [--gop 30] [--no-motion]
 *        [--spinning] [--no-workers] [--warmup 5] [--bare-seconds S'] [--decode-seconds S'] [--gate-seconds G | --no-gate]
 *        [--food-zones] [--night] [--board-zones] [--no-clips]
 *
 * Phases, one after the other in one process (see docs/performance.md):
 *   1. footage: a busy clip (photos of people, panning) and a still clip, encoded once, cached in var/bench
 *   2. N cameras from the project's GStreamer RTSP server, fed by `ffmpeg -c copy` (no live encoding)
 *   3. bare decode: N ffmpeg processes with the agent's own ingest command, frames thrown away
 *   4. bare inference: the models of the default pack that the rules want on these cameras (during
 *      service hours: the face model; with --food-zones every model) on a prepared tensor in a tight
 *      loop, same threads
 *   5. the agent (Agent.start, in this process) on the N cameras for S seconds, events over MQTT
 *      (mosquitto) to a subscriber: inference rate, per-camera rate, drops, CPU, RSS, alert latency
 *   6. motion gate: one busy and one still camera together; cost of each
 * Results on stdout (a table, or one JSON object with --json); progress and logs on stderr.
 * CPU figures are percent of one core (200 = both cores of a 2-core box).
 */
import { availableParallelism, tmpdir } from 'node:os';
import { ModelPack } from '../agent/detect/index.js';
import { isWanted } from '../agent/detect/model.js';
import { detectUrl } from '../agent/camera/types.js';
import { DEFAULT_PACK } from '../agent/detect/pack.js';
import { WorkerPack } from '../agent/detect/workers.js';
import { heapSized } from '../common/heap.js';
import { BARE_CROPS } from '../agent/detect/classifier.js';
import { startFeed, type Feed, type FeedSpec } from './bench/feed.js';
import { prepareClips, prepareSubstream } from './bench/media.js';
import {
  bareDecode,
  bareInference,
  bareInferenceWorkers,
  loadAvg,
  machineBusySec,
  progress,
  quantile,
  runAgent,
  sampleFrame,
  siteConfig,
  wantedLabels,
  startBroker,
  type AgentRun,
  type BenchOptions,
  type Broker,
  type CameraSpec,
} from './bench/run.js';

interface Cli extends BenchOptions {
  json: boolean;
  gop: number;
  gate: boolean;
  /** Gate phase: the cameras' idleKeyframesAfterSec (short, so the still camera settles in the phase). */
  gateIdleAfterSec: number;
  spinning: boolean;
  workers: boolean;
}

function usage(): string {
  return 'usage: npm run bench -- --cameras N --fps F --seconds S [--json] [--threads T] [--frame-width W] [--keyframes-only] [--gop G] [--no-motion] [--spinning] [--workers | --no-workers] [--warmup S] [--bare-seconds S] [--decode-seconds S] [--gate-seconds S | --no-gate] [--idle-after S] [--food-zones] [--night] [--board-zones] [--no-clips] [--substream]';
}

export function parseArgs(argv: readonly string[]): Cli {
  const o: Partial<Cli> = {};
  const num = (flag: string, v: string | undefined, min: number, max: number): number => {
    const n = Number(v);
    if (v === undefined || v === '' || !Number.isFinite(n) || n < min || n > max) throw new Error(`${flag}: expected a number in ${min}..${max}, got "${v ?? ''}"`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const eq = a.indexOf('=');
    const [flag, inline] = a.startsWith('--') && eq > 0 ? [a.slice(0, eq), a.slice(eq + 1)] : [a, undefined];
    const val = () => inline ?? argv[++i];
    switch (flag) {
      case '--cameras': o.cameras = Math.round(num(flag, val(), 1, 64)); break;
      case '--fps': o.fps = num(flag, val(), 0.1, 15); break;
      case '--seconds': o.seconds = num(flag, val(), 1, 3600); break;
      case '--threads': o.threads = Math.round(num(flag, val(), 1, 64)); break;
      case '--frame-width': o.frameWidth = Math.round(num(flag, val(), 160, 1920)); break;
      case '--gop': o.gop = Math.round(num(flag, val(), 1, 300)); break;
      case '--warmup': o.warmupSec = num(flag, val(), 0, 120); break;
      case '--bare-seconds': o.bareSec = num(flag, val(), 1, 600); break;
      case '--decode-seconds': o.decodeSec = num(flag, val(), 1, 600); break;
      case '--gate-seconds': o.gateSec = num(flag, val(), 1, 600); break;
      case '--no-gate': o.gate = false; break;
      case '--idle-after': o.gateIdleAfterSec = num(flag, val(), 0, 600); break;
      case '--keyframes-only': o.keyframesOnly = true; break;
      case '--no-motion': o.motion = false; break;
      case '--spinning': o.spinning = true; break;
      case '--workers': o.workers = true; break;
      case '--no-workers': o.workers = false; break;
      case '--food-zones': o.foodZones = true; break;
      case '--night': o.night = true; break;
      case '--board-zones': o.boardZones = true; break;
      case '--no-clips': o.clips = false; break;
      case '--substream': o.substream = true; break;
      case '--json': o.json = true; break;
      case '-h': case '--help': process.stdout.write(usage() + '\n'); process.exit(0);
      default: throw new Error(`unknown argument "${a}"`);
    }
  }
  const seconds = o.seconds ?? 30;
  return {
    cameras: o.cameras ?? 4,
    fps: o.fps ?? 2,
    seconds,
    // Defaults follow the agent's (agent/config/schema.ts: models.workers true, models.threads 1).
    threads: o.threads ?? 1,
    frameWidth: o.frameWidth ?? 640,
    keyframesOnly: o.keyframesOnly ?? false,
    motion: o.motion ?? true,
    warmupSec: o.warmupSec ?? 5,
    bareSec: o.bareSec ?? Math.min(10, seconds),
    decodeSec: o.decodeSec ?? Math.min(10, seconds),
    gateSec: o.gateSec ?? Math.min(20, Math.max(8, seconds)),
    gate: o.gate ?? true,
    gateIdleAfterSec: o.gateIdleAfterSec ?? 5,
    json: o.json ?? false,
    spinning: o.spinning ?? false,
    workers: o.workers ?? true,
    gop: o.gop ?? 30,
    foodZones: o.foodZones ?? false,
    night: o.night ?? false,
    boardZones: o.boardZones ?? false,
    // The agent's default: busy cameras keep a clip buffer (their ffmpeg also copies the stream).
    clips: o.clips ?? true,
    substream: o.substream ?? false,
  };
}

const r1 = (x: number | null) => (x === null ? null : Math.round(x * 10) / 10);
const r2 = (x: number | null) => (x === null ? null : Math.round(x * 100) / 100);
const r3 = (x: number | null) => (x === null ? null : Math.round(x * 1000) / 1000);

function summarise(o: Cli, run: AgentRun, bare: Awaited<ReturnType<typeof bareInference>>, decode: Awaited<ReturnType<typeof bareDecode>>) {
  const cams = Object.values(run.perCamera);
  const fpsEach = cams.map((c) => c.frames / run.seconds);
  const infEach = cams.map((c) => c.inferences / run.seconds);
  const dropsEach = cams.map((c) => c.dropped);
  const pipelineRate = run.inferences / run.seconds;
  // Share of the run with a frame in detection (sum of detect() wall times; > 1 with frames in flight in parallel).
  const busyFraction = run.inferenceMs / 1000 / run.seconds;
  const framesDropped = dropsEach.reduce((a, b) => a + b, 0);
  const half = run.seconds * 500;
  const lagFirst = run.lagMs.filter((x) => x.t < half).map((x) => x.lag);
  const lagSecond = run.lagMs.filter((x) => x.t >= half).map((x) => x.lag);
  const ourCpu = run.agentCpuSec + run.ffmpegCpuSec + run.harnessCpuSec;
  const framesIn = cams.reduce((a, c) => a + c.framesIn, 0);
  const harnessPercent = (run.harnessCpuSec / run.seconds) * 100;
  const freePercent = Math.max(0, availableParallelism() * 100 - decode.cpuPercent - harnessPercent);
  const limit = Math.min(bare.inferencesPerSec, freePercent / 100 / bare.cpuSecPerInference);
  const pipelineCpuMs = run.inferences ? (run.agentCpuSec * 1000) / run.inferences : null;
  const classifierMs = bare.perModelMs.head_attrs; // the default pack's head classifier
  return {
    pipelineInferencesPerSec: r2(pipelineRate),
    bareInferencesPerSec: r2(bare.inferencesPerSec),
    efficiency: r3(pipelineRate / bare.inferencesPerSec),
    // What the cores allow once decoding (and the simulator, absent on a real box) has had its share:
    // the CPU left, at the bare CPU per inference; never more than the bare rate.
    limitInferencesPerSec: r2(limit),
    efficiencyVsLimit: r3(pipelineRate / limit),
    // Detection could not keep up: more than 5 % of the frames were replaced before detection.
    saturated: framesIn > 0 && framesDropped / framesIn > 0.05,
    detectorBusyFraction: r3(busyFraction),
    bareMsPerInference: r1(bare.msPerInference),
    bareModelMs: Object.fromEntries(Object.entries(bare.perModelMs).map(([k, v]) => [k, r1(v)])),
    // The head cascade: crops judged per second in the run, and the classifier's bare time per crop
    // (with workers its bare runs are batches of BARE_CROPS crops).
    headCropsPerSec: r2(run.headCrops / run.seconds),
    classifierMsPerCrop: classifierMs === undefined ? null : r2(classifierMs / BARE_CROPS),
    // The board check (raw / cooked zones, main thread, every boards.everySec per camera).
    boardChecksPerSec: r2(run.boardChecks / run.seconds),
    boardMsPerCheck: r2(run.boardChecks ? run.boardMs / run.boardChecks : null),
    pipelineMsPerInference: r1(run.inferences ? run.inferenceMs / run.inferences : null),
    // CPU time per inference (all threads): steadier than rates when others load the machine.
    bareCpuMsPerInference: r1(bare.cpuSecPerInference * 1000),
    pipelineCpuMsPerInference: r1(pipelineCpuMs),
    // The pipeline's own overhead (frame handling, pre/post-processing, tracking, rules, evidence, I/O;
    // not decoding, which is ffmpeg's): agent CPU per inference beyond the bare models', and its share.
    overheadCpuMsPerInference: r1(pipelineCpuMs === null ? null : pipelineCpuMs - bare.cpuSecPerInference * 1000),
    overheadFraction: r3(pipelineCpuMs === null ? null : pipelineCpuMs / (bare.cpuSecPerInference * 1000) - 1),
    perCameraFps: { min: r2(Math.min(...fpsEach)), median: r2(quantile(fpsEach, 0.5)), max: r2(Math.max(...fpsEach)), target: o.fps },
    perCameraInferencesPerSec: { min: r2(Math.min(...infEach)), median: r2(quantile(infEach, 0.5)), max: r2(Math.max(...infEach)) },
    framesIn,
    framesDropped,
    framesDroppedPerCamera: { min: Math.min(...dropsEach), max: Math.max(...dropsEach) },
    framesSkippedStill: cams.reduce((a, c) => a + c.skippedStill, 0),
    frameLagMs: {
      p50: r1(quantile(run.lagMs.map((x) => x.lag), 0.5)),
      p95: r1(quantile(run.lagMs.map((x) => x.lag), 0.95)),
      firstHalfP50: r1(quantile(lagFirst, 0.5)),
      secondHalfP50: r1(quantile(lagSecond, 0.5)),
    },
    cpuPercent: r1(((run.agentCpuSec + run.ffmpegCpuSec) / run.seconds) * 100),
    agentNodeCpuPercent: r1((run.agentCpuSec / run.seconds) * 100),
    ffmpegCpuPercent: r1((run.ffmpegCpuSec / run.seconds) * 100),
    decodeCpuPercentBare: r1(decode.cpuPercent),
    decodeOverhead: r2(decode.cpuPercent > 0 ? run.ffmpegCpuSec / run.seconds / (decode.cpuPercent / 100) : null),
    simulatorCpuPercent: r1((run.harnessCpuSec / run.seconds) * 100),
    rssMB: { start: r1(run.rssMB[0]!), max: r1(Math.max(...run.rssMB)), end: r1(run.rssMB.at(-1)!) },
    events: run.events,
    alertLatencyMs: { p50: r1(quantile(run.latencyMs, 0.5)), p95: r1(quantile(run.latencyMs, 0.95)), max: r1(run.latencyMs.length ? Math.max(...run.latencyMs) : null), n: run.latencyMs.length },
    alertLatencySplitMs: {
      captureToRaisedP50: r1(quantile(run.raiseMs, 0.5)),
      captureToRaisedP95: r1(quantile(run.raiseMs, 0.95)),
      raisedToArrivalP50: r1(quantile(run.deliverMs, 0.5)),
      raisedToArrivalP95: r1(quantile(run.deliverMs, 0.95)),
    },
    // First alerts of clean episodes: arrival − (episode start + persistence time).
    alertAfterPersistenceMs: { p50: r1(quantile(run.afterPersistenceMs, 0.5)), p95: r1(quantile(run.afterPersistenceMs, 0.95)), n: run.afterPersistenceMs.length },
    machine: {
      cores: availableParallelism(),
      loadavg1: run.loadavg.map((x) => r2(x)),
      // CPU others used on the box during the measurement: large = noisy figures.
      otherCpuPercent: r1(Math.max(0, ((run.machineBusySec - ourCpu) / run.seconds) * 100)),
    },
  };
}

function gateSummary(run: AgentRun, cpuSecPerInference: number) {
  const cost = (c: AgentRun['perCamera'][string]) => c.ffmpegCpuSec + c.receiveCpuSec + c.inferences * cpuSecPerInference;
  const busy = run.perCamera['busy']!;
  const still = run.perCamera['still']!;
  const s = run.seconds;
  return {
    seconds: r1(s),
    busy: { inferencesPerSec: r2(busy.inferences / s), skippedPerSec: r2(busy.skippedStill / s), decodeCpuPercent: r1((busy.ffmpegCpuSec / s) * 100), costCpuPercent: r1((cost(busy) / s) * 100) },
    still: {
      inferencesPerSec: r2(still.inferences / s),
      skippedPerSec: r2(still.skippedStill / s),
      decodeCpuPercent: r1((still.ffmpegCpuSec / s) * 100),
      receiveCpuPercent: r2((still.receiveCpuSec / s) * 100),
      costCpuPercent: r1((cost(still) / s) * 100),
    },
    // Cost = the camera's ffmpeg CPU + the agent's receiving of it (a still camera) + its inferences × the bare CPU-seconds per inference.
    stillCostRatio: r3(cost(busy) > 0 ? cost(still) / cost(busy) : null),
    // The still camera switches to keyframes-only decoding after idleKeyframesAfterSec (before the measurement).
    stillDecodeModes: run.decodeModes['still'] ?? [],
    busyDecodeModes: run.decodeModes['busy'] ?? [],
    stillInferenceRatio: r3(busy.inferences > 0 ? still.inferences / busy.inferences : null),
  };
}

function table(o: Cli, res: Record<string, unknown>): string {
  const rows: [string, unknown][] = [];
  const flat = (prefix: string, v: unknown) => {
    if (v && typeof v === 'object' && !Array.isArray(v)) for (const [k, x] of Object.entries(v)) flat(prefix ? `${prefix}.${k}` : k, x);
    else rows.push([prefix, Array.isArray(v) ? v.join(', ') : v]);
  };
  flat('', res);
  const w = Math.max(...rows.map(([k]) => k.length));
  return [`bright-kitchen agent benchmark: ${o.cameras} camera(s) x ${o.fps} fps for ${o.seconds} s`, ...rows.map(([k, v]) => `  ${k.padEnd(w)}  ${v}`)].join('\n') + '\n';
}

async function main(): Promise<void> {
  let o: Cli;
  try {
    o = parseArgs(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`bench: ${(err as Error).message}\n${usage()}\n`);
    process.exit(2);
  }
  const startedAt = Date.now();
  const clipOpts = { width: 1280, height: 720, fps: 15, gop: o.gop, holdSec: 6, images: 16 };
  const clips = await prepareClips(clipOpts, progress);
  // A camera's sub-stream: the same footage at 640x360 (--substream), mounted beside its main stream.
  const sub = o.substream ? await prepareSubstream(clips, { ...clipOpts, width: 640, height: 360 }, progress) : null;
  const subMounts = (specs: FeedSpec[]): FeedSpec[] =>
    sub ? specs.flatMap((s) => [s, { mount: `${s.mount}-sub`, clip: s.clip === clips.busy ? sub.busy : sub.still, offsetSec: s.offsetSec }]) : specs;
  const camera = (f: Feed, mount: string): CameraSpec => ({ id: mount, url: f.url(mount), ...(sub ? { substreamUrl: f.url(`${mount}-sub`) } : {}) });
  let feed: Feed | null = null;
  let broker: Broker | null = null;
  let pack: ModelPack | null = null;
  let workerPack: WorkerPack | null = null;
  try {
    broker = await startBroker();
    // Each camera starts one photo further into the busy clip (whole GOPs), so cameras differ.
    const step = clips.busySeconds / o.cameras;
    const mounts = Array.from({ length: o.cameras }, (_, i) => ({ mount: `cam${String(i + 1).padStart(2, '0')}`, clip: clips.busy, offsetSec: Math.floor(i * step) }));
    feed = await startFeed(subMounts(mounts));
    const cams = mounts.map((m) => camera(feed!, m.mount));
    progress(`${o.cameras} simulated cameras on ${feed.url('')}`);

    progress(`bare decode: ${o.cameras} x ffmpeg (agent's ingest command, output discarded) for ${o.decodeSec} s`);
    const decode = await bareDecode(o, cams.map((c) => detectUrl(c)));

    const frame = await sampleFrame(o.frameWidth);
    let bare: Awaited<ReturnType<typeof bareInference>>;
    let modelNames: string[];
    const packOpts = { pack: DEFAULT_PACK, threads: o.threads, spinning: o.spinning };
    // The models the pipeline will run on these cameras: those whose labels an active rule wants.
    const labels = wantedLabels(siteConfig(o, cams, broker.url, tmpdir()));
    if (o.workers) {
      workerPack = await WorkerPack.load(packOpts);
      modelNames = workerPack.modelsFor(labels);
      progress(`bare inference: ${modelNames.join(' + ')} in one worker thread each, ${o.threads} thread(s), ${o.bareSec} s`);
      bare = await bareInferenceWorkers(workerPack, frame, o.bareSec, labels);
    } else {
      pack = await ModelPack.load(packOpts);
      modelNames = pack.models.filter((m) => isWanted(m.labels, labels)).map((m) => m.name);
      progress(`bare inference: ${modelNames.join(' + ')}, ${o.threads} thread(s), ${o.bareSec} s`);
      bare = await bareInference(pack, frame, o.bareSec, false, labels);
    }
    const detector = (workerPack ?? pack)!;
    const concurrent = o.workers;
    progress(`bare inference: ${bare.inferencesPerSec.toFixed(2)} packs/s (${bare.msPerInference.toFixed(1)} ms)`);

    progress(`pipeline: ${o.cameras} cameras x ${o.fps} fps for ${o.seconds} s`);
    const run = await runAgent(o, detector, cams, broker, feed, o.seconds, 'pipeline');
    await feed.stop();
    feed = null;

    let gate: ReturnType<typeof gateSummary> | null = null;
    if (o.gate && o.motion) {
      feed = await startFeed(subMounts([
        { mount: 'busy', clip: clips.busy, offsetSec: 0 },
        { mount: 'still', clip: clips.still, offsetSec: 0 },
      ]));
      // Warm-up long enough for the still camera to go idle (keyframes only) before the measurement.
      const og = { ...o, idleAfterSec: o.gateIdleAfterSec, warmupSec: Math.max(o.warmupSec, o.gateIdleAfterSec + 4) };
      progress(`motion gate: one busy and one still camera for ${o.gateSec} s (idle decoding after ${o.gateIdleAfterSec} s still)`);
      const g = await runAgent(og, detector, [camera(feed, 'busy'), camera(feed, 'still')], broker, feed, o.gateSec, 'gate');
      gate = gateSummary(g, bare.cpuSecPerInference);
    }

    const result = {
      cameras: o.cameras,
      fps: o.fps,
      seconds: o.seconds,
      config: { threads: o.threads, frameWidth: o.frameWidth, keyframesOnly: o.keyframesOnly, motion: o.motion, gop: o.gop, workers: o.workers, concurrentModels: concurrent, spinning: o.spinning, foodZones: o.foodZones, night: o.night, boardZones: o.boardZones, clips: o.clips, substream: o.substream, heapSized: heapSized(), pack: DEFAULT_PACK.map((m) => m.manifest), models: modelNames },
      ...summarise(o, run, bare, decode),
      bareCpuPercent: r1(bare.cpuPercent),
      motionGate: gate,
      benchSeconds: r1((Date.now() - startedAt) / 1000),
    };
    process.stdout.write(o.json ? JSON.stringify(result) + '\n' : table(o, result));
  } finally {
    await feed?.stop();
    await broker?.stop();
    await pack?.close();
    await workerPack?.close();
  }
}

// Only when run as a script (tests import parseArgs).
if (process.argv[1] && /bench\.ts$/.test(process.argv[1])) {
  main().then(
    () => process.exit(0),
    (err: Error) => {
      process.stderr.write(`bench: ${err.stack ?? err.message}\n`);
      process.exit(1);
    },
  );
}

export { loadAvg, machineBusySec };

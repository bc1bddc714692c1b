/**
 * WorkerPack: the model pack run in worker threads, one per model, behind the same `detect(img)`
 * as ModelPack.
 *
 * Why: onnxruntime-node's `session.run` is synchronous on the calling thread (its promise only
 * defers the call with setImmediate), so on the main thread every inference blocks the event loop —
 * camera pipes, evidence encoding and MQTT all wait — and two models can never run at the same time.
 * In workers the models run in parallel (one intra-op thread each is the best setting on a 2-core
 * box) and the main thread stays free.
 *
 * Pre-processing (resize, letterbox, normalisation: 1-2.4 ms per model and frame, ~20 % of the face
 * model's inference) is done here, on the calling thread, into one of a few input tensors per model
 * that travel to the worker and back by transfer (no copy). The worker thread then only runs the
 * model and decodes its output, and the next frame is prepared while it runs: when one model is the
 * bottleneck its core does (almost) nothing but inference.
 */
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { HeadCascade } from './classifier.js';
import { isWanted, type InferOptions, type PackDetectOptions } from './model.js';
import { missingFeeders, type PackOptions } from './pack.js';
import type { ClassifierManifest, InputSpec } from './manifest.js';
import { Preprocessor } from './preprocess.js';
import type { Detection, RgbImage } from './types.js';

const HERE = fileURLToPath(import.meta.url);
const ENTRY = path.join(path.dirname(HERE), `worker-entry${path.extname(HERE)}`);

export interface BareRun {
  runs: number;
  seconds: number;
  cpuSec: number;
}

interface Pending {
  resolve: (d: never) => void;
  reject: (e: Error) => void;
}

/** What a worker answers: detections, a classifier's probabilities, a benchmark's counts, or an error. */
interface Reply {
  id: number;
  detections?: Detection[];
  probs?: Float32Array;
  columns?: number;
  runs?: number;
  error?: string;
  tensor?: Float32Array<ArrayBuffer>;
}

class DetectWorker {
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private dead: Error | null = null;
  models: string[] = [];
  labels: string[] = [];
  private pre: Preprocessor | null = null;
  /** Set when this worker runs the pack's classifier (the head cascade's second stage). */
  cascade: HeadCascade | null = null;
  /** Input tensors back from the worker, ready for the next frame (as many as frames were in flight at once). */
  private readonly free: Float32Array<ArrayBuffer>[] = [];

  private constructor(private readonly worker: Worker) {}

  static start(opts: PackOptions): Promise<DetectWorker> {
    // Under tsx (no build step) the worker must register tsx itself before importing TypeScript.
    const url = pathToFileURL(ENTRY).href;
    const worker = ENTRY.endsWith('.ts')
      ? new Worker(`import('tsx/esm/api').then((m) => { m.register(); return import(${JSON.stringify(url)}); })`, { eval: true, workerData: opts })
      : new Worker(ENTRY, { workerData: opts });
    const w = new DetectWorker(worker);
    return new Promise((resolve, reject) => {
      worker.once('message', (m: { ready: boolean; error?: string; models?: string[]; labels?: string[]; input?: InputSpec; classifier?: ClassifierManifest }) => {
        if (!m.ready) {
          void worker.terminate();
          reject(new Error(m.error ?? 'detection worker failed to start'));
          return;
        }
        w.models = m.models ?? [];
        w.labels = m.labels ?? [];
        if (m.classifier) w.cascade = new HeadCascade(m.classifier);
        else w.pre = new Preprocessor(m.input!);
        worker.on('message', (r: Reply) => w.settle(r));
        resolve(w);
      });
      worker.once('error', (err) => {
        w.fail(err);
        reject(err);
      });
      worker.once('exit', (code) => w.fail(new Error(`detection worker exited (code ${code})`)));
    });
  }

  detect(img: RgbImage, opts: InferOptions): Promise<Detection[]> {
    if (this.dead) return Promise.reject(this.dead);
    if (!this.pre) return Promise.reject(new Error(`worker ${this.models.join('+')} runs a classifier, not a detector`));
    const pre = this.pre;
    const tensor = this.free.pop() ?? new Float32Array(pre.size);
    let placement;
    try {
      placement = pre.run(img, tensor);
    } catch (err) {
      this.free.push(tensor);
      return Promise.reject(err as Error);
    }
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ id, tensor, placement, minScore: opts.minScore }, [tensor.buffer]);
    });
  }

  /** Classifier workers: probabilities of `n` prepared crops (the batch's buffer is transferred). */
  classify(batch: Float32Array<ArrayBuffer>, n: number): Promise<{ probs: Float32Array; columns: number }> {
    if (this.dead) return Promise.reject(this.dead);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as never, reject });
      this.worker.postMessage({ id, batch, n }, [batch.buffer]);
    });
  }

  /** Benchmark: this worker's models bare in a tight loop for `seconds`. */
  bare(img: RgbImage, seconds: number): Promise<BareRun> {
    if (this.dead) return Promise.reject(this.dead);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as never, reject });
      this.worker.postMessage({ id, bareSeconds: seconds, width: img.width, height: img.height, data: img.data });
    });
  }

  private settle(r: Reply): void {
    if (r.tensor) this.free.push(r.tensor);
    const p = this.pending.get(r.id);
    if (!p) return;
    this.pending.delete(r.id);
    const resolve = p.resolve as (x: unknown) => void;
    if (r.error !== undefined) p.reject(new Error(r.error));
    else if (r.runs !== undefined) resolve(r);
    else if (r.probs !== undefined) resolve({ probs: r.probs, columns: r.columns });
    else resolve(r.detections ?? []);
  }

  private fail(err: Error): void {
    this.dead ??= err;
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
  }

  async close(): Promise<void> {
    this.dead ??= new Error('detection worker closed');
    await this.worker.terminate();
  }
}

export class WorkerPack {
  private readonly detectors: readonly DetectWorker[];
  private readonly classifier: DetectWorker | null;

  private constructor(private readonly workers: readonly DetectWorker[]) {
    this.detectors = workers.filter((w) => !w.cascade);
    this.classifier = workers.find((w) => w.cascade) ?? null;
  }

  /** One worker per model of `opts.pack` (same options as ModelPack.load, applied in each worker). */
  static async load(opts: PackOptions): Promise<WorkerPack> {
    const started = await Promise.allSettled(opts.pack.map((ref) => DetectWorker.start({ ...opts, pack: [ref] })));
    const ok = started.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
    const failed = started.find((s) => s.status === 'rejected');
    if (failed) {
      await Promise.all(ok.map((w) => w.close()));
      throw (failed as PromiseRejectedResult).reason;
    }
    const pack = new WorkerPack(ok);
    try {
      if (ok.filter((w) => w.cascade).length > 1) throw new Error('a pack holds one classifier');
      const c = pack.classifier?.cascade;
      if (c) missingFeeders(c.needs, pack.detectors.flatMap((w) => w.labels), c.name);
    } catch (err) {
      await pack.close();
      throw err;
    }
    return pack;
  }

  /** Names of the models, in pack order. */
  get models(): string[] {
    return this.workers.flatMap((w) => w.models);
  }

  /** Names of the models detect() runs for `labels`. */
  modelsFor(labels: ReadonlySet<string> | undefined): string[] {
    return this.wanted(labels).flatMap((w) => w.models);
  }

  get labels(): Set<string> {
    return new Set(this.workers.flatMap((w) => w.labels));
  }

  /**
   * Every detector (or those `opts.labels` asks for) on one image, in parallel, detections in pack
   * order; then the classifier on the head crops cut from them (cut here, judged in its worker).
   */
  async detect(img: RgbImage, opts: PackDetectOptions = {}): Promise<Detection[]> {
    const { labels, peopleForHeads, closeUp, ...infer } = opts;
    const cascade = this.classifier?.cascade;
    const wanted = cascade ? cascade.detectorLabels(labels, peopleForHeads ?? true, closeUp ?? true) : labels;
    const run = (image: RgbImage, on: ReadonlySet<string> | undefined) => Promise.all(this.detectors.filter((w) => isWanted(w.labels, on)).map((w) => w.detect(image, infer)));
    const dets = (await run(img, wanted)).flat();
    const look = closeUp === false ? null : cascade?.closeUp(dets, img, wanted);
    if (look) dets.push(...look.keep((await run(look.image, cascade!.faceLabels)).flat()));
    if (!cascade || !cascade.wanted(labels)) return dets;
    const regions = cascade.regions(dets);
    if (regions.length === 0) return dets;
    const { probs, columns } = await this.classifier!.classify(cascade.prepare(img, regions) as Float32Array<ArrayBuffer>, regions.length);
    return [...dets, ...cascade.decode(regions, probs, columns, img.width, img.height)];
  }

  private wanted(labels: ReadonlySet<string> | undefined): DetectWorker[] {
    return this.workers.filter((w) => isWanted(w.labels, w.cascade ? labels : (this.classifier?.cascade?.detectorLabels(labels) ?? labels)));
  }

  /**
   * Benchmark: every model (or those `labels` asks for) bare in its own worker, all at the same time
   * (as detect() runs them), for `seconds`. The pack's rate is that of its slowest model.
   */
  async bare(img: RgbImage, seconds: number, labels?: ReadonlySet<string>): Promise<{ inferencesPerSec: number; perModel: Record<string, number> }> {
    const workers = this.wanted(labels);
    const runs = await Promise.all(workers.map((w) => w.bare(img, seconds)));
    const perModel: Record<string, number> = {};
    runs.forEach((r, i) => (perModel[workers[i]!.models.join('+')] = (r.seconds * 1000) / r.runs));
    return { inferencesPerSec: Math.min(...runs.map((r) => r.runs / r.seconds)), perModel };
  }

  /**
   * Benchmark: each model bare alone, one after the other, for `seconds` each: CPU-seconds per run
   * (process CPU while only that worker runs). Their sum is the pack's CPU per frame; the parallel
   * run of `bare` cannot tell it, its faster models run more often than the pack.
   */
  async bareCpuEach(img: RgbImage, seconds: number, labels?: ReadonlySet<string>): Promise<Record<string, number>> {
    const out: Record<string, number> = {};
    for (const w of this.wanted(labels)) {
      const c0 = process.cpuUsage();
      const r = await w.bare(img, seconds);
      const c = process.cpuUsage(c0);
      out[w.models.join('+')] = (c.user + c.system) / 1e6 / r.runs;
    }
    return out;
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.close()));
  }
}

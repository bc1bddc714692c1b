/**
 * One model: a manifest, its verified ONNX file, one onnxruntime InferenceSession (shared by every
 * camera), a reused input tensor, and the decoder. Calls are serialised per model, so the reused
 * tensor is never overwritten while a run is in flight.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import * as ort from 'onnxruntime-node';
import { childLog } from '../../common/log.js';
import { decode, decoderOutputs, type Outputs } from './decode.js';
import { classTable, modelFilePath, type LoadedManifest } from './manifest.js';
import { nms } from './nms.js';
import { Preprocessor, toSource, type Placement } from './preprocess.js';
import type { Detection, RgbImage } from './types.js';

const log = childLog({ stage: 'detect' });

export class ModelLoadError extends Error {
  constructor(
    readonly file: string,
    readonly reason: string,
  ) {
    super(`model file ${file}: ${reason}`);
    this.name = 'ModelLoadError';
  }
}

export function sha256(buf: Uint8Array): string {
  return createHash('sha256').update(buf).digest('hex');
}

/** Read a model file and check it against the manifest's sha256. */
export async function readVerified(file: string, expectedSha256: string): Promise<Buffer> {
  let buf: Buffer;
  try {
    buf = await readFile(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new ModelLoadError(file, code === 'ENOENT' ? 'missing (run `npm run models` to install model files)' : `cannot read (${code ?? (err as Error).message})`);
  }
  const got = sha256(buf);
  if (got !== expectedSha256) throw new ModelLoadError(file, `sha256 mismatch: expected ${expectedSha256}, got ${got} (corrupt or wrong file; reinstall with \`npm run models\`)`);
  return buf;
}

export interface ModelOptions {
  /** Folder of installed (non-bundled) model files. */
  modelsDir: string;
  /** Intra-op threads of the session. */
  threads?: number;
  /**
   * Let idle onnxruntime threads spin (busy-wait) for the next work item. Default false: on a small
   * box the spinning threads take the cores the camera decoders and the other model need (measured in
   * docs/performance.md); spinning only pays on otherwise idle cores.
   */
  spinning?: boolean;
  /** Operating score threshold (default: the manifest's scoreThreshold). */
  minScore?: number;
  /** Keep only these labels (default: every label the manifest maps). */
  labels?: readonly string[];
}

export interface InferOptions {
  /** Overrides the model's operating threshold for this call (e.g. a low floor for evaluation). */
  minScore?: number;
}

/** Options of a pack's detect (ModelPack, WorkerPack). */
export interface PackDetectOptions extends InferOptions {
  /** Run only the models that can produce one of these labels (default: every model). */
  labels?: ReadonlySet<string>;
  /**
   * false: the head cascade cuts heads from faces only on this frame, the person model is not run for
   * it (the pipeline runs it on some frames only: it costs more than the face model). Default true.
   */
  peopleForHeads?: boolean;
  /**
   * false: no close-up look on this frame (crop recipe `closeUp`: a second face-model run). The
   * pipeline allows one per camera every few seconds: a worker close to the camera stays there.
   * Default true.
   */
  closeUp?: boolean;
}

/** Whether a model with labels `own` is needed for `wanted` (undefined = everything is wanted). */
export function isWanted(own: Iterable<string>, wanted: ReadonlySet<string> | undefined): boolean {
  if (!wanted) return true;
  for (const l of own) if (wanted.has(l)) return true;
  return false;
}

/** One onnxruntime session with the project's settings (threads, no spinning by default); a bad file is a ModelLoadError. */
export async function createSession(file: string, buf: Uint8Array, opts: { threads?: number; spinning?: boolean }): Promise<ort.InferenceSession> {
  try {
    return await ort.InferenceSession.create(buf, {
      intraOpNumThreads: opts.threads ?? 1,
      interOpNumThreads: 1,
      executionMode: 'sequential',
      graphOptimizationLevel: 'all',
      ...(opts.spinning ? {} : { extra: { session: { intra_op: { allow_spinning: '0' }, inter_op: { allow_spinning: '0' } } } }),
    });
  } catch (err) {
    throw new ModelLoadError(file, `not an ONNX model onnxruntime can load (${(err as Error).message.split('\n')[0]})`);
  }
}

export class Model {
  readonly name: string;
  /** Operating threshold in use. */
  readonly minScore: number;
  /** Labels this model can return (after the `labels` filter). */
  readonly labels: ReadonlySet<string>;
  private readonly pre: Preprocessor;
  private readonly inputTensor: ort.Tensor;
  private readonly classes: (string | undefined)[];
  private readonly outputNames: string[];
  private queue: Promise<unknown> = Promise.resolve();

  private constructor(
    readonly manifest: LoadedManifest,
    readonly file: string,
    private readonly session: ort.InferenceSession,
    opts: ModelOptions,
  ) {
    this.name = manifest.name;
    this.minScore = opts.minScore ?? manifest.scoreThreshold;
    const mapped = new Set(Object.values(manifest.classes));
    this.labels = new Set(opts.labels ? opts.labels.filter((l) => mapped.has(l as never)) : mapped);
    this.classes = classTable(manifest).map((l) => (l !== undefined && this.labels.has(l) ? l : undefined));
    this.pre = new Preprocessor(manifest.input);
    this.inputTensor = new ort.Tensor('float32', this.pre.tensor, this.pre.dims);
    this.outputNames = decoderOutputs(manifest.decoder);
  }

  /** Load the manifest's model file (verified by sha256) into a session; checks names and shapes against the manifest. */
  static async load(manifest: LoadedManifest, opts: ModelOptions): Promise<Model> {
    const file = modelFilePath(manifest, opts.modelsDir);
    const buf = await readVerified(file, manifest.sha256);
    if (opts.labels) {
      const mapped = new Set<string>(Object.values(manifest.classes));
      const bad = opts.labels.filter((l) => !mapped.has(l));
      if (bad.length)
        throw new Error(`model ${manifest.name}: labels [${bad.join(', ')}] are not produced by this model (it maps: ${[...mapped].join(', ')})`);
    }
    const session = await createSession(file, buf, opts);
    const m = manifest;
    const where = `${m.manifestFile} does not match ${file}`;
    if (!session.inputNames.includes(m.input.name))
      throw new ModelLoadError(file, `${where}: input "${m.input.name}" not found (model inputs: ${session.inputNames.join(', ')})`);
    const meta = (session.inputMetadata as readonly ort.InferenceSession.ValueMetadata[]).find((x) => x.name === m.input.name);
    if (meta?.isTensor) {
      const want = [1, 3, m.input.height, m.input.width];
      const ok = meta.shape.length === 4 && meta.shape.every((d, i) => typeof d !== 'number' || d === want[i]);
      if (!ok) throw new ModelLoadError(file, `${where}: input "${m.input.name}" has shape [${meta.shape.join(', ')}], manifest says [${want.join(', ')}]`);
    }
    for (const o of decoderOutputs(m.decoder))
      if (!session.outputNames.includes(o))
        throw new ModelLoadError(file, `${where}: output "${o}" not found (model outputs: ${session.outputNames.join(', ')})`);
    log.info({ model: m.name, file, threads: opts.threads ?? 1 }, 'model loaded');
    return new Model(manifest, file, session, opts);
  }

  /** Input tensor dims [1, 3, H, W]. */
  get inputDims(): readonly number[] {
    return this.pre.dims;
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => undefined);
    return run;
  }

  /** Detect in one RGB image; boxes in source pixels. */
  infer(img: RgbImage, opts: InferOptions = {}): Promise<Detection[]> {
    return this.serial(async () => {
      const placement = this.pre.run(img);
      const outs = await this.runSession(this.inputTensor);
      return this.postprocess(outs, placement, opts.minScore ?? this.minScore);
    });
  }

  /**
   * Detect on an input tensor that `Preprocessor.run(img, data)` filled elsewhere (WorkerPack
   * pre-processes on the main thread); `placement` is what that run returned.
   */
  inferPrepared(data: Float32Array, placement: Placement, opts: InferOptions = {}): Promise<Detection[]> {
    return this.serial(async () => {
      const outs = await this.runSession(new ort.Tensor('float32', data, this.pre.dims));
      return this.postprocess(outs, placement, opts.minScore ?? this.minScore);
    });
  }

  /** Pre-processing only: fill the model's reused input tensor from `img` (for benchmarks and tests). */
  prepare(img: RgbImage): { tensor: ort.Tensor; placement: Placement } {
    const placement = this.pre.run(img);
    return { tensor: this.inputTensor, placement };
  }

  /**
   * Run the bare model on a prepared tensor (no pre- or post-processing): the inference-only rate.
   * Fetches the decoder's outputs unless `outputNames` names others.
   */
  runBare(tensor: ort.Tensor = this.inputTensor, outputNames: readonly string[] = this.outputNames): Promise<Outputs> {
    return this.serial(() => this.runSession(tensor, outputNames));
  }

  /** Decode raw outputs of a run for an image placed as `placement`. */
  postprocess(outs: Outputs, placement: Placement, minScore = this.minScore): Detection[] {
    const m = this.manifest;
    const cands = decode(m.decoder, outs, {
      input: m.input,
      classes: this.classes,
      numClasses: m.classNames?.length,
      minScore,
      model: m.name,
    });
    const kept = nms(cands, m.nmsIou, m.nmsClassAgnostic);
    const dets: Detection[] = [];
    for (const c of kept) {
      const box = toSource(c.box, placement);
      if (box[2] - box[0] <= 0 || box[3] - box[1] <= 0) continue;
      dets.push({ label: c.label, score: c.score, box, model: m.name });
    }
    return dets;
  }

  private async runSession(tensor: ort.Tensor, outputNames: readonly string[] = this.outputNames): Promise<Outputs> {
    const res = await this.session.run({ [this.manifest.input.name]: tensor }, outputNames);
    const outs: Outputs = {};
    for (const [k, v] of Object.entries(res)) {
      if (v.type !== 'float32') throw new Error(`model ${this.name}: output "${k}" is ${v.type}, expected float32`);
      outs[k] = { data: v.data as Float32Array, dims: v.dims };
    }
    return outs;
  }

  async release(): Promise<void> {
    await this.queue;
    await this.session.release();
  }
}

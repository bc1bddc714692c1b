/**
 * The head cascade's second stage: a classifier (manifest decoder family `classifier`) that judges
 * the head regions of a frame (heads.ts) on crops, all crops of one frame in one batch.
 *
 * It returns one `head` detection per region, carrying its attribute probabilities and what each
 * means (`positive` / `negative` labels from the manifest). The label a rule sees (chef_hat, head,
 * cigarette, face, ...) is decided later, after tracking, by the per-track vote (agent/track/attributes.ts):
 * a single crop is never believed on its own in a video.
 */
import * as ort from 'onnxruntime-node';
import { childLog } from '../../common/log.js';
import { clipBox, closeUpFaces, closeUpPeople, cropResize, facelessCloseUp, headRegions, zoomOut, type HeadRegion } from './heads.js';
import { modelFilePath, type ClassifierManifest, type LoadedClassifierManifest } from './manifest.js';
import { createSession, ModelLoadError, readVerified } from './model.js';
import type { Detection, HeadAttribute, RgbImage } from './types.js';

const log = childLog({ stage: 'detect' });

/** Crops per bare (benchmark) run of a classifier: a frame with a few workers in view. */
export const BARE_CROPS = 4;

/** The label of a head region before the vote names it. */
export const HEAD_LABEL = 'head';

export interface ClassifierOptions {
  modelsDir: string;
  threads?: number;
  spinning?: boolean;
}

/**
 * What the cascade knows from the manifest alone (no session): which detections it needs, where the
 * heads are, how crops are fed, what the outputs mean. WorkerPack uses it on the main thread.
 */
export class HeadCascade {
  readonly name: string;
  readonly size: number;
  /** Every label the classifier's attributes can name. */
  readonly labels: ReadonlySet<string>;
  /** Labels of the detections its crops are cut from. */
  readonly needs: ReadonlySet<string>;
  /** Output columns the attributes read (highest index + 1). */
  readonly columns: number;
  private readonly crop: Uint8Array;

  constructor(readonly manifest: ClassifierManifest) {
    this.name = manifest.name;
    this.size = manifest.input.width;
    this.columns = Math.max(...manifest.attributes.map((a) => a.index)) + 1;
    this.labels = new Set([HEAD_LABEL, ...manifest.attributes.flatMap((a) => (a.negative ? [a.positive, a.negative] : [a.positive]))]);
    this.needs = new Set([...manifest.crop.face.labels, ...(manifest.crop.person?.labels ?? [])]);
    this.crop = new Uint8Array(this.size * this.size * 3);
  }

  /** Whether a detect call asking for `labels` (all when undefined) needs the cascade. */
  wanted(labels: ReadonlySet<string> | undefined): boolean {
    return !labels || [...this.labels].some((l) => labels.has(l));
  }

  /**
   * The labels the detectors must deliver for a call asking for `labels` (`people`: person heads
   * too; `closeUp`: the people a close-up look needs when faces are asked for).
   */
  detectorLabels(labels: ReadonlySet<string> | undefined, people = true, closeUpLook = true): ReadonlySet<string> | undefined {
    if (!labels) return labels;
    const crop = this.manifest.crop;
    const closeUp = people && closeUpLook && crop.closeUp && crop.person && crop.face.labels.some((l) => labels.has(l)) ? crop.person.labels : [];
    if (!this.wanted(labels)) return closeUp.length ? new Set([...labels, ...closeUp]) : labels;
    const needs = people ? [...this.needs] : crop.face.labels;
    return new Set([...labels, ...needs]);
  }

  /** The labels of the face detections heads are found from (the detectors a close-up look runs). */
  get faceLabels(): ReadonlySet<string> {
    return new Set(this.manifest.crop.face.labels);
  }

  /**
   * A close-up's second look (crop recipe `closeUp`): the zoomed-out frame to run the face
   * detectors on, and what of their output to add; null when no large person lacks a face and the
   * frame is not faceless (`wanted`: the labels the detectors were asked for; a frame is faceless
   * only if the face model ran on it).
   */
  closeUp(dets: readonly Detection[], img: RgbImage, wanted?: ReadonlySet<string>): { image: RgbImage; keep(found: readonly Detection[]): Detection[] } | null {
    const recipe = this.manifest.crop;
    const c = recipe.closeUp;
    if (!c) return null;
    const people = closeUpPeople(dets, recipe, img.height);
    const facesRan = !wanted || recipe.face.labels.some((l) => wanted.has(l));
    const faceless = facesRan && facelessCloseUp(dets, recipe);
    if (!people.length && !faceless) return null;
    const z = zoomOut(img, c.zoomOut, recipe.pad);
    const minHeight = faceless ? c.faceHeight! * img.height : Infinity;
    return { image: z.image, keep: (found) => closeUpFaces(found, z.unmap, people, recipe, minHeight) };
  }

  /** Head regions of a frame from the detectors' output (the manifest's crop recipe). */
  regions(dets: readonly Detection[]): HeadRegion[] {
    return headRegions(dets, this.manifest.crop);
  }

  /** Crops of `regions` as one normalised [N, 3, S, S] tensor in the manifest's channel order. */
  prepare(img: RgbImage, regions: readonly HeadRegion[], out?: Float32Array): Float32Array {
    const { size } = this;
    const plane = size * size;
    const { mean, std, colorOrder } = this.manifest.input;
    const data = out && out.length >= regions.length * 3 * plane ? out : new Float32Array(regions.length * 3 * plane);
    const order = colorOrder === 'RGB' ? [0, 1, 2] : [2, 1, 0];
    regions.forEach((r, n) => {
      const px = cropResize(img, r.box, size, this.manifest.crop.pad, this.crop);
      const base = n * 3 * plane;
      for (let c = 0; c < 3; c++) {
        const src = order[c]!;
        const o = base + c * plane;
        const mu = mean[c]!;
        const inv = 1 / std[c]!;
        for (let i = 0; i < plane; i++) data[o + i] = (px[i * 3 + src]! - mu) * inv;
      }
    });
    return data;
  }

  /** Head detections of regions from their probabilities (row-major [N, columns]; boxes clipped to the frame). */
  decode(regions: readonly HeadRegion[], probs: Float32Array, columns: number, width: number, height: number): Detection[] {
    return regions.map((r, n) => {
      const attributes: HeadAttribute[] = [];
      for (const a of this.manifest.attributes) {
        if (!a.sources.includes(r.source)) continue;
        attributes.push({ name: a.name, p: probs[n * columns + a.index]!, threshold: a.threshold, positive: a.positive, ...(a.negative ? { negative: a.negative } : {}) });
      }
      return { label: HEAD_LABEL, score: r.from.score, box: clipBox(r.box, width, height), model: this.name, source: r.source, attributes };
    });
  }
}

/** The classifier's session and the cascade around it. */
export class Classifier {
  readonly name: string;
  readonly cascade: HeadCascade;
  private queue: Promise<unknown> = Promise.resolve();

  private constructor(
    readonly manifest: LoadedClassifierManifest,
    readonly file: string,
    private readonly session: ort.InferenceSession,
  ) {
    this.name = manifest.name;
    this.cascade = new HeadCascade(manifest);
  }

  static async load(manifest: LoadedClassifierManifest, opts: ClassifierOptions): Promise<Classifier> {
    const file = modelFilePath(manifest, opts.modelsDir);
    const buf = await readVerified(file, manifest.sha256);
    const session = await createSession(file, buf, opts);
    const m = manifest;
    const where = `${m.manifestFile} does not match ${file}`;
    if (!session.inputNames.includes(m.input.name))
      throw new ModelLoadError(file, `${where}: input "${m.input.name}" not found (model inputs: ${session.inputNames.join(', ')})`);
    if (!session.outputNames.includes(m.decoder.output))
      throw new ModelLoadError(file, `${where}: decoder.output "${m.decoder.output}" not found (model outputs: ${session.outputNames.join(', ')})`);
    const meta = (session.inputMetadata as readonly ort.InferenceSession.ValueMetadata[]).find((x) => x.name === m.input.name);
    if (meta?.isTensor) {
      const want = [undefined, 3, m.input.height, m.input.width];
      const ok = meta.shape.length === 4 && meta.shape.every((d, i) => typeof d !== 'number' || want[i] === undefined || d === want[i]);
      if (!ok) throw new ModelLoadError(file, `${where}: input "${m.input.name}" has shape [${meta.shape.join(', ')}], manifest says [N, 3, ${m.input.height}, ${m.input.width}]`);
    }
    const c = new Classifier(manifest, file, session);
    // One run on a grey crop: the output must have a column for every attribute index.
    const probe = await c.run(new Float32Array(3 * c.cascade.size * c.cascade.size), 1);
    if (probe.columns < c.cascade.columns)
      throw new ModelLoadError(file, `${where}: output "${m.decoder.output}" has ${probe.columns} columns, attributes[].index goes up to ${c.cascade.columns - 1}`);
    log.info({ model: m.name, file, attributes: m.attributes.map((a) => a.name) }, 'classifier loaded');
    return c;
  }

  /** Run a prepared batch of `n` crops: probabilities, row-major [n, columns]. */
  run(data: Float32Array, n: number): Promise<{ probs: Float32Array; columns: number }> {
    const fn = async () => {
      const s = this.cascade.size;
      const t = new ort.Tensor('float32', data.subarray(0, n * 3 * s * s), [n, 3, s, s]);
      const out = this.manifest.decoder.output;
      const res = await this.session.run({ [this.manifest.input.name]: t }, [out]);
      const o = res[out]!;
      if (o.type !== 'float32' || o.dims.length !== 2 || o.dims[0] !== n)
        throw new Error(`model ${this.name}: output "${out}" is ${o.type} [${o.dims.join(', ')}], expected float32 [${n}, K]`);
      return { probs: o.data as Float32Array, columns: o.dims[1]! };
    };
    const p = this.queue.then(fn, fn);
    this.queue = p.catch(() => undefined);
    return p;
  }

  /** The whole second stage on one frame: regions, crops, one batch, head detections. */
  async classify(img: RgbImage, dets: readonly Detection[]): Promise<Detection[]> {
    const c = this.cascade;
    const regions = c.regions(dets);
    if (regions.length === 0) return [];
    const { probs, columns } = await this.run(c.prepare(img, regions), regions.length);
    return c.decode(regions, probs, columns, img.width, img.height);
  }

  async release(): Promise<void> {
    await this.queue;
    await this.session.release();
  }
}

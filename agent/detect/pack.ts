/** The model pack of a site: every configured model, run on each image. */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadSiteConfig } from '../config/load.js';
import { DEFAULT_PACK, type ModelRef, type SiteConfig } from '../config/schema.js';
import { Classifier } from './classifier.js';
import { isClassifier, loadManifest, manifestPath } from './manifest.js';
import { isWanted, Model, type PackDetectOptions } from './model.js';
import type { Detection, RgbImage } from './types.js';

/** Repository root (two levels above agent/detect/). */
export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const DEFAULT_MANIFESTS_DIR = path.join(REPO_ROOT, 'models');
export const DEFAULT_MODELS_DIR = path.join(REPO_ROOT, 'var/models');
export { DEFAULT_PACK };

export interface PackOptions {
  pack: readonly ModelRef[];
  /** Installed model files (default var/models of the repository). */
  dir?: string;
  /** Manifests (default models/ of the repository). */
  manifests?: string;
  /** Intra-op threads per session. */
  threads?: number;
  /** Busy-waiting onnxruntime threads (see ModelOptions.spinning); default false. */
  spinning?: boolean;
  /** A classifier alone in a worker: its detectors run in other workers (WorkerPack checks them). */
  feedersElsewhere?: boolean;
}

export class ModelPack {
  /** `models` are the detectors; `classifier` judges the head regions cut from their output (classifier.ts). */
  private constructor(
    readonly models: readonly Model[],
    readonly classifier: Classifier | null = null,
  ) {}

  /** Load every model of the pack. Relative dirs resolve against the current directory. */
  static async load(opts: PackOptions): Promise<ModelPack> {
    const manifestsDir = path.resolve(opts.manifests ?? DEFAULT_MANIFESTS_DIR);
    const modelsDir = path.resolve(opts.dir ?? DEFAULT_MODELS_DIR);
    const seen = new Set<string>();
    const models: Model[] = [];
    let classifier: Classifier | null = null;
    try {
      for (const [i, ref] of opts.pack.entries()) {
        try {
          if (seen.has(ref.manifest)) throw new Error(`listed twice`);
          seen.add(ref.manifest);
          const manifest = loadManifest(manifestPath(manifestsDir, ref.manifest));
          if (isClassifier(manifest)) {
            if (classifier) throw new Error(`a pack holds one classifier, "${classifier.name}" is already in it`);
            if (ref.minScore !== undefined || ref.labels) throw new Error('a classifier takes no minScore or labels here (its attributes[].threshold is in its manifest)');
            classifier = await Classifier.load(manifest, { modelsDir, threads: opts.threads, spinning: opts.spinning });
          } else {
            models.push(await Model.load(manifest, { modelsDir, threads: opts.threads, spinning: opts.spinning, minScore: ref.minScore, labels: ref.labels }));
          }
        } catch (err) {
          // Keep the error's class (ConfigError, ModelLoadError), say which pack entry it concerns.
          if (err instanceof Error) err.message = `models.pack[${i}] "${ref.manifest}": ${err.message}`;
          throw err;
        }
      }
      if (classifier && !opts.feedersElsewhere) missingFeeders(classifier.cascade.needs, models.flatMap((m) => [...m.labels]), classifier.name);
    } catch (err) {
      await Promise.all([...models.map((m) => m.release()), classifier?.release()]);
      throw err;
    }
    return new ModelPack(models, classifier);
  }

  /** From a site config's `models` section. */
  static fromConfig(models: SiteConfig['models']): Promise<ModelPack> {
    return ModelPack.load({ pack: models.pack, dir: models.dir, manifests: models.manifests, threads: models.threads });
  }

  /**
   * Run every model, or those `opts.labels` asks for (one after the other: onnxruntime-node runs a
   * session synchronously on the calling thread, so they cannot overlap here; WorkerPack in
   * workers.ts runs them in parallel).
   */
  async detect(img: RgbImage, opts: PackDetectOptions = {}): Promise<Detection[]> {
    const { labels, peopleForHeads, closeUp, ...infer } = opts;
    const cascade = this.classifier?.cascade;
    const wanted = cascade ? cascade.detectorLabels(labels, peopleForHeads ?? true, closeUp ?? true) : labels;
    const all: Detection[] = [];
    for (const m of this.models) {
      if (!isWanted(m.labels, wanted)) continue;
      for (const d of await m.infer(img, infer)) all.push(d);
    }
    const look = closeUp === false ? null : cascade?.closeUp(all, img, wanted);
    if (look) {
      for (const m of this.models) if (isWanted(m.labels, cascade!.faceLabels)) all.push(...look.keep(await m.infer(look.image, infer)));
    }
    if (this.classifier && cascade!.wanted(labels)) all.push(...(await this.classifier.classify(img, all)));
    return all;
  }

  model(name: string): Model {
    const m = this.models.find((x) => x.name === name);
    if (!m) throw new Error(`model pack has no model "${name}" (has: ${this.models.map((x) => x.name).join(', ')})`);
    return m;
  }

  /** Every label the pack can produce. */
  get labels(): Set<string> {
    return new Set([...this.models.flatMap((m) => [...m.labels]), ...(this.classifier?.cascade.labels ?? [])]);
  }

  async close(): Promise<void> {
    await Promise.all([...this.models.map((m) => m.release()), this.classifier?.release()]);
  }
}

/** A classifier whose crops come from labels no detector of the pack produces would never run: say so. */
export function missingFeeders(needs: ReadonlySet<string>, produced: readonly string[], name: string): void {
  if (![...needs].some((l) => produced.includes(l)))
    throw new Error(`classifier "${name}" cuts its crops from ${[...needs].join(', ')}, which no detector of the pack produces (add rfb640_masked_face or yolox_nano)`);
}

/**
 * The `models` section of a site config file, or the default pack when no file is given
 * (used by the CLIs). Throws ConfigError naming the file and field.
 */
export function modelsSection(configFile?: string): SiteConfig['models'] {
  if (configFile) return loadSiteConfig(configFile).models;
  return { pack: DEFAULT_PACK, dir: DEFAULT_MODELS_DIR, manifests: DEFAULT_MANIFESTS_DIR, threads: 2, workers: false };
}

/** The model pack of a site: every configured model, run on each image. */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadSiteConfig } from '../config/load.js';
import { DEFAULT_PACK, type ModelRef, type SiteConfig } from '../config/schema.js';
import { loadManifest, manifestPath } from './manifest.js';
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
}

export class ModelPack {
  private constructor(readonly models: readonly Model[]) {}

  /** Load every model of the pack. Relative dirs resolve against the current directory. */
  static async load(opts: PackOptions): Promise<ModelPack> {
    const manifestsDir = path.resolve(opts.manifests ?? DEFAULT_MANIFESTS_DIR);
    const modelsDir = path.resolve(opts.dir ?? DEFAULT_MODELS_DIR);
    const seen = new Set<string>();
    const models: Model[] = [];
    try {
      for (const [i, ref] of opts.pack.entries()) {
        try {
          if (seen.has(ref.manifest)) throw new Error(`listed twice`);
          seen.add(ref.manifest);
          const manifest = loadManifest(manifestPath(manifestsDir, ref.manifest));
          models.push(await Model.load(manifest, { modelsDir, threads: opts.threads, spinning: opts.spinning, minScore: ref.minScore, labels: ref.labels }));
        } catch (err) {
          // Keep the error's class (ConfigError, ModelLoadError), say which pack entry it concerns.
          if (err instanceof Error) err.message = `models.pack[${i}] "${ref.manifest}": ${err.message}`;
          throw err;
        }
      }
    } catch (err) {
      await Promise.all(models.map((m) => m.release()));
      throw err;
    }
    return new ModelPack(models);
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
    const { labels, ...infer } = opts;
    const all: Detection[] = [];
    for (const m of this.models) {
      if (!isWanted(m.labels, labels)) continue;
      for (const d of await m.infer(img, infer)) all.push(d);
    }
    return all;
  }

  model(name: string): Model {
    const m = this.models.find((x) => x.name === name);
    if (!m) throw new Error(`model pack has no model "${name}" (has: ${this.models.map((x) => x.name).join(', ')})`);
    return m;
  }

  /** Every label the pack can produce. */
  get labels(): Set<string> {
    return new Set(this.models.flatMap((m) => [...m.labels]));
  }

  async close(): Promise<void> {
    await Promise.all(this.models.map((m) => m.release()));
  }
}

/**
 * The `models` section of a site config file, or the default pack when no file is given
 * (used by the CLIs). Throws ConfigError naming the file and field.
 */
export function modelsSection(configFile?: string): SiteConfig['models'] {
  if (configFile) return loadSiteConfig(configFile).models;
  return { pack: DEFAULT_PACK, dir: DEFAULT_MODELS_DIR, manifests: DEFAULT_MANIFESTS_DIR, threads: 2, workers: false };
}

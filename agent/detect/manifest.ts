/**
 * Model manifests: a model is a file plus `models/<name>.model.yaml` saying how to feed it and how
 * to read its outputs. Manifests are self-contained (no lookups outside the models folder at runtime).
 */
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { LABELS } from '../../protocol/labels.js';
import { ConfigError, readYaml, validate } from '../config/load.js';
import { CropRecipeSchema } from './heads.js';

export const MANIFEST_SUFFIX = '.model.yaml';

const Name = z.string().regex(/^[A-Za-z0-9_.-]+$/, 'expected a name of letters, digits, "_", "." or "-"');
/** A file name relative to its folder: no absolute paths, no "..". */
const RelFile = z
  .string()
  .min(1)
  .refine((p) => !path.isAbsolute(p) && !p.split(/[\\/]/).includes('..'), 'expected a relative path without ".."')
  .refine((p) => p.endsWith('.onnx'), 'expected an .onnx file');
const Sha256 = z.string().regex(/^[a-f0-9]{64}$/, 'expected a lower-case hex sha256 (64 characters)');
const Canonical = z.enum(LABELS, { error: `expected a canonical label (${LABELS.join(', ')})` });
const Triple = z.tuple([z.number(), z.number(), z.number()]);

const ResizeSchema = z.discriminatedUnion('mode', [
  /** Scale to the input size ignoring aspect ratio (bilinear, cv2.resize INTER_LINEAR semantics). */
  z.strictObject({ mode: z.literal('stretch') }),
  /** Keep aspect ratio: scale r = min(W/w, H/h), place the image, pad the rest. */
  z.strictObject({
    mode: z.literal('letterbox'),
    align: z.enum(['top-left', 'center']).default('top-left'),
    /** Pad value in raw 0..255 pixel units (before normalisation). */
    pad: z.number().min(0).max(255).default(114),
  }),
]);

export const InputSpecSchema = z.strictObject({
  name: z.string().min(1),
  width: z.number().int().min(1).max(4096),
  height: z.number().int().min(1).max(4096),
  layout: z.literal('NCHW'),
  /** Channel order of the tensor. */
  colorOrder: z.enum(['RGB', 'BGR']),
  /** tensor = (pixel - mean[c]) / std[c], pixel in 0..255, c in the tensor's channel order. */
  mean: Triple.default([0, 0, 0]),
  std: Triple.default([1, 1, 1]).refine((s) => s.every((v) => v !== 0), 'std must not contain 0'),
  resize: ResizeSchema,
});

export const DecoderSchema = z.discriminatedUnion('family', [
  /** [1, N, 5+C]: x, y, w, h (grid units, log-space w/h), objectness, classes; all sigmoided already. */
  z.strictObject({
    family: z.literal('yolox'),
    output: z.string().min(1),
    strides: z.array(z.number().int().positive()).min(1).default([8, 16, 32]),
    /** Added to the grid cell index: 0 = top-left of the cell (this YOLOX export), 0.5 = centre. */
    gridOffset: z.number().min(0).max(1).default(0),
  }),
  /** scores [1, N, 1+C] softmax with background first; boxes [1, N, 4] x1 y1 x2 y2 normalised 0..1. */
  z.strictObject({ family: z.literal('ultraface'), scores: z.string().min(1), boxes: z.string().min(1) }),
  /** [1, N, 5+C]: cx, cy, w, h in input pixels, objectness, class scores. */
  z.strictObject({ family: z.literal('yolov5'), output: z.string().min(1) }),
  /** [1, 4+C, N]: cx, cy, w, h in input pixels, class scores (no objectness). */
  z.strictObject({ family: z.literal('yolov8'), output: z.string().min(1) }),
]);

/** What every manifest has: the file, where it comes from, how to feed it. */
const Common = {
  name: Name,
  description: z.string().optional(),
  /** Model file name. Installed from a mirror into the models dir, or shipped in models/ when bundled. */
  file: RelFile,
  sha256: Sha256,
  /** true: `file` is relative to the manifests folder (project-trained, committed); false: installed from a mirror. */
  bundled: z.boolean().default(false),
  source: z.string().min(1),
  license: z.string().min(1),
  input: InputSpecSchema,
};

export const ManifestSchema = z
  .strictObject({
    ...Common,
    decoder: DecoderSchema,
    /** Default operating point; a site's pack entry may override `minScore`. */
    scoreThreshold: z.number().min(0).max(1),
    nmsIou: z.number().min(0).max(1),
    /** NMS across labels (one box per object whatever its label): right for face vs masked_face. */
    nmsClassAgnostic: z.boolean().default(false),
    /** The model's own class names by index (documentation, and a check of the output width). */
    classNames: z.array(z.string().min(1)).optional(),
    /** Model class index → canonical label. Classes not listed are dropped. */
    classes: z.record(z.string(), Canonical),
  })
  .superRefine((m, ctx) => {
    if (Object.keys(m.classes).length === 0) ctx.addIssue({ code: 'custom', path: ['classes'], message: 'expected at least one mapped class' });
    for (const k of Object.keys(m.classes))
      if (!/^\d+$/.test(k)) ctx.addIssue({ code: 'custom', path: ['classes', k], message: `expected a class index (0, 1, ...) as key, got "${k}"` });
    if (m.classNames) {
      for (const k of Object.keys(m.classes)) {
        if (Number(k) >= m.classNames.length)
          ctx.addIssue({ code: 'custom', path: ['classes', k], message: `class index ${k} is beyond classNames (${m.classNames.length} classes)` });
      }
    }
    if (m.decoder.family === 'ultraface' && m.classes['0'] !== undefined)
      ctx.addIssue({ code: 'custom', path: ['classes', '0'], message: 'ultraface class 0 is the background and cannot be mapped' });
  });

/**
 * One attribute column of a classifier: a crop whose probability reaches `threshold` is reported as
 * `positive`, below it as `negative` (when given). `sources` limits it to heads found one way (a
 * mask is judged only on heads the face model missed: where it found the face, it said masked or not).
 */
export const AttributeSchema = z.strictObject({
  name: Name,
  index: z.number().int().min(0),
  threshold: z.number().min(0).max(1).default(0.5),
  positive: Canonical,
  negative: Canonical.optional(),
  sources: z.array(z.enum(['face', 'person'])).min(1).default(['face', 'person']),
});

/**
 * A classifier on crops cut by its `crop` recipe from the detections of the detectors of the same
 * pack (the head cascade): output [N, K] sigmoid probabilities, N = crops of one frame.
 */
export const ClassifierManifestSchema = z
  .strictObject({
    ...Common,
    decoder: z.strictObject({ family: z.literal('classifier'), output: z.string().min(1) }),
    crop: CropRecipeSchema,
    attributes: z.array(AttributeSchema).min(1),
  })
  .superRefine((m, ctx) => {
    const seen = new Set<number>();
    m.attributes.forEach((a, i) => {
      if (seen.has(a.index)) ctx.addIssue({ code: 'custom', path: ['attributes', i, 'index'], message: `output column ${a.index} is used twice` });
      seen.add(a.index);
    });
    if (m.input.resize.mode !== 'stretch') ctx.addIssue({ code: 'custom', path: ['input', 'resize', 'mode'], message: 'a classifier takes square crops: expected "stretch"' });
    if (m.input.width !== m.input.height) ctx.addIssue({ code: 'custom', path: ['input', 'height'], message: `expected square crops (width ${m.input.width})` });
  });

export type ModelManifest = z.infer<typeof ManifestSchema>;
export type ClassifierManifest = z.infer<typeof ClassifierManifestSchema>;
export type AttributeSpec = z.infer<typeof AttributeSchema>;
export type InputSpec = z.infer<typeof InputSpecSchema>;
export type DecoderSpec = z.infer<typeof DecoderSchema>;

/** A detector manifest plus where it came from. */
export interface LoadedManifest extends ModelManifest {
  /** Absolute path of the manifest file. */
  manifestFile: string;
}
export interface LoadedClassifierManifest extends ClassifierManifest {
  manifestFile: string;
}
export type AnyManifest = LoadedManifest | LoadedClassifierManifest;

export function isClassifier(m: AnyManifest): m is LoadedClassifierManifest {
  return m.decoder.family === 'classifier';
}

/** Load and validate one manifest file (detector or classifier); errors (ConfigError) name the file and the field. */
export function loadManifest(file: string): AnyManifest {
  const raw = readYaml(file);
  const family = (raw as { decoder?: { family?: unknown } } | null)?.decoder?.family;
  const m: ModelManifest | ClassifierManifest = family === 'classifier' ? validate(ClassifierManifestSchema, raw, file) : validate(ManifestSchema, raw, file);
  const expected = path.basename(file).slice(0, -MANIFEST_SUFFIX.length);
  if (file.endsWith(MANIFEST_SUFFIX) && m.name !== expected)
    throw new ConfigError(file, [`name: expected "${expected}" to match the file name (got "${m.name}")`]);
  return { ...m, manifestFile: path.resolve(file) };
}

/** A detector's manifest; a classifier's is an error naming the file. */
export function loadDetectorManifest(file: string): LoadedManifest {
  const m = loadManifest(file);
  if (isClassifier(m)) throw new ConfigError(file, ['decoder.family: expected a detector (yolox, ultraface, yolov5, yolov8), got "classifier"']);
  return m;
}

/** Path of the manifest for `name` inside `manifestsDir`. */
export function manifestPath(manifestsDir: string, name: string): string {
  return path.join(manifestsDir, `${name}${MANIFEST_SUFFIX}`);
}

/** Every manifest in a folder, sorted by name. */
export function loadManifests(manifestsDir: string): AnyManifest[] {
  let entries: string[];
  try {
    entries = readdirSync(manifestsDir);
  } catch (err) {
    throw new ConfigError(manifestsDir, [`cannot read manifests folder: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`]);
  }
  return entries
    .filter((f) => f.endsWith(MANIFEST_SUFFIX))
    .sort()
    .map((f) => loadManifest(path.join(manifestsDir, f)));
}

/** Where the model file of a manifest lives: bundled files sit next to the manifest, others in modelsDir. */
export function modelFilePath(m: AnyManifest, modelsDir: string): string {
  return m.bundled ? path.resolve(path.dirname(m.manifestFile), m.file) : path.resolve(modelsDir, m.file);
}

/** Class map as a dense array: index → canonical label or undefined. */
export function classTable(m: ModelManifest): (string | undefined)[] {
  const keys = Object.keys(m.classes).map(Number).filter(Number.isInteger);
  const t: (string | undefined)[] = new Array(Math.max(...keys) + 1).fill(undefined);
  for (const [k, v] of Object.entries(m.classes)) t[Number(k)] = v;
  return t;
}

/**
 * Config files of both sides (agent site config, central config): read YAML, validate with a zod
 * schema, and report every problem with the file, the path inside it, what was expected and what was
 * found (credentials removed; the nearest valid key for a misspelt one).
 */
import { readFileSync } from 'node:fs';
import { parseDocument } from 'yaml';
import type { z } from 'zod';
import { formatPath } from '../protocol/messages.js';
import { redactUrl } from './redact.js';

export class ConfigError extends Error {
  constructor(
    readonly file: string,
    readonly problems: string[],
  ) {
    super(`${file}: ${problems.join('; ')}`);
    this.name = 'ConfigError';
  }
}

/** The offending value, short, without the credentials of a URL (a camera's `rtsp://user:pass@`). */
function describeValue(v: unknown): string {
  const s = redactUrl(JSON.stringify(v) ?? String(v));
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

interface SchemaDef {
  type: string;
  shape?: Record<string, { def: SchemaDef }>;
  element?: { def: SchemaDef };
  innerType?: { def: SchemaDef };
  in?: { def: SchemaDef };
}

/** The keys an object schema allows at `path` (through arrays, optionals and defaults), if it is one. */
function keysAt(schema: z.ZodType, path: readonly PropertyKey[]): string[] {
  let def = (schema as unknown as { def: SchemaDef }).def;
  const unwrap = () => {
    while (def.innerType || def.in) def = (def.innerType ?? def.in)!.def;
  };
  for (const k of path) {
    unwrap();
    if (def.type === 'array' && def.element && typeof k === 'number') def = def.element.def;
    else if (def.type === 'object' && def.shape && typeof k === 'string' && def.shape[k]) def = def.shape[k].def;
    else return [];
  }
  unwrap();
  return def.type === 'object' && def.shape ? Object.keys(def.shape) : [];
}

/** Edit distance, for "did you mean" on a misspelt key. */
function distance(a: string, b: string): number {
  const d = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let prev = d[0]!;
    d[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const cur = d[j]!;
      d[j] = Math.min(d[j]! + 1, d[j - 1]! + 1, prev + (a[i - 1]!.toLowerCase() === b[j - 1]!.toLowerCase() ? 0 : 1));
      prev = cur;
    }
  }
  return d[b.length]!;
}

/** `serviceHour` → `serviceHours`: the nearest allowed key, when one is close. */
export function nearestKey(key: string, allowed: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestD = Math.max(2, Math.floor(key.length / 3)) + 1;
  for (const k of allowed) {
    const d = distance(key, k);
    if (d < bestD) [best, bestD] = [k, d];
  }
  return best;
}

/** Validate already-parsed data; `file` is only used in messages. */
export function validate<T extends z.ZodType>(schema: T, data: unknown, file: string): z.infer<T> {
  const r = schema.safeParse(data);
  if (r.success) return r.data;
  const problems = r.error.issues.map((i) => {
    const where = formatPath(i.path) || '(top level)';
    let got = '';
    if (i.code === 'unrecognized_keys') {
      const allowed = keysAt(schema, i.path);
      const hints = i.keys.map((k) => [k, nearestKey(k, allowed)] as const).filter(([, n]) => n);
      if (hints.length) got = ` (did you mean ${hints.map(([k, n]) => `"${n}" for "${k}"`).join(', ')}?)`;
    } else if (i.path.length > 0) {
      let v: unknown = data;
      for (const k of i.path) v = v == null ? undefined : (v as Record<PropertyKey, unknown>)[k];
      got = v === undefined ? ' (missing)' : ` (got ${describeValue(v)})`;
    }
    return `${where}: ${i.message}${got}`;
  });
  throw new ConfigError(file, problems);
}

export function readYaml(file: string): unknown {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(file, [`cannot read file: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`]);
  }
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) throw new ConfigError(file, doc.errors.map((e) => `YAML syntax: ${e.message.split('\n')[0]}`));
  return doc.toJS();
}

export function loadYaml<T extends z.ZodType>(schema: T, file: string): z.infer<T> {
  return validate(schema, readYaml(file), file);
}

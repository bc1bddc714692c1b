/** Read a YAML file and validate it; errors name the file, the path inside it and what was expected. */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parseDocument } from 'yaml';
import type { z } from 'zod';
import { formatPath } from '../../protocol/messages.js';
import { SiteConfigSchema, type SiteConfig } from './schema.js';

export class ConfigError extends Error {
  constructor(
    readonly file: string,
    readonly problems: string[],
  ) {
    super(`${file}: ${problems.join('; ')}`);
    this.name = 'ConfigError';
  }
}

function describeValue(v: unknown): string {
  const s = JSON.stringify(v);
  return s === undefined ? String(v) : s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

/** Validate already-parsed data; `file` is only used in messages. */
export function validate<T extends z.ZodType>(schema: T, data: unknown, file: string): z.infer<T> {
  const r = schema.safeParse(data);
  if (r.success) return r.data;
  const problems = r.error.issues.map((i) => {
    const where = formatPath(i.path) || '(top level)';
    let got = '';
    if (i.code !== 'unrecognized_keys' && i.path.length > 0) {
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

/** Load a site config; relative paths inside it are resolved against the current directory. */
export function loadSiteConfig(file: string): SiteConfig {
  const cfg = loadYaml(SiteConfigSchema, file);
  const ids = new Set<string>();
  const dupes = cfg.cameras.map((c, i) => (ids.has(c.id) ? `cameras[${i}].id: duplicate camera id "${c.id}"` : (ids.add(c.id), ''))).filter(Boolean);
  if (dupes.length) throw new ConfigError(file, dupes);
  const uncoded = cfg.cameras.flatMap((c, i) =>
    c.boards || cfg.boards
      ? []
      : c.zones.flatMap((z, j) =>
          z.kind === 'raw' || z.kind === 'cooked'
            ? [`cameras[${i}].zones[${j}].kind: a "${z.kind}" zone needs the kitchen's board colour code (boards: { raw: [red, ...], cooked: [yellow, ...] } at the top level or on camera "${c.id}")`]
            : [],
        ),
  );
  if (uncoded.length) throw new ConfigError(file, uncoded);
  return cfg;
}

export function resolveFrom(base: string, p: string): string {
  return path.isAbsolute(p) ? p : path.resolve(base, p);
}

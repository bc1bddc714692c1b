/** The site config of one box: YAML validated by agent/config/schema.ts, plus checks across fields. */
import path from 'node:path';
import { ConfigError, loadYaml } from '../../common/config.js';
import { SiteConfigSchema, type SiteConfig } from './schema.js';

export { ConfigError, loadYaml, nearestKey, readYaml, validate } from '../../common/config.js';

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

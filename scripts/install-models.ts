/**
 * Install every model named by models/*.model.yaml: copy (or download over http(s)) each file from a
 * mirror into the models dir, verify sha256; bundled models (shipped inside models/) are verified in
 * place. Idempotent: a file already there with the right hash is skipped.
 *
 *   npx tsx scripts/install-models.ts [--mirror DIR|URL] [--dest var/models] [--manifests models] [--quiet]
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { chmod, copyFile, mkdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { loadManifests, modelFilePath, type AnyManifest } from '../agent/detect/manifest.js';
import { DEFAULT_MANIFESTS_DIR, DEFAULT_MODELS_DIR, REPO_ROOT } from '../agent/detect/pack.js';

const HELP = `Install model files named by the manifests, verified by sha256.

Usage: npx tsx scripts/install-models.ts [options]   (or: npm run models -- [options])

  --mirror DIR|URL   where model files come from (default: $BK_MODEL_MIRROR, else ../shared/models
                     next to the repository); http(s) URLs are downloaded from <URL>/<file>
  --dest DIR         where to install (default: var/models of the repository)
  --manifests DIR    manifests folder (default: models/ of the repository)
  --quiet            print nothing unless something fails
  -h, --help         this text

Exit status 1 when any file is missing or corrupt; every problem is listed.`;

export type InstallResult = { name: string; file: string; status: 'present' | 'installed' | 'bundled' };

export class InstallError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InstallError';
  }
}

async function fileSha256(file: string): Promise<string | undefined> {
  try {
    if (!(await stat(file)).isFile()) return undefined;
  } catch {
    return undefined;
  }
  const h = createHash('sha256');
  for await (const chunk of createReadStream(file)) h.update(chunk as Buffer);
  return h.digest('hex');
}

const isUrl = (s: string) => /^https?:\/\//i.test(s);

async function fetchTo(url: string, tmp: string): Promise<void> {
  let res: Response;
  try {
    res = await fetch(url);
  } catch (err) {
    throw new InstallError(`${url}: download failed (${(err as Error & { cause?: Error }).cause?.message ?? (err as Error).message})`);
  }
  if (!res.ok) throw new InstallError(`${url}: download failed (HTTP ${res.status} ${res.statusText})`);
  await writeFile(tmp, Buffer.from(await res.arrayBuffer()));
}

/** Install (or verify) one manifest's file. */
export async function installOne(m: AnyManifest, mirror: string, dest: string): Promise<InstallResult> {
  const target = modelFilePath(m, dest);
  if (m.bundled) {
    const got = await fileSha256(target);
    if (got === undefined) throw new InstallError(`${m.manifestFile}: bundled model file ${target} is missing`);
    if (got !== m.sha256) throw new InstallError(`${m.manifestFile}: bundled model file ${target} is corrupt: sha256 ${got}, expected ${m.sha256}`);
    return { name: m.name, file: target, status: 'bundled' };
  }
  if ((await fileSha256(target)) === m.sha256) return { name: m.name, file: target, status: 'present' };

  const from = isUrl(mirror) ? `${mirror.replace(/\/+$/, '')}/${m.file.split(path.sep).join('/')}` : path.resolve(mirror, m.file);
  await mkdir(path.dirname(target), { recursive: true });
  const tmp = `${target}.part-${process.pid}`;
  try {
    if (isUrl(from)) await fetchTo(from, tmp);
    else {
      try {
        await copyFile(from, tmp);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        throw new InstallError(`${from}: ${code === 'ENOENT' ? 'missing from the mirror' : `cannot copy (${code ?? (err as Error).message})`} (model ${m.name}, ${m.manifestFile})`);
      }
    }
    const got = await fileSha256(tmp);
    if (got !== m.sha256)
      throw new InstallError(`${from}: corrupt: sha256 ${got}, expected ${m.sha256} (model ${m.name}, ${m.manifestFile}); nothing installed`);
    await chmod(tmp, 0o644);
    await rename(tmp, target);
  } finally {
    await rm(tmp, { force: true });
  }
  return { name: m.name, file: target, status: 'installed' };
}

export interface InstallOptions {
  mirror?: string;
  dest?: string;
  manifests?: string;
}

/** Install every manifest's file; throws one InstallError listing every failure. */
export async function installModels(opts: InstallOptions = {}): Promise<InstallResult[]> {
  const mirror = opts.mirror ?? process.env.BK_MODEL_MIRROR ?? path.resolve(REPO_ROOT, '../shared/models');
  const dest = path.resolve(opts.dest ?? DEFAULT_MODELS_DIR);
  const manifests = loadManifests(path.resolve(opts.manifests ?? DEFAULT_MANIFESTS_DIR));
  const results: InstallResult[] = [];
  const problems: string[] = [];
  for (const m of manifests) {
    try {
      results.push(await installOne(m, mirror, dest));
    } catch (err) {
      problems.push((err as Error).message);
    }
  }
  if (problems.length) throw new InstallError(problems.join('\n'));
  return results;
}

async function main(): Promise<void> {
  let args;
  try {
    args = parseArgs({
      options: {
        mirror: { type: 'string' },
        dest: { type: 'string' },
        manifests: { type: 'string' },
        quiet: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
      allowPositionals: false,
    }).values;
  } catch (err) {
    process.stderr.write(`install-models: ${(err as Error).message}\n\n${HELP}\n`);
    process.exit(2);
  }
  if (args.help) {
    process.stdout.write(`${HELP}\n`);
    return;
  }
  try {
    const results = await installModels({ mirror: args.mirror, dest: args.dest, manifests: args.manifests });
    if (!args.quiet) for (const r of results) process.stdout.write(`${r.status.padEnd(9)} ${r.name}  ${path.relative(process.cwd(), r.file) || r.file}\n`);
  } catch (err) {
    process.stderr.write(`install-models: ${(err as Error).message}\n`);
    process.exit(1);
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === path.resolve(new URL(import.meta.url).pathname)) await main();

/**
 * Install the agent or central as a systemd service (layout: scripts/service/units.ts).
 *   npm run install-service -- agent|central --config FILE [--root DIR] [--link-code] [--no-user]
 *   npm run install-service -- agent|central --uninstall [--purge] [--root DIR]
 * Idempotent: a reinstall (an upgrade from a newer checkout) replaces the code and the unit and keeps
 * the installed config, the secrets file and the data.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, cpSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { parseDocument } from 'yaml';
import { loadSiteConfig } from '../agent/config/load.js';
import { REPO_ROOT } from '../agent/detect/pack.js';
import { loadCentralConfig } from '../central/config/load.js';
import { envTemplate, SERVICE_USER, servicePaths, unitFile, type ServiceKind, type ServicePaths } from './service/units.js';

const HELP = `Install the edge agent or central as a systemd service.

Usage: npm run install-service -- agent|central --config FILE [--root DIR] [--link-code] [--no-user]
       npm run install-service -- agent|central --uninstall [--purge] [--root DIR]

  --config FILE   the site config (agent) or central config; copied to /etc/bright-kitchen/<kind>.yaml
                  on the first install (kept on later ones: edit the installed file), its data paths
                  pointed at /var/lib/bright-kitchen/<kind>
  --root DIR      install under DIR instead of / (tests, image building); no user, no systemctl
  --link-code     link /opt/bright-kitchen to this checkout instead of copying it
  --no-user       do not create the system user "${SERVICE_USER}"
  --uninstall     stop and disable the service, remove its unit (and the code when no other service
                  uses it); config, secrets and data stay unless --purge

After installing: put the secrets in /etc/bright-kitchen/<kind>.env, then
  systemctl start bk-<kind> && systemctl status bk-<kind>    journalctl -u bk-<kind> -f`;

const say = (s: string) => process.stdout.write(`install-service: ${s}\n`);

function fail(msg: string, code = 1): never {
  process.stderr.write(`install-service: ${msg}\n`);
  process.exit(code);
}

/** systemd is PID 1 here (not a container without it). */
const systemdRunning = () => existsSync('/run/systemd/system');

function systemctl(...args: string[]): void {
  const r = spawnSync('systemctl', args, { stdio: 'inherit' });
  if (r.status !== 0) throw new Error(`systemctl ${args.join(' ')} failed (exit ${r.status})`);
}

/** The config as installed: relative data paths replaced by the service's own (comments kept). */
export function installedConfig(kind: ServiceKind, text: string, p: ServicePaths): { text: string; notes: string[] } {
  const doc = parseDocument(text);
  const notes: string[] = [];
  const set = (keys: string[], value: string, why: string) => {
    const cur = doc.getIn(keys);
    if (typeof cur === 'string' && path.isAbsolute(cur)) return;
    doc.setIn(keys, value);
    notes.push(`${keys.join('.')}: ${value} (${why}${cur === undefined ? '' : `; was ${String(cur)}`})`);
  };
  if (kind === 'agent') {
    set(['storage', 'dir'], p.data, 'outbox and evidence');
    set(['models', 'dir'], path.join(p.code, 'var/models'), 'installed model files');
    set(['models', 'manifests'], path.join(p.code, 'models'), 'model manifests');
  } else set(['dataDir'], p.data, 'store, snapshots, keys');
  return { text: doc.toString(), notes };
}

function copyCode(p: ServicePaths, link: boolean): void {
  mkdirSync(path.dirname(p.code), { recursive: true });
  if (link) {
    rmSync(p.code, { recursive: true, force: true });
    symlinkSync(REPO_ROOT, p.code);
    say(`code: ${p.code} -> ${REPO_ROOT} (linked)`);
    return;
  }
  // Tracked files, the installed packages and model files; a new copy replaces the old one at once.
  const files = existsSync(path.join(REPO_ROOT, '.git'))
    ? execFileSync('git', ['ls-files', '-z'], { cwd: REPO_ROOT }).toString().split('\0').filter(Boolean)
    : null;
  const next = `${p.code}.new`;
  rmSync(next, { recursive: true, force: true });
  if (files) for (const f of files) cpSync(path.join(REPO_ROOT, f), path.join(next, f), { recursive: true });
  else cpSync(REPO_ROOT, next, { recursive: true, filter: (src) => !src.startsWith(path.join(REPO_ROOT, 'var')) });
  for (const extra of ['node_modules', 'var/models']) if (existsSync(path.join(REPO_ROOT, extra))) cpSync(path.join(REPO_ROOT, extra), path.join(next, extra), { recursive: true, verbatimSymlinks: true });
  rmSync(p.code, { recursive: true, force: true });
  renameSync(next, p.code);
  say(`code: copied to ${p.code}`);
}

export function install(kind: ServiceKind, configFile: string, o: { root: string; linkCode: boolean; user: boolean }): ServicePaths {
  // A config that would not start is refused before anything is written.
  if (kind === 'agent') loadSiteConfig(configFile);
  else loadCentralConfig(configFile);
  const p = servicePaths(kind, o.root);
  const real = o.root === '/';
  copyCode(p, o.linkCode);
  mkdirSync(p.etc, { recursive: true });
  mkdirSync(p.data, { recursive: true });
  if (existsSync(p.config)) say(`config: ${p.config} kept (edit it there; --config is only used on the first install)`);
  else {
    const c = installedConfig(kind, readFileSync(configFile, 'utf8'), p);
    writeFileSync(p.config, `# Installed from ${path.resolve(configFile)} by npm run install-service.\n${c.text}`, { mode: 0o640 });
    say(`config: ${p.config}${c.notes.length ? `, set ${c.notes.join('; ')}` : ''}`);
  }
  if (!existsSync(p.env)) {
    writeFileSync(p.env, envTemplate(kind), { mode: 0o600 });
    say(`secrets: ${p.env} (mode 600): fill it in`);
  }
  chmodSync(p.env, 0o600);
  if (real && o.user) {
    if (spawnSync('id', ['-u', SERVICE_USER]).status !== 0) {
      execFileSync('useradd', ['--system', '--home-dir', '/var/lib/bright-kitchen', '--shell', '/usr/sbin/nologin', '--user-group', SERVICE_USER]);
      say(`user: ${SERVICE_USER} created`);
    }
    if (kind === 'agent') spawnSync('usermod', ['-a', '-G', 'audio', SERVICE_USER]);
    execFileSync('chown', ['-R', `${SERVICE_USER}:${SERVICE_USER}`, p.data]);
    execFileSync('chown', [`root:${SERVICE_USER}`, p.config, p.env]);
    chmodSync(p.env, 0o640);
  }
  mkdirSync(path.dirname(p.unit), { recursive: true });
  writeFileSync(p.unit, unitFile(kind, p));
  say(`unit: ${p.unit}`);
  if (real && systemdRunning()) {
    systemctl('daemon-reload');
    systemctl('enable', `bk-${kind}.service`);
    say(`enabled bk-${kind}; start it with: systemctl start bk-${kind}`);
  } else if (real) say('systemd is not running here (a container?): the unit is written, start the ExecStart line by other means');
  return p;
}

export function uninstall(kind: ServiceKind, o: { root: string; purge: boolean }): void {
  const p = servicePaths(kind, o.root);
  if (o.root === '/' && systemdRunning() && existsSync(p.unit)) systemctl('disable', '--now', `bk-${kind}.service`);
  rmSync(p.unit, { force: true });
  if (o.root === '/' && systemdRunning()) systemctl('daemon-reload');
  const other = servicePaths(kind === 'agent' ? 'central' : 'agent', o.root);
  if (!existsSync(other.unit)) rmSync(p.code, { recursive: true, force: true });
  if (o.purge) for (const f of [p.config, p.env, p.data]) rmSync(f, { recursive: true, force: true });
  say(`removed bk-${kind}${o.purge ? ' with its config, secrets and data' : `; kept ${p.config}, ${p.env}, ${p.data}`}`);
}

async function main(): Promise<void> {
  let a;
  try {
    a = parseArgs({
      allowPositionals: true,
      options: { config: { type: 'string' }, root: { type: 'string', default: '/' }, 'link-code': { type: 'boolean', default: false }, 'no-user': { type: 'boolean', default: false }, uninstall: { type: 'boolean', default: false }, purge: { type: 'boolean', default: false }, help: { type: 'boolean', short: 'h', default: false } },
    });
  } catch (err) {
    fail(`${(err as Error).message}\n\n${HELP}`, 2);
  }
  if (a.values.help) return void process.stdout.write(`${HELP}\n`);
  const kind = a.positionals[0];
  if (kind !== 'agent' && kind !== 'central') fail(`expected "agent" or "central" first, got ${kind === undefined ? 'nothing' : `"${kind}"`}\n\n${HELP}`, 2);
  const root = path.resolve(a.values.root);
  try {
    if (a.values.uninstall) return uninstall(kind, { root, purge: a.values.purge });
    if (!a.values.config) fail('--config FILE is required to install', 2);
    if (root === '/' && process.getuid?.() !== 0) fail('installing into / needs root (or give --root DIR)');
    install(kind, a.values.config, { root, linkCode: a.values['link-code'], user: !a.values['no-user'] });
  } catch (err) {
    fail((err as Error).message);
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === path.resolve(new URL(import.meta.url).pathname)) await main();

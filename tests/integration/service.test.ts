/**
 * The service install, in a temp root: the units pass `systemd-analyze verify`, and the exact
 * ExecStart line of each unit (its environment file loaded) brings the service up healthy and stops
 * it cleanly on SIGTERM. systemd itself is not PID 1 on these machines (containers), so `systemctl
 * start` is not exercised here: docs/deploy.md says so. Reinstalling keeps config, secrets and data;
 * uninstalling keeps them too.
 */
import { execFile, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../agent/detect/index.js';
import { freeTcpPort } from '../../common/net.js';
import { installModels } from '../../scripts/install-models.js';
import { servicePaths, type ServiceKind } from '../../scripts/service/units.js';

const run = promisify(execFile);
const TSX = path.join(REPO_ROOT, 'node_modules/.bin/tsx');
let root: string;

beforeAll(async () => {
  await installModels();
  root = mkdtempSync(path.join(tmpdir(), 'bk-root-'));
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

const installer = (args: string[]) => run(TSX, [path.join(REPO_ROOT, 'scripts/install-service.ts'), ...args, '--root', root], { cwd: REPO_ROOT });

/** The unit's ExecStart as argv, and its EnvironmentFile's variables. */
function fromUnit(unitFile: string): { argv: string[]; env: Record<string, string>; cwd: string } {
  const unit = readFileSync(unitFile, 'utf8');
  const line = (k: string) => unit.split('\n').find((l) => l.startsWith(`${k}=`))!.slice(k.length + 1);
  const envFile = line('EnvironmentFile').replace(/^-/, '');
  const env = Object.fromEntries(
    readFileSync(envFile, 'utf8').split('\n').filter((l) => /^[A-Z_][A-Z0-9_]*=/.test(l)).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
  );
  return { argv: line('ExecStart').split(' '), env, cwd: line('WorkingDirectory') };
}

async function upAndDown(kind: ServiceKind, healthUrl: string): Promise<{ code: number | null; stderr: string }> {
  const p = servicePaths(kind, root);
  const { argv, env, cwd } = fromUnit(p.unit);
  const child = spawn(argv[0]!, argv.slice(1), { cwd, env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env, LOG_LEVEL: 'warn' }, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  const exited = new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
  let healthy = false;
  for (let i = 0; i < 120 && !healthy && child.exitCode === null; i++) {
    await new Promise((r) => setTimeout(r, 250));
    healthy = await fetch(healthUrl).then((r) => r.ok, () => false);
  }
  expect(healthy, `${kind} never answered ${healthUrl}: ${stderr}`).toBe(true);
  child.kill('SIGTERM');
  const code = await Promise.race([exited, new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 20_000))]);
  if (code === 'timeout') child.kill('SIGKILL');
  expect(code, 'stops on SIGTERM within 20 s').not.toBe('timeout');
  return { code: code as number | null, stderr };
}

function verify(unit: string): void {
  // scripts/setup.sh installs systemd (its tools work without systemd running as PID 1).
  const r = spawnSync('systemd-analyze', ['verify', unit], { encoding: 'utf8' });
  expect(r.error, 'systemd-analyze missing: run scripts/setup.sh').toBeUndefined();
  expect(r.status, r.stderr).toBe(0);
  expect(r.stderr.trim()).toBe('');
}

describe('service install', () => {
  it('agent: unit verifies, its ExecStart comes up healthy and stops on SIGTERM; reinstall and uninstall keep config and data', async () => {
    const healthPort = await freeTcpPort(0);
    const cfg = path.join(root, 'site.yaml');
    writeFileSync(
      cfg,
      `site: { id: svc-site, name: 服务测试食堂 }\nmodels: { pack: [{ manifest: rfb640_masked_face }] }\nhealth: { port: ${healthPort} }\n` +
        `cameras:\n  - { id: cam1, name: 后厨, url: "rtsp://127.0.0.1:${await freeTcpPort(0)}/none" }\n`,
    );
    const first = await installer(['agent', '--config', cfg, '--link-code']);
    expect(first.stdout).toMatch(/storage\.dir: .*var\/lib\/bright-kitchen\/agent/);
    const p = servicePaths('agent', root);
    verify(p.unit);
    const unit = readFileSync(p.unit, 'utf8');
    for (const k of ['Restart=on-failure', 'WatchdogSec=', 'Type=notify', 'User=bk', 'NoNewPrivileges=yes', 'ProtectSystem=strict', 'PrivateTmp=yes', '--initial-old-space-size=64'])
      expect(unit).toContain(k);
    const { code } = await upAndDown('agent', `http://127.0.0.1:${healthPort}/healthz`);
    expect(code).toBe(0);
    expect(existsSync(path.join(p.data, 'outbox.sqlite'))).toBe(true); // data under /var/lib, not in the code

    // upgrade: the installed (edited) config, the secrets and the data stay
    writeFileSync(p.config, `${readFileSync(p.config, 'utf8')}# edited on site\n`);
    writeFileSync(p.env, 'BK_MQTT_PASSWORD=kept\n');
    writeFileSync(path.join(p.data, 'marker'), 'x');
    await installer(['agent', '--config', cfg, '--link-code']);
    expect(readFileSync(p.config, 'utf8')).toContain('# edited on site');
    expect(readFileSync(p.env, 'utf8')).toBe('BK_MQTT_PASSWORD=kept\n');
    expect(existsSync(path.join(p.data, 'marker'))).toBe(true);

    await installer(['agent', '--uninstall']);
    expect(existsSync(p.unit)).toBe(false);
    expect(existsSync(p.config) && existsSync(p.env) && existsSync(path.join(p.data, 'marker'))).toBe(true);
  }, 90_000);

  it('central: unit verifies, its ExecStart comes up healthy on /healthz and stops on SIGTERM', async () => {
    const httpPort = await freeTcpPort(0);
    const cfg = path.join(root, 'central.yaml');
    writeFileSync(cfg, `http: { host: 127.0.0.1, port: ${httpPort}, publicUrl: "http://127.0.0.1:${httpPort}" }\nbroker: { mode: embedded, host: 127.0.0.1, port: ${await freeTcpPort(0)} }\ndataDir: var/central\norg: {}\n`);
    await installer(['central', '--config', cfg, '--link-code']);
    const p = servicePaths('central', root);
    verify(p.unit);
    const { code } = await upAndDown('central', `http://127.0.0.1:${httpPort}/healthz`);
    expect(code).toBe(0);
    expect(existsSync(path.join(p.data, 'central.db'))).toBe(true);
  }, 90_000);

  it('refuses a config that would not start, before writing anything', async () => {
    const bad = path.join(root, 'bad.yaml');
    writeFileSync(bad, 'site: { id: s, name: x }\ncameras: []\n');
    await expect(installer(['agent', '--config', bad, '--link-code'])).rejects.toMatchObject({ stderr: expect.stringMatching(/cameras: expected at least one camera/) });
  });
});

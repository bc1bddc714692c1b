/**
 * Bad files given to the real command lines (`agent/main.ts --check`, `central/main.ts --check`, in
 * child processes): corrupt YAML, wrong types, typos, binary garbage, missing files; a corrupt, a
 * truncated and a wrong model file. Expected: a non-zero exit with one clear message naming the file
 * and the field (or the model file), no stack trace, within seconds.
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { ROOT, Scratch, row, testVideo, type Row } from '../lib/harness.js';

interface Case {
  name: string;
  cli: 'agent' | 'central';
  /** File content, or a function preparing the case and returning the config path. */
  config: string | ((dir: string) => string);
  exit: number[];
  /** Must all appear in stderr. */
  names: RegExp[];
}

function run(cli: 'agent' | 'central', file: string): { code: number | null; stderr: string; ms: number } {
  const t = Date.now();
  const r = spawnSync(process.execPath, ['--import', 'tsx', path.join(ROOT, cli, 'main.ts'), '--config', file, '--check'], {
    cwd: ROOT, encoding: 'utf8', timeout: 60_000, env: { ...process.env, LOG_LEVEL: 'error', VITEST: '' },
  });
  return { code: r.status, stderr: `${r.stderr ?? ''}${r.stdout ?? ''}`, ms: Date.now() - t };
}

const agentBase = (video: string, modelsDir = 'var/models') => ({
  site: { id: 'site-a', name: 'x' },
  models: { dir: modelsDir, pack: [{ manifest: 'yolox_nano' }] },
  cameras: [{ id: 'cam1', name: 'c', url: `file://${video}` }],
});

export async function badFilesScenario(): Promise<Row> {
  const t0 = Date.now();
  const scratch = new Scratch();
  try {
    const video = testVideo();
    const j = (o: unknown) => JSON.stringify(o, null, 1);
    const modelDir = (dir: string, make: (target: string) => void) => {
      const m = path.join(dir, 'models');
      spawnSync('mkdir', ['-p', m]);
      make(path.join(m, 'yolox_nano.onnx'));
      const f = path.join(dir, 'site.yaml');
      writeFileSync(f, j(agentBase(video, m)));
      return f;
    };
    const real = path.join(ROOT, 'var/models/yolox_nano.onnx');
    const cases: Case[] = [
      { name: 'agent: YAML syntax error', cli: 'agent', config: 'site:\n  id: [unclosed\n cameras: -', exit: [2], names: [/site\.yaml/, /YAML/] },
      { name: 'agent: wrong type (cameras[0].fps: "fast")', cli: 'agent', config: j({ ...agentBase(video), cameras: [{ id: 'cam1', name: 'c', url: 'rtsp://h/x', fps: 'fast' }] }), exit: [2], names: [/cameras\[0\]\.fps/] },
      { name: 'agent: typo key (fsp)', cli: 'agent', config: j({ ...agentBase(video), cameras: [{ id: 'cam1', name: 'c', url: 'rtsp://h/x', fsp: 2 }] }), exit: [2], names: [/fsp/] },
      { name: 'agent: id unsafe for topics (site.id "a/#")', cli: 'agent', config: j({ ...agentBase(video), site: { id: 'a/#', name: 'x' } }), exit: [2], names: [/site\.id/] },
      { name: 'agent: binary garbage', cli: 'agent', config: Buffer.from(Array.from({ length: 2000 }, (_, i) => (i * 131 + 7) & 0xff)).toString('latin1'), exit: [2], names: [/site\.yaml/] },
      { name: 'agent: empty file', cli: 'agent', config: '', exit: [2], names: [/site\.yaml/] },
      { name: 'agent: missing file', cli: 'agent', config: (d) => path.join(d, 'nope.yaml'), exit: [2], names: [/nope\.yaml/, /ENOENT|cannot read/] },
      { name: 'agent: corrupt model file (random bytes)', cli: 'agent', config: (d) => modelDir(d, (t) => writeFileSync(t, Buffer.alloc(50_000, 0x3c))), exit: [1, 2], names: [/yolox_nano/] },
      { name: 'agent: truncated model file', cli: 'agent', config: (d) => modelDir(d, (t) => writeFileSync(t, readFileSync(real).subarray(0, 100_000))), exit: [1, 2], names: [/yolox_nano/] },
      { name: 'agent: wrong model (face model under the yolox name)', cli: 'agent', config: (d) => modelDir(d, (t) => copyFileSync(path.join(ROOT, 'var/models/rfb320_face.onnx'), t)), exit: [1, 2], names: [/yolox_nano/] },
      { name: 'central: YAML syntax error', cli: 'central', config: 'dataDir: /tmp/x\nbroker: {mode: embedded\norg:', exit: [2], names: [/central\.yaml/, /YAML/] },
      { name: 'central: wrong type (broker.port: "x")', cli: 'central', config: j({ dataDir: '/tmp/bk-x', broker: { mode: 'embedded', port: 'x' }, org: {} }), exit: [2], names: [/broker\.port/] },
      { name: 'central: bad password hash', cli: 'central', config: j({ dataDir: '/tmp/bk-x', broker: { mode: 'embedded' }, org: { users: [{ id: 'u1', username: 'u', name: 'n', role: 'admin', passwordHash: 'plaintext' }] } }), exit: [2], names: [/org\.users\[0\]\.passwordHash/] },
      { name: 'central: unknown role', cli: 'central', config: j({ dataDir: '/tmp/bk-x', broker: { mode: 'embedded' }, org: { users: [{ id: 'u1', username: 'u', name: 'n', role: 'root', passwordHash: 'scrypt$16384$8$1$YWJj$YWJj' }] } }), exit: [2], names: [/org\.users\[0\]\.role/] },
      { name: 'central: binary garbage', cli: 'central', config: Buffer.from(Array.from({ length: 2000 }, (_, i) => (i * 97 + 3) & 0xff)).toString('latin1'), exit: [2], names: [/central\.yaml/] },
    ];
    const bad: string[] = [];
    const samples: string[] = [];
    let slowest = 0;
    for (const c of cases) {
      const dir = scratch.dir('badfile');
      const file = typeof c.config === 'function' ? c.config(dir) : path.join(dir, c.cli === 'agent' ? 'site.yaml' : 'central.yaml');
      if (typeof c.config === 'string') writeFileSync(file, c.config, 'latin1');
      const r = run(c.cli, file);
      slowest = Math.max(slowest, r.ms);
      const stack = /\n\s+at .+\(.+:\d+:\d+\)/.test(r.stderr);
      const okExit = r.code !== null && c.exit.includes(r.code);
      const named = c.names.every((re) => re.test(r.stderr));
      if (!okExit || !named || stack) bad.push(`${c.name}: exit ${r.code}${named ? '' : ', not named'}${stack ? ', stack trace' : ''} — "${r.stderr.trim().split('\n')[0]?.slice(0, 120)}"`);
      if (/model|fps/.test(c.name) && samples.length < 3) samples.push(`"${(r.stderr.split('\n').find((l) => /^(agent|central|config error)/.test(l)) ?? r.stderr.trim().split('\n').pop()!).replace(/\/tmp\/[^ :]+\//g, '…/').slice(0, 110)}"`);
    }
    const pass = bad.length === 0;
    return row({
      group: 'hostile',
      name: `corrupt config and model files on the agent and central command lines (${cases.length} cases)`,
      expected: 'exit 2 (config) / non-zero (model) with one message naming the file and field or model; no stack trace',
      observed: pass ? `all ${cases.length} refused clearly (slowest ${(slowest / 1000).toFixed(1)} s), e.g. ${samples.join('; ')}` : `${bad.length} unclear: ${bad.join(' | ')}`,
      sent: cases.length, received: cases.length - bad.length, pass,
      ...(pass ? {} : { owner: 'agent/main.ts + agent/detect (model errors), central/main.ts' }),
      seconds: (Date.now() - t0) / 1000,
    });
  } finally {
    await scratch.dispose();
  }
}

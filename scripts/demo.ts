/**
 * `npm start`: the whole system on one machine with embedded defaults — central (embedded MQTT
 * broker, dashboard), a simulated camera playing sample photos over RTSP, and an edge agent watching
 * it. Prints the dashboard URL and the demo logins. Ctrl-C stops everything.
 *
 * Generated files live in var/demo/ (configs, random credentials, data); delete it to start afresh.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { stringify } from 'yaml';
import { hashPassword } from '../central/auth/password.js';
import { freeTcpPort } from '../common/net.js';
import { REPO_ROOT } from '../agent/detect/pack.js';
import { HEAP_FLAG } from '../common/heap.js';

const HELP = `Usage: npm start [-- --images DIR] [--http-port 8080] [--mqtt-port 1883] [--seconds N]

Runs central (embedded broker + dashboard), a simulated RTSP camera playing sample photos and an
edge agent, all bound to 127.0.0.1. Open the printed URL and log in with a printed account.
  --images DIR     photos to play (default ../shared/data/masks/images)
  --seconds N      stop by itself after N seconds (default: run until Ctrl-C)`;

interface Creds {
  sitePassword: string;
  users: Record<string, string>;
}

const USERS = [
  { id: 'u-manager', username: 'manager', name: '王经理', role: 'canteen_manager', siteIds: ['canteen-001'] },
  { id: 'u-vp', username: 'vp', name: '李副校长', role: 'vice_principal', schoolId: 'school-001' },
  { id: 'u-inspector', username: 'inspector', name: '张监管员', role: 'inspector', districtId: 'district-001' },
  { id: 'u-admin', username: 'admin', name: '系统管理员', role: 'admin' },
] as const;


function loadCreds(file: string): Creds {
  if (existsSync(file)) return JSON.parse(readFileSync(file, 'utf8')) as Creds;
  const pw = () => randomBytes(9).toString('base64url');
  const creds: Creds = { sitePassword: pw(), users: Object.fromEntries(USERS.map((u) => [u.username, pw()])) };
  writeFileSync(file, JSON.stringify(creds, null, 2), { mode: 0o600 });
  return creds;
}

function start(name: string, args: string[], env: NodeJS.ProcessEnv = {}): ChildProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', ...args], {
    cwd: REPO_ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logFile = path.join(REPO_ROOT, 'var/demo', `${name}.log`);
  const out = (chunk: Buffer) => writeFileSync(logFile, chunk, { flag: 'a' });
  child.stdout!.on('data', out);
  child.stderr!.on('data', out);
  child.on('exit', (code, signal) => {
    if (!stopping) process.stderr.write(`demo: ${name} exited (${signal ?? code}); see ${logFile}\n`);
  });
  return child;
}

function waitFor(child: ChildProcess, pattern: RegExp, what: string, timeoutMs = 120_000): Promise<string> {
  return new Promise((resolve, reject) => {
    let buf = '';
    const timer = setTimeout(() => reject(new Error(`${what} did not start within ${timeoutMs / 1000} s`)), timeoutMs);
    const onData = (c: Buffer) => {
      buf += c.toString();
      const m = buf.match(pattern);
      if (m) {
        clearTimeout(timer);
        child.stdout!.off('data', onData);
        child.stderr!.off('data', onData);
        resolve(m[1] ?? m[0]);
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${what} exited with ${code} before it was ready:\n${buf.slice(-2000)}`));
    });
  });
}

async function waitHttp(url: string, timeoutMs = 60_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    try {
      await fetch(url);
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 300));
    }
  }
  throw new Error(`central did not answer on ${url} within ${timeoutMs / 1000} s`);
}

let stopping = false;
const children: ChildProcess[] = [];

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      images: { type: 'string' },
      'http-port': { type: 'string', default: '8080' },
      'mqtt-port': { type: 'string', default: '1883' },
      seconds: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(`${HELP}\n`);
    return;
  }
  const dir = path.join(REPO_ROOT, 'var/demo');
  mkdirSync(dir, { recursive: true });
  const images = path.resolve(values.images ?? path.join(REPO_ROOT, '../shared/data/masks/images'));
  if (!existsSync(images)) throw new Error(`sample images not found: ${images} (pass --images DIR with a few photos of people)`);

  const creds = loadCreds(path.join(dir, 'credentials.json'));
  const httpPort = await freeTcpPort(Number(values['http-port']));
  const mqttPort = await freeTcpPort(Number(values['mqtt-port']));
  const rtspPort = await freeTcpPort(8554);
  const publicUrl = `http://127.0.0.1:${httpPort}`;
  const rtspUrl = `rtsp://127.0.0.1:${rtspPort}/kitchen`;

  const central = {
    http: { host: '127.0.0.1', port: httpPort, publicUrl },
    broker: { mode: 'embedded', host: '127.0.0.1', port: mqttPort },
    dataDir: path.join(dir, 'central'),
    org: {
      districts: [{ id: 'district-001', name: '示范区市场监督管理局' }],
      schools: [{ id: 'school-001', name: '示范区第一中学', districtId: 'district-001' }],
      sites: [
        {
          id: 'canteen-001',
          name: '第一中学学生食堂',
          schoolId: 'school-001',
          mqttPasswordHash: await hashPassword(creds.sitePassword),
          cameras: [{ id: 'cam-kitchen', name: '后厨操作间', liveUrl: rtspUrl }],
        },
      ],
      users: await Promise.all(USERS.map(async (u) => ({ ...u, passwordHash: await hashPassword(creds.users[u.username]!) }))),
    },
    // Short escalation steps so the demo shows the vice-principal and the office being reached.
    routing: {
      tier2: { mode: 'escalate', viceAfterMin: 2, inspectorAfterMin: 3, rectifyWithinHours: 72, webhook: 'on_inspector' },
    },
  };
  writeFileSync(path.join(dir, 'central.yaml'), `# generated by npm start (scripts/demo.ts)\n${stringify(central)}`);

  const site = {
    site: { id: 'canteen-001', name: '第一中学学生食堂', timezone: 'Asia/Shanghai' },
    // Open all day so the demo raises alerts whatever the hour.
    serviceHours: [{ days: ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'], from: '00:00', to: '23:59' }],
    models: { dir: path.join(REPO_ROOT, 'var/models'), manifests: path.join(REPO_ROOT, 'models'), pack: [{ manifest: 'rfb640_masked_face' }], threads: 2 },
    cameras: [{ id: 'cam-kitchen', name: '后厨操作间', url: rtspUrl, fps: 2 }],
    uplink: { url: `mqtt://127.0.0.1:${mqttPort}` },
    storage: { dir: path.join(dir, 'agent') },
    voice: {
      enabled: true,
      centralPublicKeyFile: path.join(dir, 'central', 'voice-signing.pub.pem'),
      sink: { type: 'file', dir: path.join(dir, 'speaker') },
    },
  };
  writeFileSync(path.join(dir, 'site.yaml'), `# generated by npm start (scripts/demo.ts)\n${stringify(site)}`);

  process.stderr.write('demo: starting the simulated camera, central and the agent …\n');
  const camera = start('camera', ['scripts/sim-camera.ts', images, '--port', String(rtspPort), '--path', 'kitchen', '--image-seconds', '6', '--loop']);
  children.push(camera);
  const cent = start('central', ['central/main.ts', '--config', path.join(dir, 'central.yaml')]);
  children.push(cent);
  await Promise.all([waitFor(camera, /(rtsp:\/\/\S+)/, 'simulated camera'), waitHttp(`${publicUrl}/api/me`)]);
  const agent = start('agent', [HEAP_FLAG, 'agent/main.ts', '--config', path.join(dir, 'site.yaml')], {
    BK_MQTT_USERNAME: 'canteen-001',
    BK_MQTT_PASSWORD: creds.sitePassword,
  });
  children.push(agent);
  await waitFor(agent, /agent started/, 'agent');

  const lines = [
    '',
    '明厨亮灶 bright-kitchen demo is running',
    `  dashboard  ${publicUrl}`,
    `  broker     mqtt://127.0.0.1:${mqttPort}   camera ${rtspUrl}`,
    '  logins (user / password):',
    ...USERS.map((u) => `    ${u.username.padEnd(10)} ${creds.users[u.username]}   ${u.name} (${u.role})`),
    `  logs and data: ${dir}`,
    '  Ctrl-C stops everything.',
    '',
  ];
  process.stdout.write(`${lines.join('\n')}\n`);

  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
    if (values.seconds) setTimeout(resolve, Number(values.seconds) * 1000).unref();
    for (const c of children) c.once('exit', () => !stopping && resolve());
  });
}

async function shutdown(code: number): Promise<never> {
  stopping = true;
  await Promise.all(
    children.reverse().map(
      (c) =>
        new Promise<void>((resolve) => {
          if (c.exitCode !== null || c.signalCode !== null) return resolve();
          c.once('exit', () => resolve());
          c.kill('SIGTERM');
          setTimeout(() => c.kill('SIGKILL'), 8000).unref();
        }),
    ),
  );
  process.exit(code);
}

main().then(
  () => shutdown(0),
  (err: Error) => {
    process.stderr.write(`demo: ${err.message}\n`);
    return shutdown(1);
  },
);

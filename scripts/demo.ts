/**
 * `npm start`: the whole system on one machine with embedded defaults — central (embedded MQTT
 * broker, dashboard), a simulated kitchen camera over RTSP, and an edge agent watching it with the
 * default model pack. The camera plays a kitchen's day in 48 s: a bare-headed cook (no_hat), a bare
 * face (no_mask), a rat on the food counter (rodent), a raw-coded board on the cooked counter
 * (mixed_boards, a drawn board: scripts/boards/scenes.ts), chefs in toques (nothing). Prints the
 * dashboard URL and the demo logins. Ctrl-C stops everything.
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
import { DEFAULT_PACK, REPO_ROOT } from '../agent/detect/pack.js';
import { HEAP_FLAG } from '../common/heap.js';
import { renderScene, SCENE_CODE, SCENE_ZONES } from './boards/scenes.js';

const HELP = `Usage: npm start [-- --images DIR] [--http-port 8080] [--mqtt-port 1883] [--seconds N]

Runs central (embedded broker + dashboard), a simulated RTSP camera playing sample photos and an
edge agent, all bound to 127.0.0.1. Open the printed URL and log in with a printed account.
  --images DIR     photos to play instead of the demo kitchen (a folder; no zones then)
  --seconds N      stop by itself after N seconds (default: run until Ctrl-C)`;

interface Creds {
  sitePassword: string;
  users: Record<string, string>;
  /** The canteen manager's broker password: the per-recipient MQTT channel a phone app would read. */
  managerMqtt?: string;
}

const USERS = [
  { id: 'u-manager', username: 'manager', name: '王经理', role: 'canteen_manager', siteIds: ['canteen-001'] },
  { id: 'u-vp', username: 'vp', name: '李副校长', role: 'vice_principal', schoolId: 'school-001' },
  { id: 'u-inspector', username: 'inspector', name: '张监管员', role: 'inspector', districtId: 'district-001' },
  { id: 'u-admin', username: 'admin', name: '系统管理员', role: 'admin' },
] as const;


const DATA = path.resolve(REPO_ROOT, '../shared/data');
const SHOW_SEC = 6;

/**
 * The demo kitchen's playlist (each picture SHOW_SEC, looped), from the development images: what each
 * raises was checked with `npm run detect`. The board scene is shown twice in a row (12 s): the
 * mixed_boards rules wait 10 s.
 */
async function demoKitchen(dir: string): Promise<string> {
  const out = path.join(dir, 'kitchen');
  mkdirSync(out, { recursive: true });
  const bareCook = path.join(DATA, 'hats/kitchen/images/kitchenB_000480.jpg');
  const photos: [string, string][] = [
    ['00-bare-headed-cook.jpg', bareCook],
    ['01-bare-face.jpg', path.join(DATA, 'masks/images/11-photo.jpg')],
    ['02-rat.jpg', path.join(DATA, 'rats/images/val/231_jpg.rf.20ce006f417ebf1609bdda3afaf13f22.jpg')],
    ['05-chefs-in-toques.jpg', path.join(DATA, 'hats/kitchen/images/kitchenA_006150.jpg')],
    ['06-rat.jpg', path.join(DATA, 'rats/images/val/112_jpg.rf.582c02c2484c444d0943369171e39633.jpg')],
  ];
  for (const [name, src] of photos) {
    if (!existsSync(src)) throw new Error(`demo image not found: ${src} (the development images in ../shared/data; or pass --images DIR)`);
    writeFileSync(path.join(out, name), readFileSync(src));
  }
  const { jpeg } = await renderScene(bareCook, 'test', 'raw_in_cooked', [{ colour: 'red', zone: SCENE_ZONES[1]!, slot: 0, slots: 1 }], 7, 'board.jpg');
  for (const name of ['03-red-board-on-cooked-counter.jpg', '04-red-board-on-cooked-counter.jpg']) writeFileSync(path.join(out, name), jpeg);
  return out;
}

function loadCreds(file: string): Creds & { managerMqtt: string } {
  const pw = () => randomBytes(9).toString('base64url');
  const creds: Creds = existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as Creds) : { sitePassword: pw(), users: Object.fromEntries(USERS.map((u) => [u.username, pw()])) };
  if (!creds.managerMqtt) {
    creds.managerMqtt = pw(); // older demo folders lack it
    writeFileSync(file, JSON.stringify(creds, null, 2), { mode: 0o600 });
  }
  return creds as Creds & { managerMqtt: string };
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
  const ownImages = values.images !== undefined;
  const images = ownImages ? path.resolve(values.images!) : await demoKitchen(dir);
  if (!existsSync(images)) throw new Error(`images not found: ${images} (pass --images DIR with a few photos of people)`);

  const creds = loadCreds(path.join(dir, 'credentials.json'));
  const httpPort = await freeTcpPort(Number(values['http-port']));
  const mqttPort = await freeTcpPort(Number(values['mqtt-port']));
  const rtspPort = await freeTcpPort(8554);
  const healthPort = await freeTcpPort(9464);
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
      users: await Promise.all(
        USERS.map(async (u) => ({
          ...u,
          passwordHash: await hashPassword(creds.users[u.username]!),
          ...(u.username === 'manager' ? { mqttPasswordHash: await hashPassword(creds.managerMqtt) } : {}),
        })),
      ),
    },
    // Short escalation steps so the demo shows the vice-principal and the office being reached.
    routing: {
      tier2: { mode: 'escalate', viceAfterMin: 2, inspectorAfterMin: 3, rectifyWithinHours: 72, webhook: 'on_inspector' },
    },
  };
  writeFileSync(path.join(dir, 'central.yaml'), `# generated by npm start (scripts/demo.ts)\n${stringify(central)}`);

  const site = {
    site: { id: 'canteen-001', name: '第一中学学生食堂', timezone: 'Asia/Shanghai' },
    // Open all day (from == to) so the demo raises alerts whatever the hour.
    serviceHours: [{ days: ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'], from: '00:00', to: '00:00' }],
    // The default pack (faces, people and animals, rats, the head classifier), one worker each.
    models: { dir: path.join(REPO_ROOT, 'var/models'), manifests: path.join(REPO_ROOT, 'models'), pack: DEFAULT_PACK },
    // The demo kitchen's counters: raw left, cooked right (the board scene's zones), and the whole
    // picture a food area, so that an animal is an alarm in service hours too.
    ...(ownImages ? {} : { boards: SCENE_CODE }),
    cameras: [
      {
        id: 'cam-kitchen',
        name: '后厨操作间',
        url: rtspUrl,
        fps: 2,
        ...(ownImages ? {} : { zones: [...SCENE_ZONES, { id: 'food-area', name: '食品加工区', kind: 'food', points: [[0, 0], [1, 0], [1, 1], [0, 1]] }] }),
      },
    ],
    uplink: { url: `mqtt://127.0.0.1:${mqttPort}` },
    health: { host: '127.0.0.1', port: healthPort },
    storage: { dir: path.join(dir, 'agent') },
    voice: {
      enabled: true,
      centralPublicKeyFile: path.join(dir, 'central', 'voice-signing.pub.pem'),
      sink: { type: 'file', dir: path.join(dir, 'speaker') },
    },
  };
  writeFileSync(path.join(dir, 'site.yaml'), `# generated by npm start (scripts/demo.ts)\n${stringify(site)}`);

  process.stderr.write('demo: starting the simulated camera, central and the agent …\n');
  const camera = start('camera', ['scripts/sim-camera.ts', images, '--port', String(rtspPort), '--path', 'kitchen', '--image-seconds', String(SHOW_SEC), '--loop']);
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
    `  agent      http://127.0.0.1:${healthPort}/metrics  (also /healthz, /readyz)`,
    '  logins (user / password):',
    ...USERS.map((u) => `    ${u.username.padEnd(10)} ${creds.users[u.username]}   ${u.name} (${u.role})`),
    "  the manager's phone channel (per-recipient MQTT alerts):",
    `    mosquitto_sub -h 127.0.0.1 -p ${mqttPort} -u manager -P '${creds.managerMqtt}' -t 'bk/v1/user/u-manager/alert' -v`,
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

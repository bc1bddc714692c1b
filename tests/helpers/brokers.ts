/**
 * Real MQTT brokers for tests: an embedded aedes in this process, or a mosquitto child process with
 * a generated config in a temp dir. Both bind 127.0.0.1 on a free port and resolve once listening.
 */
import { spawn, spawnSync, type ChildProcess, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import path from 'node:path';
import { Aedes, type Client } from 'aedes';
import { freeTcpPort } from '../../common/net.js';

/** A free TCP port on 127.0.0.1. */
export const freePort = (): Promise<number> => freeTcpPort();

/** Resolve when a TCP connect to 127.0.0.1:port succeeds; reject after timeoutMs. */
export async function waitForPort(port: number, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1');
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`nothing listening on 127.0.0.1:${port} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export interface AuthRequest {
  action: 'publish' | 'subscribe';
  clientId: string;
  username: string | undefined;
  topic: string;
}

export interface AedesOptions {
  port?: number;
  /** Return true to accept the connection. */
  authenticate?: (username: string | undefined, password: string | undefined, clientId: string) => boolean;
  /** Return true to allow the publish / subscribe. */
  authorize?: (req: AuthRequest) => boolean;
}

export interface AedesHandle {
  url: string;
  port: number;
  broker: Aedes;
  /** Destroy the broker-side socket of a client (no DISCONNECT: its last will fires). */
  dropClient(clientId: string): boolean;
  close(): Promise<void>;
}

export async function startAedes(opts: AedesOptions = {}): Promise<AedesHandle> {
  const broker = await Aedes.createBroker();
  const usernames = new WeakMap<Client, string | undefined>();
  const clients = new Map<string, Client>();
  broker.authenticate = (client, username, password, done) => {
    usernames.set(client, username);
    if (!opts.authenticate || opts.authenticate(username, password?.toString(), client.id)) return done(null, true);
    const err = Object.assign(new Error('bad username or password'), { returnCode: 4 as const });
    done(err, false);
  };
  if (opts.authorize) {
    const authorize = opts.authorize;
    broker.authorizePublish = (client, packet, cb) => {
      if (!client) return cb(null);
      cb(authorize({ action: 'publish', clientId: client.id, username: usernames.get(client), topic: packet.topic }) ? null : new Error('not authorized'));
    };
    broker.authorizeSubscribe = (client, sub, cb) => {
      cb(null, authorize({ action: 'subscribe', clientId: client.id, username: usernames.get(client), topic: sub.topic }) ? sub : null);
    };
  }
  broker.on('client', (c) => clients.set(c.id, c));
  broker.on('clientDisconnect', (c) => {
    if (clients.get(c.id) === c) clients.delete(c.id);
  });
  const sockets = new Set<net.Socket>();
  const server = net.createServer((sock) => {
    sockets.add(sock);
    sock.on('close', () => sockets.delete(sock));
    broker.handle(sock);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as net.AddressInfo).port;
  return {
    url: `mqtt://127.0.0.1:${port}`,
    port,
    broker,
    dropClient(clientId) {
      const c = clients.get(clientId) as (Client & { conn?: net.Socket }) | undefined;
      if (!c?.conn) return false;
      c.conn.destroy();
      return true;
    },
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
      await new Promise<void>((r) => broker.close(() => r()));
    },
  };
}

export interface MosquittoOptions {
  port?: number;
  /** A mosquitto password file (see `mosquittoPasswordFile`); when given, anonymous access is off. */
  passwordFile?: string;
  aclFile?: string;
  /** Extra config lines. */
  extraConfig?: string[];
}

export interface MosquittoHandle {
  url: string;
  port: number;
  dir: string;
  /** SIGTERM and wait for exit (mosquitto saves its persistence file). */
  stop(): Promise<void>;
  /** SIGKILL and wait for exit. */
  kill(): Promise<void>;
  /** Start again on the same port with the same config and persistence. */
  restart(): Promise<void>;
  /** Last lines of the broker's log, for failure messages. */
  logTail(): string;
}

const MOSQUITTO = '/usr/sbin/mosquitto';

/** Write a mosquitto password file for `users` into `dir` and return its path. */
export function mosquittoPasswordFile(dir: string, users: Record<string, string>): string {
  const file = path.join(dir, 'passwd');
  writeFileSync(file, '', { mode: 0o600 });
  for (const [u, p] of Object.entries(users)) {
    const r = spawnSync('mosquitto_passwd', ['-b', file, u, p], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`mosquitto_passwd failed for user ${u}: ${r.stderr || r.error?.message}`);
  }
  return file;
}

export async function startMosquitto(opts: MosquittoOptions = {}): Promise<MosquittoHandle> {
  const port = opts.port ?? (await freePort());
  const dir = mkdtempSync(path.join(tmpdir(), 'mosquitto-test-'));
  const conf = path.join(dir, 'mosquitto.conf');
  const lines = [
    // run as ourselves (as root mosquitto would otherwise switch to user "mosquitto" and lose access to dir)
    `user ${userInfo().username}`,
    `listener ${port} 127.0.0.1`,
    `allow_anonymous ${opts.passwordFile ? 'false' : 'true'}`,
    ...(opts.passwordFile ? [`password_file ${opts.passwordFile}`] : []),
    ...(opts.aclFile ? [`acl_file ${opts.aclFile}`] : []),
    'persistence true',
    `persistence_location ${dir}/`,
    'autosave_interval 1',
    'log_dest stderr',
    'log_type error',
    'log_type warning',
    'log_type notice',
    'max_queued_messages 100000',
    ...(opts.extraConfig ?? []),
  ];
  writeFileSync(conf, `${lines.join('\n')}\n`);
  let proc: ChildProcess | null = null;
  let logBuf = '';
  const start = async () => {
    const p = spawn(MOSQUITTO, ['-c', conf], { stdio: ['ignore', 'pipe', 'pipe'] });
    proc = p;
    const onData = (d: Buffer) => {
      logBuf = (logBuf + d.toString()).slice(-8000);
    };
    p.stdout?.on('data', onData);
    p.stderr?.on('data', onData);
    const exited = new Promise<never>((_, reject) =>
      p.once('exit', (code) => reject(new Error(`mosquitto exited early (code ${code}) on port ${port}: ${logBuf.slice(-1000)}`))),
    );
    const spawnErr = new Promise<never>((_, reject) => p.once('error', (e) => reject(new Error(`cannot start ${MOSQUITTO}: ${e.message}`))));
    // the race settles once; later exits (stop/kill) must not surface as unhandled rejections
    exited.catch(() => {});
    spawnErr.catch(() => {});
    await Promise.race([waitForPort(port), exited, spawnErr]);
  };
  const signal = async (sig: NodeJS.Signals) => {
    const p = proc;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      p.once('exit', () => resolve());
      p.kill(sig);
    });
    proc = null;
  };
  await start();
  return {
    url: `mqtt://127.0.0.1:${port}`,
    port,
    dir,
    async stop() {
      await signal('SIGTERM');
    },
    async kill() {
      await signal('SIGKILL');
    },
    async restart() {
      await signal('SIGTERM');
      await start();
    },
    logTail: () => logBuf,
  };
}

/** Stop a mosquitto and delete its temp dir. */
export async function disposeMosquitto(m: MosquittoHandle): Promise<void> {
  await m.stop();
  rmSync(m.dir, { recursive: true, force: true });
}

/** mosquitto_sub printing one line per message: `<topic>\t<payload length>\t<payload>` (events) or without payload. */
export function mosquittoSub(port: number, topic: string, withPayload: boolean): { lines: string[]; proc: ChildProcessWithoutNullStreams } {
  const fmt = withPayload ? '%t\t%l\t%p' : '%t\t%l';
  const proc = spawn('mosquitto_sub', ['-h', '127.0.0.1', '-p', String(port), '-q', '1', '-t', topic, '-F', fmt]);
  const lines: string[] = [];
  let buf = '';
  proc.stdout.on('data', (c: Buffer) => {
    buf += c.toString('latin1');
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      lines.push(buf.slice(0, i));
      buf = buf.slice(i + 1);
    }
  });
  return { lines, proc };
}

/**
 * A private PostgreSQL cluster (Debian's postgresql package) for tests and the load tool: `initdb` in
 * a temporary directory, `pg_ctl` on a free 127.0.0.1 port, password (SCRAM) authentication, its
 * directory removed by `stop()`. Not for production: fsync is off.
 */
import { execFile, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, chownSync, existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import path from 'node:path';
import pg from 'pg';

export interface PgCluster {
  /** postgres://bk@127.0.0.1:<port>/postgres (no password: it is in `password`). */
  url: string;
  password: string;
  dataDir: string;
  port: number;
}

function binDir(): string {
  const root = '/usr/lib/postgresql';
  const versions = existsSync(root) ? readdirSync(root).filter((v) => existsSync(path.join(root, v, 'bin', 'initdb'))).sort((a, b) => Number(b) - Number(a)) : [];
  if (!versions.length) throw new Error('PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin (apt install postgresql; scripts/setup.sh does)');
  return path.join(root, versions[0]!, 'bin');
}

/** initdb refuses to run as root: the cluster then belongs to the package's `postgres` user. */
function ownerCommand(cmd: string, args: string[]): [string, string[]] {
  const bin = path.join(binDir(), cmd);
  return userInfo().uid === 0 ? ['runuser', ['-u', 'postgres', '--', bin, ...args]] : [bin, args];
}
function asOwner(cmd: string, args: string[]): string {
  const [file, argv] = ownerCommand(cmd, args);
  return execFileSync(file, argv, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

export async function startPgCluster(): Promise<PgCluster & { stop(): void }> {
  const dir = mkdtempSync(path.join(tmpdir(), 'bk-pg-'));
  const dataDir = path.join(dir, 'data');
  const password = randomBytes(12).toString('hex');
  const pwfile = path.join(dir, 'pw');
  writeFileSync(pwfile, password);
  if (userInfo().uid === 0) {
    const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
    chownSync(dir, uid, gid);
    chownSync(pwfile, uid, gid);
  }
  chmodSync(pwfile, 0o600);
  asOwner('initdb', ['-D', dataDir, '-U', 'bk', '--auth=scram-sha-256', `--pwfile=${pwfile}`, '-E', 'UTF8', '--locale=C.UTF-8']);
  const port = await freePort();
  const cluster: PgCluster = { url: `postgres://bk@127.0.0.1:${port}/postgres`, password, dataDir, port };
  pgStart(cluster);
  return {
    ...cluster,
    stop() {
      try { pgStop(cluster); } catch { /* already stopped */ }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

const startArgs = (c: Pick<PgCluster, 'dataDir' | 'port'>) => [
  '-D', c.dataDir, '-o', `-p ${c.port} -c listen_addresses=127.0.0.1 -k ${path.dirname(c.dataDir)} -c fsync=off -c max_connections=200`,
  '-l', path.join(path.dirname(c.dataDir), 'log'), '-w', '-t', '30', 'start',
];
const stopArgs = (c: Pick<PgCluster, 'dataDir'>) => ['-D', c.dataDir, '-m', 'immediate', '-w', 'stop'];

/** Starts the cluster (again, after pgStop) and waits until it accepts connections. */
export function pgStart(c: Pick<PgCluster, 'dataDir' | 'port'>): void {
  asOwner('pg_ctl', startArgs(c));
}

/** Stops the cluster at once (connections are cut, as in a crash of the database server's host). */
export function pgStop(c: Pick<PgCluster, 'dataDir'>): void {
  asOwner('pg_ctl', stopArgs(c));
}

/**
 * pgStop, `downMs` later pgStart, without blocking the event loop (the load tool keeps sending
 * meanwhile). Resolves once the cluster accepts connections again, with how long each step took.
 */
export async function pgOutage(c: Pick<PgCluster, 'dataDir' | 'port'>, downMs: number): Promise<{ stopMs: number; startMs: number }> {
  const pgCtl = (args: string[]) => new Promise<void>((resolve, reject) => {
    const [file, argv] = ownerCommand('pg_ctl', args);
    execFile(file, argv, (err, _out, stderr) => (err ? reject(new Error(`pg_ctl ${args.at(-1)}: ${stderr || err.message}`)) : resolve()));
  });
  let t = performance.now();
  await pgCtl(stopArgs(c));
  const stopMs = performance.now() - t;
  await new Promise((r) => setTimeout(r, downMs));
  t = performance.now();
  await pgCtl(startArgs(c));
  return { stopMs, startMs: performance.now() - t };
}

/** A new database in the cluster; returns its URL (without the password). */
export async function createDatabase(c: PgCluster, name = `bk_${randomBytes(6).toString('hex')}`): Promise<string> {
  const url = new URL(c.url);
  url.password = c.password;
  const admin = new pg.Client({ connectionString: url.toString() });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${pg.escapeIdentifier(name)}`);
  } finally {
    await admin.end();
  }
  return c.url.replace(/\/postgres$/, `/${name}`);
}

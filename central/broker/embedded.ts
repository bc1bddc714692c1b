/**
 * The embedded broker: aedes on a net (or TLS) server bound to 127.0.0.1 unless configured, with
 * authenticate / authorizePublish / authorizeSubscribe hooks implementing the ACL (acl.ts).
 * Central itself connects to it as an ordinary mqtt.js client with a random credential made at start.
 *
 * Sessions, subscriptions, retained messages and the QoS 1 messages queued for offline persistent
 * sessions (a recipient's phone, central's own client) live in a LevelDB under `persistenceDir`
 * (`<dataDir>/broker/`), so they survive a central restart.
 */
import { Aedes, type AuthenticateError, type Client } from 'aedes';
import aedesPersistenceLevel from 'aedes-persistence-level';
import { ClassicLevel } from 'classic-level';
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { mkdirSync, readFileSync } from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
import type { AddressInfo } from 'node:net';
import { childLog } from '../../common/log.js';
import { verifyPassword } from '../auth/password.js';
import { CENTRAL_CLIENT_PREFIX, canPublish, canSubscribe, type Principal } from './acl.js';

const log = childLog({ mod: 'central.broker' });

/** Where the broker looks up credentials: the store in production (asynchronous); a plain value does too. */
export interface CredentialSource {
  siteHash(siteId: string): Awaitable<string | null>;
  /** By user id or username; null when unknown or disabled. */
  user(name: string): Awaitable<{ id: string; mqttPasswordHash: string | null } | null>;
}
type Awaitable<T> = T | Promise<T>;

export interface EmbeddedBrokerOptions {
  host: string;
  port: number;
  tls?: { cert: string; key: string };
  prefix: string;
  maxPacketBytes: number;
  credentials: CredentialSource;
  /** LevelDB directory for sessions and queued messages (central: `<dataDir>/broker`); without it, in memory only. */
  persistenceDir?: string;
}

export interface EmbeddedBroker {
  url: string;
  port: number;
  /** Central's own login (random per start). */
  centralCredentials: { username: string; password: string };
  stats(): { authFailures: number; denied: number; clients: number };
  close(): Promise<void>;
}

/**
 * aedes forwards a QoS 1 message to a client only if its per-broker counter is higher than the last
 * one forwarded to that client ("dedupe", meant for overlapping subscriptions). With a persistence on
 * disk, messages reach the emitter out of counter order (a retained one waits for its store write;
 * queue writes finish in any order), and the ones dropped then sit in a persistent session's queue
 * until the client reconnects, or are lost for a clean one. Let every message through: a client with
 * overlapping subscriptions may get a copy twice, which QoS 1 (at least once) allows.
 */
function allowOutOfOrder(client: Client): void {
  (client as unknown as { duplicates: Record<string, number> }).duplicates = new Proxy(Object.create(null) as Record<string, number>, { set: () => true });
}

function authError(msg: string): AuthenticateError {
  return Object.assign(new Error(msg), { returnCode: 4 as const }) as AuthenticateError;
}

export async function startEmbeddedBroker(o: EmbeddedBrokerOptions): Promise<EmbeddedBroker> {
  const centralUser = `__central_${randomBytes(6).toString('hex')}`;
  const centralPass = randomBytes(32).toString('base64url');
  const principals = new WeakMap<Client, Principal>();
  /** Verified (name, sha256(password), stored hash) triples: a reconnect storm does not cost 32 MiB of scrypt each. */
  const verified = new Map<string, string>();
  let authFailures = 0;
  let denied = 0;

  const check = async (name: string, password: string, hash: string | null): Promise<boolean> => {
    if (!hash) return false;
    const key = `${name}\0${createHash('sha256').update(password).digest('hex')}`;
    if (verified.get(key) === hash) return true;
    const ok = await verifyPassword(password, hash);
    if (ok) {
      if (verified.size > 10_000) verified.clear();
      verified.set(key, hash);
    }
    return ok;
  };

  let db: ClassicLevel<string, Buffer> | null = null;
  let persistence: ReturnType<typeof aedesPersistenceLevel> | undefined;
  if (o.persistenceDir) {
    const dir = o.persistenceDir;
    try {
      mkdirSync(dir, { recursive: true });
      db = new ClassicLevel<string, Buffer>(dir, { valueEncoding: 'buffer' });
      await db.open();
    } catch (err) {
      await db?.close().catch(() => {});
      const e = err as Error & { code?: string; cause?: Error };
      const locked = /lock/i.test(`${e.code ?? ''} ${e.message} ${e.cause?.message ?? ''}`);
      throw new Error(`broker: cannot open its session store ${dir}: ${e.cause?.message ?? e.message}${locked ? ' (is another central running on this data directory?)' : ''}`);
    }
    persistence = aedesPersistenceLevel(db);
    persistence.on('error', (err) => log.error({ err: err.message }, 'broker session store error'));
  }
  const closeStore = async () => {
    if (!persistence) return;
    const p = persistence;
    persistence = undefined;
    await new Promise((r) => setTimeout(r, 20)); // let writes issued by the last closing clients land
    await p.destroy().catch((err: Error) => log.warn({ err: err.message }, 'broker session store: close failed'));
  };

  let broker: Aedes;
  try {
    broker = await Aedes.createBroker({
      // New per start, increasing: persisted queues are keyed by (broker id, per-start message counter),
    // so a fixed id would have this run's messages overwrite those queued by the last one (same counters).
    id: `bk-central-embedded-${Date.now().toString(36).padStart(9, '0')}`,
      ...(persistence ? { persistence } : {}),
      authenticate(client, username, password, done) {
        allowOutOfOrder(client);
        const name = username ?? '';
        const pw = password ? password.toString('utf8') : '';
        const fail = (why: string) => {
          authFailures++;
          log.warn({ clientId: client.id, username: name || null, why }, 'broker login refused');
          done(authError(why), false);
        };
        if (!name) return fail('anonymous login refused');
        if (name === centralUser) {
          const a = Buffer.from(pw), b = Buffer.from(centralPass);
          return a.length === b.length && timingSafeEqual(a, b) ? (principals.set(client, { kind: 'central' }), done(null, true)) : fail('bad central credential');
        }
        if (client.id?.startsWith(CENTRAL_CLIENT_PREFIX)) return fail(`client id prefix "${CENTRAL_CLIENT_PREFIX}" is reserved for central`);
        // aedes waits for `done`: the lookups and the check run after this hook has returned
        const lookup = async () => {
          const siteHash = await o.credentials.siteHash(name);
          return { siteHash, user: siteHash ? null : await o.credentials.user(name) };
        };
        lookup().then(({ siteHash, user }) => {
          const hash = siteHash ?? user?.mqttPasswordHash ?? null;
          return check(name, pw, hash).then((ok) => {
            if (!ok) return fail(hash ? 'bad username or password' : `unknown broker user "${name}" (or no MQTT password set)`);
            principals.set(client, siteHash ? { kind: 'site', siteId: name } : { kind: 'user', userId: user!.id });
            done(null, true);
          }, (err: Error) => fail(`password check failed: ${err.message}`));
        }, (err: Error) => fail(`credential lookup failed: ${err.message}`));
      },
      authorizePublish(client, packet, cb) {
        if (!client) return cb(null); // broker-internal (wills are published with the client)
        const p = principals.get(client);
        if (!p || !canPublish(p, packet.topic, o.prefix)) {
          denied++;
          log.warn({ clientId: client.id, principal: p, topic: packet.topic }, 'publish denied by ACL');
          return cb(new Error(`publish to ${packet.topic} not allowed`));
        }
        if (p.kind !== 'central' && packet.payload && packet.payload.length > o.maxPacketBytes) {
          denied++;
          log.warn({ clientId: client.id, topic: packet.topic, bytes: packet.payload.length }, 'publish refused: payload too large');
          return cb(new Error('payload too large'));
        }
        if (packet.topic.startsWith('$SYS')) return cb(new Error('$SYS is read-only'));
        cb(null);
      },
      authorizeSubscribe(client, sub, cb) {
        const p = principals.get(client);
        if (!p || !canSubscribe(p, sub.topic, o.prefix)) {
          denied++;
          log.warn({ clientId: client.id, principal: p, filter: sub.topic }, 'subscribe denied by ACL');
          return cb(null, null); // SUBACK 0x80 for this filter
        }
        cb(null, sub);
      },
    });
  } catch (err) {
    await closeStore();
    throw err;
  }

  // aedes emits 'error' when its persistence fails (disk full, …): log it rather than crash central
  (broker as unknown as NodeJS.EventEmitter).on('error', (err: Error) => log.error({ err: err.message }, 'broker error'));

  let server: net.Server;
  if (o.tls) {
    let cert: Buffer, key: Buffer;
    try {
      cert = readFileSync(o.tls.cert);
      key = readFileSync(o.tls.key);
    } catch (err) {
      await new Promise<void>((resolve) => broker.close(() => resolve()));
      await closeStore();
      throw new Error(`broker.tls: cannot read certificate or key (${(err as Error).message})`);
    }
    server = tls.createServer({ cert, key }, broker.handle);
  } else {
    server = net.createServer(broker.handle);
  }
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err) => reject(new Error(`broker: cannot listen on ${o.host}:${o.port}: ${(err as Error).message}`)));
      server.listen(o.port, o.host, () => resolve());
    });
  } catch (err) {
    await new Promise<void>((resolve) => broker.close(() => resolve()));
    await closeStore();
    throw err;
  }
  const port = (server.address() as AddressInfo).port;
  const url = `${o.tls ? 'mqtts' : 'mqtt'}://${o.host.includes(':') ? `[${o.host}]` : o.host}:${port}`;
  log.info({ url }, 'embedded broker listening');

  return {
    url,
    port,
    centralCredentials: { username: centralUser, password: centralPass },
    stats: () => ({ authFailures, denied, clients: broker.connectedClients }),
    async close() {
      await new Promise<void>((resolve) => broker.close(() => resolve()));
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await closeStore();
    },
  };
}

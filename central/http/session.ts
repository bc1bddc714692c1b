/**
 * Server-side sessions: a random 32-byte id in the `bk_session` cookie, looked up by its sha256 (the
 * raw id is never stored), a per-session CSRF token, idle and absolute expiry. The rows live in the
 * store (central/store/sessions.ts): a restart or another instance on the same store keeps the user
 * logged in. The store is asynchronous: every method that reads or writes rows returns a Promise.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { childLog } from '../../common/log.js';
import type { SessionRow, SessionRows } from '../store/sessions.js';
import { Ticker } from '../ticker.js';

export type Session = SessionRow;

export interface SessionOptions {
  idleMs?: number;
  absoluteMs?: number;
  now?: () => number;
}

export const SESSION_COOKIE = 'bk_session';
/** lastSeenAt is written at most this often per session (a request per second must not be a write per second). */
const TOUCH_EVERY_MS = 10_000;

const hash = (id: string) => createHash('sha256').update(id).digest('hex');
const log = childLog({ mod: 'central/http/session' });

export class SessionStore {
  readonly idleMs: number;
  readonly absoluteMs: number;
  private readonly now: () => number;
  private readonly sweeper = new Ticker('session expiry', () => this.sweep(), log);

  constructor(
    private readonly rows: SessionRows,
    opts: SessionOptions = {},
  ) {
    this.idleMs = opts.idleMs ?? 30 * 60_000;
    this.absoluteMs = opts.absoluteMs ?? 12 * 3600_000;
    this.now = opts.now ?? Date.now;
    this.sweeper.start(60_000, { unref: true });
  }

  /** Returns the cookie value (only ever handed to the client). */
  async create(userId: string, ip: string): Promise<{ id: string; session: Session }> {
    const id = randomBytes(32).toString('base64url');
    const t = this.now();
    const session: Session = { key: hash(id), userId, csrfToken: randomBytes(32).toString('base64url'), createdAt: t, lastSeenAt: t, ip };
    await this.rows.insert(session);
    return { id, session };
  }

  private expired(s: Session, t: number): boolean {
    return t - s.lastSeenAt > this.idleMs || t - s.createdAt > this.absoluteMs;
  }

  /** Looks up and touches a session; expired ones are removed. */
  async get(id: string | undefined): Promise<Session | null> {
    if (!id || id.length > 100) return null;
    const s = await this.rows.get(hash(id));
    if (!s) return null;
    const t = this.now();
    if (this.expired(s, t)) {
      await this.rows.delete(s.key);
      return null;
    }
    if (t - s.lastSeenAt >= TOUCH_EVERY_MS) {
      await this.rows.touch(s.key, t);
      s.lastSeenAt = t;
    }
    return s;
  }

  /** Is the session behind this key still valid? Does not count as activity. */
  async alive(key: string): Promise<boolean> {
    const s = await this.rows.get(key);
    return !!s && !this.expired(s, this.now());
  }

  async destroy(session: Session): Promise<void> {
    await this.rows.delete(session.key);
  }

  /** Log a user out everywhere (password change, user deleted). */
  async destroyUser(userId: string): Promise<void> {
    await this.rows.deleteUser(userId);
  }

  /** Sessions in the store (a Promise). */
  get size(): Promise<number> {
    return this.rows.count();
  }

  async sweep(): Promise<void> {
    const t = this.now();
    await this.rows.expire(t - this.idleMs, t - this.absoluteMs);
  }

  /** Stops the sweeper (waiting for a sweep in progress); the sessions stay in the store for the next start. */
  close(): Promise<void> {
    return this.sweeper.stop();
  }
}

export function safeEqual(a: string, b: string): boolean {
  const ba = Buffer.from(a);
  const bb = Buffer.from(b);
  return ba.length === bb.length && timingSafeEqual(ba, bb);
}

export function parseCookies(header: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (!header) return out;
  for (const part of header.split(';')) {
    const i = part.indexOf('=');
    if (i < 0) continue;
    const k = part.slice(0, i).trim();
    const v = part.slice(i + 1).trim();
    if (k && !(k in out)) {
      try {
        out[k] = decodeURIComponent(v);
      } catch {
        out[k] = v;
      }
    }
  }
  return out;
}

export function sessionCookie(id: string, opts: { secure: boolean; maxAgeSec: number }): string {
  return `${SESSION_COOKIE}=${id}; Path=/; HttpOnly; SameSite=Strict; Max-Age=${opts.maxAgeSec}${opts.secure ? '; Secure' : ''}`;
}

export function clearCookie(secure: boolean): string {
  return `${SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0${secure ? '; Secure' : ''}`;
}

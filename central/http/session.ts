/**
 * Server-side sessions: a random 32-byte id in the `bk_session` cookie, looked up by its sha256 (the
 * raw id is never stored), a per-session CSRF token, idle and absolute expiry. The rows live in the
 * store (central/store/sessions.ts): a restart or another instance on the same store keeps the user
 * logged in.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { SessionRow, SessionRows } from '../store/sessions.js';

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

export class SessionStore {
  readonly idleMs: number;
  readonly absoluteMs: number;
  private readonly now: () => number;
  private readonly sweeper: NodeJS.Timeout;

  constructor(
    private readonly rows: SessionRows,
    opts: SessionOptions = {},
  ) {
    this.idleMs = opts.idleMs ?? 30 * 60_000;
    this.absoluteMs = opts.absoluteMs ?? 12 * 3600_000;
    this.now = opts.now ?? Date.now;
    this.sweeper = setInterval(() => this.sweep(), 60_000);
    this.sweeper.unref();
  }

  /** Returns the cookie value (only ever handed to the client). */
  create(userId: string, ip: string): { id: string; session: Session } {
    const id = randomBytes(32).toString('base64url');
    const t = this.now();
    const session: Session = { key: hash(id), userId, csrfToken: randomBytes(32).toString('base64url'), createdAt: t, lastSeenAt: t, ip };
    this.rows.insert(session);
    return { id, session };
  }

  private expired(s: Session, t: number): boolean {
    return t - s.lastSeenAt > this.idleMs || t - s.createdAt > this.absoluteMs;
  }

  /** Looks up and touches a session; expired ones are removed. */
  get(id: string | undefined): Session | null {
    if (!id || id.length > 100) return null;
    const s = this.rows.get(hash(id));
    if (!s) return null;
    const t = this.now();
    if (this.expired(s, t)) {
      this.rows.delete(s.key);
      return null;
    }
    if (t - s.lastSeenAt >= TOUCH_EVERY_MS) {
      this.rows.touch(s.key, t);
      s.lastSeenAt = t;
    }
    return s;
  }

  /** Is the session behind this key still valid? Does not count as activity. */
  alive(key: string): boolean {
    const s = this.rows.get(key);
    return !!s && !this.expired(s, this.now());
  }

  destroy(session: Session): void {
    this.rows.delete(session.key);
  }

  /** Log a user out everywhere (password change, user deleted). */
  destroyUser(userId: string): void {
    this.rows.deleteUser(userId);
  }

  get size(): number {
    return this.rows.count();
  }

  sweep(): void {
    const t = this.now();
    this.rows.expire(t - this.idleMs, t - this.absoluteMs);
  }

  /** Stops the sweeper; the sessions stay in the store for the next start. */
  close(): void {
    clearInterval(this.sweeper);
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

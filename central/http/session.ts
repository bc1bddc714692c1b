/**
 * Server-side sessions (in memory): a random 32-byte id in the `bk_session` cookie, looked up by
 * its sha256 (the raw id is never stored), a per-session CSRF token, idle and absolute expiry.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

export interface Session {
  /** sha256 of the cookie value: the map key. */
  key: string;
  userId: string;
  csrfToken: string;
  createdAt: number;
  lastSeenAt: number;
  ip: string;
}

export interface SessionOptions {
  idleMs?: number;
  absoluteMs?: number;
  now?: () => number;
}

export const SESSION_COOKIE = 'bk_session';

const hash = (id: string) => createHash('sha256').update(id).digest('hex');

export class SessionStore {
  private readonly sessions = new Map<string, Session>();
  readonly idleMs: number;
  readonly absoluteMs: number;
  private readonly now: () => number;
  private readonly sweeper: NodeJS.Timeout;

  constructor(opts: SessionOptions = {}) {
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
    this.sessions.set(session.key, session);
    return { id, session };
  }

  /** Looks up and touches a session; expired ones are removed. */
  get(id: string | undefined): Session | null {
    if (!id || id.length > 100) return null;
    const s = this.sessions.get(hash(id));
    if (!s) return null;
    const t = this.now();
    if (t - s.lastSeenAt > this.idleMs || t - s.createdAt > this.absoluteMs) {
      this.sessions.delete(s.key);
      return null;
    }
    s.lastSeenAt = t;
    return s;
  }

  /** Is the session behind this key still valid? Does not count as activity. */
  alive(key: string): boolean {
    const s = this.sessions.get(key);
    if (!s) return false;
    const t = this.now();
    return t - s.lastSeenAt <= this.idleMs && t - s.createdAt <= this.absoluteMs;
  }

  destroy(session: Session): void {
    this.sessions.delete(session.key);
  }

  /** Log a user out everywhere (password change, user deleted). */
  destroyUser(userId: string): void {
    for (const [k, s] of this.sessions) if (s.userId === userId) this.sessions.delete(k);
  }

  get size(): number {
    return this.sessions.size;
  }

  sweep(): void {
    const t = this.now();
    for (const [k, s] of this.sessions) {
      if (t - s.lastSeenAt > this.idleMs || t - s.createdAt > this.absoluteMs) this.sessions.delete(k);
    }
  }

  close(): void {
    clearInterval(this.sweeper);
    this.sessions.clear();
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

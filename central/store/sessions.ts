/**
 * The rows behind the dashboard's sessions and login locks (the policy — expiry, thresholds — is
 * the HTTP layer's: central/http/session.ts, ratelimit.ts). In the store, not in memory, so a
 * restart of central, or another instance behind the same load balancer and store, keeps users
 * logged in and keeps a password guesser locked out.
 */
import type { DB } from './db.js';

export interface SessionRow {
  /** sha256 of the cookie value (the raw id is never stored). */
  key: string;
  userId: string;
  csrfToken: string;
  createdAt: number;
  lastSeenAt: number;
  ip: string;
}

export interface LoginFailureRow {
  failures: number;
  firstAt: number;
  lockedUntil: number;
}

export class SessionRows {
  constructor(private readonly db: DB) {}

  insert(s: SessionRow): void {
    this.db.prepare('INSERT INTO sessions (key, user_id, csrf_token, created_at, last_seen_at, ip) VALUES (?, ?, ?, ?, ?, ?)')
      .run(s.key, s.userId, s.csrfToken, s.createdAt, s.lastSeenAt, s.ip);
  }

  get(key: string): SessionRow | null {
    const r = this.db.prepare('SELECT key, user_id AS userId, csrf_token AS csrfToken, created_at AS createdAt, last_seen_at AS lastSeenAt, ip FROM sessions WHERE key = ?').get(key);
    return (r as SessionRow | undefined) ?? null;
  }

  touch(key: string, at: number): void {
    this.db.prepare('UPDATE sessions SET last_seen_at = ? WHERE key = ?').run(at, key);
  }

  delete(key: string): void {
    this.db.prepare('DELETE FROM sessions WHERE key = ?').run(key);
  }

  deleteUser(userId: string): void {
    this.db.prepare('DELETE FROM sessions WHERE user_id = ?').run(userId);
  }

  /** Removes sessions idle since before `idleBefore` or created before `createdBefore`. */
  expire(idleBefore: number, createdBefore: number): number {
    return this.db.prepare('DELETE FROM sessions WHERE last_seen_at < ? OR created_at < ?').run(idleBefore, createdBefore).changes;
  }

  count(): number {
    return this.db.prepare('SELECT COUNT(*) FROM sessions').pluck().get() as number;
  }

  failure(key: string): LoginFailureRow | null {
    const r = this.db.prepare('SELECT failures, first_at AS firstAt, locked_until AS lockedUntil FROM login_failures WHERE key = ?').get(key);
    return (r as LoginFailureRow | undefined) ?? null;
  }

  setFailure(key: string, f: LoginFailureRow): void {
    this.db.prepare('INSERT OR REPLACE INTO login_failures (key, failures, first_at, locked_until) VALUES (?, ?, ?, ?)').run(key, f.failures, f.firstAt, f.lockedUntil);
  }

  clearFailure(key: string): void {
    this.db.prepare('DELETE FROM login_failures WHERE key = ?').run(key);
  }

  /** Forgets failures whose window and lock have both passed. */
  expireFailures(windowStart: number, now: number): void {
    this.db.prepare('DELETE FROM login_failures WHERE locked_until < ? AND first_at < ?').run(now, windowStart);
  }
}

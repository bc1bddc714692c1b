/**
 * The rows behind the dashboard's sessions and login locks (the policy — expiry, thresholds — is
 * the HTTP layer's: central/http/session.ts, ratelimit.ts). In the store, not in memory, so a
 * restart of central, or another instance behind the same load balancer and store, keeps users
 * logged in and keeps a password guesser locked out.
 */
import type { Sql } from './sql.js';

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
  constructor(private readonly sql: Sql) {}

  async insert(s: SessionRow): Promise<void> {
    await this.sql.run('INSERT INTO sessions (key, user_id, csrf_token, created_at, last_seen_at, ip) VALUES (?, ?, ?, ?, ?, ?)', [s.key, s.userId, s.csrfToken, s.createdAt, s.lastSeenAt, s.ip]);
  }

  async get(key: string): Promise<SessionRow | null> {
    const r = (await this.sql.get('SELECT key, user_id AS "userId", csrf_token AS "csrfToken", created_at AS "createdAt", last_seen_at AS "lastSeenAt", ip FROM sessions WHERE key = ?', [key]));
    return (r as SessionRow | undefined) ?? null;
  }

  async touch(key: string, at: number): Promise<void> {
    await this.sql.run('UPDATE sessions SET last_seen_at = ? WHERE key = ?', [at, key]);
  }

  async delete(key: string): Promise<void> {
    await this.sql.run('DELETE FROM sessions WHERE key = ?', [key]);
  }

  async deleteUser(userId: string): Promise<void> {
    await this.sql.run('DELETE FROM sessions WHERE user_id = ?', [userId]);
  }

  /** Removes sessions idle since before `idleBefore` or created before `createdBefore`. */
  async expire(idleBefore: number, createdBefore: number): Promise<number> {
    return (await this.sql.run('DELETE FROM sessions WHERE last_seen_at < ? OR created_at < ?', [idleBefore, createdBefore])).changes;
  }

  async count(): Promise<number> {
    return (await this.sql.value('SELECT COUNT(*) FROM sessions')) as number;
  }

  async failure(key: string): Promise<LoginFailureRow | null> {
    const r = (await this.sql.get('SELECT failures, first_at AS "firstAt", locked_until AS "lockedUntil" FROM login_failures WHERE key = ?', [key]));
    return (r as LoginFailureRow | undefined) ?? null;
  }

  /**
   * Counts one failure at `at`: a new window when the last began more than `windowMs` ago, locked
   * until `at + lockMs` once `max` failures are in the window. One statement, so concurrent failures
   * (requests in parallel, several instances) are all counted.
   */
  async addFailure(key: string, at: number, windowMs: number, max: number, lockMs: number): Promise<void> {
    const stale = 'CAST(? AS BIGINT) - login_failures.first_at > CAST(? AS BIGINT)';
    const n = `CASE WHEN ${stale} THEN 1 ELSE login_failures.failures + 1 END`;
    await this.sql.run(`INSERT INTO login_failures (key, failures, first_at, locked_until)
      VALUES (?, 1, CAST(? AS BIGINT), CASE WHEN 1 >= ? THEN CAST(? AS BIGINT) ELSE 0 END)
      ON CONFLICT (key) DO UPDATE SET failures = ${n},
        first_at = CASE WHEN ${stale} THEN CAST(? AS BIGINT) ELSE login_failures.first_at END,
        locked_until = CASE WHEN ${n} >= ? THEN CAST(? AS BIGINT) WHEN ${stale} THEN 0 ELSE login_failures.locked_until END`,
    [key, at, max, at + lockMs, at, windowMs, at, windowMs, at, at, windowMs, max, at + lockMs, at, windowMs]);
  }

  async clearFailure(key: string): Promise<void> {
    await this.sql.run('DELETE FROM login_failures WHERE key = ?', [key]);
  }

  /** Forgets failures whose window and lock have both passed. */
  async expireFailures(windowStart: number, now: number): Promise<void> {
    await this.sql.run('DELETE FROM login_failures WHERE locked_until < ? AND first_at < ?', [now, windowStart]);
  }
}

/**
 * Login throttling. Failures are counted per (username, IP) and per IP alone: 5 failures for one
 * username from one address (or 50 from one address across usernames) within the window lock that
 * key for `lockMs`. A locked key answers 429 even with the right password, so guessing stops. The
 * counts live in the store: a restart does not unlock a guesser.
 */
import type { SessionRows } from '../store/sessions.js';

export interface LoginLimiterOptions {
  maxPerUser?: number;
  maxPerIp?: number;
  windowMs?: number;
  lockMs?: number;
  now?: () => number;
}

export class LoginLimiter {
  private readonly maxPerUser: number;
  private readonly maxPerIp: number;
  private readonly windowMs: number;
  private readonly lockMs: number;
  private readonly now: () => number;
  private lastPrune = 0;
  /** Failures are recorded one after another (see fail). */

  constructor(
    private readonly rows: SessionRows,
    opts: LoginLimiterOptions = {},
  ) {
    this.maxPerUser = opts.maxPerUser ?? 5;
    this.maxPerIp = opts.maxPerIp ?? 50;
    this.windowMs = opts.windowMs ?? 15 * 60_000;
    this.lockMs = opts.lockMs ?? 15 * 60_000;
    this.now = opts.now ?? Date.now;
  }

  private keys(username: string, ip: string): Array<[string, number]> {
    return [
      [`u:${username.toLowerCase()}|${ip}`, this.maxPerUser],
      [`ip:${ip}`, this.maxPerIp],
    ];
  }

  /** Seconds until the lock lifts, or 0 when a try is allowed. */
  async retryAfterSec(username: string, ip: string): Promise<number> {
    const t = this.now();
    let wait = 0;
    for (const [k] of this.keys(username, ip)) {
      const e = await this.rows.failure(k);
      if (e && e.lockedUntil > t) wait = Math.max(wait, Math.ceil((e.lockedUntil - t) / 1000));
    }
    return wait;
  }

  /**
   * One atomic statement per key: failures counted by parallel requests, or by several instances on
   * one database, are all counted (a read, then a write back, would let a parallel guesser lose some).
   */
  async fail(username: string, ip: string): Promise<void> {
    const t = this.now();
    for (const [k, max] of this.keys(username, ip)) await this.rows.addFailure(k, t, this.windowMs, max, this.lockMs);
    if (t - this.lastPrune > 60_000) {
      this.lastPrune = t;
      await this.rows.expireFailures(t - this.windowMs, t);
    }
  }

  async succeed(username: string, ip: string): Promise<void> {
    await this.rows.clearFailure(`u:${username.toLowerCase()}|${ip}`);
  }
}

/**
 * Requests per key (the public window: per client address) in a fixed window: `max` requests, then
 * 429 until the window ends. Bounded memory: expired windows are dropped when the map grows.
 */
export class RequestLimiter {
  private readonly windows = new Map<string, { n: number; until: number }>();
  private readonly now: () => number;
  constructor(readonly max = 120, readonly windowMs = 60_000, now?: () => number) {
    this.now = now ?? Date.now;
  }

  /** Counts one request; 0 when allowed, else the seconds until the key may try again. */
  take(key: string): number {
    const t = this.now();
    let w = this.windows.get(key);
    if (!w || w.until <= t) {
      if (this.windows.size >= 100_000) for (const [k, x] of this.windows) if (x.until <= t) this.windows.delete(k);
      w = { n: 0, until: t + this.windowMs };
      this.windows.set(key, w);
    }
    w.n += 1;
    return w.n > this.max ? Math.max(1, Math.ceil((w.until - t) / 1000)) : 0;
  }
}

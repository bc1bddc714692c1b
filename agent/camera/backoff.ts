/** Exponential reconnect delays: initial, doubling, capped; reset after a healthy period. */
export class Backoff {
  private failures = 0;

  constructor(
    readonly initialMs = 1_000,
    readonly maxMs = 30_000,
  ) {
    if (!(initialMs > 0) || !(maxMs >= initialMs)) throw new Error(`backoff: need 0 < initialMs (${initialMs}) <= maxMs (${maxMs})`);
  }

  /** Delay before the next attempt; each call doubles the following one up to maxMs. */
  next(): number {
    const d = Math.min(this.maxMs, this.initialMs * 2 ** Math.min(this.failures, 30));
    this.failures++;
    return d;
  }

  /** Consecutive failures since the last reset. */
  get count(): number {
    return this.failures;
  }

  reset(): void {
    this.failures = 0;
  }
}

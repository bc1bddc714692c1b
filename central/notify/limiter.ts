/**
 * At most `max` sends in any `windowMs` (a sliding-window log of send times). A plain token bucket of
 * capacity 20 refilling 20/min lets 40 through in the first minute; the robots count per minute, so
 * this keeps the guarantee exact.
 */
export class WindowLimiter {
  private sent: number[] = [];
  constructor(readonly max: number, readonly windowMs: number) {}

  /** ms until a send is allowed (0 = now). */
  waitMs(now = Date.now()): number {
    while (this.sent.length && this.sent[0]! <= now - this.windowMs) this.sent.shift();
    if (this.sent.length < this.max) return 0;
    return this.sent[0]! + this.windowMs - now;
  }
  take(now = Date.now()): boolean {
    if (this.waitMs(now) > 0) return false;
    this.sent.push(now);
    return true;
  }
  /**
   * The last send finished: count it from now. The robot saw it somewhere between start and finish,
   * so counting from the finish is the safe end (one request in flight per limiter).
   */
  finished(now = Date.now()): void {
    if (this.sent.length) this.sent[this.sent.length - 1] = Math.max(this.sent[this.sent.length - 1]!, now);
  }
}

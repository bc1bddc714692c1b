/**
 * A periodic job over the (asynchronous) store that never overlaps itself: a tick that comes while
 * the last one still runs is skipped, since two passes at once would act on the same rows (escalate
 * an event twice, retry a delivery twice). `stop()` waits for a running tick, so the store can close
 * after it.
 */
import type { Logger } from '../common/log.js';

export class Ticker {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private stopped = false;

  constructor(
    /** For the log line of a failed tick: "<what> failed: <message>". */
    private readonly what: string,
    private readonly fn: () => Promise<unknown>,
    private readonly log: Logger,
  ) {}

  /** Ticks every `everyMs`, the first after `firstMs`; `unref`: the timer alone does not keep the process alive. */
  start(everyMs: number, o: { firstMs?: number; unref?: boolean } = {}): void {
    const arm = (ms: number) => {
      if (this.stopped) return;
      this.timer = setTimeout(() => { arm(everyMs); void this.run(); }, ms);
      if (o.unref) this.timer.unref();
    };
    arm(o.firstMs ?? everyMs);
  }

  /** One tick now, unless one is running (then that one's promise). Never rejects: a failure is logged. */
  run(): Promise<void> {
    if (this.stopped) return this.running ?? Promise.resolve();
    this.running ??= this.fn()
      .then(() => {}, (err: Error) => this.log.error({ err }, `${this.what} failed: ${err?.message ?? String(err)}`))
      .finally(() => { this.running = null; });
    return this.running;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.running;
  }
}

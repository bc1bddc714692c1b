/** Prometheus series whose values live elsewhere (the stages' own counters): read at every scrape. */
import { Counter, Gauge, type Registry } from 'prom-client';

export type Read = () => [Record<string, string>, number][];

/**
 * A counter (`_total`, monotonic at the source) or a gauge, set from `read` when Prometheus scrapes:
 * the hot path does no extra work for metrics.
 */
export function scraped(reg: Registry, kind: 'counter' | 'gauge', name: string, help: string, labelNames: string[], read: Read): void {
  if (kind === 'counter')
    new Counter({ name, help, labelNames, registers: [reg], collect() { this.reset(); for (const [l, v] of read()) this.inc(l, v); } });
  else new Gauge({ name, help, labelNames, registers: [reg], collect() { this.reset(); for (const [l, v] of read()) this.set(l, v); } });
}

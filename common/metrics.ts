/** Prometheus series whose values live elsewhere (the stages' own counters): read at every scrape. */
import { Counter, Gauge, type Registry } from 'prom-client';

/** May be asynchronous (central's figures come from its store). */
export type Read = () => [Record<string, string>, number][] | Promise<[Record<string, string>, number][]>;

/**
 * A counter (`_total`, monotonic at the source) or a gauge, set from `read` when Prometheus scrapes:
 * the hot path does no extra work for metrics.
 */
export function scraped(reg: Registry, kind: 'counter' | 'gauge', name: string, help: string, labelNames: string[], read: Read): void {
  // read first, reset after: no await between them, so a scrape never sees the series half set
  if (kind === 'counter')
    new Counter({ name, help, labelNames, registers: [reg], async collect() { const rows = await read(); this.reset(); for (const [l, v] of rows) this.inc(l, v); } });
  else new Gauge({ name, help, labelNames, registers: [reg], async collect() { const rows = await read(); this.reset(); for (const [l, v] of rows) this.set(l, v); } });
}

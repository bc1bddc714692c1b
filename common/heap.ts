/**
 * The V8 heap setting the agent is started with (package.json `agent` and `bench`, the demo's agent).
 *
 * The agent's JavaScript heap is small (~25 MB live) while Node moves ~100 MB/s of frame and pipe
 * buffers through it. With V8's default sizing the old generation's limit then sits only ~10 %
 * above the live size and incremental marking restarts as soon as a collection ends: 6-8
 * mark-compacts per second on the main thread and ~2 per second in the detection worker, ~20 % of a
 * core in V8's marking threads, and the worker waiting for a core. Starting the old generation at
 * 64 MB leaves room between collections (a handful per minute); RSS grows by < 10 MB.
 * docs/performance.md "Garbage collection" has the measurements.
 */
export const HEAP_FLAG = '--initial-old-space-size=64';

/** Whether this process was started with an initial old-space size (HEAP_FLAG or another value). */
export function heapSized(execArgv: readonly string[] = process.execArgv): boolean {
  return execArgv.some((a) => a.startsWith('--initial-old-space-size'));
}

/**
 * One pino logger for every process; LOG_LEVEL sets the level, tests default to silent.
 * Logs go to stderr so that a command's results on stdout (detect --json, bench --json) stay clean.
 */
import { pino, type Logger } from 'pino';

export type { Logger };

export const log: Logger = pino(
  {
    level: process.env.LOG_LEVEL ?? (process.env.VITEST ? 'silent' : 'info'),
    base: { pid: process.pid },
  },
  pino.destination({ fd: 2, sync: false }),
);

export function childLog(bindings: Record<string, unknown>): Logger {
  return log.child(bindings);
}

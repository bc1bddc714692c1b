/** One pino logger for every process; LOG_LEVEL sets the level, tests default to silent. */
import { pino, type Logger } from 'pino';

export type { Logger };

export const log: Logger = pino({
  level: process.env.LOG_LEVEL ?? (process.env.VITEST ? 'silent' : 'info'),
  base: { pid: process.pid },
});

export function childLog(bindings: Record<string, unknown>): Logger {
  return log.child(bindings);
}

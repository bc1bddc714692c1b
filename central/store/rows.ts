/** What the store's modules share: the row type, JSON columns, the clock, content-addressed files. */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';

export type Row = Record<string, unknown>;
export const now = () => Date.now();
/** A JSON column's value, or `fallback` when it is absent or does not parse. */
export const j = <T>(s: unknown, fallback: T): T => {
  if (typeof s !== 'string') return fallback;
  try { return JSON.parse(s) as T; } catch { return fallback; }
};
export const sha256Hex = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/**
 * Writes a file named by its content's hash, once: an existing file already holds these bytes, and the
 * rename makes a file appear whole (another instance or a reader never sees half of it).
 */
export function writeOnce(file: string, bytes: Buffer): void {
  if (existsSync(file)) return;
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(`${file}.tmp`, bytes);
  renameSync(`${file}.tmp`, file);
}

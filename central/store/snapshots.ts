/**
 * Event snapshots: JPEG files named by their sha256 (an agent sends each once, possibly before or after
 * its event), served to users who may see one of the events that show it.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import type { Sql } from './sql.js';
import { now, writeOnce } from './rows.js';
import type { Scopes } from './scope.js';
import type { Scope } from './types.js';

export const isJpeg = (b: Buffer) => b.length > 4 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff && b[b.length - 2] === 0xff && b[b.length - 1] === 0xd9;

export class SnapshotFiles {
  constructor(private readonly sql: Sql, private readonly dataDir: string, private readonly scopes: Scopes) {}

  snapshotPath(sha: string): string {
    return path.join(this.dataDir, 'snapshots', sha.slice(0, 2), `${sha}.jpg`);
  }
  /** Store bytes by hash (idempotent). Returns true when new. */
  async saveSnapshot(sha: string, bytes: Buffer, siteId: string): Promise<boolean> {
    writeOnce(this.snapshotPath(sha), bytes);
    return (await this.sql.run('INSERT INTO snapshots (sha256, bytes, site_id, received_at) VALUES (?, ?, ?, ?) ON CONFLICT (sha256) DO NOTHING', [sha, bytes.length, siteId, now()])).changes > 0;
  }
  async snapshotFile(sha: string, scope?: Scope): Promise<string | null> {
    if (!/^[a-f0-9]{64}$/.test(sha)) return null;
    if (!(await this.sql.get('SELECT 1 FROM snapshots WHERE sha256 = ?', [sha]))) return null;
    const sites = (await this.sql.values('SELECT DISTINCT site_id FROM events WHERE snap_annotated = ? OR snap_clean = ?', [sha, sha])) as string[];
    if (!sites.length) return null;
    if (scope && !(await Promise.all(sites.map((s) => this.scopes.siteInScope(scope, s)))).some(Boolean)) return null;
    const file = this.snapshotPath(sha);
    return existsSync(file) ? file : null;
  }
}

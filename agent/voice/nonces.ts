/**
 * Seen voice-command nonces, persisted in `<storage.dir>/voice.sqlite` so a restart does not re-open
 * the replay window. A nonce is kept until its command could no longer pass the issuedAt check.
 */
import { existsSync, mkdirSync, renameSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { childLog } from '../../common/log.js';

const log = childLog({ module: 'voice' });

export class NonceStore {
  readonly file: string;
  private readonly db: Database.Database;
  private readonly claimStmt: Database.Statement;
  private readonly pruneStmt: Database.Statement;

  constructor(dir: string, fileName = 'voice.sqlite') {
    this.file = path.resolve(dir, fileName);
    mkdirSync(path.dirname(this.file), { recursive: true });
    let db: Database.Database;
    try {
      db = openDb(this.file);
    } catch (err) {
      const code = (err as { code?: string }).code ?? '';
      if (!code.startsWith('SQLITE_CORRUPT') && !code.startsWith('SQLITE_NOTADB')) throw new Error(`voice nonce store ${this.file}: ${(err as Error).message}`);
      const aside = `${this.file}.corrupt-${new Date().toISOString().replace(/[:.]/g, '-')}`;
      for (const s of ['', '-wal', '-shm']) if (existsSync(this.file + s)) renameSync(this.file + s, aside + s);
      log.error({ file: this.file, movedTo: aside }, 'voice nonce store is corrupt: moved aside and started fresh (replay protection of the last window relies on issuedAt only)');
      db = openDb(this.file);
    }
    this.db = db;
    this.claimStmt = db.prepare('INSERT OR IGNORE INTO seen_nonces (nonce, commandId, expiresAt) VALUES (?, ?, ?)');
    this.pruneStmt = db.prepare('DELETE FROM seen_nonces WHERE expiresAt < ?');
  }

  /** Record a nonce; false when it was already seen (a replay). */
  claim(nonce: string, commandId: string, expiresAt: number, now: number): boolean {
    return this.db.transaction(() => {
      this.pruneStmt.run(now);
      return this.claimStmt.run(nonce, commandId, expiresAt).changes === 1;
    })();
  }

  seenCommandId(nonce: string): string | null {
    const r = this.db.prepare('SELECT commandId FROM seen_nonces WHERE nonce = ?').get(nonce) as { commandId: string } | undefined;
    return r?.commandId ?? null;
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}

function openDb(file: string): Database.Database {
  const db = new Database(file, { timeout: 5000 });
  try {
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = FULL');
    db.exec('CREATE TABLE IF NOT EXISTS seen_nonces (nonce TEXT PRIMARY KEY, commandId TEXT NOT NULL, expiresAt INTEGER NOT NULL)');
    return db;
  } catch (err) {
    db.close();
    throw err;
  }
}

/**
 * Central's schema, written once for both back ends: in SQLite's types, which `forDialect` maps to
 * PostgreSQL's (millisecond timestamps need BIGINT there, AUTOINCREMENT is an identity column).
 */
import type { Sql } from './sql.js';
import { backfillUserSites } from './user-sites.js';

/**
 * DDL, or DDL and then a data step for what portable SQL cannot do (the dialects read JSON
 * differently); the step runs on the executor, inside the migration's transaction.
 */
type Migration = string | { ddl: string; data(sql: Sql): Promise<void> };

/** Each migration runs once, in order, inside one transaction with the others pending; `schema_version` records the last one. */
const MIGRATIONS: Migration[] = [
  /* 1 */ `
  CREATE TABLE districts (id TEXT PRIMARY KEY, name TEXT NOT NULL, webhooks TEXT NOT NULL DEFAULT '[]');
  CREATE TABLE schools (id TEXT PRIMARY KEY, name TEXT NOT NULL, district_id TEXT NOT NULL REFERENCES districts(id));
  CREATE TABLE sites (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, school_id TEXT NOT NULL REFERENCES schools(id),
    mqtt_password_hash TEXT, auto_reminder TEXT,
    online INTEGER NOT NULL DEFAULT 0, last_seen_at INTEGER, status_at INTEGER, agent_version TEXT, stats TEXT
  );
  CREATE TABLE cameras (
    site_id TEXT NOT NULL REFERENCES sites(id) ON DELETE CASCADE, id TEXT NOT NULL, name TEXT NOT NULL, live_url TEXT,
    state TEXT NOT NULL DEFAULT 'unknown', last_frame_at INTEGER, fps REAL NOT NULL DEFAULT 0, error TEXT, status_at INTEGER,
    PRIMARY KEY (site_id, id)
  );
  CREATE TABLE users (
    id TEXT PRIMARY KEY, username TEXT NOT NULL UNIQUE, name TEXT NOT NULL, role TEXT NOT NULL,
    site_ids TEXT NOT NULL DEFAULT '[]', school_id TEXT, district_id TEXT,
    password_hash TEXT NOT NULL, mqtt_password_hash TEXT, lang TEXT NOT NULL DEFAULT 'zh', disabled INTEGER NOT NULL DEFAULT 0
  );
  CREATE TABLE events (
    id TEXT PRIMARY KEY, site_id TEXT NOT NULL, camera_id TEXT NOT NULL, camera_name TEXT NOT NULL,
    kind TEXT NOT NULL, severity INTEGER NOT NULL, rule_id TEXT NOT NULL, label TEXT NOT NULL, score REAL NOT NULL,
    box TEXT NOT NULL, zone TEXT, started_at INTEGER NOT NULL, captured_at INTEGER NOT NULL, raised_at INTEGER NOT NULL,
    received_at INTEGER NOT NULL, duration_sec REAL NOT NULL, detections TEXT NOT NULL,
    snap_annotated TEXT NOT NULL, snap_clean TEXT NOT NULL, experimental INTEGER NOT NULL DEFAULT 0,
    status TEXT NOT NULL DEFAULT 'open', deadline_at INTEGER NOT NULL, ack_by TEXT, ack_at INTEGER,
    escalation_level INTEGER NOT NULL DEFAULT 0, next_escalation_at INTEGER, closed_at INTEGER
  );
  CREATE INDEX events_site_raised ON events(site_id, raised_at DESC);
  CREATE INDEX events_raised ON events(raised_at DESC);
  CREATE INDEX events_escalation ON events(next_escalation_at) WHERE next_escalation_at IS NOT NULL;
  CREATE INDEX events_snap_a ON events(snap_annotated);
  CREATE INDEX events_snap_c ON events(snap_clean);
  CREATE TABLE snapshots (sha256 TEXT PRIMARY KEY, bytes INTEGER NOT NULL, site_id TEXT NOT NULL, received_at INTEGER NOT NULL);
  CREATE TABLE deliveries (
    id INTEGER PRIMARY KEY AUTOINCREMENT, event_id TEXT NOT NULL REFERENCES events(id),
    recipient_id TEXT NOT NULL, recipient_name TEXT NOT NULL, role TEXT NOT NULL, channel TEXT NOT NULL,
    target TEXT, level INTEGER NOT NULL, status TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT, next_attempt_at INTEGER, created_at INTEGER NOT NULL, delivered_at INTEGER
  );
  CREATE INDEX deliveries_event ON deliveries(event_id);
  CREATE INDEX deliveries_pending ON deliveries(status) WHERE status IN ('pending', 'retrying');
  CREATE TABLE acknowledgements (event_id TEXT NOT NULL REFERENCES events(id), by TEXT NOT NULL, at INTEGER NOT NULL, note TEXT);
  CREATE TABLE rectifications (
    id INTEGER PRIMARY KEY AUTOINCREMENT, event_id TEXT NOT NULL REFERENCES events(id), by TEXT NOT NULL, at INTEGER NOT NULL,
    note TEXT NOT NULL, photo_sha256 TEXT, photo_mime TEXT
  );
  CREATE INDEX rectifications_event ON rectifications(event_id);
  CREATE TABLE event_history (
    id INTEGER PRIMARY KEY AUTOINCREMENT, event_id TEXT NOT NULL, action TEXT NOT NULL, by TEXT NOT NULL, at INTEGER NOT NULL, note TEXT
  );
  CREATE INDEX event_history_event ON event_history(event_id);
  CREATE TABLE voice_commands (
    id TEXT PRIMARY KEY, site_id TEXT NOT NULL, camera_id TEXT, type TEXT NOT NULL, text TEXT, issued_by TEXT NOT NULL,
    issued_at INTEGER NOT NULL, state TEXT NOT NULL, state_at INTEGER NOT NULL, error TEXT
  );
  CREATE INDEX voice_site ON voice_commands(site_id, issued_at DESC);
  CREATE TABLE audit_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT, at INTEGER NOT NULL, user_id TEXT NOT NULL, action TEXT NOT NULL,
    target TEXT NOT NULL, detail TEXT, ip TEXT, site_id TEXT, district_id TEXT
  );
  CREATE INDEX audit_at ON audit_log(at DESC);
  `,
  /* 2: event clips (central/store/clips.ts) */ `
  CREATE TABLE clips (
    event_id TEXT PRIMARY KEY, site_id TEXT NOT NULL, camera_id TEXT NOT NULL, sha256 TEXT NOT NULL, bytes INTEGER NOT NULL,
    chunks INTEGER NOT NULL, codec TEXT NOT NULL, start_at INTEGER NOT NULL, duration_ms INTEGER NOT NULL,
    received_at INTEGER NOT NULL, complete_at INTEGER, error TEXT
  );
  CREATE INDEX clips_sha ON clips(sha256);
  CREATE TABLE clip_chunks (
    event_id TEXT NOT NULL, idx INTEGER NOT NULL, site_id TEXT NOT NULL, data BLOB NOT NULL, received_at INTEGER NOT NULL,
    PRIMARY KEY (event_id, idx)
  );
  CREATE INDEX clip_chunks_site ON clip_chunks(site_id);
  CREATE INDEX clip_chunks_received ON clip_chunks(received_at);
  `,
  /* 3: sessions and login locks outlive a restart and are shared by every instance on the store (central/store/sessions.ts) */ `
  CREATE TABLE sessions (
    key TEXT PRIMARY KEY, user_id TEXT NOT NULL, csrf_token TEXT NOT NULL, created_at INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL, ip TEXT NOT NULL
  );
  CREATE INDEX sessions_user ON sessions(user_id);
  CREATE TABLE login_failures (key TEXT PRIMARY KEY, failures INTEGER NOT NULL, first_at INTEGER NOT NULL, locked_until INTEGER NOT NULL);
  `,
  /* 4: clip retention at central */ `
  ALTER TABLE clips ADD COLUMN expired_at INTEGER;
  CREATE INDEX clips_complete ON clips(complete_at) WHERE complete_at IS NOT NULL AND expired_at IS NULL;
  `,
  /* 5: the three-level network: cities above districts, township offices between districts and schools */ `
  CREATE TABLE cities (id TEXT PRIMARY KEY, name TEXT NOT NULL, webhooks TEXT NOT NULL DEFAULT '[]');
  CREATE TABLE townships (id TEXT PRIMARY KEY, name TEXT NOT NULL, district_id TEXT NOT NULL REFERENCES districts(id), webhooks TEXT NOT NULL DEFAULT '[]');
  ALTER TABLE districts ADD COLUMN city_id TEXT;
  ALTER TABLE schools ADD COLUMN township_id TEXT;
  ALTER TABLE users ADD COLUMN township_id TEXT;
  ALTER TABLE users ADD COLUMN city_id TEXT;
  CREATE INDEX schools_township ON schools(township_id);
  `,
  /* 6: several instances on one database: a delivery is sent by the instance holding its lease */ `
  ALTER TABLE deliveries ADD COLUMN claimed_by TEXT;
  ALTER TABLE deliveries ADD COLUMN claimed_until INTEGER;
  `,
  /* 7: a site's recipients by index, not by reading every user's site_ids (central/store/user-sites.ts) */ {
    ddl: `
  CREATE TABLE user_sites (
    user_id TEXT NOT NULL REFERENCES users(id), site_id TEXT NOT NULL,
    PRIMARY KEY (user_id, site_id)
  );
  CREATE INDEX user_sites_site ON user_sites(site_id, user_id);
  CREATE INDEX users_school ON users(school_id);
  `,
    data: backfillUserSites,
  },
];

export const SCHEMA_VERSION = MIGRATIONS.length;

export function forDialect(ddl: string, dialect: Sql['dialect']['name']): string {
  if (dialect === 'sqlite') return ddl;
  return ddl
    .replace(/\bINTEGER PRIMARY KEY AUTOINCREMENT\b/g, 'BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY')
    .replace(/\bINTEGER\b/g, 'BIGINT')
    .replace(/\bREAL\b/g, 'DOUBLE PRECISION')
    .replace(/\bBLOB\b/g, 'BYTEA');
}

/** Brings the schema up to date; several instances starting at once migrate it once. */
export async function migrate(sql: Sql): Promise<number> {
  return sql.tx(async () => {
    if (sql.dialect.name === 'postgres') await sql.exec('SELECT pg_advisory_xact_lock(1263000014)');
    await sql.exec('CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)');
    const row = await sql.get<{ version: number }>('SELECT version FROM schema_version');
    let version = row?.version ?? 0;
    if (!row) await sql.run('INSERT INTO schema_version (version) VALUES (0)');
    if (version > MIGRATIONS.length) throw new Error(`central's database schema version ${version} is newer than this program (${MIGRATIONS.length})`);
    while (version < MIGRATIONS.length) {
      const m = MIGRATIONS[version]!;
      await sql.exec(forDialect(typeof m === 'string' ? m : m.ddl, sql.dialect.name));
      if (typeof m !== 'string') await m.data(sql);
      await sql.run('UPDATE schema_version SET version = ?', [++version]);
    }
    return version;
  });
}

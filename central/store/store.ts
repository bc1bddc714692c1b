/**
 * Central's store over SQLite: the query / mutation functions the HTTP layer uses (CentralStore) plus
 * the internal ones ingest, routing, notification and voice use.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, writeFileSync, existsSync, renameSync } from 'node:fs';
import path from 'node:path';
import sharp, { type Metadata } from 'sharp';
import type { z } from 'zod';
import type { EventMessage, CameraStatus, SiteStatus, SiteStats } from '../../protocol/messages.js';
import { VIOLATION_TEXT, type ViolationKind, type Severity } from '../../protocol/violations.js';
import { formatIssues } from '../../protocol/messages.js';
import {
  CameraSchema, CitySchema, DistrictSchema, SchoolSchema, TownshipSchema, SiteSchema, UserSchema, PasswordHash,
  type OrgConfig, type Role,
} from '../config/schema.js';
import type { Sql } from './sql.js';
import { ClipStore, clipView } from './clips.js';
import { SessionRows } from './sessions.js';
import { PublicRecords } from './public-record.js';
import { syncUserSites, writeUserSites } from './user-sites.js';
import {
  CoreError,
  type AuditEntry, type AuditInput, type CameraRecord, type CameraView, type CentralStore, type DeliveryChannel,
  type DeliveryStatus, type DeliveryView, type DistrictRecord, type OfficeLevel, type OfficeRecord, type EventDetail, type EventFilter, type EventStatus,
  type EventView, type HistoryEntry, type SiteContext, type OrgApi, type OrgInput, type OrgKind, type OrgRecords, type RectificationView,
  type RectifyInput, type SchoolRecord, type Scope, type SiteRecord, type SiteView, type StatsView, type UserRecord,
  type UserWithSecrets, type VoiceRecord, type VoiceState, type VoiceView, type WebhookRecord,
} from './types.js';

type Row = Record<string, unknown>;
const now = () => Date.now();
const j = <T>(s: unknown, fallback: T): T => {
  if (typeof s !== 'string') return fallback;
  try { return JSON.parse(s) as T; } catch { return fallback; }
};

export interface EventRow {
  id: string; site_id: string; camera_id: string; camera_name: string; kind: ViolationKind; severity: Severity;
  rule_id: string; label: string; score: number; box: string; zone: string | null; raised_at: number; received_at: number;
  snap_annotated: string; snap_clean: string; experimental: number; status: EventStatus; deadline_at: number;
  ack_by: string | null; ack_at: number | null; escalation_level: number; next_escalation_at: number | null;
  site_name: string | null; ack_by_name: string | null; snap_received: number;
}

export interface DeliveryRow {
  id: number; event_id: string; recipient_id: string; recipient_name: string; role: string; channel: DeliveryChannel;
  target: string | null; level: number; status: DeliveryStatus; attempts: number; last_error: string | null;
  next_attempt_at: number | null; created_at: number; delivered_at: number | null;
  claimed_by: string | null; claimed_until: number | null;
}

export type { SiteContext } from './types.js';

/** Image bytes a rectification photo may carry. */
function imageMime(bytes: Buffer): 'image/jpeg' | 'image/png' | null {
  if (bytes.length > 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) return 'image/jpeg';
  if (bytes.length > 8 && bytes.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]))) return 'image/png';
  return null;
}

/** A rectification photo may have at most this many pixels (48 MP phone cameras fit; decompression bombs do not). */
export const MAX_PHOTO_PIXELS = 50_000_000;

/**
 * Decodes the whole photo (header and every pixel) so that only a real, complete JPEG / PNG is stored
 * and served: magic bytes alone let truncated files and garbage between valid markers through.
 * Throws CoreError 'invalid' naming `photoBase64`.
 */
async function decodePhoto(bytes: Buffer, mime: 'image/jpeg' | 'image/png'): Promise<{ width: number; height: number }> {
  const kind = mime === 'image/jpeg' ? 'JPEG' : 'PNG';
  const opts = { failOn: 'error' as const, limitInputPixels: MAX_PHOTO_PIXELS };
  const why = (err: unknown) => String((err as Error)?.message ?? err).split('\n')[0]!.slice(0, 200);
  let meta: Metadata;
  try {
    meta = await sharp(bytes, opts).metadata();
  } catch (err) {
    const msg = why(err);
    if (/pixel limit/i.test(msg)) throw new CoreError('invalid', `photo has more than ${MAX_PHOTO_PIXELS / 1e6} megapixels`, 'photoBase64');
    throw new CoreError('invalid', `photo is not a decodable ${kind} (${msg})`, 'photoBase64');
  }
  if (meta.format !== (mime === 'image/jpeg' ? 'jpeg' : 'png') || !meta.width || !meta.height) {
    throw new CoreError('invalid', `photo is not a decodable ${kind} (decoded as ${meta.format ?? 'nothing'})`, 'photoBase64');
  }
  if (meta.width * meta.height > MAX_PHOTO_PIXELS) throw new CoreError('invalid', `photo has more than ${MAX_PHOTO_PIXELS / 1e6} megapixels (${meta.width}×${meta.height})`, 'photoBase64');
  try {
    await sharp(bytes, opts).stats(); // decodes every pixel: truncated or corrupt image data fails here
  } catch (err) {
    throw new CoreError('invalid', `photo is not a decodable ${kind}: its image data is corrupt or truncated (${why(err)})`, 'photoBase64');
  }
  return { width: meta.width, height: meta.height };
}

export const isJpeg = (b: Buffer) => b.length > 4 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff && b[b.length - 2] === 0xff && b[b.length - 1] === 0xd9;
export const sha256Hex = (b: Buffer) => createHash('sha256').update(b).digest('hex');

function parseOr<T extends z.ZodType>(schema: T, data: unknown, what: string): z.infer<T> {
  const r = schema.safeParse(data);
  if (!r.success) {
    const first = r.error.issues[0];
    throw new CoreError('invalid', `${what}: ${formatIssues(r.error.issues)}`, first ? first.path.map(String).join('.') : undefined);
  }
  return r.data;
}

export class Store implements CentralStore {
  readonly org: OrgApi;
  /** Event clips: chunks, manifests, files. */
  readonly clips: ClipStore;
  /** Dashboard sessions and login locks. */
  readonly sessions: SessionRows;
  /** The public window's month records and pictures. */
  readonly publicRecords: PublicRecords;
  /** Called after acknowledge / rectify / review (central wires it to bus 'event'). */
  onEventChanged: ((e: EventView) => void) | null = null;
  // The clip's columns come along so that an event's view needs no query of its own.
  private readonly eventSelect = `SELECT e.*, s.name AS site_name, ua.name AS ack_by_name,
      EXISTS (SELECT 1 FROM snapshots WHERE sha256 = e.snap_annotated) AS snap_received,
      ${ClipStore.columns('cl', 'e.id')}
    FROM events e LEFT JOIN sites s ON s.id = e.site_id LEFT JOIN users ua ON ua.id = e.ack_by LEFT JOIN clips cl ON cl.event_id = e.id`;

  constructor(
    /** The database (SQLite or PostgreSQL). */
    readonly sql: Sql,
    /** Where snapshots, photos and clips are kept (shared by every instance on one database). */
    readonly dataDir: string,
  ) {
    this.org = this.makeOrgApi();
    this.clips = new ClipStore(sql, dataDir);
    this.sessions = new SessionRows(sql);
    this.publicRecords = new PublicRecords(sql);
  }

  close(): Promise<void> {
    return this.sql.close();
  }

  // ---------------------------------------------------------------- scope
  async scopeOf(user: UserRecord): Promise<Scope> {
    const base = { userId: user.id, role: user.role };
    if (user.disabled) return { ...base, all: false, siteIds: new Set(), districtIds: new Set() };
    if (user.role === 'admin') {
      const all = (await this.sql.values('SELECT id FROM districts')) as string[];
      return { ...base, all: true, siteIds: new Set((await this.sql.values('SELECT id FROM sites')) as string[]), districtIds: new Set(all) };
    }
    let rows: { id: string; district_id: string }[] = [];
    const q = `SELECT si.id, sc.district_id FROM sites si JOIN schools sc ON sc.id = si.school_id`;
    if (user.role === 'canteen_manager') {
      const inList = this.sql.dialect.inList('si.id', user.siteIds);
      rows = (await this.sql.all(`${q} WHERE ${inList.sql}`, inList.params)) as typeof rows;
    }
    else if (user.role === 'vice_principal') rows = (await this.sql.all(`${q} WHERE si.school_id = ?`, [user.schoolId ?? ''])) as typeof rows;
    else if (user.role === 'inspector') {
      // an inspector sees everything below their office
      rows = user.townshipId ? (await this.sql.all(`${q} WHERE sc.township_id = ?`, [user.townshipId])) as typeof rows
        : user.cityId ? (await this.sql.all(`${q} WHERE sc.district_id IN (SELECT id FROM districts WHERE city_id = ?)`, [user.cityId])) as typeof rows
          : (await this.sql.all(`${q} WHERE sc.district_id = ?`, [user.districtId ?? ''])) as typeof rows;
    }
    // Districts wholly the user's (their audit entries without a site): a district's or a city's
    // inspector; a township office holds part of a district only, so none.
    const districtIds = user.role !== 'inspector' ? new Set(rows.map((r) => r.district_id))
      : user.townshipId ? new Set<string>()
        : user.cityId ? new Set((await this.sql.values('SELECT id FROM districts WHERE city_id = ?', [user.cityId])) as string[])
          : new Set(user.districtId ? [user.districtId] : []);
    return { ...base, all: false, siteIds: new Set(rows.map((r) => r.id)), districtIds };
  }

  async siteInScope(scope: Scope, siteId: string): Promise<boolean> {
    return scope.all ? await this.siteExists(siteId) : scope.siteIds.has(siteId);
  }

  private async siteExists(id: string): Promise<boolean> {
    return !!(await this.sql.get('SELECT 1 FROM sites WHERE id = ?', [id]));
  }

  /** SQL fragment + parameter restricting `col` to the scope's sites. */
  private scopeSql(scope: Scope, col: string): { sql: string; params: unknown[] } {
    return scope.all ? { sql: '1=1', params: [] } : this.sql.dialect.inList(col, scope.siteIds);
  }

  // ---------------------------------------------------------------- org sync (YAML → DB)
  async syncOrg(org: OrgConfig): Promise<void> {
    await this.sql.tx(async () => {
      const ci = (...p: unknown[]) => this.sql.run('INSERT INTO cities (id, name, webhooks) VALUES (?, ?, ?) ON CONFLICT(id) DO UPDATE SET name = excluded.name, webhooks = excluded.webhooks', p);
      for (const x of org.cities) await ci(x.id, x.name, JSON.stringify(x.webhooks));
      const d = (...p: unknown[]) => this.sql.run('INSERT INTO districts (id, name, webhooks, city_id) VALUES (?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET name = excluded.name, webhooks = excluded.webhooks, city_id = excluded.city_id', p);
      for (const x of org.districts) await d(x.id, x.name, JSON.stringify(x.webhooks), x.cityId ?? null);
      const tw = (...p: unknown[]) => this.sql.run('INSERT INTO townships (id, name, district_id, webhooks) VALUES (?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET name = excluded.name, district_id = excluded.district_id, webhooks = excluded.webhooks', p);
      for (const x of org.townships) await tw(x.id, x.name, x.districtId, JSON.stringify(x.webhooks));
      const s = (...p: unknown[]) => this.sql.run('INSERT INTO schools (id, name, district_id, township_id) VALUES (?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET name = excluded.name, district_id = excluded.district_id, township_id = excluded.township_id', p);
      for (const x of org.schools) await s(x.id, x.name, x.districtId, x.townshipId ?? null);
      const si = (...p: unknown[]) => this.sql.run(`INSERT INTO sites (id, name, school_id, mqtt_password_hash, auto_reminder) VALUES (?, ?, ?, ?, ?)
        ON CONFLICT(id) DO UPDATE SET name = excluded.name, school_id = excluded.school_id, mqtt_password_hash = excluded.mqtt_password_hash, auto_reminder = excluded.auto_reminder`, p);
      const c = (...p: unknown[]) => this.sql.run(`INSERT INTO cameras (site_id, id, name, live_url) VALUES (?, ?, ?, ?)
        ON CONFLICT(site_id, id) DO UPDATE SET name = excluded.name, live_url = excluded.live_url`, p);
      for (const x of org.sites) {
        await si(x.id, x.name, x.schoolId, x.mqttPasswordHash ?? null, x.autoReminder ? JSON.stringify(x.autoReminder) : null);
        for (const cam of x.cameras) await c(x.id, cam.id, cam.name, cam.liveUrl ?? null);
      }
      const u = (...p: unknown[]) => this.sql.run(`INSERT INTO users (id, username, name, role, site_ids, school_id, district_id, password_hash, mqtt_password_hash, lang, township_id, city_id)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
        ON CONFLICT(id) DO UPDATE SET username = excluded.username, name = excluded.name, role = excluded.role, site_ids = excluded.site_ids,
          school_id = excluded.school_id, district_id = excluded.district_id, password_hash = excluded.password_hash,
          mqtt_password_hash = excluded.mqtt_password_hash, lang = excluded.lang, township_id = excluded.township_id, city_id = excluded.city_id`, p);
      for (const x of org.users) {
        await u(x.id, x.username, x.name, x.role, JSON.stringify(x.siteIds ?? []), x.schoolId ?? null, x.districtId ?? null,
          x.passwordHash, x.mqttPasswordHash ?? null, x.lang, x.townshipId ?? null, x.cityId ?? null);
      }
      await syncUserSites(this.sql, org.users.map((x) => ({ id: x.id, siteIds: x.siteIds ?? [] })));
    });
    // PostgreSQL plans by its statistics, which a freshly loaded table lacks until autovacuum gets to
    // it: meanwhile it guessed "few managers" and scanned every user per event (twice the old cost).
    if (this.sql.dialect.name === 'postgres') await this.sql.exec('ANALYZE users, user_sites');
  }

  // ---------------------------------------------------------------- users
  private userFrom(r: Row): UserWithSecrets {
    return {
      id: r.id as string, username: r.username as string, name: r.name as string, role: r.role as Role,
      siteIds: j<string[]>(r.site_ids, []), schoolId: (r.school_id as string) ?? null, districtId: (r.district_id as string) ?? null,
      townshipId: (r.township_id as string) ?? null, cityId: (r.city_id as string) ?? null,
      lang: (r.lang as 'zh' | 'en') ?? 'zh', disabled: !!r.disabled,
      passwordHash: r.password_hash as string, mqttPasswordHash: (r.mqtt_password_hash as string) ?? null,
    };
  }
  private publicUser(u: UserWithSecrets): UserRecord {
    const { passwordHash: _p, mqttPasswordHash: _m, ...rest } = u;
    return rest;
  }
  async userByUsername(username: string): Promise<UserWithSecrets | null> {
    const r = (await this.sql.get('SELECT * FROM users WHERE username = ?', [username])) as Row | undefined;
    return r ? this.userFrom(r) : null;
  }
  async user(id: string): Promise<UserRecord | null> {
    const r = (await this.sql.get('SELECT * FROM users WHERE id = ?', [id])) as Row | undefined;
    return r ? this.publicUser(this.userFrom(r)) : null;
  }
  /** For broker login: by id or username. */
  /** Deliveries by channel and status (metrics). */
  async deliveryCounts(): Promise<{ channel: string; status: string; n: number }[]> {
    return (await this.sql.all('SELECT channel, status, COUNT(*) AS n FROM deliveries GROUP BY channel, status')) as { channel: string; status: string; n: number }[];
  }

  async userForMqtt(name: string): Promise<UserWithSecrets | null> {
    const r = (await this.sql.get('SELECT * FROM users WHERE (id = ? OR username = ?) AND disabled = 0', [name, name])) as Row | undefined;
    return r ? this.userFrom(r) : null;
  }
  async siteMqttHash(siteId: string): Promise<string | null> {
    return ((await this.sql.value('SELECT mqtt_password_hash FROM sites WHERE id = ?', [siteId])) as string | null | undefined) ?? null;
  }
  async allUsersWithSecrets(): Promise<UserWithSecrets[]> {
    return ((await this.sql.all('SELECT * FROM users ORDER BY id')) as Row[]).map((r) => this.userFrom(r));
  }

  /** Users of these roles responsible for a site (managers of it, vice-principal of its school, inspectors of its district). */
  /** The site's managers (canteen_manager) and vice-principals (vice_principal) among `roles`. */
  async recipients(siteId: string, roles: readonly Role[]): Promise<UserRecord[]> {
    const ctx = await this.siteContext(siteId);
    if (!ctx) return [];
    // Index lookups, one per role asked for: testing every manager's JSON site list per event grew
    // with the users and was PostgreSQL's largest cost under load (docs/scale.md). user_sites mirrors
    // users.site_ids (central/store/user-sites.ts).
    const parts: string[] = [], params: unknown[] = [];
    if (roles.includes('canteen_manager')) {
      parts.push(`SELECT u.* FROM user_sites us JOIN users u ON u.id = us.user_id WHERE us.site_id = ? AND u.role = 'canteen_manager' AND u.disabled = 0`);
      params.push(siteId);
    }
    if (roles.includes('vice_principal')) {
      parts.push(`SELECT * FROM users WHERE school_id = ? AND role = 'vice_principal' AND disabled = 0`);
      params.push(ctx.school.id);
    }
    if (!parts.length) return [];
    const rows = await this.sql.all<Row>(`${parts.join(' UNION ALL ')} ORDER BY id`, params);
    return rows.map((r) => this.publicUser(this.userFrom(r)));
  }

  /** The inspectors who belong to an office (not those above or below it). */
  async officeInspectors(office: OfficeRecord): Promise<UserRecord[]> {
    const col = office.level === 'township' ? 'township_id' : office.level === 'city' ? 'city_id' : 'district_id';
    // a district inspector row has district_id set and no township / city
    const only = office.level === 'district' ? ' AND township_id IS NULL AND city_id IS NULL' : '';
    return ((await this.sql.all(`SELECT * FROM users WHERE disabled = 0 AND role = 'inspector' AND ${col} = ?${only} ORDER BY id`, [office.id])) as Row[])
      .map((r) => this.publicUser(this.userFrom(r)));
  }

  // ---------------------------------------------------------------- sites
  private siteRecord(r: Row): SiteRecord {
    return { id: r.id as string, name: r.name as string, schoolId: r.school_id as string, hasMqttPassword: !!r.mqtt_password_hash, autoReminder: j(r.auto_reminder, null) };
  }
  async siteContext(siteId: string): Promise<SiteContext | null> {
    const r = (await this.sql.get(`SELECT si.*, sc.name AS school_name, sc.district_id, d.name AS district_name, d.webhooks,
        t.id AS township_id, t.name AS township_name, t.webhooks AS township_webhooks, c.id AS city_id, c.name AS city_name, c.webhooks AS city_webhooks
      FROM sites si JOIN schools sc ON sc.id = si.school_id JOIN districts d ON d.id = sc.district_id
        LEFT JOIN townships t ON t.id = sc.township_id LEFT JOIN cities c ON c.id = d.city_id WHERE si.id = ?`, [siteId])) as Row | undefined;
    if (!r) return null;
    const district = { id: r.district_id as string, name: r.district_name as string, webhooks: j<WebhookRecord[]>(r.webhooks, []) };
    const offices: OfficeRecord[] = [
      ...(r.township_id ? [{ level: 'township' as const, id: r.township_id as string, name: r.township_name as string, webhooks: j<WebhookRecord[]>(r.township_webhooks, []) }] : []),
      { level: 'district', ...district },
      ...(r.city_id ? [{ level: 'city' as const, id: r.city_id as string, name: r.city_name as string, webhooks: j<WebhookRecord[]>(r.city_webhooks, []) }] : []),
    ];
    return {
      site: this.siteRecord(r),
      school: { id: r.school_id as string, name: r.school_name as string, districtId: r.district_id as string },
      district,
      offices,
    };
  }
  async cameraExists(siteId: string, cameraId: string): Promise<boolean> {
    return !!(await this.sql.get('SELECT 1 FROM cameras WHERE site_id = ? AND id = ?', [siteId, cameraId]));
  }
  private cameraView(r: Row): CameraView {
    return { id: r.id as string, name: r.name as string, state: r.state as CameraView['state'], lastFrameAt: (r.last_frame_at as number) ?? null, fps: (r.fps as number) ?? 0, error: (r.error as string) ?? null };
  }
  async sites(scope: Scope, onlyId?: string): Promise<SiteView[]> {
    const sc = this.scopeSql(scope, 'si.id');
    // One site when asked for one: ingest looks up a site per status / stats message, and building
    // every site's view for it made each message cost O(sites) (docs/scale.md).
    const one = onlyId === undefined ? '' : ' AND si.id = ?';
    const rows = (await this.sql.all(`SELECT si.*, sc.name AS school_name, sc.district_id, d.name AS district_name
      FROM sites si JOIN schools sc ON sc.id = si.school_id JOIN districts d ON d.id = sc.district_id WHERE ${sc.sql}${one} ORDER BY si.id`, [...sc.params, ...(onlyId === undefined ? [] : [onlyId])])) as Row[];
    const inSites = this.sql.dialect.inList('site_id', rows.map((r) => r.id));
    const camsOf = new Map<string, Row[]>();
    for (const c of rows.length ? await this.sql.all<Row>(`SELECT * FROM cameras WHERE ${inSites.sql} ORDER BY site_id, id`, inSites.params) : []) {
      const list = camsOf.get(c.site_id as string) ?? [];
      list.push(c);
      camsOf.set(c.site_id as string, list);
    }
    return rows.map((r) => ({
      id: r.id as string, name: r.name as string, schoolId: r.school_id as string, schoolName: r.school_name as string,
      districtId: r.district_id as string, districtName: r.district_name as string, online: !!r.online,
      lastSeenAt: (r.last_seen_at as number) ?? null, agentVersion: (r.agent_version as string) ?? null, stats: j(r.stats, null),
      cameras: (camsOf.get(r.id as string) ?? []).map((c) => this.cameraView(c)),
    }));
  }
  async site(scope: Scope, siteId: string): Promise<SiteView | null> {
    if (!await this.siteInScope(scope, siteId)) return null;
    return (await this.sites(scope, siteId))[0] ?? null;
  }
  /** The site's view, unscoped (ingest, other instances' live updates). */
  async siteView(siteId: string): Promise<SiteView | null> {
    return (await this.sites({ userId: 'central', role: 'admin', all: true, siteIds: new Set(), districtIds: new Set() }, siteId))[0] ?? null;
  }

  /** Ingest: returns the updated view, or null for an unknown site. */
  async applySiteStatus(m: SiteStatus): Promise<SiteView | null> {
    const r = (await this.sql.run(`UPDATE sites SET online = ?, status_at = ?, last_seen_at = ${this.sql.dialect.greatest('COALESCE(last_seen_at, 0)', '?')}, agent_version = COALESCE(?, agent_version)
      WHERE id = ? AND (status_at IS NULL OR status_at <= ?)`, [m.online ? 1 : 0, m.ts, now(), m.agentVersion ?? null, m.siteId, m.ts]));
    if (!r.changes) return null;
    return await this.siteView(m.siteId);
  }
  async applyStats(m: SiteStats): Promise<SiteView | null> {
    const { v: _v, siteId, ...stats } = m;
    const r = (await this.sql.run('UPDATE sites SET stats = ?, last_seen_at = ? WHERE id = ?', [JSON.stringify(stats), now(), siteId]));
    return r.changes ? await this.siteView(siteId) : null;
  }
  /** Upserts the camera (an agent may know cameras central's config does not list). Out-of-order updates are ignored. */
  async applyCameraStatus(m: CameraStatus): Promise<(CameraView & { siteId: string }) | null> {
    await this.sql.run(`INSERT INTO cameras (site_id, id, name, state, last_frame_at, fps, error, status_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
      ON CONFLICT(site_id, id) DO UPDATE SET state = excluded.state, last_frame_at = excluded.last_frame_at, fps = excluded.fps,
        error = excluded.error, status_at = excluded.status_at WHERE cameras.status_at IS NULL OR cameras.status_at <= excluded.status_at`, [m.siteId, m.cameraId, m.name || m.cameraId, m.state, m.lastFrameAt, m.fps, m.error, m.ts]);
    await this.sql.run('UPDATE sites SET last_seen_at = ? WHERE id = ?', [now(), m.siteId]);
    const r = (await this.sql.get('SELECT * FROM cameras WHERE site_id = ? AND id = ?', [m.siteId, m.cameraId])) as Row | undefined;
    return r ? { siteId: m.siteId, ...this.cameraView(r) } : null;
  }

  // ---------------------------------------------------------------- events
  eventView(r: EventRow, at = now()): EventView {
    const snap = (sha: string) => `/api/snapshots/${sha}`;
    return {
      id: r.id, siteId: r.site_id, siteName: r.site_name ?? r.site_id, cameraId: r.camera_id, cameraName: r.camera_name,
      kind: r.kind, kindText: VIOLATION_TEXT[r.kind]?.zh ?? r.kind, kindTextEn: VIOLATION_TEXT[r.kind]?.en ?? r.kind,
      severity: r.severity, label: r.label, score: r.score, box: j(r.box, [0, 0, 0, 0]), zone: r.zone, raisedAt: r.raised_at,
      receivedAt: r.received_at, status: r.status, deadlineAt: r.deadline_at,
      overdue: r.status !== 'rectified' && r.status !== 'closed' && r.deadline_at < at,
      ackBy: r.ack_by, ackByName: r.ack_by_name ?? null, ackAt: r.ack_at, escalationLevel: r.escalation_level,
      snapshotUrl: snap(r.snap_annotated), cleanSnapshotUrl: snap(r.snap_clean),
      snapshotSha256: r.snap_annotated, cleanSnapshotSha256: r.snap_clean, snapshotReceived: !!r.snap_received,
      experimental: !!r.experimental,
      clip: clipView(r as unknown as Row),
    };
  }
  async eventRow(id: string): Promise<EventRow | null> {
    return ((await this.sql.get(`${this.eventSelect} WHERE e.id = ?`, [id])) as EventRow | undefined) ?? null;
  }
  async eventById(id: string): Promise<EventView | null> {
    const r = await this.eventRow(id);
    return r ? this.eventView(r) : null;
  }

  /** False when the id was already stored (a duplicate). */
  async insertEvent(m: EventMessage, opts: { receivedAt: number; deadlineAt: number; nextEscalationAt: number | null }): Promise<boolean> {
    const r = (await this.sql.run(`INSERT INTO events (id, site_id, camera_id, camera_name, kind, severity, rule_id, label, score, box, zone,
      started_at, captured_at, raised_at, received_at, duration_sec, detections, snap_annotated, snap_clean, experimental, status, deadline_at,
      escalation_level, next_escalation_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'open', ?, 0, ?) ON CONFLICT (id) DO NOTHING`, [m.id, m.siteId, m.cameraId, m.cameraName, m.kind, m.severity, m.ruleId, m.label, m.score, JSON.stringify(m.box), m.zone,
        m.startedAt, m.capturedAt, m.raisedAt, opts.receivedAt, m.durationSec, JSON.stringify(m.detections),
        m.snapshots.annotated.sha256, m.snapshots.clean.sha256, m.experimental ? 1 : 0, opts.deadlineAt, opts.nextEscalationAt]));
    if (r.changes) await this.history(m.id, 'raised', 'agent', m.raisedAt, `${m.kind} @ ${m.cameraName || m.cameraId}`);
    return r.changes > 0;
  }

  async events(scope: Scope, f: EventFilter = {}): Promise<EventView[]> {
    const sc = this.scopeSql(scope, 'e.site_id');
    const where = [sc.sql];
    const params: unknown[] = [...sc.params];
    if (f.siteId) { where.push('e.site_id = ?'); params.push(f.siteId); }
    if (f.kind) { where.push('e.kind = ?'); params.push(f.kind); }
    if (f.status) { where.push('e.status = ?'); params.push(f.status); }
    if (f.from != null) { where.push('e.raised_at >= ?'); params.push(f.from); }
    if (f.to != null) { where.push('e.raised_at < ?'); params.push(f.to); }
    if (f.before != null) { where.push('e.raised_at < ?'); params.push(f.before); }
    const limit = Math.max(1, Math.min(500, Math.floor(f.limit ?? 50)));
    const rows = (await this.sql.all(`${this.eventSelect} WHERE ${where.join(' AND ')} ORDER BY e.raised_at DESC, e.id DESC LIMIT ?`, [...params, limit])) as EventRow[];
    const t = now();
    return rows.map((r) => this.eventView(r, t));
  }

  async event(scope: Scope, eventId: string): Promise<EventDetail | null> {
    const r = await this.eventRow(eventId);
    if (!r || !await this.siteInScope(scope, r.site_id)) return null;
    return {
      ...this.eventView(r),
      deliveries: await this.deliveries(eventId),
      rectifications: ((await this.sql.all(`SELECT r.*, u.name AS by_name FROM rectifications r LEFT JOIN users u ON u.id = r.by WHERE r.event_id = ? ORDER BY r.id`, [eventId])) as Row[])
        .map((x): RectificationView => ({
          id: x.id as number, eventId, by: x.by as string, byName: (x.by_name as string) ?? (x.by as string), at: x.at as number, note: x.note as string,
          photoSha256: (x.photo_sha256 as string) ?? null, photoMime: (x.photo_mime as string) ?? null,
          photoUrl: x.photo_sha256 ? `/api/rectifications/${x.id}/photo` : null,
        })),
      history: ((await this.sql.all(`SELECT h.action, h.by, u.name AS by_name, h.at, h.note FROM event_history h
        LEFT JOIN users u ON u.id = h.by AND h.action NOT IN ('raised', 'escalated') WHERE h.event_id = ? ORDER BY h.id`, [eventId])) as Row[])
        .map((x): HistoryEntry => ({ action: x.action as string, by: x.by as string, byName: (x.by_name as string) ?? null, at: x.at as number, note: (x.note as string) ?? null })),
    };
  }

  private async history(eventId: string, action: string, by: string, at: number, note: string | null = null): Promise<void> {
    await this.sql.run('INSERT INTO event_history (event_id, action, by, at, note) VALUES (?, ?, ?, ?, ?)', [eventId, action, by, at, note]);
  }

  private async scopedEvent(user: UserRecord, eventId: string): Promise<EventRow> {
    const r = await this.eventRow(eventId);
    if (!r || !await this.siteInScope(await this.scopeOf(user), r.site_id)) throw new CoreError('not_found', `no event "${eventId}"`);
    return r;
  }

  async acknowledge(user: UserRecord, eventId: string, note?: string, meta?: { ip?: string }): Promise<EventView> {
    const t = now();
    await this.sql.tx(async () => {
      const r = await this.scopedEvent(user, eventId);
      if (r.status !== 'open' && r.status !== 'reopened') throw new CoreError('conflict', `event "${eventId}" is ${r.status}; only open or reopened events can be acknowledged`);
      await this.transition(eventId, r.status, `status = 'acknowledged', ack_by = COALESCE(ack_by, ?), ack_at = COALESCE(ack_at, ?), next_escalation_at = NULL`, [user.id, t]);
      await this.sql.run('INSERT INTO acknowledgements (event_id, by, at, note) VALUES (?, ?, ?, ?)', [eventId, user.id, t, note ?? null]);
      await this.history(eventId, 'acknowledged', user.id, t, note ?? null);
      await this.audit({ userId: user.id, action: 'event.ack', target: eventId, detail: note ?? null, ip: meta?.ip, siteId: r.site_id });
    });
    return await this.changed(eventId);
  }

  async rectify(user: UserRecord, eventId: string, input: RectifyInput, meta?: { ip?: string }): Promise<EventView> {
    const note = (input.note ?? '').trim();
    if (!note) throw new CoreError('invalid', 'a rectification needs a note describing what was done', 'note');
    if (note.length > 2000) throw new CoreError('invalid', 'note: at most 2000 characters', 'note');
    let photo: { sha: string; mime: string } | null = null;
    if (input.photo) {
      const { bytes, mime } = input.photo;
      if (bytes.length > 5 * 1024 * 1024) throw new CoreError('invalid', `photo too large (${bytes.length} bytes > 5 MB)`, 'photoBase64');
      const actual = imageMime(bytes);
      if (!actual) throw new CoreError('invalid', 'photo is neither a JPEG nor a PNG', 'photoBase64');
      if (actual !== mime) throw new CoreError('invalid', `photo bytes are ${actual}, not ${mime}`, 'photoMime');
      await this.scopedEvent(user, eventId); // not_found before spending a decode on someone else's event
      await decodePhoto(bytes, actual);
      photo = { sha: sha256Hex(bytes), mime: actual };
      const file = this.photoPath(photo.sha, actual);
      if (!existsSync(file)) {
        mkdirSync(path.dirname(file), { recursive: true });
        writeFileSync(`${file}.tmp`, bytes);
        renameSync(`${file}.tmp`, file);
      }
    }
    const t = now();
    await this.sql.tx(async () => {
      const r = await this.scopedEvent(user, eventId);
      if (r.status === 'rectified' || r.status === 'closed') throw new CoreError('conflict', `event "${eventId}" is already ${r.status}`);
      await this.transition(eventId, r.status, `status = 'rectified', ack_by = COALESCE(ack_by, ?), ack_at = COALESCE(ack_at, ?), next_escalation_at = NULL`, [user.id, t]);
      await this.sql.run('INSERT INTO rectifications (event_id, by, at, note, photo_sha256, photo_mime) VALUES (?, ?, ?, ?, ?, ?)', [eventId, user.id, t, note, photo?.sha ?? null, photo?.mime ?? null]);
      await this.history(eventId, 'rectified', user.id, t, note);
      await this.audit({ userId: user.id, action: 'event.rectify', target: eventId, detail: photo ? `photo ${photo.sha}` : null, ip: meta?.ip, siteId: r.site_id });
    });
    return await this.changed(eventId);
  }

  async review(user: UserRecord, eventId: string, decision: 'close' | 'reopen', note?: string, meta?: { ip?: string }): Promise<EventView> {
    if (user.role !== 'inspector' && user.role !== 'admin') {
      await this.scopedEvent(user, eventId); // not_found first: do not reveal existence
      throw new CoreError('forbidden', 'only inspectors and admins review rectifications');
    }
    if (decision !== 'close' && decision !== 'reopen') throw new CoreError('invalid', `decision must be "close" or "reopen" (got ${JSON.stringify(decision)})`, 'decision');
    const t = now();
    await this.sql.tx(async () => {
      const r = await this.scopedEvent(user, eventId);
      if (decision === 'close' && r.status !== 'rectified') throw new CoreError('conflict', `event "${eventId}" is ${r.status}; only rectified events can be closed`);
      if (decision === 'reopen' && r.status !== 'rectified' && r.status !== 'closed') throw new CoreError('conflict', `event "${eventId}" is ${r.status}; only rectified or closed events can be reopened`);
      if (decision === 'close') await this.transition(eventId, r.status, `status = 'closed', closed_at = ?`, [t]);
      else await this.transition(eventId, r.status, `status = 'reopened', closed_at = NULL`, []);
      await this.history(eventId, decision === 'close' ? 'closed' : 'reopened', user.id, t, note ?? null);
      await this.audit({ userId: user.id, action: `event.${decision}`, target: eventId, detail: note ?? null, ip: meta?.ip, siteId: r.site_id });
    });
    return await this.changed(eventId);
  }

  /**
   * Applies `set` only if the event is still in the status its checks were made on: another instance
   * (or request) acting on it at the same moment makes this one a conflict instead of a second change.
   */
  private async transition(eventId: string, from: EventStatus, set: string, params: unknown[]): Promise<void> {
    const r = await this.sql.run(`UPDATE events SET ${set} WHERE id = ? AND status = ?`, [...params, eventId, from]);
    if (!r.changes) throw new CoreError('conflict', `event "${eventId}" was changed meanwhile; reload it`);
  }

  private async changed(eventId: string): Promise<EventView> {
    const v = (await this.eventById(eventId))!;
    this.onEventChanged?.(v);
    return v;
  }

  async overdue(scope: Scope): Promise<EventView[]> {
    const sc = this.scopeSql(scope, 'e.site_id');
    const t = now();
    return ((await this.sql.all(`${this.eventSelect} WHERE ${sc.sql} AND e.status NOT IN ('rectified', 'closed') AND e.deadline_at < ? ORDER BY e.deadline_at LIMIT 1000`, [...sc.params, t])) as EventRow[]).map((r) => this.eventView(r, t));
  }

  /** Days are the sites' days (`timeZone`), not the server's: counted per hour in SQL, the hours put in days here. */
  async stats(scope: Scope, range: { from?: number; to?: number } = {}, timeZone = 'Asia/Shanghai'): Promise<StatsView> {
    const sc = this.scopeSql(scope, 'site_id');
    const from = range.from ?? 0, to = range.to ?? Number.MAX_SAFE_INTEGER;
    const hours = (await this.sql.all(`SELECT raised_at / 3600000 AS hour, site_id AS "siteId", kind, COUNT(*) AS count
      FROM events WHERE ${sc.sql} AND raised_at >= ? AND raised_at < ? GROUP BY hour, site_id, kind`, [...sc.params, from, to])) as { hour: number; siteId: string; kind: ViolationKind; count: number }[];
    const dayOf = new Intl.DateTimeFormat('en-CA', { timeZone, year: 'numeric', month: '2-digit', day: '2-digit' });
    const days = new Map<string, StatsView['perDay'][number]>();
    for (const h of hours) {
      // Half-hour zones: an hour bucket can straddle midnight; its start decides (a few events may shift a day).
      const day = dayOf.format(Math.floor(h.hour) * 3600000);
      const k = `${day}\t${h.siteId}\t${h.kind}`;
      const d = days.get(k);
      if (d) d.count += h.count;
      else days.set(k, { day, siteId: h.siteId, kind: h.kind, count: h.count });
    }
    const perDay = [...days.values()].sort((a, b) => a.day.localeCompare(b.day) || a.siteId.localeCompare(b.siteId) || a.kind.localeCompare(b.kind));
    const secs = ((await this.sql.values(`SELECT (ack_at - raised_at) / 1000.0 FROM events WHERE ${sc.sql} AND raised_at >= ? AND raised_at < ? AND ack_at IS NOT NULL ORDER BY 1`, [...sc.params, from, to])) as number[]).map((s) => Math.max(0, s));
    const q = (p: number) => (secs.length ? secs[Math.min(secs.length - 1, Math.ceil(p * secs.length) - 1)]! : null);
    const median = secs.length === 0 ? null : secs.length % 2 ? secs[(secs.length - 1) / 2]! : (secs[secs.length / 2 - 1]! + secs[secs.length / 2]!) / 2;
    return { perDay, timeToAck: { count: secs.length, medianSec: median, p90Sec: q(0.9) }, byOffice: await this.byOffice(scope, from, to) };
  }

  /** Alerts and overdue rectifications of the scope's sites, summed per office above them. */
  private async byOffice(scope: Scope, from: number, to: number): Promise<StatsView['byOffice']> {
    const sc = this.scopeSql(scope, 'si.id');
    const rows = (await this.sql.all(`SELECT si.id, sc.township_id, t.name AS township_name, sc.district_id, d.name AS district_name, d.city_id, c.name AS city_name,
        (SELECT COUNT(*) FROM events e WHERE e.site_id = si.id AND e.raised_at >= ? AND e.raised_at < ?) AS events,
        (SELECT COUNT(*) FROM events e WHERE e.site_id = si.id AND e.status NOT IN ('rectified', 'closed') AND e.deadline_at < ?) AS overdue
      FROM sites si JOIN schools sc ON sc.id = si.school_id JOIN districts d ON d.id = sc.district_id
        LEFT JOIN townships t ON t.id = sc.township_id LEFT JOIN cities c ON c.id = d.city_id WHERE ${sc.sql}`, [from, to, now(), ...sc.params])) as Row[];
    const out = new Map<string, StatsView['byOffice'][number]>();
    const add = (level: OfficeLevel, id: unknown, name: unknown, r: Row) => {
      if (!id) return;
      const k = `${level}:${id as string}`;
      const o = out.get(k) ?? { level, id: id as string, name: name as string, sites: 0, events: 0, overdue: 0 };
      o.sites++;
      o.events += r.events as number;
      o.overdue += r.overdue as number;
      out.set(k, o);
    };
    for (const r of rows) {
      add('city', r.city_id, r.city_name, r);
      add('district', r.district_id, r.district_name, r);
      add('township', r.township_id, r.township_name, r);
    }
    const order: Record<OfficeLevel, number> = { city: 0, district: 1, township: 2 };
    return [...out.values()].sort((a, b) => order[a.level] - order[b.level] || b.events - a.events || a.name.localeCompare(b.name));
  }

  // ---------------------------------------------------------------- escalation state
  async dueEscalations(at: number): Promise<EventRow[]> {
    return (await this.sql.all(`${this.eventSelect} WHERE e.next_escalation_at IS NOT NULL AND e.next_escalation_at <= ? AND e.status IN ('open', 'reopened') ORDER BY e.next_escalation_at LIMIT 200`, [at])) as EventRow[];
  }
  /** Only moves forward: false when another worker already escalated this event. */
  async setEscalation(eventId: string, fromLevel: number, level: number, nextAt: number | null): Promise<boolean> {
    return (await this.sql.run(`UPDATE events SET escalation_level = ?, next_escalation_at = ? WHERE id = ? AND escalation_level = ? AND status IN ('open', 'reopened')`, [level, nextAt, eventId, fromLevel])).changes > 0;
  }
  async noteEscalation(eventId: string, level: number, to: string): Promise<void> {
    await this.history(eventId, 'escalated', 'central', now(), `level ${level}: ${to}`);
  }

  // ---------------------------------------------------------------- snapshots and photos
  snapshotPath(sha: string): string {
    return path.join(this.dataDir, 'snapshots', sha.slice(0, 2), `${sha}.jpg`);
  }
  private photoPath(sha: string, mime: string): string {
    return path.join(this.dataDir, 'photos', sha.slice(0, 2), `${sha}.${mime === 'image/png' ? 'png' : 'jpg'}`);
  }
  /** Store bytes by hash (idempotent). Returns true when new. */
  async saveSnapshot(sha: string, bytes: Buffer, siteId: string): Promise<boolean> {
    const file = this.snapshotPath(sha);
    if (!existsSync(file)) {
      mkdirSync(path.dirname(file), { recursive: true });
      writeFileSync(`${file}.tmp`, bytes);
      renameSync(`${file}.tmp`, file);
    }
    return (await this.sql.run('INSERT INTO snapshots (sha256, bytes, site_id, received_at) VALUES (?, ?, ?, ?) ON CONFLICT (sha256) DO NOTHING', [sha, bytes.length, siteId, now()])).changes > 0;
  }
  /** Events (ids) that reference this snapshot. */
  async eventsReferencing(sha: string): Promise<string[]> {
    return (await this.sql.values('SELECT id FROM events WHERE snap_annotated = ? OR snap_clean = ?', [sha, sha])) as string[];
  }
  async snapshotFile(sha: string, scope?: Scope): Promise<string | null> {
    if (!/^[a-f0-9]{64}$/.test(sha)) return null;
    if (!(await this.sql.get('SELECT 1 FROM snapshots WHERE sha256 = ?', [sha]))) return null;
    const sites = (await this.sql.values('SELECT DISTINCT site_id FROM events WHERE snap_annotated = ? OR snap_clean = ?', [sha, sha])) as string[];
    if (!sites.length) return null;
    if (scope && !(await Promise.all(sites.map((s) => this.siteInScope(scope, s)))).some(Boolean)) return null;
    const file = this.snapshotPath(sha);
    return existsSync(file) ? file : null;
  }
  async rectificationPhoto(scope: Scope, id: number): Promise<{ path: string; mime: string } | null> {
    const r = (await this.sql.get('SELECT r.photo_sha256, r.photo_mime, e.site_id FROM rectifications r JOIN events e ON e.id = r.event_id WHERE r.id = ?', [id])) as Row | undefined;
    if (!r || !r.photo_sha256 || !await this.siteInScope(scope, r.site_id as string)) return null;
    const file = this.photoPath(r.photo_sha256 as string, r.photo_mime as string);
    return existsSync(file) ? { path: file, mime: r.photo_mime as string } : null;
  }

  // ---------------------------------------------------------------- deliveries
  async addDelivery(d: { eventId: string; recipientId: string; recipientName: string; role: string; channel: DeliveryChannel; target?: string | null; level: number; status?: DeliveryStatus }): Promise<number> {
    const t = now();
    const st = d.status ?? 'pending';
    return Number(await this.sql.value(`INSERT INTO deliveries (event_id, recipient_id, recipient_name, role, channel, target, level, status, attempts, created_at, delivered_at, next_attempt_at)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`, [d.eventId, d.recipientId, d.recipientName, d.role, d.channel, d.target ?? null, d.level, st,
      st === 'sent' ? 1 : 0, t, st === 'sent' ? t : null, st === 'pending' ? t : null]));
  }
  async markDelivery(id: number, status: DeliveryStatus, opts: { error?: string | null; nextAttemptAt?: number | null; attempt?: boolean } = {}): Promise<void> {
    const t = now();
    // the outcome ends the sender's lease
    await this.sql.run(`UPDATE deliveries SET status = ?, attempts = attempts + ?, last_error = COALESCE(?, last_error), next_attempt_at = ?,
      delivered_at = CASE WHEN ? = 'sent' THEN ? ELSE delivered_at END, claimed_by = NULL, claimed_until = NULL WHERE id = ?`,
      [status, opts.attempt === false ? 0 : 1, opts.error ?? null, opts.nextAttemptAt ?? null, status, t, id]);
  }
  /**
   * Leases these deliveries (still to do, and not leased by another instance now) to `instance` until
   * `until`, and returns the rows it got: with several instances on one database exactly one sends
   * each; a lease that runs out (its instance died) lets another take the row.
   */
  /** Ends this instance's leases (it stops): another instance may send those rows at once. */
  async releaseDeliveries(instance: string): Promise<void> {
    await this.sql.run(`UPDATE deliveries SET claimed_by = NULL, claimed_until = NULL WHERE claimed_by = ? AND status IN ('pending', 'retrying')`, [instance]);
  }
  async claimDeliveries(ids: readonly number[], instance: string, until: number): Promise<DeliveryRow[]> {
    if (!ids.length) return [];
    const inIds = this.sql.dialect.inList('id', ids);
    const t = now();
    return this.sql.all<DeliveryRow>(`UPDATE deliveries SET claimed_by = ?, claimed_until = ?
      WHERE ${inIds.sql} AND status IN ('pending', 'retrying') AND (claimed_until IS NULL OR claimed_until < ? OR claimed_by = ?)
      RETURNING *`, [instance, until, ...inIds.params, t, instance]);
  }
  async delivery(id: number): Promise<DeliveryRow | null> {
    return ((await this.sql.get('SELECT * FROM deliveries WHERE id = ?', [id])) as DeliveryRow | undefined) ?? null;
  }
  /** Deliveries still to do (restart continues them). */
  async pendingDeliveries(channels: DeliveryChannel[]): Promise<DeliveryRow[]> {
    const inChannels = this.sql.dialect.inList('channel', channels);
    // rows leased by a live instance are that instance's
    return this.sql.all<DeliveryRow>(`SELECT * FROM deliveries WHERE status IN ('pending', 'retrying') AND ${inChannels.sql}
      AND (claimed_until IS NULL OR claimed_until < ?) ORDER BY id`, [...inChannels.params, now()]);
  }
  async deliveries(eventId: string): Promise<DeliveryView[]> {
    return ((await this.sql.all('SELECT * FROM deliveries WHERE event_id = ? ORDER BY id', [eventId])) as DeliveryRow[]).map((d) => ({
      id: d.id, recipientId: d.recipient_id, recipientName: d.recipient_name, role: d.role as DeliveryView['role'], channel: d.channel,
      status: d.status, attempts: d.attempts, lastError: d.last_error, deliveredAt: d.delivered_at, level: d.level, createdAt: d.created_at,
    }));
  }

  // ---------------------------------------------------------------- audit
  async audit(e: AuditInput): Promise<void> {
    const district = e.siteId ? (await this.siteContext(e.siteId))?.district.id ?? null : null;
    await this.sql.run('INSERT INTO audit_log (at, user_id, action, target, detail, ip, site_id, district_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)', [now(), e.userId, e.action, e.target, e.detail ?? null, e.ip ?? null, e.siteId ?? null, district]);
  }
  async auditList(scope: Scope, page: { limit?: number; before?: number } = {}): Promise<AuditEntry[]> {
    if (scope.role !== 'admin' && scope.role !== 'inspector') return [];
    const where: string[] = [];
    const params: unknown[] = [];
    if (!scope.all) {
      const sites = this.sql.dialect.inList('site_id', scope.siteIds), districts = this.sql.dialect.inList('district_id', scope.districtIds);
      where.push(`(${sites.sql} OR (site_id IS NULL AND ${districts.sql}) OR user_id = ?)`);
      params.push(...sites.params, ...districts.params, scope.userId);
    }
    if (page.before != null) { where.push('at < ?'); params.push(page.before); }
    const limit = Math.max(1, Math.min(1000, Math.floor(page.limit ?? 100)));
    return (await this.sql.all(`SELECT at, user_id AS "userId", action, target, detail, ip FROM audit_log ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY at DESC, id DESC LIMIT ?`, [...params, limit])) as AuditEntry[];
  }

  // ---------------------------------------------------------------- voice
  async insertVoice(v: VoiceRecord): Promise<void> {
    await this.sql.run('INSERT INTO voice_commands (id, site_id, camera_id, type, text, issued_by, issued_at, state, state_at, error) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)', [v.id, v.siteId, v.cameraId, v.type, v.text, v.issuedBy, v.issuedAt, v.state, v.stateAt, v.error]);
  }
  /** `r` is a voice_commands row joined with the issuer's name (`issued_by_name`, see voiceSelect). */
  private voiceFrom(r: Row): VoiceView {
    return { id: r.id as string, siteId: r.site_id as string, cameraId: (r.camera_id as string) ?? null, type: r.type as VoiceRecord['type'], text: (r.text as string) ?? null,
      issuedBy: r.issued_by as string, issuedByName: (r.issued_by_name as string) ?? null, issuedAt: r.issued_at as number, state: r.state as VoiceState,
      stateAt: r.state_at as number, error: (r.error as string) ?? null };
  }
  private readonly voiceSelect = 'SELECT v.*, u.name AS issued_by_name FROM voice_commands v LEFT JOIN users u ON u.id = v.issued_by';
  /**
   * A status from the site for one of its commands. The first final state received for a command id
   * is its state for good: a later status for the same id (the agent's "rejected: nonce already used"
   * for a replayed or QoS 1 redelivered copy, or any other late report) never overwrites it; it is
   * recorded in the audit log instead (an exact duplicate of the recorded status is dropped silently).
   * null when no command of that id belongs to that site; `applied` false when the status was not applied.
   */
  async updateVoice(id: string, siteId: string, state: Exclude<VoiceState, 'sent'>, at: number, error: string | null): Promise<{ record: VoiceView; applied: boolean } | null> {
    const applied = await this.sql.tx(async () => {
      const r = (await this.sql.run(`UPDATE voice_commands SET state = ?, state_at = ?, error = ? WHERE id = ? AND site_id = ? AND state = 'sent'`, [state, at, error, id, siteId]));
      if (r.changes) return true;
      const cur = (await this.sql.get('SELECT state, state_at, error FROM voice_commands WHERE id = ? AND site_id = ?', [id, siteId])) as Row | undefined;
      if (!cur) return null;
      const duplicate = cur.state === state && cur.state_at === at && ((cur.error as string | null) ?? null) === error;
      if (!duplicate) {
        await this.audit({ userId: `site:${siteId}`, action: 'voice.status_ignored', target: id, siteId,
          detail: `"${state}"${error ? ` (${error.slice(0, 200)})` : ''} at ${at} ignored: the command is already "${cur.state as string}"` });
      }
      return false;
    });
    if (applied === null) return null;
    return { record: this.voiceFrom((await this.sql.get(`${this.voiceSelect} WHERE v.id = ?`, [id])) as Row), applied };
  }
  async voiceCommands(scope: Scope, siteId?: string): Promise<VoiceView[]> {
    const sc = this.scopeSql(scope, 'v.site_id');
    const where = [sc.sql];
    const params = [...sc.params];
    if (siteId) { where.push('v.site_id = ?'); params.push(siteId); }
    return ((await this.sql.all(`${this.voiceSelect} WHERE ${where.join(' AND ')} ORDER BY v.issued_at DESC LIMIT 200`, [...params])) as Row[]).map((r) => this.voiceFrom(r));
  }

  // ---------------------------------------------------------------- org CRUD (admin)
  private makeOrgApi(): OrgApi {
    const self = this;
    const requireAdmin = (u: UserRecord) => { if (u.role !== 'admin') throw new CoreError('forbidden', 'only admins edit the organisation'); };
    const camKey = (id: string) => {
      const i = id.indexOf('/');
      if (i < 0) throw new CoreError('invalid', `camera id must be "<siteId>/<cameraId>" (got "${id}")`);
      return [id.slice(0, i), id.slice(i + 1)] as const;
    };
    const listers: { [K in OrgKind]: () => Promise<OrgRecords[K][]> } = {
      cities: async () => ((await self.sql.all('SELECT * FROM cities ORDER BY id')) as Row[]).map((r) => ({ id: r.id as string, name: r.name as string, webhooks: j(r.webhooks, []) })),
      townships: async () => ((await self.sql.all('SELECT * FROM townships ORDER BY id')) as Row[]).map((r) => ({ id: r.id as string, name: r.name as string, districtId: r.district_id as string, webhooks: j(r.webhooks, []) })),
      districts: async () => ((await self.sql.all('SELECT * FROM districts ORDER BY id')) as Row[]).map((r) => ({ id: r.id as string, name: r.name as string, webhooks: j(r.webhooks, []), ...(r.city_id ? { cityId: r.city_id as string } : {}) })),
      schools: async () => ((await self.sql.all('SELECT id, name, district_id, township_id FROM schools ORDER BY id')) as Row[])
        .map((r) => ({ id: r.id as string, name: r.name as string, districtId: r.district_id as string, ...(r.township_id ? { townshipId: r.township_id as string } : {}) })),
      sites: async () => ((await self.sql.all('SELECT * FROM sites ORDER BY id')) as Row[]).map((r) => self.siteRecord(r)),
      cameras: async () => ((await self.sql.all('SELECT site_id, id, name, live_url FROM cameras ORDER BY site_id, id')) as Row[]).map((r) => ({ siteId: r.site_id as string, id: r.id as string, name: r.name as string, liveUrl: (r.live_url as string) ?? null })),
      users: async () => (await self.allUsersWithSecrets()).map((u) => self.publicUser(u)),
    };
    const get = async <K extends OrgKind>(kind: K, id: string): Promise<OrgRecords[K] | null> => {
      if (kind === 'cameras') {
        const [s, c] = camKey(id);
        return ((await listers.cameras()).find((x) => x.siteId === s && x.id === c) ?? null) as OrgRecords[K] | null;
      }
      return (((await listers[kind]()) as { id: string }[]).find((x) => x.id === id) ?? null) as OrgRecords[K] | null;
    };
    const must = (ok: boolean, msg: string, field: string) => { if (!ok) throw new CoreError('invalid', msg, field); };
    const exists = async (table: 'cities' | 'districts' | 'townships', id: string) => !!(await self.sql.get(`SELECT 1 FROM ${table} WHERE id = ?`, [id]));
    // the dashboard clears an optional link by sending null; the config schemas know only "absent"
    const dropNulls = (input: unknown, keys: readonly string[]) => {
      const raw = { ...(input as Row) };
      for (const k of keys) if (raw[k] === null) delete raw[k];
      return raw;
    };
    const write = async (kind: OrgKind, input: unknown, existingId: string | null): Promise<string> => {
      switch (kind) {
        case 'cities': {
          const x = parseOr(CitySchema, input, 'city');
          if (existingId && x.id !== existingId) throw new CoreError('invalid', 'the id cannot change', 'id');
          await self.sql.run('INSERT INTO cities (id, name, webhooks) VALUES (?, ?, ?) ON CONFLICT(id) DO UPDATE SET name = excluded.name, webhooks = excluded.webhooks', [x.id, x.name, JSON.stringify(x.webhooks)]);
          return x.id;
        }
        case 'townships': {
          const x = parseOr(TownshipSchema, input, 'township');
          if (existingId && x.id !== existingId) throw new CoreError('invalid', 'the id cannot change', 'id');
          must(await exists('districts', x.districtId), `no district "${x.districtId}"`, 'districtId');
          // a school's township must lie in the school's district (checked on the school side too)
          if (existingId) must(!(await self.sql.get('SELECT 1 FROM schools WHERE township_id = ? AND district_id != ?', [x.id, x.districtId])), `township "${x.id}" has schools outside district "${x.districtId}"`, 'districtId');
          await self.sql.run('INSERT INTO townships (id, name, district_id, webhooks) VALUES (?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET name = excluded.name, district_id = excluded.district_id, webhooks = excluded.webhooks', [x.id, x.name, x.districtId, JSON.stringify(x.webhooks)]);
          return x.id;
        }
        case 'districts': {
          const x = parseOr(DistrictSchema, dropNulls(input, ['cityId']), 'district');
          if (existingId && x.id !== existingId) throw new CoreError('invalid', 'the id cannot change', 'id');
          if (x.cityId) must(await exists('cities', x.cityId), `no city "${x.cityId}"`, 'cityId');
          await self.sql.run('INSERT INTO districts (id, name, webhooks, city_id) VALUES (?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET name = excluded.name, webhooks = excluded.webhooks, city_id = excluded.city_id', [x.id, x.name, JSON.stringify(x.webhooks), x.cityId ?? null]);
          return x.id;
        }
        case 'schools': {
          const x = parseOr(SchoolSchema, dropNulls(input, ['townshipId']), 'school');
          if (existingId && x.id !== existingId) throw new CoreError('invalid', 'the id cannot change', 'id');
          must(await exists('districts', x.districtId), `no district "${x.districtId}"`, 'districtId');
          if (x.townshipId) {
            const t = (await self.sql.value('SELECT district_id FROM townships WHERE id = ?', [x.townshipId])) as string | undefined;
            must(t === x.districtId, t ? `township "${x.townshipId}" is in district "${t}", not "${x.districtId}"` : `no township "${x.townshipId}"`, 'townshipId');
          }
          await self.sql.run('INSERT INTO schools (id, name, district_id, township_id) VALUES (?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET name = excluded.name, district_id = excluded.district_id, township_id = excluded.township_id', [x.id, x.name, x.districtId, x.townshipId ?? null]);
          return x.id;
        }
        case 'sites': {
          const raw = { ...(input as Row) };
          const keepHash = existingId && !('mqttPasswordHash' in raw);
          if (raw.mqttPasswordHash === null) delete raw.mqttPasswordHash;
          if (raw.autoReminder === null) delete raw.autoReminder;
          const x = parseOr(SiteSchema.omit({ cameras: true }), raw, 'site');
          if (existingId && x.id !== existingId) throw new CoreError('invalid', 'the id cannot change', 'id');
          must(!!(await get('schools', x.schoolId)), `no school "${x.schoolId}"`, 'schoolId');
          if (await self.userForMqtt(x.id)) throw new CoreError('invalid', `site id "${x.id}" collides with a user's id or username (both log in to the broker)`, 'id');
          await self.sql.run(`INSERT INTO sites (id, name, school_id, mqtt_password_hash, auto_reminder) VALUES (?, ?, ?, ?, ?)
            ON CONFLICT(id) DO UPDATE SET name = excluded.name, school_id = excluded.school_id, auto_reminder = excluded.auto_reminder
            ${keepHash ? '' : ', mqtt_password_hash = excluded.mqtt_password_hash'}`, [x.id, x.name, x.schoolId, x.mqttPasswordHash ?? null, x.autoReminder ? JSON.stringify(x.autoReminder) : null]);
          return x.id;
        }
        case 'cameras': {
          const raw = { ...(input as Row) };
          const siteId = raw.siteId;
          delete raw.siteId;
          if (raw.liveUrl === null) delete raw.liveUrl;
          must(typeof siteId === 'string' && !!(await get('sites', siteId)), `no site ${JSON.stringify(siteId)}`, 'siteId');
          const x = parseOr(CameraSchema, raw, 'camera');
          const key = `${siteId as string}/${x.id}`;
          if (existingId && key !== existingId) throw new CoreError('invalid', 'the id cannot change', 'id');
          await self.sql.run(`INSERT INTO cameras (site_id, id, name, live_url) VALUES (?, ?, ?, ?) ON CONFLICT(site_id, id) DO UPDATE SET name = excluded.name, live_url = excluded.live_url`, [siteId, x.id, x.name, x.liveUrl ?? null]);
          return key;
        }
        case 'users': {
          const raw = dropNulls(input, ['mqttPasswordHash', 'schoolId', 'districtId', 'townshipId', 'cityId']);
          const old = existingId ? (await self.allUsersWithSecrets()).find((u) => u.id === existingId) : undefined;
          if (raw.passwordHash === undefined && old) raw.passwordHash = old.passwordHash;
          if (raw.mqttPasswordHash === undefined && old?.mqttPasswordHash) raw.mqttPasswordHash = old.mqttPasswordHash;
          const disabled = !!raw.disabled;
          delete raw.disabled;
          const x = parseOr(UserSchema, raw, 'user');
          if (existingId && x.id !== existingId) throw new CoreError('invalid', 'the id cannot change', 'id');
          parseOr(PasswordHash, x.passwordHash, 'passwordHash');
          if (x.role === 'canteen_manager') must(!!x.siteIds?.length && (await Promise.all(x.siteIds.map((s) => get('sites', s)))).every(Boolean), 'a canteen_manager needs existing siteIds', 'siteIds');
          if (x.role === 'vice_principal') must(!!x.schoolId && !!(await get('schools', x.schoolId)), 'a vice_principal needs an existing schoolId', 'schoolId');
          if (x.role === 'inspector') {
            const offices = [x.townshipId, x.districtId, x.cityId].filter(Boolean).length;
            must(offices === 1, 'an inspector belongs to one office: give one of townshipId, districtId, cityId', x.townshipId ? 'townshipId' : x.cityId ? 'cityId' : 'districtId');
            if (x.districtId) must(await exists('districts', x.districtId), `no district "${x.districtId}"`, 'districtId');
            if (x.townshipId) must(await exists('townships', x.townshipId), `no township "${x.townshipId}"`, 'townshipId');
            if (x.cityId) must(await exists('cities', x.cityId), `no city "${x.cityId}"`, 'cityId');
          }
          if (await self.siteExists(x.id) || await self.siteExists(x.username)) throw new CoreError('invalid', `"${x.username}" collides with a site id (both log in to the broker)`, 'username');
          const clash = (await self.sql.get('SELECT id FROM users WHERE username = ? AND id != ?', [x.username, x.id]));
          if (clash) throw new CoreError('conflict', `username "${x.username}" is taken`, 'username');
          await self.sql.run(`INSERT INTO users (id, username, name, role, site_ids, school_id, district_id, password_hash, mqtt_password_hash, lang, disabled, township_id, city_id)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET username = excluded.username, name = excluded.name, role = excluded.role,
            site_ids = excluded.site_ids, school_id = excluded.school_id, district_id = excluded.district_id, password_hash = excluded.password_hash,
            mqtt_password_hash = excluded.mqtt_password_hash, lang = excluded.lang, disabled = excluded.disabled,
            township_id = excluded.township_id, city_id = excluded.city_id`, [x.id, x.username, x.name, x.role, JSON.stringify(x.siteIds ?? []), x.schoolId ?? null, x.districtId ?? null, x.passwordHash, x.mqttPasswordHash ?? null, x.lang, disabled ? 1 : 0,
              x.townshipId ?? null, x.cityId ?? null]);
          await writeUserSites(self.sql, x.id, x.siteIds ?? []);
          return x.id;
        }
      }
    };
    // What keeps a record from being deleted: nothing is orphaned, history stays attributable.
    const blockers: Partial<Record<OrgKind, [string, string][]>> = {
      cities: [['SELECT 1 FROM districts WHERE city_id = ?', 'still has districts'], ['SELECT 1 FROM users WHERE city_id = ?', 'still has inspectors']],
      districts: [['SELECT 1 FROM townships WHERE district_id = ?', 'still has townships'], ['SELECT 1 FROM schools WHERE district_id = ?', 'still has schools']],
      townships: [['SELECT 1 FROM schools WHERE township_id = ?', 'still has schools'], ['SELECT 1 FROM users WHERE township_id = ?', 'still has inspectors']],
      schools: [['SELECT 1 FROM sites WHERE school_id = ?', 'still has sites']],
      sites: [['SELECT 1 FROM events WHERE site_id = ?', 'has events; keep it (or disable its broker login)']],
    };
    return {
      list: (kind) => listers[kind](),
      get,
      async create(actor, kind, input) {
        requireAdmin(actor);
        return self.sql.tx(async () => {
          const id = kind === 'cameras' ? `${(input as { siteId?: string }).siteId}/${(input as { id?: string }).id}` : (input as { id?: string }).id;
          if (typeof id === 'string' && await get(kind, id)) throw new CoreError('conflict', `${kind} "${id}" exists`, 'id');
          const key = await write(kind, input, null);
          await self.audit({ userId: actor.id, action: `org.${kind}.create`, target: key });
          return (await get(kind, key))!;
        });
      },
      async update(actor, kind, id, input) {
        requireAdmin(actor);
        return self.sql.tx(async () => {
          if (!await get(kind, id)) throw new CoreError('not_found', `no ${kind} "${id}"`);
          const key = await write(kind, input, id);
          await self.audit({ userId: actor.id, action: `org.${kind}.update`, target: key });
          return (await get(kind, key))!;
        });
      },
      async remove(actor, kind, id) {
        requireAdmin(actor);
        await self.sql.tx(async () => {
          if (!await get(kind, id)) throw new CoreError('not_found', `no ${kind} "${id}"`);
          for (const [sql, what] of blockers[kind] ?? []) {
            if (await self.sql.get(sql, [id])) throw new CoreError('conflict', `${kind === 'cities' ? 'city' : kind.slice(0, -1)} "${id}" ${what}`);
          }
          if (kind === 'users' && id === actor.id) throw new CoreError('conflict', 'you cannot delete yourself');
          if (kind === 'cameras') {
            const [s, c] = camKey(id);
            await self.sql.run('DELETE FROM cameras WHERE site_id = ? AND id = ?', [s, c]);
          } else {
            if (kind === 'sites') (await self.sql.run('DELETE FROM cameras WHERE site_id = ?', [id]));
            if (kind === 'users') await writeUserSites(self.sql, id, []); // its rows reference it
            await self.sql.run(`DELETE FROM ${kind} WHERE id = ?`, [id]);
          }
          await self.audit({ userId: actor.id, action: `org.${kind}.delete`, target: id });
        });
      },
    };
  }
}

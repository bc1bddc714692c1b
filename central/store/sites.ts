/** Sites and cameras: their views, the offices above a site, the live state agents report. */
import type { CameraStatus, SiteStatus, SiteStats } from '../../protocol/messages.js';
import type { Sql } from './sql.js';
import { j, now, type Row } from './rows.js';
import { scopeSql, type Scopes } from './scope.js';
import type { CameraView, OfficeRecord, Scope, SiteContext, SiteRecord, SiteView, WebhookRecord } from './types.js';

export function siteRecord(r: Row): SiteRecord {
  return { id: r.id as string, name: r.name as string, schoolId: r.school_id as string, hasMqttPassword: !!r.mqtt_password_hash, autoReminder: j(r.auto_reminder, null) };
}
function cameraView(r: Row): CameraView {
  return { id: r.id as string, name: r.name as string, state: r.state as CameraView['state'], lastFrameAt: (r.last_frame_at as number) ?? null, fps: (r.fps as number) ?? 0, error: (r.error as string) ?? null };
}

export class SiteRows {
  constructor(private readonly sql: Sql, private readonly scopes: Scopes) {}

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
      site: siteRecord(r),
      school: { id: r.school_id as string, name: r.school_name as string, districtId: r.district_id as string },
      district,
      offices,
    };
  }
  async cameraExists(siteId: string, cameraId: string): Promise<boolean> {
    return !!(await this.sql.get('SELECT 1 FROM cameras WHERE site_id = ? AND id = ?', [siteId, cameraId]));
  }
  async sites(scope: Scope, onlyId?: string): Promise<SiteView[]> {
    const sc = scopeSql(this.sql, scope, 'si.id');
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
      cameras: (camsOf.get(r.id as string) ?? []).map((c) => cameraView(c)),
    }));
  }
  async site(scope: Scope, siteId: string): Promise<SiteView | null> {
    if (!await this.scopes.siteInScope(scope, siteId)) return null;
    return (await this.sites(scope, siteId))[0] ?? null;
  }
  /** The site's view, unscoped (ingest, other instances' live updates). */
  async siteView(siteId: string): Promise<SiteView | null> {
    return (await this.sites({ userId: 'central', role: 'admin', all: true, siteIds: new Set(), districtIds: new Set() }, siteId))[0] ?? null;
  }

  /** Ingest: the updated view; null for an unknown site or a status not newer than the stored one (the same retained message again). */
  async applySiteStatus(m: SiteStatus): Promise<SiteView | null> {
    const r = (await this.sql.run(`UPDATE sites SET online = ?, status_at = ?, last_seen_at = ${this.sql.dialect.greatest('COALESCE(last_seen_at, 0)', '?')}, agent_version = COALESCE(?, agent_version)
      WHERE id = ? AND (status_at IS NULL OR status_at < ?)`, [m.online ? 1 : 0, m.ts, now(), m.agentVersion ?? null, m.siteId, m.ts]));
    if (!r.changes) return null;
    return await this.siteView(m.siteId);
  }
  async applyStats(m: SiteStats): Promise<SiteView | null> {
    const { v: _v, siteId, ...stats } = m;
    const r = (await this.sql.run('UPDATE sites SET stats = ?, last_seen_at = ? WHERE id = ?', [JSON.stringify(stats), now(), siteId]));
    return r.changes ? await this.siteView(siteId) : null;
  }
  /**
   * Upserts the camera (an agent may know cameras central's config does not list). Out-of-order
   * updates are ignored, and so is one with the time already stored: the same retained message again
   * (every instance gets every status; a restarted one gets them all at once).
   */
  async applyCameraStatus(m: CameraStatus): Promise<(CameraView & { siteId: string }) | null> {
    const up = await this.sql.run(`INSERT INTO cameras (site_id, id, name, state, last_frame_at, fps, error, status_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
      ON CONFLICT(site_id, id) DO UPDATE SET state = excluded.state, last_frame_at = excluded.last_frame_at, fps = excluded.fps,
        error = excluded.error, status_at = excluded.status_at WHERE cameras.status_at IS NULL OR cameras.status_at < excluded.status_at`, [m.siteId, m.cameraId, m.name || m.cameraId, m.state, m.lastFrameAt, m.fps, m.error, m.ts]);
    if (!up.changes) return null;
    await this.sql.run('UPDATE sites SET last_seen_at = ? WHERE id = ?', [now(), m.siteId]);
    const r = (await this.sql.get('SELECT * FROM cameras WHERE site_id = ? AND id = ?', [m.siteId, m.cameraId])) as Row | undefined;
    return r ? { siteId: m.siteId, ...cameraView(r) } : null;
  }
  async siteMqttHash(siteId: string): Promise<string | null> {
    return ((await this.sql.value('SELECT mqtt_password_hash FROM sites WHERE id = ?', [siteId])) as string | null | undefined) ?? null;
  }
}

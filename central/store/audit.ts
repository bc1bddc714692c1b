/** The audit log: who did what; admins read all of it, inspectors what concerns their sites and districts (and their own). */
import type { Sql } from './sql.js';
import { now } from './rows.js';
import type { AuditEntry, AuditInput, Scope, SiteContext } from './types.js';

export class AuditLog {
  constructor(
    private readonly sql: Sql,
    /** A site's offices: an entry about a site is also filed under its district. */
    private readonly siteContext: (siteId: string) => Promise<SiteContext | null>,
  ) {}

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
}

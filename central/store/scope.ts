/** Who sees what: a user's scope (their sites and districts) and the SQL that keeps a query inside it. */
import type { Sql } from './sql.js';
import type { Scope, UserRecord } from './types.js';

export class Scopes {
  constructor(private readonly sql: Sql) {}

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

  async siteExists(id: string): Promise<boolean> {
    return !!(await this.sql.get('SELECT 1 FROM sites WHERE id = ?', [id]));
  }
}

/** SQL fragment + parameter restricting `col` to the scope's sites. */
export function scopeSql(sql: Sql, scope: Scope, col: string): { sql: string; params: unknown[] } {
  return scope.all ? { sql: '1=1', params: [] } : sql.dialect.inList(col, scope.siteIds);
}

/** Users as the store reads them: logins, and who is told about a site's events. */
import type { Sql } from './sql.js';
import { j, type Row } from './rows.js';
import type { SiteRows } from './sites.js';
import type { OfficeRecord, Role, UserRecord, UserWithSecrets } from './types.js';

export function userFrom(r: Row): UserWithSecrets {
  return {
    id: r.id as string, username: r.username as string, name: r.name as string, role: r.role as Role,
    siteIds: j<string[]>(r.site_ids, []), schoolId: (r.school_id as string) ?? null, districtId: (r.district_id as string) ?? null,
    townshipId: (r.township_id as string) ?? null, cityId: (r.city_id as string) ?? null,
    lang: (r.lang as 'zh' | 'en') ?? 'zh', disabled: !!r.disabled,
    passwordHash: r.password_hash as string, mqttPasswordHash: (r.mqtt_password_hash as string) ?? null,
  };
}
/** The user without password hashes (what leaves the store). */
export function publicUser(u: UserWithSecrets): UserRecord {
  const { passwordHash: _p, mqttPasswordHash: _m, ...rest } = u;
  return rest;
}

export class UserRows {
  constructor(private readonly sql: Sql, private readonly sites: SiteRows) {}

  async userByUsername(username: string): Promise<UserWithSecrets | null> {
    const r = (await this.sql.get('SELECT * FROM users WHERE username = ?', [username])) as Row | undefined;
    return r ? userFrom(r) : null;
  }
  async user(id: string): Promise<UserRecord | null> {
    const r = (await this.sql.get('SELECT * FROM users WHERE id = ?', [id])) as Row | undefined;
    return r ? publicUser(userFrom(r)) : null;
  }
  /** For broker login: by id or username. */
  async userForMqtt(name: string): Promise<UserWithSecrets | null> {
    const r = (await this.sql.get('SELECT * FROM users WHERE (id = ? OR username = ?) AND disabled = 0', [name, name])) as Row | undefined;
    return r ? userFrom(r) : null;
  }
  async allUsersWithSecrets(): Promise<UserWithSecrets[]> {
    return ((await this.sql.all('SELECT * FROM users ORDER BY id')) as Row[]).map((r) => userFrom(r));
  }

  /** The site's managers (canteen_manager) and vice-principals (vice_principal) among `roles`. */
  async recipients(siteId: string, roles: readonly Role[]): Promise<UserRecord[]> {
    const ctx = await this.sites.siteContext(siteId);
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
    return rows.map((r) => publicUser(userFrom(r)));
  }

  /** The inspectors who belong to an office (not those above or below it). */
  async officeInspectors(office: OfficeRecord): Promise<UserRecord[]> {
    const col = office.level === 'township' ? 'township_id' : office.level === 'city' ? 'city_id' : 'district_id';
    // a district inspector row has district_id set and no township / city
    const only = office.level === 'district' ? ' AND township_id IS NULL AND city_id IS NULL' : '';
    return ((await this.sql.all(`SELECT * FROM users WHERE disabled = 0 AND role = 'inspector' AND ${col} = ?${only} ORDER BY id`, [office.id])) as Row[])
      .map((r) => publicUser(userFrom(r)));
  }
}

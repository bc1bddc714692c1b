/**
 * The organisation as it is written: from the config at each start (syncOrg) and by the admin API
 * (OrgApi). Reads of users and sites are users.ts and sites.ts.
 */
import type { z } from 'zod';
import { formatIssues } from '../../protocol/messages.js';
import {
  CameraSchema, CitySchema, DistrictSchema, SchoolSchema, TownshipSchema, SiteSchema, UserSchema, PasswordHash, type OrgConfig,
} from '../config/schema.js';
import type { Sql } from './sql.js';
import { j, type Row } from './rows.js';
import type { AuditLog } from './audit.js';
import type { Scopes } from './scope.js';
import { siteRecord } from './sites.js';
import { publicUser, type UserRows } from './users.js';
import { syncUserSites, writeUserSites } from './user-sites.js';
import { CoreError, type OrgApi, type OrgKind, type OrgRecords, type UserRecord } from './types.js';

function parseOr<T extends z.ZodType>(schema: T, data: unknown, what: string): z.infer<T> {
  const r = schema.safeParse(data);
  if (!r.success) {
    const first = r.error.issues[0];
    throw new CoreError('invalid', `${what}: ${formatIssues(r.error.issues)}`, first ? first.path.map(String).join('.') : undefined);
  }
  return r.data;
}

// The upserts both writers share. A site's broker password is kept when the admin API's input leaves
// it out; the config always sets it.
const UPSERT = {
  cities: 'INSERT INTO cities (id, name, webhooks) VALUES (?, ?, ?) ON CONFLICT(id) DO UPDATE SET name = excluded.name, webhooks = excluded.webhooks',
  districts: 'INSERT INTO districts (id, name, webhooks, city_id) VALUES (?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET name = excluded.name, webhooks = excluded.webhooks, city_id = excluded.city_id',
  townships: 'INSERT INTO townships (id, name, district_id, webhooks) VALUES (?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET name = excluded.name, district_id = excluded.district_id, webhooks = excluded.webhooks',
  schools: 'INSERT INTO schools (id, name, district_id, township_id) VALUES (?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET name = excluded.name, district_id = excluded.district_id, township_id = excluded.township_id',
  cameras: 'INSERT INTO cameras (site_id, id, name, live_url) VALUES (?, ?, ?, ?) ON CONFLICT(site_id, id) DO UPDATE SET name = excluded.name, live_url = excluded.live_url',
  sites: (keepHash: boolean) => `INSERT INTO sites (id, name, school_id, mqtt_password_hash, auto_reminder) VALUES (?, ?, ?, ?, ?)
    ON CONFLICT(id) DO UPDATE SET name = excluded.name, school_id = excluded.school_id, auto_reminder = excluded.auto_reminder
    ${keepHash ? '' : ', mqtt_password_hash = excluded.mqtt_password_hash'}`,
};

/** Writes the config's organisation (YAML → DB): inserts and updates, never deletes. */
export async function syncOrg(sql: Sql, org: OrgConfig): Promise<void> {
  await sql.tx(async () => {
    for (const x of org.cities) await sql.run(UPSERT.cities, [x.id, x.name, JSON.stringify(x.webhooks)]);
    for (const x of org.districts) await sql.run(UPSERT.districts, [x.id, x.name, JSON.stringify(x.webhooks), x.cityId ?? null]);
    for (const x of org.townships) await sql.run(UPSERT.townships, [x.id, x.name, x.districtId, JSON.stringify(x.webhooks)]);
    for (const x of org.schools) await sql.run(UPSERT.schools, [x.id, x.name, x.districtId, x.townshipId ?? null]);
    for (const x of org.sites) {
      await sql.run(UPSERT.sites(false), [x.id, x.name, x.schoolId, x.mqttPasswordHash ?? null, x.autoReminder ? JSON.stringify(x.autoReminder) : null]);
      for (const cam of x.cameras) await sql.run(UPSERT.cameras, [x.id, cam.id, cam.name, cam.liveUrl ?? null]);
    }
    // the config has no `disabled`: it stays as the admin API set it
    const u = (...p: unknown[]) => sql.run(`INSERT INTO users (id, username, name, role, site_ids, school_id, district_id, password_hash, mqtt_password_hash, lang, township_id, city_id)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
      ON CONFLICT(id) DO UPDATE SET username = excluded.username, name = excluded.name, role = excluded.role, site_ids = excluded.site_ids,
        school_id = excluded.school_id, district_id = excluded.district_id, password_hash = excluded.password_hash,
        mqtt_password_hash = excluded.mqtt_password_hash, lang = excluded.lang, township_id = excluded.township_id, city_id = excluded.city_id`, p);
    for (const x of org.users) {
      await u(x.id, x.username, x.name, x.role, JSON.stringify(x.siteIds ?? []), x.schoolId ?? null, x.districtId ?? null,
        x.passwordHash, x.mqttPasswordHash ?? null, x.lang, x.townshipId ?? null, x.cityId ?? null);
    }
    await syncUserSites(sql, org.users.map((x) => ({ id: x.id, siteIds: x.siteIds ?? [] })));
  });
  // PostgreSQL plans by its statistics, which a freshly loaded table lacks until autovacuum gets to
  // it: meanwhile it guessed "few managers" and scanned every user per event (twice the old cost).
  if (sql.dialect.name === 'postgres') await sql.exec('ANALYZE users, user_sites');
}

/** Org CRUD for the admin API: admin only, validated, audit-logged, refuses dangling references. */
export function orgApi(sql: Sql, { users, scopes, auditLog }: { users: UserRows; scopes: Scopes; auditLog: AuditLog }): OrgApi {
  const requireAdmin = (u: UserRecord) => { if (u.role !== 'admin') throw new CoreError('forbidden', 'only admins edit the organisation'); };
  const camKey = (id: string) => {
    const i = id.indexOf('/');
    if (i < 0) throw new CoreError('invalid', `camera id must be "<siteId>/<cameraId>" (got "${id}")`);
    return [id.slice(0, i), id.slice(i + 1)] as const;
  };
  const listers: { [K in OrgKind]: () => Promise<OrgRecords[K][]> } = {
    cities: async () => ((await sql.all('SELECT * FROM cities ORDER BY id')) as Row[]).map((r) => ({ id: r.id as string, name: r.name as string, webhooks: j(r.webhooks, []) })),
    townships: async () => ((await sql.all('SELECT * FROM townships ORDER BY id')) as Row[]).map((r) => ({ id: r.id as string, name: r.name as string, districtId: r.district_id as string, webhooks: j(r.webhooks, []) })),
    districts: async () => ((await sql.all('SELECT * FROM districts ORDER BY id')) as Row[]).map((r) => ({ id: r.id as string, name: r.name as string, webhooks: j(r.webhooks, []), ...(r.city_id ? { cityId: r.city_id as string } : {}) })),
    schools: async () => ((await sql.all('SELECT id, name, district_id, township_id FROM schools ORDER BY id')) as Row[])
      .map((r) => ({ id: r.id as string, name: r.name as string, districtId: r.district_id as string, ...(r.township_id ? { townshipId: r.township_id as string } : {}) })),
    sites: async () => ((await sql.all('SELECT * FROM sites ORDER BY id')) as Row[]).map((r) => siteRecord(r)),
    cameras: async () => ((await sql.all('SELECT site_id, id, name, live_url FROM cameras ORDER BY site_id, id')) as Row[]).map((r) => ({ siteId: r.site_id as string, id: r.id as string, name: r.name as string, liveUrl: (r.live_url as string) ?? null })),
    users: async () => (await users.allUsersWithSecrets()).map((u) => publicUser(u)),
  };
  const get = async <K extends OrgKind>(kind: K, id: string): Promise<OrgRecords[K] | null> => {
    if (kind === 'cameras') {
      const [s, c] = camKey(id);
      return ((await listers.cameras()).find((x) => x.siteId === s && x.id === c) ?? null) as OrgRecords[K] | null;
    }
    return (((await listers[kind]()) as { id: string }[]).find((x) => x.id === id) ?? null) as OrgRecords[K] | null;
  };
  const must = (ok: boolean, msg: string, field: string) => { if (!ok) throw new CoreError('invalid', msg, field); };
  const exists = async (table: 'cities' | 'districts' | 'townships', id: string) => !!(await sql.get(`SELECT 1 FROM ${table} WHERE id = ?`, [id]));
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
        await sql.run(UPSERT.cities, [x.id, x.name, JSON.stringify(x.webhooks)]);
        return x.id;
      }
      case 'townships': {
        const x = parseOr(TownshipSchema, input, 'township');
        if (existingId && x.id !== existingId) throw new CoreError('invalid', 'the id cannot change', 'id');
        must(await exists('districts', x.districtId), `no district "${x.districtId}"`, 'districtId');
        // a school's township must lie in the school's district (checked on the school side too)
        if (existingId) must(!(await sql.get('SELECT 1 FROM schools WHERE township_id = ? AND district_id != ?', [x.id, x.districtId])), `township "${x.id}" has schools outside district "${x.districtId}"`, 'districtId');
        await sql.run(UPSERT.townships, [x.id, x.name, x.districtId, JSON.stringify(x.webhooks)]);
        return x.id;
      }
      case 'districts': {
        const x = parseOr(DistrictSchema, dropNulls(input, ['cityId']), 'district');
        if (existingId && x.id !== existingId) throw new CoreError('invalid', 'the id cannot change', 'id');
        if (x.cityId) must(await exists('cities', x.cityId), `no city "${x.cityId}"`, 'cityId');
        await sql.run(UPSERT.districts, [x.id, x.name, JSON.stringify(x.webhooks), x.cityId ?? null]);
        return x.id;
      }
      case 'schools': {
        const x = parseOr(SchoolSchema, dropNulls(input, ['townshipId']), 'school');
        if (existingId && x.id !== existingId) throw new CoreError('invalid', 'the id cannot change', 'id');
        must(await exists('districts', x.districtId), `no district "${x.districtId}"`, 'districtId');
        if (x.townshipId) {
          const t = (await sql.value('SELECT district_id FROM townships WHERE id = ?', [x.townshipId])) as string | undefined;
          must(t === x.districtId, t ? `township "${x.townshipId}" is in district "${t}", not "${x.districtId}"` : `no township "${x.townshipId}"`, 'townshipId');
        }
        await sql.run(UPSERT.schools, [x.id, x.name, x.districtId, x.townshipId ?? null]);
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
        if (await users.userForMqtt(x.id)) throw new CoreError('invalid', `site id "${x.id}" collides with a user's id or username (both log in to the broker)`, 'id');
        await sql.run(UPSERT.sites(!!keepHash), [x.id, x.name, x.schoolId, x.mqttPasswordHash ?? null, x.autoReminder ? JSON.stringify(x.autoReminder) : null]);
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
        await sql.run(UPSERT.cameras, [siteId, x.id, x.name, x.liveUrl ?? null]);
        return key;
      }
      case 'users': {
        const raw = dropNulls(input, ['mqttPasswordHash', 'schoolId', 'districtId', 'townshipId', 'cityId']);
        const old = existingId ? (await users.allUsersWithSecrets()).find((u) => u.id === existingId) : undefined;
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
        if (await scopes.siteExists(x.id) || await scopes.siteExists(x.username)) throw new CoreError('invalid', `"${x.username}" collides with a site id (both log in to the broker)`, 'username');
        const clash = (await sql.get('SELECT id FROM users WHERE username = ? AND id != ?', [x.username, x.id]));
        if (clash) throw new CoreError('conflict', `username "${x.username}" is taken`, 'username');
        await sql.run(`INSERT INTO users (id, username, name, role, site_ids, school_id, district_id, password_hash, mqtt_password_hash, lang, disabled, township_id, city_id)
          VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET username = excluded.username, name = excluded.name, role = excluded.role,
          site_ids = excluded.site_ids, school_id = excluded.school_id, district_id = excluded.district_id, password_hash = excluded.password_hash,
          mqtt_password_hash = excluded.mqtt_password_hash, lang = excluded.lang, disabled = excluded.disabled,
          township_id = excluded.township_id, city_id = excluded.city_id`, [x.id, x.username, x.name, x.role, JSON.stringify(x.siteIds ?? []), x.schoolId ?? null, x.districtId ?? null, x.passwordHash, x.mqttPasswordHash ?? null, x.lang, disabled ? 1 : 0,
            x.townshipId ?? null, x.cityId ?? null]);
        await writeUserSites(sql, x.id, x.siteIds ?? []);
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
      return sql.tx(async () => {
        const id = kind === 'cameras' ? `${(input as { siteId?: string }).siteId}/${(input as { id?: string }).id}` : (input as { id?: string }).id;
        if (typeof id === 'string' && await get(kind, id)) throw new CoreError('conflict', `${kind} "${id}" exists`, 'id');
        const key = await write(kind, input, null);
        await auditLog.audit({ userId: actor.id, action: `org.${kind}.create`, target: key });
        return (await get(kind, key))!;
      });
    },
    async update(actor, kind, id, input) {
      requireAdmin(actor);
      return sql.tx(async () => {
        if (!await get(kind, id)) throw new CoreError('not_found', `no ${kind} "${id}"`);
        const key = await write(kind, input, id);
        await auditLog.audit({ userId: actor.id, action: `org.${kind}.update`, target: key });
        return (await get(kind, key))!;
      });
    },
    async remove(actor, kind, id) {
      requireAdmin(actor);
      await sql.tx(async () => {
        if (!await get(kind, id)) throw new CoreError('not_found', `no ${kind} "${id}"`);
        for (const [q, what] of blockers[kind] ?? []) {
          if (await sql.get(q, [id])) throw new CoreError('conflict', `${kind === 'cities' ? 'city' : kind.slice(0, -1)} "${id}" ${what}`);
        }
        if (kind === 'users' && id === actor.id) throw new CoreError('conflict', 'you cannot delete yourself');
        if (kind === 'cameras') {
          const [s, c] = camKey(id);
          await sql.run('DELETE FROM cameras WHERE site_id = ? AND id = ?', [s, c]);
        } else {
          if (kind === 'sites') (await sql.run('DELETE FROM cameras WHERE site_id = ?', [id]));
          if (kind === 'users') await writeUserSites(sql, id, []); // its rows reference it
          await sql.run(`DELETE FROM ${kind} WHERE id = ?`, [id]);
        }
        await auditLog.audit({ userId: actor.id, action: `org.${kind}.delete`, target: id });
      });
    },
  };
}

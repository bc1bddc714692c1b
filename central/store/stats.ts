/** The dashboard's statistics over the scope's events: per day, site and kind; time to acknowledge; per office. */
import type { ViolationKind } from '../../protocol/violations.js';
import type { Sql } from './sql.js';
import { now, type Row } from './rows.js';
import { scopeSql } from './scope.js';
import type { OfficeLevel, Scope, StatsView } from './types.js';

export class EventStats {
  constructor(private readonly sql: Sql) {}

  /** Days are the sites' days (`timeZone`), not the server's: counted per hour in SQL, the hours put in days here. */
  async stats(scope: Scope, range: { from?: number; to?: number } = {}, timeZone = 'Asia/Shanghai'): Promise<StatsView> {
    const sc = scopeSql(this.sql, scope, 'site_id');
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
    const sc = scopeSql(this.sql, scope, 'si.id');
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
}

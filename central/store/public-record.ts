/**
 * A site's month record for its public window (社会公众): what the canteen did about its alerts, with
 * nothing that names or describes a person. The store holds one (`store.publicRecords`) next to its
 * other concerns; only counts, kinds, times and states leave this file — never user ids or names,
 * notes, camera ids or URLs.
 */
import type { ViolationKind } from '../../protocol/violations.js';
import type { Sql } from './sql.js';

export interface PublicMonthRecord {
  /** "YYYY-MM" in the sites' time zone. */
  month: string;
  from: number;
  to: number;
  total: number;
  /** Rectified (or rectified and closed by an inspector). */
  rectified: number;
  /** Open, acknowledged or reopened. */
  open: number;
  /** Open past the rectification deadline. */
  overdue: number;
  byKind: { kind: ViolationKind; count: number; rectified: number }[];
  /** Raised → first rectification, over the month's rectified alerts. */
  timeToRectify: { count: number; medianSec: number | null; p90Sec: number | null };
  /** The month's latest alerts, newest first. `image` is the annotated snapshot's hash, only when the site publishes pictures. */
  recent: { kind: ViolationKind; raisedAt: number; state: 'rectified' | 'open'; overdue: boolean; rectifiedAfterSec: number | null; image: string | null }[];
}

const RECTIFIED = `('rectified', 'closed')`;

/** Start (ms) of the month containing `at` in `timeZone`, and the "YYYY-MM" label. */
export function monthStart(at: number, timeZone: string): { start: number; label: string } {
  const parts = (ms: number) => Object.fromEntries(new Intl.DateTimeFormat('en-US', {
    timeZone, hourCycle: 'h23', year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit',
  }).formatToParts(ms).filter((p) => p.type !== 'literal').map((p) => [p.type, Number(p.value)])) as Record<string, number>;
  const now = parts(at);
  const guess = Date.UTC(now.year!, now.month! - 1, 1);
  // The zone's offset at that wall time, applied twice: right across a DST change at midnight too.
  const offsetAt = (ms: number) => { const w = parts(ms); return Date.UTC(w.year!, w.month! - 1, w.day!, w.hour!, w.minute!, w.second!) - ms; };
  let start = guess - offsetAt(guess);
  start = guess - offsetAt(start);
  return { start, label: `${now.year}-${String(now.month).padStart(2, '0')}` };
}

function quantile(sorted: number[], q: number): number | null {
  if (!sorted.length) return null;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}

/**
 * The record of the month containing `at`. Experimental-model alerts are left out: they are not yet
 * trusted enough to be shown to the public as the canteen's violations.
 */
async function publicMonthRecord(sql: Sql, siteId: string, opts: { at?: number; timeZone: string; images: boolean; recent?: number }): Promise<PublicMonthRecord> {
  const at = opts.at ?? Date.now();
  const { start, label } = monthStart(at, opts.timeZone);
  const base = `FROM events e WHERE e.site_id = ? AND e.experimental = 0 AND e.raised_at >= ? AND e.raised_at < ?`;
  const args = [siteId, start, at + 1] as const;
  const kinds = (await sql.all(`SELECT e.kind, COUNT(*) AS count, SUM(CASE WHEN e.status IN ${RECTIFIED} THEN 1 ELSE 0 END) AS rectified ${base} GROUP BY e.kind ORDER BY count DESC, e.kind`, [...args])) as { kind: ViolationKind; count: number; rectified: number }[];
  const overdue = (await sql.value(`SELECT COUNT(*) ${base} AND e.status NOT IN ${RECTIFIED} AND e.deadline_at < ?`, [...args, at])) as number;
  const firstFix = `(SELECT MIN(r.at) FROM rectifications r WHERE r.event_id = e.id)`;
  const durations = ((await sql.values(`SELECT ${firstFix} - e.raised_at AS ms ${base} AND e.status IN ${RECTIFIED} AND ${firstFix} IS NOT NULL ORDER BY ms`, [...args])) as number[]).map((ms) => Math.max(0, ms / 1000));
  const recent = ((await sql.all(`SELECT e.kind, e.raised_at, e.status, e.deadline_at, e.snap_annotated, ${firstFix} AS fixed_at ${base}
      ORDER BY e.raised_at DESC, e.id DESC LIMIT ?`, [...args, opts.recent ?? 10])) as
    { kind: ViolationKind; raised_at: number; status: string; deadline_at: number; snap_annotated: string; fixed_at: number | null }[])
    .map((r) => {
      const fixed = r.status === 'rectified' || r.status === 'closed';
      return {
        kind: r.kind, raisedAt: r.raised_at, state: fixed ? 'rectified' as const : 'open' as const,
        overdue: !fixed && r.deadline_at < at,
        rectifiedAfterSec: fixed && r.fixed_at != null ? Math.max(0, Math.round((r.fixed_at - r.raised_at) / 1000)) : null,
        image: opts.images ? r.snap_annotated : null,
      };
    });
  const total = kinds.reduce((n, k) => n + k.count, 0);
  const rectified = kinds.reduce((n, k) => n + k.rectified, 0);
  return {
    month: label, from: start, to: at, total, rectified, open: total - rectified, overdue,
    byKind: kinds.map((k) => ({ kind: k.kind, count: k.count, rectified: k.rectified })),
    timeToRectify: { count: durations.length, medianSec: quantile(durations, 0.5), p90Sec: quantile(durations, 0.9) },
    recent,
  };
}

/**
 * Is this snapshot one the site's public window may show: the annotated picture of one of the site's
 * alerts (not experimental) raised since `since`, whose bytes arrived?
 */
async function publicViolationImage(sql: Sql, siteId: string, sha256: string, since: number): Promise<boolean> {
  return !!(await sql.get(`SELECT 1 FROM events e JOIN snapshots s ON s.sha256 = e.snap_annotated
    WHERE e.site_id = ? AND e.snap_annotated = ? AND e.experimental = 0 AND e.raised_at >= ? LIMIT 1`, [siteId, sha256, since]));
}

/** The clean snapshot of the site's latest alert (from `cameraId` when given) whose bytes arrived, for the still's fallback. */
async function latestCleanSnapshot(sql: Sql, siteId: string, cameraId?: string): Promise<{ sha256: string; raisedAt: number } | null> {
  const r = (await sql.get(`SELECT e.snap_clean AS sha256, e.raised_at AS "raisedAt" FROM events e JOIN snapshots s ON s.sha256 = e.snap_clean
    WHERE e.site_id = ? AND e.experimental = 0 ${cameraId ? 'AND e.camera_id = ?' : ''} ORDER BY e.raised_at DESC LIMIT 1`, [...(cameraId ? [siteId, cameraId] : [siteId])])) as { sha256: string; raisedAt: number } | undefined;
  return r ?? null;
}

/** The public window's queries over the store's database. */
export class PublicRecords {
  constructor(private readonly sql: Sql) {}

  monthRecord(siteId: string, opts: { at?: number; timeZone: string; images: boolean; recent?: number }): Promise<PublicMonthRecord> {
    return publicMonthRecord(this.sql, siteId, opts);
  }

  violationImage(siteId: string, sha256: string, since: number): Promise<boolean> {
    return publicViolationImage(this.sql, siteId, sha256, since);
  }

  latestCleanSnapshot(siteId: string, cameraId?: string): Promise<{ sha256: string; raisedAt: number } | null> {
    return latestCleanSnapshot(this.sql, siteId, cameraId);
  }
}

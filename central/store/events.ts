/**
 * Events: stored once per id as agents raise them, listed and shown within a user's scope, and moved
 * through their statuses (open → acknowledged → rectified → closed, or reopened) by the users they
 * concern; escalation state for the router.
 */
import type { EventMessage } from '../../protocol/messages.js';
import { VIOLATION_TEXT, type ViolationKind, type Severity } from '../../protocol/violations.js';
import type { Sql } from './sql.js';
import { ClipStore, clipView } from './clips.js';
import { j, now, type Row } from './rows.js';
import { scopeSql, type Scopes } from './scope.js';
import type { AuditLog } from './audit.js';
import type { DeliveryRows } from './deliveries.js';
import { checkPhoto, type Rectifications } from './rectifications.js';
import {
  CoreError, type EventDetail, type EventFilter, type EventStatus, type EventView, type HistoryEntry, type RectifyInput, type Scope, type UserRecord,
} from './types.js';

export interface EventRow {
  id: string; site_id: string; camera_id: string; camera_name: string; kind: ViolationKind; severity: Severity;
  rule_id: string; label: string; score: number; box: string; zone: string | null; raised_at: number; received_at: number;
  snap_annotated: string; snap_clean: string; experimental: number; status: EventStatus; deadline_at: number;
  ack_by: string | null; ack_at: number | null; escalation_level: number; next_escalation_at: number | null;
  site_name: string | null; ack_by_name: string | null; snap_received: number;
}

export class EventRows {
  // The clip's columns come along so that an event's view needs no query of its own.
  private readonly eventSelect = `SELECT e.*, s.name AS site_name, ua.name AS ack_by_name,
      EXISTS (SELECT 1 FROM snapshots WHERE sha256 = e.snap_annotated) AS snap_received,
      ${ClipStore.columns('cl', 'e.id')}
    FROM events e LEFT JOIN sites s ON s.id = e.site_id LEFT JOIN users ua ON ua.id = e.ack_by LEFT JOIN clips cl ON cl.event_id = e.id`;

  constructor(
    private readonly sql: Sql,
    private readonly scopes: Scopes,
    private readonly auditLog: AuditLog,
    private readonly deliveryRows: DeliveryRows,
    private readonly rectifications: Rectifications,
    /** Called with the new view after acknowledge / rectify / review. */
    private readonly onChanged: (e: EventView) => void,
  ) {}

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
    const sc = scopeSql(this.sql, scope, 'e.site_id');
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
    if (!r || !await this.scopes.siteInScope(scope, r.site_id)) return null;
    return {
      ...this.eventView(r),
      deliveries: await this.deliveryRows.deliveries(eventId),
      rectifications: await this.rectifications.ofEvent(eventId),
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
    if (!r || !await this.scopes.siteInScope(await this.scopes.scopeOf(user), r.site_id)) throw new CoreError('not_found', `no event "${eventId}"`);
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
      await this.auditLog.audit({ userId: user.id, action: 'event.ack', target: eventId, detail: note ?? null, ip: meta?.ip, siteId: r.site_id });
    });
    return await this.changed(eventId);
  }

  async rectify(user: UserRecord, eventId: string, input: RectifyInput, meta?: { ip?: string }): Promise<EventView> {
    const note = (input.note ?? '').trim();
    if (!note) throw new CoreError('invalid', 'a rectification needs a note describing what was done', 'note');
    if (note.length > 2000) throw new CoreError('invalid', 'note: at most 2000 characters', 'note');
    let photo: { sha: string; mime: string } | null = null;
    if (input.photo) {
      const mime = checkPhoto(input.photo);
      await this.scopedEvent(user, eventId); // not_found before spending a decode on someone else's event
      photo = await this.rectifications.savePhoto(input.photo.bytes, mime);
    }
    const t = now();
    await this.sql.tx(async () => {
      const r = await this.scopedEvent(user, eventId);
      if (r.status === 'rectified' || r.status === 'closed') throw new CoreError('conflict', `event "${eventId}" is already ${r.status}`);
      await this.transition(eventId, r.status, `status = 'rectified', ack_by = COALESCE(ack_by, ?), ack_at = COALESCE(ack_at, ?), next_escalation_at = NULL`, [user.id, t]);
      await this.rectifications.insert(eventId, user.id, t, note, photo);
      await this.history(eventId, 'rectified', user.id, t, note);
      await this.auditLog.audit({ userId: user.id, action: 'event.rectify', target: eventId, detail: photo ? `photo ${photo.sha}` : null, ip: meta?.ip, siteId: r.site_id });
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
      await this.auditLog.audit({ userId: user.id, action: `event.${decision}`, target: eventId, detail: note ?? null, ip: meta?.ip, siteId: r.site_id });
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
    this.onChanged(v);
    return v;
  }

  async overdue(scope: Scope): Promise<EventView[]> {
    const sc = scopeSql(this.sql, scope, 'e.site_id');
    const t = now();
    return ((await this.sql.all(`${this.eventSelect} WHERE ${sc.sql} AND e.status NOT IN ('rectified', 'closed') AND e.deadline_at < ? ORDER BY e.deadline_at LIMIT 1000`, [...sc.params, t])) as EventRow[]).map((r) => this.eventView(r, t));
  }

  // escalation state (central/route)
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
}

/**
 * Deliveries: one row per recipient, channel and escalation level of an event, sent by the notifier;
 * with several instances on one database a row is sent by the instance holding its lease.
 */
import type { Sql } from './sql.js';
import { now } from './rows.js';
import type { DeliveryChannel, DeliveryStatus, DeliveryView } from './types.js';

export interface DeliveryRow {
  id: number; event_id: string; recipient_id: string; recipient_name: string; role: string; channel: DeliveryChannel;
  target: string | null; level: number; status: DeliveryStatus; attempts: number; last_error: string | null;
  next_attempt_at: number | null; created_at: number; delivered_at: number | null;
  claimed_by: string | null; claimed_until: number | null;
}

export class DeliveryRows {
  constructor(private readonly sql: Sql) {}

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
  /** Ends this instance's leases (it stops): another instance may send those rows at once. */
  async releaseDeliveries(instance: string): Promise<void> {
    await this.sql.run(`UPDATE deliveries SET claimed_by = NULL, claimed_until = NULL WHERE claimed_by = ? AND status IN ('pending', 'retrying')`, [instance]);
  }
  /**
   * Leases these deliveries (still to do, and not leased by another instance now) to `instance` until
   * `until`, and returns the rows it got: with several instances on one database exactly one sends
   * each; a lease that runs out (its instance died) lets another take the row.
   */
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
  /** Deliveries by channel and status (metrics). */
  async deliveryCounts(): Promise<{ channel: string; status: string; n: number }[]> {
    return (await this.sql.all('SELECT channel, status, COUNT(*) AS n FROM deliveries GROUP BY channel, status')) as { channel: string; status: string; n: number }[];
  }
}

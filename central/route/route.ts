/**
 * Routing by severity tier. Levels: 0 = canteen manager, 1 = vice-principal, then the offices above
 * the school, nearest first (SiteContext.offices): 2 = its township office (or its district when it
 * has none), 3 = the district or county, 4 = the city — as many levels as the site has offices.
 * Tier mode "all": every level at once (level 0) up to the district; the city is reached only by
 * escalation (its inspectors see the whole city's overdue list anyway). Mode "escalate": level 0
 * first; when nobody has acknowledged after `viceAfterMin` the vice-principal, after
 * `inspectorAfterMin` more the first office, and one office higher every `inspectorAfterMin` after.
 * The next escalation time lives in the events table, so a restart keeps the schedule; an
 * acknowledgement (or rectification) clears it.
 */
import { childLog } from '../../common/log.js';
import type { EventMessage } from '../../protocol/messages.js';
import type { Severity } from '../../protocol/violations.js';
import type { CentralConfig, Role, TierConfig } from '../config/schema.js';
import type { Notifier } from '../notify/notifier.js';
import type { EventRow, Store } from '../store/store.js';
import type { EventView, OfficeRecord, UserRecord } from '../store/types.js';
import { Ticker } from '../ticker.js';

const log = childLog({ mod: 'central.route' });
const LEVEL_ROLES: Role[][] = [['canteen_manager'], ['vice_principal']];
/** The first office level. */
const OFFICE_LEVEL = 2;

export class Router {
  readonly counters = { routed: 0, escalations: 0 };
  private readonly ticker = new Ticker('escalation check', () => this.checkEscalations(), log);

  constructor(private readonly d: { store: Store; notifier: Notifier; config: CentralConfig }) {}

  tier(severity: Severity): TierConfig {
    const r = this.d.config.routing;
    return severity === 1 ? r.tier1 : severity === 2 ? r.tier2 : r.tier3;
  }

  /** Deadline and first escalation time for a new event. */
  insertOpts(m: EventMessage, now = Date.now()): { receivedAt: number; deadlineAt: number; nextEscalationAt: number | null } {
    const tier = this.tier(m.severity);
    return {
      receivedAt: now,
      deadlineAt: m.raisedAt + tier.rectifyWithinHours * 3_600_000,
      nextEscalationAt: tier.mode === 'escalate' ? now + tier.viceAfterMin * 60_000 : null,
    };
  }

  /** The site's offices, nearest first (level OFFICE_LEVEL + i). */
  private async offices(siteId: string): Promise<OfficeRecord[]> {
    return (await this.d.store.siteContext(siteId))?.offices ?? [];
  }

  private async maxLevel(siteId: string): Promise<number> {
    return OFFICE_LEVEL + (await this.offices(siteId)).length - 1;
  }

  /**
   * The first alerts of a new event: their delivery rows are written now — inside the caller's
   * transaction when ingest stores the event, so an event is never stored without its first
   * alerts — and the returned function sends them once that transaction committed.
   */
  async planNew(eventId: string): Promise<() => void> {
    const { store, notifier } = this.d;
    const e = await store.eventById(eventId);
    if (!e) return () => {};
    this.counters.routed++;
    const tier = this.tier(e.severity);
    const offices = await this.offices(e.siteId);
    // mode "all": every level at once, up to the district; "escalate": the manager first
    const upTo = tier.mode === 'all' ? OFFICE_LEVEL + Math.max(0, offices.findIndex((o) => o.level === 'district')) : 0;
    const { users, robots } = await this.audience(e, Array.from({ length: upTo + 1 }, (_, i) => i), 0, tier);
    const plan = await notifier.record(e, users, robots, 0);
    return () => {
      notifier.dispatch(plan);
      // Nobody at level 0 (no manager configured): go up now rather than wait for nobody.
      if (tier.mode === 'escalate' && !users.length) {
        store.eventRow(eventId).then((row) => row && this.escalate(row))
          .catch((err: Error) => log.error({ eventId, err: err.message }, 'escalation failed; the timer tries again'));
      }
    };
  }

  /** Who a step reaches: the users at these levels, and the offices whose robots get it. */
  private async audience(e: EventView, levels: number[], level: number, tier: TierConfig): Promise<{ users: UserRecord[]; robots: OfficeRecord[] }> {
    const { store } = this.d;
    const offices = await this.offices(e.siteId);
    const reached = levels.filter((l) => l >= OFFICE_LEVEL).map((l) => offices[l - OFFICE_LEVEL]).filter((o): o is OfficeRecord => !!o);
    const users: UserRecord[] = [
      ...(await store.recipients(e.siteId, levels.filter((l) => l < OFFICE_LEVEL).flatMap((l) => LEVEL_ROLES[l]!))),
      ...(await Promise.all(reached.map((o) => store.officeInspectors(o)))).flat(),
    ];
    // Robots: "immediate" posts to the first office's group at once; "on_inspector" to each office as it is reached.
    const robots = tier.webhook === 'immediate' && level === 0 ? [offices[0], ...reached.slice(1)] : tier.webhook === 'on_inspector' ? reached : [];
    if (!users.length) log.warn({ eventId: e.id, siteId: e.siteId, levels }, 'no recipients configured at this level');
    return { users, robots: [...new Set(robots)].filter((o): o is OfficeRecord => !!o) };
  }

  /** Returns how many users were alerted. */
  private async alertLevel(e: EventView, levels: number[], level: number, tier: TierConfig): Promise<number> {
    const { users, robots } = await this.audience(e, levels, level, tier);
    this.d.notifier.dispatch(await this.d.notifier.record(e, users, robots, level));
    return users.length;
  }

  /**
   * Move one event up a level. The step (a compare-and-set on the level, so two instances never both
   * take it), its history entry and its delivery rows commit together: an instance killed after the
   * commit leaves pending deliveries that another instance sends; killed before, the step is still due.
   */
  private async escalate(row: EventRow): Promise<void> {
    const { store, notifier } = this.d;
    const tier = this.tier(row.severity);
    const from = row.escalation_level;
    const max = await this.maxLevel(row.site_id);
    if (from >= max) { await store.setEscalation(row.id, from, from, null); return; }
    const level = from + 1;
    const nextAt = level < max ? Date.now() + tier.inspectorAfterMin * 60_000 : null;
    const e = (await store.eventById(row.id))!;
    const office = (await this.offices(row.site_id))[level - OFFICE_LEVEL];
    const { users, robots } = await this.audience(e, [level], level, tier);
    const plan = await store.sql.tx(async () => {
      if (!(await store.setEscalation(row.id, from, level, nextAt))) return null;
      await store.noteEscalation(row.id, level, office ? `${office.level} ${office.name}` : LEVEL_ROLES[level]!.join(','));
      return notifier.record(e, users, robots, level);
    });
    if (!plan) return;
    this.counters.escalations++;
    log.info({ eventId: row.id, level, office: office?.id }, 'event escalated (not acknowledged in time)');
    notifier.dispatch(plan);
    if (!users.length && level < max) await this.escalate((await store.eventRow(row.id))!);
  }

  /** One pass over events whose escalation time has come. */
  async checkEscalations(now = Date.now()): Promise<void> {
    for (const row of await this.d.store.dueEscalations(now)) {
      try { await this.escalate(row); } catch (err) { log.error({ eventId: row.id, err: (err as Error).message }, 'escalation failed'); }
    }
  }

  start(): void {
    const every = this.d.config.routing.checkIntervalSec * 1000;
    this.ticker.start(every, { firstMs: Math.min(every, 1000) });
  }
  /** Waits for a check in progress (it writes to the store). */
  stop(): Promise<void> {
    return this.ticker.stop();
  }
}

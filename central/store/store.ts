/**
 * Central's store (SQLite or PostgreSQL): the query / mutation functions the HTTP layer uses
 * (CentralStore) plus the internal ones ingest, routing, notification and voice use. A facade: each
 * concern is its own module (scope, users, sites, org, events, stats, rectifications, deliveries,
 * snapshots, audit, voice; clips, sessions, public records), and Store wires them together and keeps
 * the one object callers hold.
 */
import type { OrgConfig } from '../config/schema.js';
import type { Sql } from './sql.js';
import { ClipStore } from './clips.js';
import { SessionRows } from './sessions.js';
import { PublicRecords } from './public-record.js';
import { AuditLog } from './audit.js';
import { DeliveryRows } from './deliveries.js';
import { EventRows } from './events.js';
import { orgApi, syncOrg } from './org.js';
import { Rectifications } from './rectifications.js';
import { Scopes } from './scope.js';
import { SiteRows } from './sites.js';
import { SnapshotFiles } from './snapshots.js';
import { EventStats } from './stats.js';
import { UserRows } from './users.js';
import { VoiceRows } from './voice.js';
import type { CentralStore, EventView, OrgApi } from './types.js';

// What callers import from here.
export type { EventRow } from './events.js';
export type { DeliveryRow } from './deliveries.js';
export type { SiteContext } from './types.js';
export { isJpeg } from './snapshots.js';
export { sha256Hex } from './rows.js';

export class Store implements CentralStore {
  readonly org: OrgApi;
  /** Event clips: chunks, manifests, files. */
  readonly clips: ClipStore;
  /** Dashboard sessions and login locks. */
  readonly sessions: SessionRows;
  /** The public window's month records and pictures. */
  readonly publicRecords: PublicRecords;
  /** Called after acknowledge / rectify / review (central wires it to bus 'event'). */
  onEventChanged: ((e: EventView) => void) | null = null;

  private readonly scopes: Scopes;
  private readonly siteRows: SiteRows;
  private readonly userRows: UserRows;
  private readonly auditLog: AuditLog;
  private readonly deliveryRows: DeliveryRows;
  private readonly rectifications: Rectifications;
  private readonly eventRows: EventRows;
  private readonly eventStats: EventStats;
  private readonly snapshots: SnapshotFiles;
  private readonly voice: VoiceRows;

  constructor(
    /** The database (SQLite or PostgreSQL). */
    readonly sql: Sql,
    /** Where snapshots, photos and clips are kept (shared by every instance on one database). */
    readonly dataDir: string,
  ) {
    this.scopes = new Scopes(sql);
    this.siteRows = new SiteRows(sql, this.scopes);
    this.userRows = new UserRows(sql, this.siteRows);
    this.auditLog = new AuditLog(sql, (siteId) => this.siteRows.siteContext(siteId));
    this.deliveryRows = new DeliveryRows(sql);
    this.rectifications = new Rectifications(sql, dataDir, this.scopes);
    // read at each change: central sets onEventChanged after the store is opened
    this.eventRows = new EventRows(sql, this.scopes, this.auditLog, this.deliveryRows, this.rectifications, (e) => this.onEventChanged?.(e));
    this.eventStats = new EventStats(sql);
    this.snapshots = new SnapshotFiles(sql, dataDir, this.scopes);
    this.voice = new VoiceRows(sql, this.auditLog);
    this.org = orgApi(sql, { users: this.userRows, scopes: this.scopes, auditLog: this.auditLog });
    this.clips = new ClipStore(sql, dataDir);
    this.sessions = new SessionRows(sql);
    this.publicRecords = new PublicRecords(sql);
  }

  close(): Promise<void> {
    return this.sql.close();
  }

  // The methods below only forward, so that callers keep one object (and CentralStore one implementer).

  // scope
  scopeOf(...a: Parameters<Scopes['scopeOf']>) { return this.scopes.scopeOf(...a); }
  siteInScope(...a: Parameters<Scopes['siteInScope']>) { return this.scopes.siteInScope(...a); }

  // org
  syncOrg(org: OrgConfig): Promise<void> { return syncOrg(this.sql, org); }

  // users
  userByUsername(...a: Parameters<UserRows['userByUsername']>) { return this.userRows.userByUsername(...a); }
  user(...a: Parameters<UserRows['user']>) { return this.userRows.user(...a); }
  userForMqtt(...a: Parameters<UserRows['userForMqtt']>) { return this.userRows.userForMqtt(...a); }
  allUsersWithSecrets() { return this.userRows.allUsersWithSecrets(); }
  recipients(...a: Parameters<UserRows['recipients']>) { return this.userRows.recipients(...a); }
  officeInspectors(...a: Parameters<UserRows['officeInspectors']>) { return this.userRows.officeInspectors(...a); }

  // sites
  siteContext(...a: Parameters<SiteRows['siteContext']>) { return this.siteRows.siteContext(...a); }
  siteMqttHash(...a: Parameters<SiteRows['siteMqttHash']>) { return this.siteRows.siteMqttHash(...a); }
  cameraExists(...a: Parameters<SiteRows['cameraExists']>) { return this.siteRows.cameraExists(...a); }
  sites(...a: Parameters<SiteRows['sites']>) { return this.siteRows.sites(...a); }
  site(...a: Parameters<SiteRows['site']>) { return this.siteRows.site(...a); }
  siteView(...a: Parameters<SiteRows['siteView']>) { return this.siteRows.siteView(...a); }
  applySiteStatus(...a: Parameters<SiteRows['applySiteStatus']>) { return this.siteRows.applySiteStatus(...a); }
  applyStats(...a: Parameters<SiteRows['applyStats']>) { return this.siteRows.applyStats(...a); }
  applyCameraStatus(...a: Parameters<SiteRows['applyCameraStatus']>) { return this.siteRows.applyCameraStatus(...a); }

  // events
  eventView(...a: Parameters<EventRows['eventView']>) { return this.eventRows.eventView(...a); }
  eventRow(...a: Parameters<EventRows['eventRow']>) { return this.eventRows.eventRow(...a); }
  eventById(...a: Parameters<EventRows['eventById']>) { return this.eventRows.eventById(...a); }
  insertEvent(...a: Parameters<EventRows['insertEvent']>) { return this.eventRows.insertEvent(...a); }
  events(...a: Parameters<EventRows['events']>) { return this.eventRows.events(...a); }
  event(...a: Parameters<EventRows['event']>) { return this.eventRows.event(...a); }
  acknowledge(...a: Parameters<EventRows['acknowledge']>) { return this.eventRows.acknowledge(...a); }
  rectify(...a: Parameters<EventRows['rectify']>) { return this.eventRows.rectify(...a); }
  review(...a: Parameters<EventRows['review']>) { return this.eventRows.review(...a); }
  overdue(...a: Parameters<EventRows['overdue']>) { return this.eventRows.overdue(...a); }
  dueEscalations(...a: Parameters<EventRows['dueEscalations']>) { return this.eventRows.dueEscalations(...a); }
  setEscalation(...a: Parameters<EventRows['setEscalation']>) { return this.eventRows.setEscalation(...a); }
  noteEscalation(...a: Parameters<EventRows['noteEscalation']>) { return this.eventRows.noteEscalation(...a); }
  stats(...a: Parameters<EventStats['stats']>) { return this.eventStats.stats(...a); }

  // rectification photos, snapshots
  rectificationPhoto(...a: Parameters<Rectifications['rectificationPhoto']>) { return this.rectifications.rectificationPhoto(...a); }
  snapshotPath(...a: Parameters<SnapshotFiles['snapshotPath']>) { return this.snapshots.snapshotPath(...a); }
  saveSnapshot(...a: Parameters<SnapshotFiles['saveSnapshot']>) { return this.snapshots.saveSnapshot(...a); }
  snapshotFile(...a: Parameters<SnapshotFiles['snapshotFile']>) { return this.snapshots.snapshotFile(...a); }

  // deliveries
  addDelivery(...a: Parameters<DeliveryRows['addDelivery']>) { return this.deliveryRows.addDelivery(...a); }
  markDelivery(...a: Parameters<DeliveryRows['markDelivery']>) { return this.deliveryRows.markDelivery(...a); }
  releaseDeliveries(...a: Parameters<DeliveryRows['releaseDeliveries']>) { return this.deliveryRows.releaseDeliveries(...a); }
  claimDeliveries(...a: Parameters<DeliveryRows['claimDeliveries']>) { return this.deliveryRows.claimDeliveries(...a); }
  delivery(...a: Parameters<DeliveryRows['delivery']>) { return this.deliveryRows.delivery(...a); }
  pendingDeliveries(...a: Parameters<DeliveryRows['pendingDeliveries']>) { return this.deliveryRows.pendingDeliveries(...a); }
  deliveries(...a: Parameters<DeliveryRows['deliveries']>) { return this.deliveryRows.deliveries(...a); }
  deliveryCounts() { return this.deliveryRows.deliveryCounts(); }

  // audit, voice
  audit(...a: Parameters<AuditLog['audit']>) { return this.auditLog.audit(...a); }
  auditList(...a: Parameters<AuditLog['auditList']>) { return this.auditLog.auditList(...a); }
  insertVoice(...a: Parameters<VoiceRows['insertVoice']>) { return this.voice.insertVoice(...a); }
  updateVoice(...a: Parameters<VoiceRows['updateVoice']>) { return this.voice.updateVoice(...a); }
  voiceCommands(...a: Parameters<VoiceRows['voiceCommands']>) { return this.voice.voiceCommands(...a); }
}

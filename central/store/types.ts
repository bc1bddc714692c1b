/**
 * Records and the query / mutation interface of central's store. The HTTP layer reads these through
 * the facade (`central/core.ts`); every read takes a `Scope`, every mutation takes the acting user.
 * Failures throw `CoreError` with a code the HTTP layer maps to a status (not_found → 404, …).
 */
import type { ClipView } from './clips.js';
import type { SessionRows } from './sessions.js';
import type { PublicRecords } from './public-record.js';
import type { Role } from '../config/schema.js';
import type { ViolationKind, Severity } from '../../protocol/violations.js';

export type { Role };

export type CoreErrorCode = 'not_found' | 'forbidden' | 'conflict' | 'invalid';
export class CoreError extends Error {
  constructor(
    readonly code: CoreErrorCode,
    message: string,
    /** The request field at fault, when there is one (e.g. "note", "photoBase64"). */
    readonly field?: string,
  ) {
    super(message);
    this.name = 'CoreError';
  }
}

/** What one user may see: admin → everything, others → the site ids listed. */
export interface Scope {
  readonly userId: string;
  readonly role: Role;
  readonly all: boolean;
  readonly siteIds: ReadonlySet<string>;
  /** Districts touched (an inspector's own; for audit visibility). */
  readonly districtIds: ReadonlySet<string>;
}

export interface UserRecord {
  id: string;
  username: string;
  name: string;
  role: Role;
  siteIds: string[];
  schoolId: string | null;
  /** inspector: the one office they belong to (township, district or city). */
  townshipId: string | null;
  districtId: string | null;
  cityId: string | null;
  lang: 'zh' | 'en';
  disabled: boolean;
}
export interface UserWithSecrets extends UserRecord {
  passwordHash: string;
  mqttPasswordHash: string | null;
}

export interface WebhookRecord { type: 'wecom' | 'dingtalk'; url: string; secretEnv?: string }
export interface DistrictRecord { id: string; name: string; webhooks: WebhookRecord[]; cityId?: string }
export interface SchoolRecord { id: string; name: string; districtId: string; townshipId?: string }
export interface CityRecord { id: string; name: string; webhooks: WebhookRecord[] }
export interface TownshipRecord { id: string; name: string; districtId: string; webhooks: WebhookRecord[] }
export type OfficeLevel = 'township' | 'district' | 'city';
/** A supervision office above a school: its township office, its district or county, its city. */
export interface OfficeRecord { level: OfficeLevel; id: string; name: string; webhooks: WebhookRecord[] }
export interface SiteRecord {
  id: string;
  name: string;
  schoolId: string;
  /** Set when the site may log in to the embedded broker; never sent to browsers. */
  hasMqttPassword: boolean;
  autoReminder: Partial<Record<ViolationKind, string>> | null;
}
export interface CameraRecord { siteId: string; id: string; name: string; liveUrl: string | null }

export type CameraState = 'connecting' | 'online' | 'offline' | 'unknown';
export interface CameraView {
  id: string;
  name: string;
  state: CameraState;
  lastFrameAt: number | null;
  fps: number;
  error: string | null;
}
/** GET /api/sites row. */
export interface SiteView {
  id: string;
  name: string;
  schoolId: string;
  schoolName: string;
  districtId: string;
  districtName: string;
  online: boolean;
  lastSeenAt: number | null;
  agentVersion: string | null;
  stats: SiteStatsView | null;
  cameras: CameraView[];
}
export interface SiteStatsView {
  ts: number;
  uptimeSec: number;
  inferencesPerSec: number;
  framesProcessed: number;
  framesDropped: number;
  outboxPending: number;
  eventsRaised: number;
}

export type EventStatus = 'open' | 'acknowledged' | 'rectified' | 'closed' | 'reopened';
/** The API's Event. Snapshot URLs are relative to the HTTP server (`/api/snapshots/<sha256>`). */
export interface EventView {
  id: string;
  siteId: string;
  siteName: string;
  cameraId: string;
  cameraName: string;
  kind: ViolationKind;
  kindText: string;
  kindTextEn: string;
  severity: Severity;
  label: string;
  score: number;
  box: [number, number, number, number];
  zone: string | null;
  raisedAt: number;
  receivedAt: number;
  status: EventStatus;
  deadlineAt: number;
  overdue: boolean;
  /** User id of whoever acknowledged first. */
  ackBy: string | null;
  /** That user's display name (null when not acknowledged, or the user no longer exists). */
  ackByName: string | null;
  ackAt: number | null;
  escalationLevel: number;
  snapshotUrl: string;
  cleanSnapshotUrl: string;
  snapshotSha256: string;
  cleanSnapshotSha256: string;
  /** Whether the snapshot bytes have arrived (a snapshot may follow its event). */
  snapshotReceived: boolean;
  /** The event's video clip, once its manifest arrived (the chunks may still be on their way). */
  clip: ClipView | null;
  experimental: boolean;
}

export type DeliveryChannel = 'mqtt' | 'dashboard' | 'wecom' | 'dingtalk';
export type DeliveryStatus = 'pending' | 'sent' | 'failed' | 'retrying';
export interface DeliveryView {
  id: number;
  recipientId: string;
  recipientName: string;
  role: Role | OfficeLevel;
  channel: DeliveryChannel;
  status: DeliveryStatus;
  attempts: number;
  lastError: string | null;
  deliveredAt: number | null;
  level: number;
  createdAt: number;
}
export interface RectificationView {
  id: number;
  eventId: string;
  by: string;
  byName: string;
  at: number;
  note: string;
  photoSha256: string | null;
  photoMime: string | null;
  /** `/api/rectifications/<id>/photo` when a photo was given. */
  photoUrl: string | null;
}
export interface HistoryEntry {
  action: string;
  /** A user id, or a system actor: 'agent' (the site raised it), 'central' (escalation). */
  by: string;
  /** The user's display name; null when `by` is a system actor or a user that no longer exists. */
  byName: string | null;
  at: number;
  note: string | null;
}
export interface EventDetail extends EventView {
  deliveries: DeliveryView[];
  rectifications: RectificationView[];
  history: HistoryEntry[];
}

export interface EventFilter {
  siteId?: string;
  kind?: ViolationKind;
  status?: EventStatus;
  /** raisedAt >= from (ms). */
  from?: number;
  /** raisedAt < to (ms). */
  to?: number;
  /** Default 50, max 500. */
  limit?: number;
  /** Page: events raised before this time (ms), newest first. */
  before?: number;
}

export interface StatsView {
  perDay: { day: string; siteId: string; kind: ViolationKind; count: number }[];
  timeToAck: { count: number; medianSec: number | null; p90Sec: number | null };
  /** Rolled up by supervision office (township, district, city) over the scope's sites: alerts in the range, overdue now. */
  byOffice: { level: OfficeLevel; id: string; name: string; sites: number; events: number; overdue: number }[];
}

export interface AuditEntry {
  at: number;
  userId: string;
  action: string;
  target: string;
  detail: string | null;
  ip: string | null;
}
export interface AuditInput {
  userId: string;
  action: string;
  target: string;
  detail?: string | null;
  ip?: string | null;
  /** The site the action concerns, so district inspectors see it in their audit view. */
  siteId?: string | null;
}

export type VoiceState = 'sent' | 'played' | 'failed' | 'rejected';
export interface VoiceRecord {
  id: string;
  siteId: string;
  cameraId: string | null;
  type: 'text' | 'preset' | 'audio';
  text: string | null;
  issuedBy: string;
  issuedAt: number;
  state: VoiceState;
  stateAt: number;
  error: string | null;
}

/** GET /api/voice row (and SSE `voice`): the record plus the issuing user's display name. */
export interface VoiceView extends VoiceRecord {
  /** null when the issuer no longer exists (then show `issuedBy`). */
  issuedByName: string | null;
}

export interface RectifyInput {
  note: string;
  photo?: { bytes: Buffer; mime: 'image/jpeg' | 'image/png' };
}

/** Org records the admin edits (PUT replaces, POST creates). Secrets are write-only. */
export interface OrgInput {
  cities: { id: string; name: string; webhooks?: WebhookRecord[] };
  districts: { id: string; name: string; cityId?: string | null; webhooks?: WebhookRecord[] };
  townships: { id: string; name: string; districtId: string; webhooks?: WebhookRecord[] };
  schools: { id: string; name: string; districtId: string; townshipId?: string | null };
  sites: { id: string; name: string; schoolId: string; mqttPasswordHash?: string | null; autoReminder?: Partial<Record<ViolationKind, string>> | null };
  cameras: { siteId: string; id: string; name: string; liveUrl?: string | null };
  users: {
    id: string; username: string; name: string; role: Role;
    siteIds?: string[]; schoolId?: string | null; districtId?: string | null;
    /** inspector: exactly one of townshipId, districtId, cityId. */
    townshipId?: string | null; cityId?: string | null;
    /** A hash (see hashPassword), never a plain password. */
    passwordHash?: string; mqttPasswordHash?: string | null; lang?: 'zh' | 'en'; disabled?: boolean;
  };
}
export interface OrgRecords {
  cities: CityRecord;
  districts: DistrictRecord;
  townships: TownshipRecord;
  schools: SchoolRecord;
  sites: SiteRecord;
  cameras: CameraRecord;
  users: UserRecord;
}
export type OrgKind = keyof OrgRecords;

/** Org CRUD for the admin API. Ids of cameras are "<siteId>/<cameraId>". Every change is audit-logged. */
export interface OrgApi {
  list<K extends OrgKind>(kind: K): Promise<OrgRecords[K][]>;
  get<K extends OrgKind>(kind: K, id: string): Promise<OrgRecords[K] | null>;
  create<K extends OrgKind>(actor: UserRecord, kind: K, input: OrgInput[K]): Promise<OrgRecords[K]>;
  update<K extends OrgKind>(actor: UserRecord, kind: K, id: string, input: OrgInput[K]): Promise<OrgRecords[K]>;
  remove(actor: UserRecord, kind: OrgKind, id: string): Promise<void>;
}

/** The store as the HTTP layer uses it. */
/** A site with the school and the offices above it. */
export interface SiteContext {
  site: SiteRecord;
  school: SchoolRecord;
  district: DistrictRecord;
  /** The offices above the school, nearest first: its township office (if any), district, city (if any). */
  offices: OfficeRecord[];
}

export interface CentralStore {
  /** Event clips (the caller checks the event's scope first). */
  readonly clips: { file(eventId: string): Promise<string | null>; view(eventId: string): Promise<ClipView | null> };
  /** Dashboard sessions and login locks (policy in central/http). */
  readonly sessions: SessionRows;
  /** The public window's month records and pictures (central/store/public-record.ts). */
  readonly publicRecords: PublicRecords;
  // users
  userByUsername(username: string): Promise<UserWithSecrets | null>;
  user(id: string): Promise<UserRecord | null>;
  // sites
  /** The site, its school and offices, or null for an unknown site (not scoped: callers scope). */
  siteContext(siteId: string): Promise<SiteContext | null>;
  sites(scope: Scope): Promise<SiteView[]>;
  site(scope: Scope, siteId: string): Promise<SiteView | null>;
  // events
  events(scope: Scope, filter?: EventFilter): Promise<EventView[]>;
  event(scope: Scope, eventId: string): Promise<EventDetail | null>;
  acknowledge(user: UserRecord, eventId: string, note?: string, meta?: { ip?: string }): Promise<EventView>;
  rectify(user: UserRecord, eventId: string, input: RectifyInput, meta?: { ip?: string }): Promise<EventView>;
  review(user: UserRecord, eventId: string, decision: "close" | "reopen", note?: string, meta?: { ip?: string }): Promise<EventView>;
  overdue(scope: Scope): Promise<EventView[]>;
  /** Counts per day of `timeZone` (the sites' zone), site and kind; time to acknowledge. */
  stats(scope: Scope, range: { from?: number; to?: number }, timeZone?: string): Promise<StatsView>;
  /** Absolute path and mime of a rectification photo in scope, or null. */
  rectificationPhoto(scope: Scope, rectificationId: number): Promise<{ path: string; mime: string } | null>;
  // audit
  audit(entry: AuditInput): Promise<void>;
  auditList(scope: Scope, page?: { limit?: number; before?: number }): Promise<AuditEntry[]>;
  // voice history
  voiceCommands(scope: Scope, siteId?: string): Promise<VoiceView[]>;
  org: OrgApi;
}

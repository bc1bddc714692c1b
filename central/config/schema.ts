/**
 * Central's configuration (YAML). Strict objects everywhere: an unknown key is an error, so a typo
 * never silently falls back to a default.
 */
import { z } from 'zod';
import { Id } from '../../protocol/messages.js';
import { VIOLATION_KINDS } from '../../protocol/violations.js';

const Host = z.string().min(1).max(255);
const Port = z.number().int().min(0).max(65535);
const EnvName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'expected an environment variable name');
/** `scrypt$N$r$p$salt$hash` (central's own, see `hash-password`) or Mosquitto's `$7$…` (PBKDF2-SHA512). */
export const PasswordHash = z
  .string()
  .regex(/^(scrypt\$\d+\$\d+\$\d+\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+|\$7\$\d+\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+)$/,
    'expected a password hash "scrypt$N$r$p$salt$hash" or "$7$…" (make one with: npm run central -- hash-password)');

export const HttpSchema = z.strictObject({
  host: Host.default('127.0.0.1'),
  port: Port.default(8080),
  /** Base URL recipients open (snapshot links in alerts and webhooks). */
  publicUrl: z.url().default('http://127.0.0.1:8080'),
  /** Environment variable holding a bearer token for /metrics from other hosts (without it: loopback only). */
  metricsTokenEnv: z.string().regex(/^[A-Z_][A-Z0-9_]*$/, 'expected an environment variable name').optional(),
  /** HTTPS for the dashboard and API: PEM file paths. */
  tls: z.strictObject({ cert: z.string().min(1), key: z.string().min(1) }).optional(),
});

/**
 * Central's MQTT client id: stable per central worker so the broker keeps its session (clean: false,
 * QoS 1) and queues the sites' messages while it is down or restarting. Default
 * `bk-central-<hostname>-1`. Each worker of a shared-subscription group (several centrals on one
 * external broker) needs its own id (e.g. `bk-central-<hostname>-2`), or they take each other's
 * session over. While a worker is down, Mosquitto keeps routing its share of the group's messages
 * to its session (delivered when it comes back, not to the other workers); a worker retired for good
 * leaves such a session behind (Mosquitto: bound it with `persistent_client_expiration`, or connect
 * once with that id and clean: true).
 */
const CentralClientId = z.string().regex(/^bk-central-[A-Za-z0-9_.-]{1,100}$/, 'expected "bk-central-" followed by letters, digits, ".", "_" or "-"');

export const BrokerSchema = z.discriminatedUnion('mode', [
  z.strictObject({
    mode: z.literal('embedded'),
    host: Host.default('127.0.0.1'),
    port: Port.default(1883),
    /**
     * MQTT over TLS: PEM file paths. `ca` is the CA that issued `cert` when it is a private CA: central's
     * own client connects to this broker over TLS too and verifies it with that CA.
     */
    tls: z.strictObject({ cert: z.string().min(1), key: z.string().min(1), ca: z.string().min(1).optional() }).optional(),
    /** Largest MQTT packet the embedded broker accepts from anyone (bytes). */
    maxPacketBytes: z.number().int().positive().default(6_000_000),
    /** Central's own client id on the embedded broker (see CentralClientId). */
    clientId: CentralClientId.optional(),
  }),
  z.strictObject({
    mode: z.literal('external'),
    url: z.string().regex(/^(mqtt|mqtts|ws|wss):\/\/.+/, 'expected an mqtt://, mqtts://, ws:// or wss:// URL'),
    usernameEnv: EnvName,
    passwordEnv: EnvName,
    caFile: z.string().min(1).optional(),
    /**
     * Shared-subscription group, for several central workers splitting the sites' messages (each with
     * its own clientId). Unset (the default): one central, plain subscriptions. Mosquitto 2.0.11 does
     * not restore $share subscriptions from its persistence file: messages published after a broker
     * restart and before the workers subscribe again are acknowledged to the agents and dropped. Plain
     * subscriptions of a persistent session are restored and queued.
     */
    sharedGroup: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'expected a group name of letters, digits, "_" or "-"').optional(),
    /** This worker's client id: one per central worker in the shared group (see CentralClientId). */
    clientId: CentralClientId.optional(),
  }),
]);

export const WebhookSchema = z.strictObject({
  type: z.enum(['wecom', 'dingtalk']),
  url: z.url(),
  /** DingTalk "加签" secret, read from this environment variable. */
  secretEnv: EnvName.optional(),
});

/**
 * The supervision network (市-县-乡三级一张网): city (市) → district or county (区/县, `districts`) →
 * township office (乡镇/街道市场监管所, `townships`) → school or restaurant → site → camera. Cities and
 * townships are optional: a config of districts and schools alone is the two-level network it was.
 * An office's robots (`webhooks`) post to its group chat when an alert reaches that office.
 */
export const CitySchema = z.strictObject({
  id: Id,
  name: z.string().min(1).max(128),
  webhooks: z.array(WebhookSchema).default([]),
});
export const DistrictSchema = z.strictObject({
  id: Id,
  name: z.string().min(1).max(128),
  /** The city the district or county belongs to. */
  cityId: Id.optional(),
  webhooks: z.array(WebhookSchema).default([]),
});
export const TownshipSchema = z.strictObject({
  id: Id,
  name: z.string().min(1).max(128),
  districtId: Id,
  webhooks: z.array(WebhookSchema).default([]),
});
export const SchoolSchema = z.strictObject({
  id: Id,
  name: z.string().min(1).max(128),
  districtId: Id,
  /** The township office supervising it (in the same district). */
  townshipId: Id.optional(),
});
export const CameraSchema = z.strictObject({
  id: Id,
  name: z.string().min(1).max(128),
  /** RTSP URL the dashboard's live view pulls (via the HTTP layer); never sent to browsers. */
  liveUrl: z.string().regex(/^(rtsp|rtsps):\/\/.+/, 'expected an rtsp:// or rtsps:// URL').optional(),
});
/** Voice reminder played automatically at the site when an event of this kind arrives: kind → preset id. */
export const AutoReminderSchema = z.partialRecord(z.enum(VIOLATION_KINDS), Id);
/**
 * The site's public window (社会公众): a page anyone may open at /public/<slug>, off unless enabled.
 * Set here only (not through the org API): making a kitchen public is a reviewed config change.
 * Cross-checks (camera exists, slug unique) are in load.ts checkOrg.
 */
export const SitePublicSchema = z.strictObject({
  enabled: z.boolean().default(false),
  /** The page's address: random, so the internal site id stays private and opted-in sites cannot be listed by guessing. */
  slug: z.string().regex(/^[A-Za-z0-9_-]{16,64}$/, 'expected 16–64 letters, digits, "_" or "-" (make one with: openssl rand -hex 12)').optional(),
  /** A still of `camera`, pulled live and refreshed every few seconds. */
  snapshot: z.boolean().default(true),
  /** The camera whose picture is public (needed when snapshot is on). */
  camera: Id.optional(),
  /** Publish the month's record: counts by kind, rectified / open, time to rectify (never names or notes). */
  rectifications: z.boolean().default(false),
  /** Also show violation pictures (the alerts' annotated snapshots; the still falls back to the latest clean one). */
  violationImages: z.boolean().default(false),
});
export const SiteSchema = z.strictObject({
  id: Id,
  name: z.string().min(1).max(128),
  schoolId: Id,
  /** The edge agent logs in to the broker as username = site id with this password. */
  mqttPasswordHash: PasswordHash.optional(),
  cameras: z.array(CameraSchema).default([]),
  autoReminder: AutoReminderSchema.optional(),
  public: SitePublicSchema.optional(),
});
export const ROLES = ['canteen_manager', 'vice_principal', 'inspector', 'admin'] as const;
export type Role = (typeof ROLES)[number];
export const UserSchema = z.strictObject({
  id: Id,
  username: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$/, 'expected a username of letters, digits, "_", ".", "@" or "-"'),
  name: z.string().min(1).max(128),
  role: z.enum(ROLES),
  /** canteen_manager: the sites managed. */
  siteIds: z.array(Id).optional(),
  /** vice_principal: the school in charge. */
  schoolId: Id.optional(),
  /** inspector: the one office they belong to — a township, a district, or a city — and everything below it. */
  townshipId: Id.optional(),
  districtId: Id.optional(),
  cityId: Id.optional(),
  passwordHash: PasswordHash,
  /** Lets the user's phone app read `<prefix>/user/<id>/#` from the broker. */
  mqttPasswordHash: PasswordHash.optional(),
  lang: z.enum(['zh', 'en']).default('zh'),
});

export const OrgSchema = z.strictObject({
  cities: z.array(CitySchema).default([]),
  districts: z.array(DistrictSchema).default([]),
  townships: z.array(TownshipSchema).default([]),
  schools: z.array(SchoolSchema).default([]),
  sites: z.array(SiteSchema).default([]),
  users: z.array(UserSchema).default([]),
});

const Minutes = z.number().positive().max(60 * 24 * 30);
export const TierSchema = z.strictObject({
  /** all: manager, vice-principal and inspectors at once; escalate: manager first, then up. */
  mode: z.enum(['all', 'escalate']),
  /** escalate: minutes unacknowledged before the vice-principal is alerted (fractions allowed). */
  viceAfterMin: Minutes.default(30),
  /** escalate: further minutes unacknowledged before the district inspectors are alerted. */
  inspectorAfterMin: Minutes.default(60),
  /** Rectification deadline, hours after the event was raised. */
  rectifyWithinHours: z.number().positive().max(24 * 365),
  /** When the district's robot webhooks get the alert: at once, when the inspectors are reached, or never. */
  webhook: z.enum(['immediate', 'on_inspector', 'never']),
});
export const RoutingSchema = z.strictObject({
  tier1: TierSchema.default({ mode: 'all', viceAfterMin: 30, inspectorAfterMin: 60, rectifyWithinHours: 24, webhook: 'immediate' }),
  tier2: TierSchema.default({ mode: 'escalate', viceAfterMin: 30, inspectorAfterMin: 60, rectifyWithinHours: 72, webhook: 'on_inspector' }),
  tier3: TierSchema.default({ mode: 'escalate', viceAfterMin: 240, inspectorAfterMin: 1440, rectifyWithinHours: 168, webhook: 'on_inspector' }),
  /** How often the escalation timer looks for overdue steps (seconds). */
  checkIntervalSec: z.number().positive().max(3600).default(5),
});

export const NotifySchema = z.strictObject({
  /** Robot webhooks accept 20 messages a minute: a token bucket per webhook URL. */
  webhookRateLimit: z.strictObject({
    max: z.number().int().positive().default(20),
    windowSec: z.number().positive().default(60),
  }).default({ max: 20, windowSec: 60 }),
  /** Most alerts folded into one robot message when the queue backs up. */
  maxBatch: z.number().int().min(1).max(50).default(10),
  retry: z.strictObject({
    baseMs: z.number().int().positive().default(2000),
    maxMs: z.number().int().positive().default(600_000),
  }).default({ baseMs: 2000, maxMs: 600_000 }),
  webhookTimeoutMs: z.number().int().positive().default(10_000),
  /**
   * Several instances on one database: an MQTT alert or robot message being sent is leased to its
   * instance this long; if that instance dies, another sends it after the lease.
   */
  deliveryLeaseSec: z.number().positive().max(3600).default(60),
});

export const VoicePresetSchema = z.strictObject({ id: Id, text: z.string().min(1).max(500) });
export const DEFAULT_PRESETS = [
  { id: 'hat-mask', text: '请佩戴好帽子和口罩' },
  { id: 'no-smoking', text: '请勿在后厨吸烟' },
  { id: 'hygiene', text: '请注意操作台卫生' },
];
export const VoiceSchema = z.strictObject({
  presets: z.array(VoicePresetSchema).default(DEFAULT_PRESETS),
});

export const IngestSchema = z.strictObject({
  /** JSON messages larger than this are refused (bytes). */
  maxJsonBytes: z.number().int().positive().default(1_000_000),
  /** Snapshot JPEGs larger than this are refused (bytes). */
  maxSnapshotBytes: z.number().int().positive().default(5_000_000),
});

/**
 * Where central keeps its records. Absent: SQLite in `dataDir` (one instance). With `url`,
 * PostgreSQL, shared by every instance; the password comes from the environment, never the file.
 */
export const StoreSchema = z.strictObject({
  url: z.string()
    .regex(/^postgres(ql)?:\/\/[^\s]+$/, 'expected a PostgreSQL URL such as "postgres://bk@db.example:5432/bright_kitchen"')
    .refine((u) => { try { return new URL(u).password === ''; } catch { return false; } }, 'the URL must not hold a password: name its environment variable in store.passwordEnv')
    .optional(),
  passwordEnv: z.string().regex(/^[A-Z_][A-Z0-9_]*$/, 'expected an environment variable name such as "BK_DB_PASSWORD"').optional(),
  /** Connections per instance. */
  poolSize: z.number().int().min(1).max(200).default(10),
  /**
   * Snapshots, rectification photos and clips (content-addressed files): a directory every instance
   * reads and writes (a shared mount) when several run. Default: `dataDir`.
   */
  filesDir: z.string().min(1).optional(),
});
export type StoreConfig = z.infer<typeof StoreSchema>;

export const CentralConfigSchema = z.strictObject({
  http: HttpSchema.default({ host: '127.0.0.1', port: 8080, publicUrl: 'http://127.0.0.1:8080' }),
  broker: BrokerSchema,
  dataDir: z.string().min(1),
  store: StoreSchema.optional(),
  /** Time zone of the times written in alert texts. */
  timezone: z.string().min(1).refine((tz) => { try { new Intl.DateTimeFormat('en', { timeZone: tz }); return true; } catch { return false; } }, 'expected an IANA time zone such as "Asia/Shanghai"').default('Asia/Shanghai'),
  topicPrefix: z.string().regex(/^[A-Za-z0-9_-]+(\/[A-Za-z0-9_-]+)*$/, 'expected a topic prefix such as "bk/v1" (no wildcards)').default('bk/v1'),
  org: OrgSchema,
  routing: RoutingSchema.default(RoutingSchema.parse({})),
  notify: NotifySchema.default(NotifySchema.parse({})),
  voice: VoiceSchema.default({ presets: DEFAULT_PRESETS }),
  ingest: IngestSchema.default({ maxJsonBytes: 1_000_000, maxSnapshotBytes: 5_000_000 }),
  /**
   * Event clips kept at central: the oldest are deleted past this age or total (checked hourly; the
   * alert keeps its snapshots and says the clip expired). Default: the 30 days regulators keep evidence.
   */
  clips: z.strictObject({
    maxAgeDays: z.number().positive().max(3650).default(30),
    maxTotalMB: z.number().positive().default(51_200),
  }).prefault({}),
});

export type CentralConfig = z.infer<typeof CentralConfigSchema>;
/** What a config file may omit (defaults filled in by the schema). */
export type CentralConfigInput = z.input<typeof CentralConfigSchema>;
export type OrgConfig = z.infer<typeof OrgSchema>;
export type DistrictConfig = z.infer<typeof DistrictSchema>;
export type CityConfig = z.infer<typeof CitySchema>;
export type TownshipConfig = z.infer<typeof TownshipSchema>;
export type SchoolConfig = z.infer<typeof SchoolSchema>;
export type SiteConfig = z.infer<typeof SiteSchema>;
export type CameraConfig = z.infer<typeof CameraSchema>;
export type SitePublicConfig = z.infer<typeof SitePublicSchema>;
export type UserConfig = z.infer<typeof UserSchema>;
export type TierConfig = z.infer<typeof TierSchema>;
export type WebhookConfig = z.infer<typeof WebhookSchema>;

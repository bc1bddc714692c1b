/**
 * Payload schemas of every MQTT message, shared by agent and central. Both sides parse with these;
 * a message that fails is rejected with the zod issue path in the log, never half-used.
 */
import { z } from 'zod';
import { VIOLATION_KINDS } from './violations.js';

export const PROTOCOL_VERSION = 1;
/** Ids travel inside topics and file names: keep them to a safe alphabet. */
export const Id = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/, 'expected an id of letters, digits, "_" or "-" (max 64)');
export const Box = z.tuple([z.number(), z.number(), z.number(), z.number()]);
export type Box = z.infer<typeof Box>;
const Millis = z.number().int().nonnegative();
const Sha256 = z.string().regex(/^[a-f0-9]{64}$/, 'expected a hex sha256');

export const DetectionSchema = z.strictObject({
  label: z.string().min(1).max(64),
  score: z.number().min(0).max(1),
  box: Box,
  trackId: z.number().int().optional(),
});
export type Detection = z.infer<typeof DetectionSchema>;

export const SnapshotRef = z.strictObject({ sha256: Sha256, bytes: z.number().int().positive() });

/** agent → central: one violation episode (or a repeat after the rule's cooldown). */
export const EventMessage = z.strictObject({
  v: z.literal(PROTOCOL_VERSION),
  id: Id, // globally unique, made by the agent; central de-duplicates on it
  siteId: Id,
  cameraId: Id,
  cameraName: z.string().max(128),
  kind: z.enum(VIOLATION_KINDS),
  severity: z.union([z.literal(1), z.literal(2), z.literal(3)]),
  ruleId: z.string().min(1).max(64),
  trackId: z.number().int(),
  label: z.string().min(1).max(64),
  score: z.number().min(0).max(1),
  box: Box,
  zone: z.string().max(64).nullable(),
  startedAt: Millis, // first frame of the episode
  capturedAt: Millis, // frame that raised the alarm (latency is measured from here)
  raisedAt: Millis,
  durationSec: z.number().nonnegative(),
  frame: z.strictObject({ width: z.number().int().positive(), height: z.number().int().positive() }),
  detections: z.array(DetectionSchema).max(200),
  snapshots: z.strictObject({ annotated: SnapshotRef, clean: SnapshotRef }),
  experimental: z.boolean().optional(),
});
export type EventMessage = z.infer<typeof EventMessage>;

/** Largest chunk of a clip on the wire (one MQTT message each; brokers' packet limits are far above). */
export const CLIP_CHUNK_MAX_BYTES = 512 * 1024;
/** Chunks per clip: with 256 KiB chunks a 64 MB clip. */
export const CLIP_MAX_CHUNKS = 256;

/**
 * agent → central, after the clip's chunks: an event's video clip (MP4, the camera's own H.264 /
 * H.265 copied without re-encoding). Central assembles the chunks and checks the sha256.
 */
export const ClipManifest = z.strictObject({
  v: z.literal(PROTOCOL_VERSION),
  eventId: Id,
  siteId: Id,
  cameraId: Id,
  mime: z.literal('video/mp4'),
  /** The codec as browsers name it, e.g. `avc1.64001f`, `hvc1`: H.265 plays in Safari and some Chrome builds only. */
  codec: z.string().max(64),
  sha256: Sha256,
  bytes: z.number().int().positive(),
  chunks: z.number().int().min(1).max(CLIP_MAX_CHUNKS),
  /** wall-clock ms of the clip's first frame, and its length */
  startAt: Millis,
  durationMs: z.number().int().positive(),
});
export type ClipManifest = z.infer<typeof ClipManifest>;

export const CameraState = z.enum(['connecting', 'online', 'offline']);
export const CameraStatus = z.strictObject({
  v: z.literal(PROTOCOL_VERSION),
  siteId: Id,
  cameraId: Id,
  name: z.string().max(128),
  state: CameraState,
  lastFrameAt: Millis.nullable(),
  fps: z.number().nonnegative(),
  error: z.string().max(500).nullable(),
  ts: Millis,
});
export type CameraStatus = z.infer<typeof CameraStatus>;

export const SiteStatus = z.strictObject({
  v: z.literal(PROTOCOL_VERSION),
  siteId: Id,
  online: z.boolean(),
  ts: Millis,
  agentVersion: z.string().max(32).optional(),
});
export type SiteStatus = z.infer<typeof SiteStatus>;

export const SiteStats = z.strictObject({
  v: z.literal(PROTOCOL_VERSION),
  siteId: Id,
  ts: Millis,
  uptimeSec: z.number().nonnegative(),
  inferencesPerSec: z.number().nonnegative(),
  framesProcessed: z.number().int().nonnegative(),
  framesDropped: z.number().int().nonnegative(),
  outboxPending: z.number().int().nonnegative(),
  eventsRaised: z.number().int().nonnegative(),
});
export type SiteStats = z.infer<typeof SiteStats>;

/** central → agent. Signed by central (Ed25519 over canonicalJson of everything but `signature`). */
export const VoiceContent = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('text'), text: z.string().min(1).max(500) }),
  z.strictObject({ type: z.literal('preset'), presetId: Id, text: z.string().min(1).max(500) }),
  z.strictObject({
    type: z.literal('audio'),
    mime: z.enum(['audio/wav', 'audio/webm', 'audio/ogg']),
    dataBase64: z.string().max(4_000_000), // ≈3 MB of audio
  }),
]);
export const VoiceCommand = z.strictObject({
  v: z.literal(PROTOCOL_VERSION),
  id: Id,
  siteId: Id,
  cameraId: Id.nullable(), // null = every speaker of the site
  issuedBy: z.string().min(1).max(64),
  issuedAt: Millis,
  nonce: z.string().regex(/^[A-Za-z0-9_-]{16,64}$/),
  content: VoiceContent,
  signature: z.string().max(200),
});
export type VoiceCommand = z.infer<typeof VoiceCommand>;

export const VoiceStatus = z.strictObject({
  v: z.literal(PROTOCOL_VERSION),
  commandId: z.string().min(1).max(64),
  siteId: Id,
  state: z.enum(['played', 'failed', 'rejected']),
  at: Millis,
  error: z.string().max(500).nullable(),
});
export type VoiceStatus = z.infer<typeof VoiceStatus>;

/** central → recipient topic (phone apps). Texts are ready to show, zh-CN first. */
export const RecipientAlert = z.strictObject({
  v: z.literal(PROTOCOL_VERSION),
  eventId: Id,
  siteId: Id,
  siteName: z.string(),
  cameraId: Id,
  cameraName: z.string(),
  kind: z.enum(VIOLATION_KINDS),
  severity: z.union([z.literal(1), z.literal(2), z.literal(3)]),
  raisedAt: Millis,
  role: z.enum(['canteen_manager', 'vice_principal', 'inspector', 'admin']),
  level: z.number().int().nonnegative(), // escalation level that reached this recipient
  title: z.string(),
  text: z.string(),
  textEn: z.string(),
  snapshotUrl: z.string(),
});
export type RecipientAlert = z.infer<typeof RecipientAlert>;

/** Parse a JSON payload with a schema; returns a readable reason instead of throwing. */
export function parsePayload<T extends z.ZodType>(schema: T, payload: Buffer | string, maxBytes = 5_000_000):
  { ok: true; value: z.infer<T> } | { ok: false; reason: string } {
  if (payload.length > maxBytes) return { ok: false, reason: `payload too large (${payload.length} bytes > ${maxBytes})` };
  let json: unknown;
  try {
    json = JSON.parse(payload.toString());
  } catch (err) {
    return { ok: false, reason: `not JSON: ${(err as Error).message}` };
  }
  const r = schema.safeParse(json);
  if (r.success) return { ok: true, value: r.data };
  return { ok: false, reason: formatIssues(r.error.issues) };
}

/** `cameras[2].zones[0].points: expected …` — one line per issue. */
export function formatIssues(issues: readonly z.core.$ZodIssue[]): string {
  return issues
    .map((i) => `${formatPath(i.path) || '(root)'}: ${i.message}`)
    .join('; ');
}

export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : out ? `.${String(p)}` : String(p);
  return out;
}

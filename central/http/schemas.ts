/** zod schemas of every request body and query of the HTTP API (docs/central-api.md). */
import { z } from 'zod';
import { Id } from '../../protocol/messages.js';
import { VIOLATION_KINDS } from '../../protocol/violations.js';
import { ROLES } from '../config/schema.js';

const Millis = z.coerce.number().int().nonnegative().max(8.64e15);
const Note = z.string().trim().max(500);
export const Sha256Param = z.string().regex(/^[a-f0-9]{64}$/, 'expected a hex sha256');
export { Id };

export const LoginBody = z.strictObject({
  username: z.string().min(1).max(64),
  password: z.string().min(1).max(200),
});

export const EventsQuery = z.strictObject({
  siteId: Id.optional(),
  kind: z.enum(VIOLATION_KINDS).optional(),
  status: z.enum(['open', 'acknowledged', 'rectified', 'closed', 'reopened']).optional(),
  from: Millis.optional(),
  to: Millis.optional(),
  limit: z.coerce.number().int().min(1).max(500).optional(),
  before: Millis.optional(),
});

export const AckBody = z.strictObject({ note: Note.optional() });

/** ≤ 5 MB of image bytes → ≤ 6,990,508 base64 characters. */
export const MAX_PHOTO_BYTES = 5 * 1024 * 1024;
export const RectifyBody = z
  .strictObject({
    note: z.string().trim().min(1).max(2000),
    photoBase64: z.string().max(Math.ceil(MAX_PHOTO_BYTES / 3) * 4, 'photo larger than 5 MB').regex(/^[A-Za-z0-9+/]*={0,2}$/, 'expected base64').optional(),
    photoMime: z.enum(['image/jpeg', 'image/png']).optional(),
  })
  .refine((b) => !b.photoBase64 || b.photoMime, { path: ['photoMime'], message: 'required with photoBase64' });

export const ReviewBody = z.strictObject({ decision: z.enum(['close', 'reopen']), note: Note.optional() });

export const VoiceBody = z
  .strictObject({
    siteId: Id,
    cameraId: Id.nullable().optional(),
    type: z.enum(['text', 'preset', 'audio']),
    text: z.string().trim().min(1).max(500).optional(),
    presetId: Id.optional(),
    audioBase64: z.string().min(100, 'recording too short').max(4_000_000, 'recording too long (≈3 MB max)').regex(/^[A-Za-z0-9+/]*={0,2}$/, 'expected base64').optional(),
    mime: z.enum(['audio/wav', 'audio/webm', 'audio/ogg']).optional(),
  })
  .superRefine((b, ctx) => {
    const need = (field: 'text' | 'presetId' | 'audioBase64' | 'mime') => {
      if (b[field] === undefined) ctx.addIssue({ code: 'custom', path: [field], message: `required for type "${b.type}"` });
    };
    if (b.type === 'text') need('text');
    if (b.type === 'preset') need('presetId');
    if (b.type === 'audio') { need('audioBase64'); need('mime'); }
  });

export const VoiceQuery = z.strictObject({ siteId: Id.optional() });
export const StatsQuery = z.strictObject({ from: Millis.optional(), to: Millis.optional() });
export const AuditQuery = z.strictObject({ limit: z.coerce.number().int().min(1).max(1000).optional(), before: Millis.optional() });
export const EmptyQuery = z.strictObject({});

// ---- org (admin) ----
const Name = z.string().trim().min(1).max(128);
const Webhook = z.strictObject({ type: z.enum(['wecom', 'dingtalk']), url: z.url(), secretEnv: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/).optional() });
const Hash = z.string().min(10).max(300);
const Webhooks = z.array(Webhook).max(20).optional();
export const OrgBodies = {
  cities: z.strictObject({ id: Id, name: Name, webhooks: Webhooks }),
  districts: z.strictObject({ id: Id, name: Name, cityId: Id.nullable().optional(), webhooks: Webhooks }),
  townships: z.strictObject({ id: Id, name: Name, districtId: Id, webhooks: Webhooks }),
  schools: z.strictObject({ id: Id, name: Name, districtId: Id, townshipId: Id.nullable().optional() }),
  sites: z.strictObject({
    id: Id, name: Name, schoolId: Id,
    mqttPasswordHash: Hash.nullable().optional(),
    autoReminder: z.partialRecord(z.enum(VIOLATION_KINDS), Id).nullable().optional(),
  }),
  cameras: z.strictObject({
    siteId: Id, id: Id, name: Name,
    liveUrl: z.string().regex(/^(rtsp|rtsps):\/\/.+/, 'expected an rtsp:// or rtsps:// URL').max(1000).nullable().optional(),
  }),
  users: z.strictObject({
    id: Id,
    username: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$/, 'expected letters, digits, "_", ".", "@" or "-"'),
    name: Name,
    role: z.enum(ROLES),
    siteIds: z.array(Id).max(1000).optional(),
    schoolId: Id.nullable().optional(),
    districtId: Id.nullable().optional(),
    /** inspector: exactly one of townshipId, districtId, cityId (checked by the store). */
    townshipId: Id.nullable().optional(),
    cityId: Id.nullable().optional(),
    /** Plain password (hashed here with scrypt, never stored); or passwordHash made offline. */
    password: z.string().min(8, 'at least 8 characters').max(200).optional(),
    passwordHash: Hash.optional(),
    mqttPasswordHash: Hash.nullable().optional(),
    lang: z.enum(['zh', 'en']).optional(),
    disabled: z.boolean().optional(),
  }),
} as const;
export const ORG_KINDS = ['cities', 'districts', 'townships', 'schools', 'sites', 'cameras', 'users'] as const;

/**
 * The site configuration of one edge box (YAML). Strict objects everywhere: an unknown key is an
 * error (a typo such as `fsp: 2` must not silently fall back to a default).
 */
import { z } from 'zod';
import { Id } from '../../protocol/messages.js';
import { VIOLATION_KINDS } from '../../protocol/violations.js';

const HHMM = z.string().regex(/^([01]\d|2[0-3]):[0-5]\d$/, 'expected a time "HH:MM" (24 h)');
const Day = z.enum(['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun']);
/** Normalised point: x and y in 0..1 of the frame, so zones survive a change of resolution. */
const Point = z.tuple([z.number().min(0).max(1), z.number().min(0).max(1)]);

export const ZoneSchema = z.strictObject({
  id: Id,
  name: z.string().min(1).max(64),
  /** food = where food is prepared or stored (animals there are always an alarm); raw / cooked for colour-coded areas. */
  kind: z.enum(['food', 'raw', 'cooked', 'general']).default('general'),
  points: z.array(Point).min(3, 'expected at least 3 [x, y] points (0..1 of the frame)'),
});

/** Colours the board check can tell apart (agent/detect/boards.ts holds their HSV ranges). */
export const BOARD_COLOURS = ['red', 'yellow', 'green', 'blue', 'white'] as const;
export type BoardColour = (typeof BOARD_COLOURS)[number];
const BoardColourSchema = z.enum(BOARD_COLOURS, { error: (iss) => `unknown colour ${JSON.stringify(iss.input)} (known: ${BOARD_COLOURS.join(', ')})` });

/**
 * The site's colour code for cutting boards (生熟分开): which colours are for raw food and which for
 * cooked. Codes differ per kitchen (commonly red raw meat, blue seafood, green vegetables, yellow or
 * white cooked), so nothing is assumed. The board check looks in zones of kind raw / cooked only.
 */
export const BoardsSchema = z
  .strictObject({
    raw: z.array(BoardColourSchema).default([]),
    cooked: z.array(BoardColourSchema).default([]),
    /** Seconds between two checks of a camera's zones: boards lie still for hours. */
    everySec: z.number().min(1).max(600).default(5),
    /** Smallest board, as a share of the frame's area (a 40 cm board 3 m below a 640 px camera is ~1 %; `npm run zones` prints each region's share). */
    minAreaFraction: z.number().min(0.0005).max(0.5).default(0.006),
  })
  .superRefine((b, ctx) => {
    if (b.raw.length + b.cooked.length === 0) ctx.addIssue({ code: 'custom', path: ['raw'], message: 'a colour code names at least one colour (raw: [red], cooked: [yellow] ...)' });
    b.cooked.forEach((c, i) => {
      if (b.raw.includes(c)) ctx.addIssue({ code: 'custom', path: ['cooked', i], message: `"${c}" is listed as both raw and cooked` });
    });
    for (const side of ['raw', 'cooked'] as const)
      b[side].forEach((c, i) => {
        if (b[side].indexOf(c) !== i) ctx.addIssue({ code: 'custom', path: [side, i], message: `"${c}" is listed twice` });
      });
  });
export type BoardsConfig = z.infer<typeof BoardsSchema>;

/** Default seconds between the frames of a still camera (`idleFrameEverySec`). */
export const IDLE_FRAME_EVERY_SEC = 5;

export const CameraSchema = z.strictObject({
  id: Id,
  name: z.string().min(1).max(128),
  url: z.string().regex(/^(rtsp|rtsps|file):\/\/.+/, 'expected an rtsp://, rtsps:// or file:// URL'),
  /**
   * The camera's second, smaller stream (sub-stream, e.g. Hikvision `/Streaming/Channels/102`,
   * Dahua `subtype=1`), at least `frameWidth` wide: detection decodes it instead of `url`, whose
   * main stream then only feeds the clip buffer, copied. Decoding 640x360 costs about a third of
   * 1280x720 (docs/performance.md), and detection scales every frame to `frameWidth` anyway.
   */
  substreamUrl: z.string().regex(/^(rtsp|rtsps|file):\/\/.+/, 'expected an rtsp://, rtsps:// or file:// URL').optional(),
  /** Detection frames per second taken from the stream. */
  fps: z.number().positive().max(30).default(2),
  /** Decode keyframes only (cheapest); the effective rate is then at most one frame per GOP. */
  keyframesOnly: z.boolean().default(false),
  /**
   * After this many seconds without any change in the picture, decode only one keyframe every
   * `idleFrameEverySec` (the stream is still received, not decoded) until such a frame shows a
   * change; 0 keeps full decoding. Detection on a still picture is already skipped by the motion
   * gate; this saves the decoding too.
   */
  idleKeyframesAfterSec: z.number().min(0).max(3600).default(60),
  /** Seconds between the frames of a still camera: how late a change can be noticed. */
  idleFrameEverySec: z.number().min(1).max(60).default(IDLE_FRAME_EVERY_SEC),
  /** Width of the frames ffmpeg hands to Node; height follows the stream's aspect ratio. */
  frameWidth: z.number().int().min(160).max(1920).default(640),
  zones: z.array(ZoneSchema).default([]),
  /** This camera's board colour code, replacing the site's `boards` (e.g. a cold-dish room's own code). */
  boards: BoardsSchema.optional(),
  /** Keep a clip buffer for this camera (default: the site's `clips.enabled`). */
  clips: z.boolean().optional(),
  enabled: z.boolean().default(true),
});

export const ModelRefSchema = z.strictObject({
  /** Manifest name in the models directory, e.g. `rfb640_masked_face` (models/<name>.model.yaml). */
  manifest: z.string().regex(/^[A-Za-z0-9_.-]+$/, 'expected a manifest name such as "yolox_nano"'),
  /** Overrides the manifest's default score threshold. */
  minScore: z.number().min(0).max(1).optional(),
  /** Only keep these canonical labels from this model (default: all it maps). */
  labels: z.array(z.string().min(1)).optional(),
});

/**
 * The default model pack: faces with / without a mask, COCO people and animals, the project's rodent
 * model. The pipeline runs a model on a frame only when an active rule wants one of its labels
 * (RuleEngine.wantedLabels), so the animal detectors cost nothing on a camera without a food zone
 * during service hours, and the face model nothing at night.
 */
/** The head classifier (head_attrs) judges crops cut from the face and person boxes of the first two. */
export const DEFAULT_PACK: z.input<typeof ModelRefSchema>[] = [{ manifest: 'rfb640_masked_face' }, { manifest: 'yolox_nano' }, { manifest: 'rodent_yolox' }, { manifest: 'head_attrs' }];

export const ScheduleSchema = z.enum(['always', 'service', 'closed']);

export const RuleSchema = z.strictObject({
  id: Id,
  kind: z.enum(VIOLATION_KINDS),
  /** Labels whose presence is the violation (e.g. face = bare face → no_mask). */
  labels: z.array(z.string().min(1)).min(1),
  /** Violation only when the subject lacks one of these labels overlapping it (e.g. head without chef_hat). */
  unless: z.array(z.string().min(1)).default([]),
  /** Violation only when one of these labels is also seen within the same zone (mixed boards). */
  with: z.array(z.string().min(1)).default([]),
  /** Restrict to zones of these ids or kinds; empty = whole frame. */
  zones: z.array(z.string().min(1)).default([]),
  schedule: ScheduleSchema.default('always'),
  /** Additionally active in any schedule when inside zones of kind food (rodents). */
  alwaysInFoodZones: z.boolean().default(false),
  minScore: z.number().min(0).max(1).default(0.5),
  minDurationSec: z.number().min(0).max(3600).default(3),
  cooldownSec: z.number().min(0).max(86400).default(30),
  severity: z.union([z.literal(1), z.literal(2), z.literal(3)]).default(2),
  experimental: z.boolean().default(false),
  enabled: z.boolean().default(true),
});

export const SiteConfigSchema = z.strictObject({
  site: z.strictObject({
    id: Id,
    name: z.string().min(1).max(128),
    timezone: z.string().default('Asia/Shanghai'),
  }),
  /**
   * When the kitchen is operating; outside these hours it is "closed" (night). `to` before `from`
   * runs past midnight; `from` equal to `to` (e.g. "00:00" to "00:00") is the whole day.
   */
  serviceHours: z
    .array(z.strictObject({ days: z.array(Day).min(1).default(['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun']), from: HHMM, to: HHMM }))
    .default([{ days: ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'], from: '06:00', to: '20:00' }]),
  models: z
    .strictObject({
      /** Where installed model files live (`npm run models` puts them there). */
      dir: z.string().default('var/models'),
      /** Where manifests live. */
      manifests: z.string().default('models'),
      pack: z.array(ModelRefSchema).min(1),
      /**
       * Intra-op threads per inference session. With `workers` each model has its own thread
       * already, so 1 is best on a 2-core box (docs/performance.md); without workers, use 2.
       */
      threads: z.number().int().min(1).max(64).default(1),
      /**
       * Run each model in its own worker thread: the models of the pack run in parallel and the
       * event loop (camera pipes, evidence, MQTT) never waits for an inference. See docs/performance.md.
       */
      workers: z.boolean().default(true),
    })
    .prefault({ pack: DEFAULT_PACK }),
  cameras: z.array(CameraSchema).min(1, 'expected at least one camera'),
  /** Board colour code of the kitchen: needed by every camera with a zone of kind raw or cooked. */
  boards: BoardsSchema.optional(),
  /** Replaces the built-in rule set when given (by rule id: same id overrides, new id adds). */
  rules: z.array(RuleSchema).default([]),
  uplink: z
    .strictObject({
      url: z.string().regex(/^(mqtts?|wss?|tcp|ssl):\/\/.+/, 'expected an mqtt://, mqtts://, ws:// or wss:// URL'),
      /** Names of environment variables holding the credentials (never the secrets themselves). */
      usernameEnv: z.string().default('BK_MQTT_USERNAME'),
      passwordEnv: z.string().default('BK_MQTT_PASSWORD'),
      topicPrefix: z.string().regex(/^[A-Za-z0-9_/-]+$/).default('bk/v1'),
      /** CA file for mqtts:// with a private CA. */
      caFile: z.string().optional(),
      statsIntervalSec: z.number().positive().default(60),
    })
    .optional(),
  storage: z
    .strictObject({
      dir: z.string().default('var/agent'),
      evidence: z
        .strictObject({
          maxAgeDays: z.number().positive().default(30),
          maxTotalMB: z.number().positive().default(2048),
        })
        .prefault({}),
    })
    .prefault({}),
  /**
   * Event clips: while a camera decodes fully (it is busy), ffmpeg also copies its stream, without
   * re-encoding, into segments of ~segmentSec in bufferDir; an event gets an MP4 of preSec before
   * and postSec after its snapshot, sent after the event through the outbox. A still camera (idle
   * sampling) keeps no buffer: its first frame that changes switches it back to full decoding.
   */
  clips: z
    .strictObject({
      enabled: z.boolean().default(true),
      preSec: z.number().min(0).max(30).default(5),
      postSec: z.number().min(0).max(30).default(5),
      /** A clip is cut off at this size (a 4 Mbit/s camera gives ~5 MB for 10 s). */
      maxMB: z.number().min(0.1).max(64).default(16),
      /** Target segment length: a clip's start falls on a segment boundary (a keyframe) within half of this. */
      segmentSec: z.number().min(1).max(10).default(2),
      /** Rolling buffer (default: the temp directory): tmpfs spares a box's flash from ~0.5 MB/s per camera. */
      bufferDir: z.string().optional(),
    })
    .prefault({}),
  /**
   * The box's own health and metrics endpoints (/healthz, /readyz, /metrics for Prometheus). Off
   * unless this section is given; loopback by default: expose it on another address only behind the
   * operator's network controls (the endpoints carry no secrets but need no login either).
   */
  health: z
    .strictObject({
      host: z.string().default('127.0.0.1'),
      port: z.number().int().min(0).max(65535).default(9464),
    })
    .optional(),
  voice: z
    .strictObject({
      enabled: z.boolean().default(false),
      /** Central's Ed25519 public key: a PEM file path. */
      centralPublicKeyFile: z.string().optional(),
      sink: z
        .discriminatedUnion('type', [
          z.strictObject({ type: z.literal('file'), dir: z.string() }),
          z.strictObject({ type: z.literal('command'), command: z.array(z.string()).min(1) }),
          z.strictObject({ type: z.literal('alsa'), device: z.string().default('default') }),
        ])
        .default({ type: 'alsa', device: 'default' }),
      /** Accept commands issued at most this long ago (replay window). */
      maxAgeSec: z.number().positive().default(120),
      /** Automatic reminder played by the box itself when it raises a violation. */
      autoReminder: z
        .strictObject({
          enabled: z.boolean().default(false),
          text: z.string().default('请佩戴好帽子和口罩'),
          minIntervalSec: z.number().nonnegative().default(120),
          kinds: z.array(z.enum(VIOLATION_KINDS)).default(['no_hat', 'no_mask', 'smoking']),
        })
        .prefault({}),
    })
    .prefault({}),
});

export type SiteConfig = z.infer<typeof SiteConfigSchema>;
export type CameraConfig = z.infer<typeof CameraSchema>;
export type ZoneConfig = z.infer<typeof ZoneSchema>;
export type RuleConfig = z.infer<typeof RuleSchema>;
export type ModelRef = z.infer<typeof ModelRefSchema>;

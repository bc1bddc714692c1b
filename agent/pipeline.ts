/**
 * The corridor: camera frames → detect → track → rules → evidence → outbox.
 *
 * Stages never call each other; this file does the wiring. Scheduling keeps one "latest frame"
 * slot per camera: a frame that arrives while the previous one of the same camera still waits is
 * replaced and counted as dropped, and cameras are served round-robin. Memory is therefore bounded
 * (one pending frame per camera) and drops are spread fairly when detection is the bottleneck.
 */
import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { childLog } from '../common/log.js';
import { PROTOCOL_VERSION, type EventMessage } from '../protocol/messages.js';
import type { CameraConfig, SiteConfig } from './config/schema.js';
import type { Detection, RgbImage } from './detect/types.js';
import { BoardCheck } from './detect/boards.js';
import { MotionGate, type MotionGateOptions } from './gate/motion.js';
import { AttributeVoter, Tracker } from './track/index.js';
import { RuleEngine, rulesForSite, type Violation } from './rules/index.js';
import { annotate, encodeJpeg, type EvidenceStore } from './evidence/index.js';
import { eventOutboxMessages, type Outbox } from './outbox/index.js';

const log = childLog({ module: 'pipeline' });

/** What the pipeline needs from a frame (agent/camera emits these). */
export interface PipelineFrame {
  cameraId: string;
  capturedAt: number;
  width: number;
  height: number;
  data: Buffer;
}

/** What the pipeline needs from detection (agent/detect's ModelPack fits). */
export interface Detector {
  /**
   * Detections of the models that can produce one of `opts.labels` (every model when absent);
   * `peopleForHeads: false` spares the person model the head cascade would otherwise run, `closeUp:
   * false` its close-up look.
   */
  detect(img: RgbImage, opts?: { labels?: ReadonlySet<string>; peopleForHeads?: boolean; closeUp?: boolean }): Promise<Detection[]>;
}

/**
 * The head cascade finds heads seen from behind in person boxes, and the person model costs more
 * than the face model: it runs for the cascade on one frame per camera per this interval (at 2 fps,
 * every third frame). The tracker keeps those heads across the gaps (its maxAge is 2 s).
 */
export const PEOPLE_FOR_HEADS_EVERY_MS = 1500;
/**
 * The person pass's interval while its last pass found faces and no head the face model had not
 * found too (every worker in view shows a face): then it only looks for someone new seen from
 * behind, and such a worker is found within this time instead of PEOPLE_FOR_HEADS_EVERY_MS.
 */
export const PEOPLE_FOR_HEADS_IDLE_MS = 4500;
/**
 * The close-up look (a second face-model run on a frame with a large faceless person, or with no
 * face at all; models/head_attrs.md) at most this often per camera: a worker that close stays a
 * while, the tracker keeps the face found, and it would otherwise come with every person frame.
 */
export const CLOSE_UP_EVERY_MS = 6000;

/**
 * The animal models (the general model for cats and dogs, the rodent model) run where the rodent rule
 * is active — every camera at night, food zones by day — and cost more than the face model. They run
 * on one frame per camera per this interval; the tracker (2 s) and the rule's gaps (2 s) carry an
 * animal between, and the rule's 1 s persistence still needs two sightings. The person pass for the
 * head cascade rides on the same frames there (the general model runs anyway).
 */
export const ANIMALS_EVERY_MS = 1000;

/**
 * Head labels only the service-hour rules (no_hat, no_mask) want. When none is wanted — the kitchen
 * is closed — heads are looked at for smoking alone, and the head cascade (face model, classifier)
 * runs on the animal models' frames too: at night every model runs once per camera per second.
 */
const SERVICE_HEAD_LABELS = ['face', 'head', 'chef_hat', 'masked_face'];

export interface PipelineOptions {
  config: SiteConfig;
  detector: Detector;
  evidence: EvidenceStore;
  outbox: Outbox;
  /** Motion gating; `false` runs detection on every frame. */
  motion?: MotionGateOptions | false;
  /**
   * Frames (of different cameras) in detection at once. 3 keeps a WorkerPack's model workers busy
   * while the main thread tracks, judges and pre-processes the next frame, even when it waits for a
   * core behind the decoders (saturated 6 x 15 fps: 62 inferences/s with 2, 74 with 3, 75 with 4).
   */
  concurrency?: number;
  /** Clock for the rules (ms); frames carry their own capture time. */
  now?: () => number;
}

export interface CameraCounters {
  framesIn: number;
  framesDropped: number;
  framesSkippedStill: number;
  framesProcessed: number;
  eventsRaised: number;
}

interface CameraLane {
  cfg: CameraConfig;
  pending: PipelineFrame | null;
  /** A frame of this camera is being processed. */
  busy: boolean;
  tracker: Tracker;
  /** Head attributes believed per track (the head cascade's per-track agreement). */
  heads: AttributeVoter;
  rules: RuleEngine;
  gate: MotionGate | null;
  /** The camera was told to decode a keyframe now and then only (its picture is still). */
  idle: boolean;
  /** Capture time of the last frame on which the person model ran for the head cascade. */
  peopleAt: number;
  /** The last person pass found a head only the person model gives (seen from behind), or no face: keep its full rate. */
  personHeads: boolean;
  /** When this camera last allowed the cascade's close-up look (CLOSE_UP_EVERY_MS). */
  closeUpAt: number;
  /** Labels of this camera's animal rules (rodent, cat, dog), when the last frame had the animal models, and what they saw. */
  animalLabels: ReadonlySet<string>;
  /** Labels of this camera's smoking rules (cigarette): sparse like the animals at night. */
  smokingLabels: ReadonlySet<string>;
  animalsAt: number;
  /** What the last frame with the animal models saw (animals; at night heads too): a still picture repeats it. */
  animalsSeen: Detection[];
  /** The colour-coded board check of this camera's raw / cooked zones (null: none). */
  boards: BoardCheck | null;
  /** When the zones were last checked, and what was seen: boards lie still, so this stands until the next check. */
  boardsAt: number;
  boardsSeen: Detection[];
  counters: CameraCounters;
}

export interface PipelineEvents {
  event: [EventMessage];
  error: [Error];
  /** A camera's picture has been still for its `idleKeyframesAfterSec` (keyframes), or changed again (full). */
  decode: [cameraId: string, mode: 'keyframes' | 'full'];
}

export class Pipeline extends EventEmitter<PipelineEvents> {
  private readonly lanes = new Map<string, CameraLane>();
  private readonly order: string[] = [];
  private next = 0;
  private running = false;
  private wake: (() => void) | null = null;
  private loop: Promise<void> | null = null;
  private readonly inflightEvidence = new Set<Promise<void>>();
  private inferences = 0;
  private inferenceMs = 0;
  /** Board checks run and their time (main thread). */
  private boardChecks = 0;
  private boardMs = 0;
  /** Head crops the classifier judged (the head cascade's second stage). */
  private headCrops = 0;
  private readonly startedAt = Date.now();
  private readonly maxInflight: number;

  constructor(private readonly opts: PipelineOptions) {
    super();
    const { config } = opts;
    this.maxInflight = Math.max(1, opts.concurrency ?? 3);
    const rules = rulesForSite(config.rules);
    for (const cam of config.cameras.filter((c) => c.enabled)) {
      this.lanes.set(cam.id, {
        cfg: cam,
        pending: null,
        busy: false,
        tracker: new Tracker(),
        heads: new AttributeVoter(),
        rules: new RuleEngine({ rules, zones: cam.zones, serviceHours: config.serviceHours, timezone: config.site.timezone, cameraId: cam.id }),
        gate: opts.motion === false ? null : new MotionGate(opts.motion ?? {}),
        idle: false,
        peopleAt: -Infinity,
        personHeads: true,
        closeUpAt: -Infinity,
        animalLabels: new Set(rules.filter((r) => r.kind === 'rodent').flatMap((r) => r.labels)),
        smokingLabels: new Set(rules.filter((r) => r.kind === 'smoking').flatMap((r) => r.labels)),
        animalsAt: -Infinity,
        animalsSeen: [],
        boards: BoardCheck.forCamera(cam, config.boards),
        boardsAt: -Infinity,
        boardsSeen: [],
        counters: { framesIn: 0, framesDropped: 0, framesSkippedStill: 0, framesProcessed: 0, eventsRaised: 0 },
      });
      this.order.push(cam.id);
    }
  }

  /** Hand over a frame; never blocks. A frame still waiting for this camera is replaced (dropped). */
  offer(frame: PipelineFrame): void {
    const lane = this.lanes.get(frame.cameraId);
    if (!lane) return;
    lane.counters.framesIn++;
    if (lane.pending) lane.counters.framesDropped++;
    lane.pending = frame;
    this.wake?.();
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.loop = this.run();
  }

  /** Stop taking frames, finish the frame in progress and every event being written. */
  async stop(): Promise<void> {
    this.running = false;
    this.wake?.();
    await this.loop;
    for (const lane of this.lanes.values()) {
      if (lane.pending) lane.counters.framesDropped++;
      lane.pending = null;
    }
    await Promise.allSettled([...this.inflightEvidence]);
  }

  counters(): Record<string, CameraCounters> {
    return Object.fromEntries([...this.lanes].map(([id, l]) => [id, { ...l.counters }]));
  }

  totals(): CameraCounters & { inferences: number; inferenceMs: number; headCrops: number; boardChecks: number; boardMs: number; uptimeSec: number } {
    const t: CameraCounters = { framesIn: 0, framesDropped: 0, framesSkippedStill: 0, framesProcessed: 0, eventsRaised: 0 };
    for (const l of this.lanes.values()) for (const k of Object.keys(t) as (keyof CameraCounters)[]) t[k] += l.counters[k];
    return { ...t, inferences: this.inferences, inferenceMs: this.inferenceMs, headCrops: this.headCrops, boardChecks: this.boardChecks, boardMs: this.boardMs, uptimeSec: (Date.now() - this.startedAt) / 1000 };
  }

  private takeNext(): [CameraLane, PipelineFrame] | null {
    for (let i = 0; i < this.order.length; i++) {
      const id = this.order[(this.next + i) % this.order.length]!;
      const lane = this.lanes.get(id)!;
      // A camera's frames go through track and rules in order: one at a time per camera.
      if (lane.pending && !lane.busy) {
        this.next = (this.next + i + 1) % this.order.length;
        const f = lane.pending;
        lane.pending = null;
        return [lane, f];
      }
    }
    return null;
  }

  private async run(): Promise<void> {
    const inflight = new Set<Promise<void>>();
    while (this.running) {
      const job = inflight.size < this.maxInflight ? this.takeNext() : null;
      if (!job) {
        await new Promise<void>((resolve) => (this.wake = resolve));
        this.wake = null;
        continue;
      }
      const [lane, frame] = job;
      lane.busy = true;
      const p = this.process(lane, frame)
        .catch((err: Error) => {
          // One bad frame must never stop the corridor.
          log.error({ err, camera: lane.cfg.id }, 'frame processing failed');
          this.emit('error', err);
        })
        .finally(() => {
          lane.busy = false;
          inflight.delete(p);
          this.wake?.();
        });
      inflight.add(p);
    }
    await Promise.all(inflight);
  }

  private async process(lane: CameraLane, frame: PipelineFrame): Promise<void> {
    const ts = frame.capturedAt;
    const gate = lane.gate;
    const detect = !gate || gate.shouldDetect(frame, ts);
    if (gate) this.followStillness(lane, gate, ts);
    // A cut (the whole picture changed at once): whoever stands where a track was is someone new,
    // and must not inherit that track's cooldown (one person replacing another on a test camera).
    // A new scene is looked at whole on its first frame: the person pass and the close-up look are due
    // at once (a still picture is detected on that frame and then only every few seconds).
    if (gate?.cut) {
      lane.tracker.reset();
      lane.peopleAt = lane.closeUpAt = -Infinity;
      lane.personHeads = true;
    }
    if (gate && !detect) {
      lane.counters.framesSkippedStill++;
      // A still scene keeps its tracks and episodes alive: the last detections stand for this frame.
      this.judge(lane, frame, gate.lastDetections as Detection[], ts, false);
      return;
    }
    const t0 = performance.now();
    // Only the models some rule can act on now (schedule, zones of this camera).
    let labels = lane.rules.wantedLabels(this.opts.now?.() ?? ts);
    const animalsOn = [...lane.animalLabels].some((l) => labels.has(l));
    const animalsNow = animalsOn && (ts - lane.animalsAt >= ANIMALS_EVERY_MS || ts < lane.animalsAt);
    const smokingOnly = animalsOn && !SERVICE_HEAD_LABELS.some((l) => labels.has(l));
    const sparse = (l: string) => lane.animalLabels.has(l) || (smokingOnly && lane.smokingLabels.has(l));
    if (animalsNow) lane.animalsAt = ts;
    else if (animalsOn) labels = new Set([...labels].filter((l) => !sparse(l)));
    const peopleEvery = lane.personHeads ? PEOPLE_FOR_HEADS_EVERY_MS : PEOPLE_FOR_HEADS_IDLE_MS;
    const peopleForHeads = animalsOn ? animalsNow : ts - lane.peopleAt >= peopleEvery || ts < lane.peopleAt;
    if (peopleForHeads) lane.peopleAt = ts;
    const closeUp = peopleForHeads && (ts - lane.closeUpAt >= CLOSE_UP_EVERY_MS || ts < lane.closeUpAt);
    if (closeUp) lane.closeUpAt = ts;
    const detections = await this.opts.detector.detect(frame, { labels, peopleForHeads, closeUp });
    this.inferenceMs += performance.now() - t0;
    this.inferences++;
    for (const d of detections) if (d.attributes) this.headCrops++;
    // Idle rate only while faces account for every head in view (a faceless frame keeps the full rate).
    if (peopleForHeads) lane.personHeads = !detections.some((d) => d.source === 'face') || detections.some((d) => d.source === 'person');
    lane.counters.framesProcessed++;
    if (animalsNow) lane.animalsSeen = smokingOnly ? detections : detections.filter((d) => lane.animalLabels.has(d.label));
    // What a still picture repeats: the animals (and at night the heads) as last seen, also when this frame did not look.
    lane.gate?.remember(animalsOn && !animalsNow ? [...detections, ...lane.animalsSeen] : detections);
    this.judge(lane, frame, detections, ts, true);
  }

  /** Ask for idle sampling (a keyframe every idleFrameEverySec) once the picture has been still long enough, and back on a change. */
  private followStillness(lane: CameraLane, gate: MotionGate, ts: number): void {
    const after = lane.cfg.idleKeyframesAfterSec;
    if (after <= 0 || lane.cfg.keyframesOnly) return;
    const idle = lane.idle ? !gate.moved : gate.stillForMs(ts) >= after * 1000;
    if (idle === lane.idle) return;
    lane.idle = idle;
    log.info({ camera: lane.cfg.id, decode: idle ? 'keyframes' : 'full', stillSec: Math.round(gate.stillForMs(ts) / 1000) }, idle ? 'picture still: idle sampling' : 'picture changed: full decoding');
    this.emit('decode', lane.cfg.id, idle ? 'keyframes' : 'full');
  }

  /**
   * The camera's raw / cooked zones are looked at every `boards.everySec` (still pictures included:
   * a board put down while nothing else moves is still a board), when a mixed_boards rule is active.
   */
  private checkBoards(lane: CameraLane, frame: PipelineFrame, ts: number): Detection[] {
    const check = lane.boards;
    if (!check) return [];
    if (ts - lane.boardsAt >= check.code.everySec * 1000 || ts < lane.boardsAt) {
      lane.boardsAt = ts;
      const wanted = lane.rules.wantedLabels(this.opts.now?.() ?? ts);
      const t0 = performance.now();
      try {
        lane.boardsSeen = wanted.has('raw_board') || wanted.has('cooked_board') ? check.detect(frame) : [];
      } catch (err) {
        lane.boardsSeen = [];
        log.error({ err, camera: lane.cfg.id }, 'board check failed');
      }
      this.boardMs += performance.now() - t0;
      this.boardChecks++;
    }
    return lane.boardsSeen;
  }

  /** `fresh`: detections of a new inference (false: the motion gate repeats the last ones). */
  private judge(lane: CameraLane, frame: PipelineFrame, detections: readonly Detection[], ts: number, fresh: boolean): void {
    const boards = this.checkBoards(lane, frame, ts);
    if (boards.length) detections = [...detections, ...boards];
    // Heads are tracked whatever their attributes, then named by their track's vote (chef_hat, head, cigarette ...).
    const tracked = lane.heads.update(lane.tracker.update(detections, ts), ts, fresh);
    const violations = lane.rules.evaluate(tracked, this.opts.now?.() ?? ts, frame);
    if (violations.length === 0) return;
    // Evidence is encoded off the detection loop (frames are owned by the receiver: no copy needed).
    for (const v of violations) {
      lane.counters.eventsRaised++;
      const p = this.raise(lane, frame, tracked, v).finally(() => this.inflightEvidence.delete(p));
      this.inflightEvidence.add(p);
    }
  }

  /** Evidence, then the outbox (one transaction). Failures degrade the evidence, never drop the event. */
  private async raise(lane: CameraLane, frame: PipelineFrame, detections: readonly (Detection & { trackId: number })[], v: Violation): Promise<void> {
    const { config } = this.opts;
    const id = randomUUID();
    const info = {
      cameraName: lane.cfg.name,
      siteName: config.site.name,
      time: frame.capturedAt,
      kind: v.kind,
      timezone: config.site.timezone,
      violation: { label: v.label, score: v.score, box: v.box, trackId: v.trackId },
    };
    const clean = await encodeJpeg(frame);
    let annotated: Buffer;
    try {
      annotated = await annotate(frame, detections, info);
    } catch (err) {
      log.error({ err, eventId: id }, 'annotation failed; sending the clean frame as the annotated snapshot');
      annotated = clean;
    }
    const saved = await this.opts.evidence.save(id, frame.capturedAt, { annotated, clean });
    if (saved.error) log.error({ err: saved.error, eventId: id }, 'evidence not kept on disk; the event still goes out with its snapshots');
    const event: EventMessage = {
      v: PROTOCOL_VERSION,
      id,
      siteId: config.site.id,
      cameraId: lane.cfg.id,
      cameraName: lane.cfg.name,
      kind: v.kind,
      severity: v.severity,
      ruleId: v.ruleId,
      trackId: v.trackId,
      label: v.label,
      score: round(v.score, 4),
      box: v.box.map((x) => round(x, 1)) as EventMessage['box'],
      zone: v.zone,
      startedAt: Math.round(v.startedAt),
      capturedAt: Math.round(frame.capturedAt),
      raisedAt: Date.now(),
      durationSec: round(v.durationSec, 2),
      frame: { width: frame.width, height: frame.height },
      detections: detections.slice(0, 200).map((d) => ({ label: d.label, score: round(d.score, 4), box: d.box.map((x) => round(x, 1)) as EventMessage['box'], trackId: d.trackId })),
      snapshots: {
        annotated: { sha256: saved.annotated.sha256, bytes: saved.annotated.bytes },
        clean: { sha256: saved.clean.sha256, bytes: saved.clean.bytes },
      },
      ...(v.experimental ? { experimental: true } : {}),
    };
    this.opts.outbox.enqueue(eventOutboxMessages({ event, annotatedJpeg: annotated, cleanJpeg: clean, topicPrefix: config.uplink?.topicPrefix }));
    log.info({ eventId: id, camera: lane.cfg.id, kind: v.kind, trackId: v.trackId, severity: v.severity }, 'violation raised');
    this.emit('event', event);
  }
}

function round(x: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

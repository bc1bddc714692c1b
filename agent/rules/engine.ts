/**
 * Streaming rule engine, one per camera. Per (rule, track) it keeps an episode:
 *  - an episode starts on the first frame where the track matches the rule (see match.ts) while the
 *    rule is active (schedule, or `alwaysInFoodZones` with the subject in a food zone);
 *  - it continues while matches are at most `maxGapMs` apart (one or two missed frames at 1-2 fps);
 *  - it raises a Violation once it has lasted >= minDurationSec, and again at most once per
 *    cooldownSec while it persists;
 *  - when a track keeps being seen but stops matching (mask put on), the episode ends but its
 *    cooldown stays, so a flickering detector cannot raise an alarm every few seconds;
 *  - when the track itself has not been seen for more than `maxGapMs`, everything about it is
 *    forgotten; a returning object gets a new track id from the tracker and a new episode.
 */
import type { BoxXYXY } from '../../common/geometry.js';
import { childLog } from '../../common/log.js';
import type { ViolationKind, Severity } from '../../protocol/violations.js';
import type { RuleConfig, ZoneConfig } from '../config/schema.js';
import { checkFrame, matchSubjects, unknownZoneRefs, zonesToPx, type FrameSize, type PxZone, type RuleDetection } from './match.js';
import { checkTimeZone, inServiceHours, type ServiceHours } from './schedule.js';

export interface TrackedRuleDetection extends RuleDetection {
  trackId: number;
}

export interface Violation {
  ruleId: string;
  kind: ViolationKind;
  severity: Severity;
  trackId: number;
  label: string;
  score: number;
  box: [number, number, number, number];
  zone: string | null;
  /** Timestamp (ms) of the first matching frame of the episode. */
  startedAt: number;
  durationSec: number;
  experimental: boolean;
}

export interface RuleEngineOptions {
  /** Effective rules (built-ins merged with the site's, see rulesForSite); disabled ones are skipped. */
  rules: readonly RuleConfig[];
  /** The camera's zones (normalised points). */
  zones?: readonly ZoneConfig[];
  serviceHours: readonly ServiceHours[];
  /** IANA zone of the site, e.g. Asia/Shanghai. */
  timezone: string;
  /** Largest gap between two matching frames that still continues an episode. Default 2000 ms. */
  maxGapMs?: number;
  /** For log lines. */
  cameraId?: string;
}

interface Episode {
  startedAt: number;
  lastMatchAt: number;
  lastAlertAt: number | null;
  active: boolean;
}

export class RuleEngine {
  private readonly rules: RuleConfig[];
  private readonly zones: readonly ZoneConfig[];
  private readonly serviceHours: readonly ServiceHours[];
  private readonly timezone: string;
  private readonly maxGapMs: number;
  private readonly log;
  private pxZones: PxZone[] = [];
  private pxFor = '';
  /** key `${ruleId}\u0000${trackId}` */
  private episodes = new Map<string, Episode & { trackId: number }>();
  private trackSeen = new Map<number, number>();
  private warnedNoTrack = false;
  private wanted: { minute: number; labels: ReadonlySet<string> } | null = null;

  constructor(opts: RuleEngineOptions) {
    this.rules = opts.rules.filter((r) => r.enabled);
    this.zones = opts.zones ?? [];
    this.serviceHours = opts.serviceHours;
    this.timezone = opts.timezone;
    this.maxGapMs = opts.maxGapMs ?? 2000;
    this.log = childLog({ stage: 'rules', camera: opts.cameraId });
    checkTimeZone(this.timezone);
    for (const r of this.rules) {
      const unknown = unknownZoneRefs(r, this.zones);
      if (unknown.length > 0) {
        this.log.warn({ ruleId: r.id, unknown }, `rule "${r.id}" refers to zones ${unknown.map((u) => `"${u}"`).join(', ')} that this camera does not have; it can only match in its other zones`);
      }
    }
  }

  /** Which schedules are active at `ts`: `always`, plus `service` or `closed`. */
  scheduleActive(schedule: RuleConfig['schedule'], ts: number): boolean {
    if (schedule === 'always') return true;
    const service = inServiceHours(ts, this.serviceHours, this.timezone);
    return schedule === 'service' ? service : !service;
  }

  /**
   * Labels some rule could act on at `ts` on this camera: those of the rules whose schedule is
   * active, or that are `alwaysInFoodZones` where the camera has a food zone, and whose zone
   * restriction names a zone this camera has. The pipeline runs only the models that can produce one
   * of them (a camera without a food zone needs no animal detector during service hours; at night
   * no face model). Schedules have minute resolution, so the set is computed once a minute.
   */
  wantedLabels(ts: number): ReadonlySet<string> {
    const minute = Math.floor(ts / 60_000);
    if (this.wanted?.minute === minute) return this.wanted.labels;
    const hasFood = this.zones.some((z) => z.kind === 'food');
    const labels = new Set<string>();
    for (const rule of this.rules) {
      if (!this.scheduleActive(rule.schedule, ts) && !(rule.alwaysInFoodZones && hasFood)) continue;
      if (rule.zones.length > 0 && !this.zones.some((z) => rule.zones.includes(z.id) || rule.zones.includes(z.kind))) continue;
      for (const l of [...rule.labels, ...rule.unless, ...rule.with]) labels.add(l);
    }
    this.wanted = { minute, labels };
    return labels;
  }

  /** One frame: tracked detections at `ts` (ms) in a frame of `frame` pixels → violations to raise now. */
  evaluate(dets: readonly TrackedRuleDetection[], ts: number, frame: FrameSize): Violation[] {
    checkFrame(frame);
    const key = `${frame.width}x${frame.height}`;
    if (key !== this.pxFor) {
      this.pxZones = zonesToPx(this.zones, frame);
      this.pxFor = key;
    }
    const tracked = dets.filter((d) => Number.isInteger(d.trackId));
    if (tracked.length !== dets.length && !this.warnedNoTrack) {
      this.warnedNoTrack = true;
      this.log.warn({ missing: dets.length - tracked.length }, 'detections without trackId reached the rule engine; they are ignored (run the tracker first)');
    }
    for (const d of tracked) this.trackSeen.set(d.trackId, ts);

    const out: Violation[] = [];
    const scheduleCache = new Map<string, boolean>();
    for (const rule of this.rules) {
      let sched = scheduleCache.get(rule.schedule);
      if (sched === undefined) {
        sched = this.scheduleActive(rule.schedule, ts);
        scheduleCache.set(rule.schedule, sched);
      }
      if (!sched && !rule.alwaysInFoodZones) continue;
      const matched = new Set<number>();
      for (const m of matchSubjects(rule, tracked, this.pxZones)) {
        if (!sched && !(rule.alwaysInFoodZones && m.inFood)) continue;
        const d = m.det;
        if (matched.has(d.trackId)) continue; // two boxes with one id: first wins
        matched.add(d.trackId);
        const k = `${rule.id}\u0000${d.trackId}`;
        let ep = this.episodes.get(k);
        if (!ep) {
          ep = { trackId: d.trackId, startedAt: ts, lastMatchAt: ts, lastAlertAt: null, active: true };
          this.episodes.set(k, ep);
        } else if (!ep.active || ts - ep.lastMatchAt > this.maxGapMs) {
          ep.startedAt = ts;
          ep.active = true;
        }
        ep.lastMatchAt = ts;
        const durationMs = ts - ep.startedAt;
        if (durationMs < rule.minDurationSec * 1000) continue;
        if (ep.lastAlertAt !== null && ts - ep.lastAlertAt < rule.cooldownSec * 1000) continue;
        ep.lastAlertAt = ts;
        out.push({
          ruleId: rule.id,
          kind: rule.kind,
          severity: rule.severity,
          trackId: d.trackId,
          label: d.label,
          score: d.score,
          box: [d.box[0], d.box[1], d.box[2], d.box[3]],
          zone: m.zone,
          startedAt: ep.startedAt,
          durationSec: durationMs / 1000,
          experimental: rule.experimental,
        });
      }
    }

    // End stale episodes; forget tracks that are gone.
    for (const [k, ep] of this.episodes) {
      const seen = this.trackSeen.get(ep.trackId);
      if (seen === undefined || ts - seen > this.maxGapMs) this.episodes.delete(k);
      else if (ep.active && ts - ep.lastMatchAt > this.maxGapMs) ep.active = false;
    }
    for (const [id, seen] of this.trackSeen) if (ts - seen > this.maxGapMs) this.trackSeen.delete(id);
    return out;
  }

  /** Number of (rule, track) states held (for tests and status). */
  get stateSize(): number {
    return this.episodes.size;
  }
}

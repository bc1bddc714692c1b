/**
 * The frame-level condition of a rule, without time: which detections are subjects of a rule in
 * this frame. Shared by the streaming engine and the still-image evaluation.
 *
 * - subject: label in `labels`, score >= `minScore`.
 * - position: the subject's anchor point, the bottom-centre for people and animals (where they
 *   stand) and the box centre for everything else (faces, heads, cigarettes, boards).
 * - `zones`: entries name zone ids or zone kinds; the anchor must lie in a matching zone. Empty =
 *   whole frame. The reported zone is the first matching zone, or (no restriction) the first camera
 *   zone containing the anchor, or null.
 * - `unless`: a detection with one of these labels (any score the detector kept) excuses the
 *   subject when it overlaps the subject's "wearing region" by >= 40 % of either box. The region is
 *   the subject box extended upwards by half its height (a hat sits above the head box); for a
 *   `person` subject it is the top quarter of the body (+10 % above).
 * - `with`: a companion with one of these labels and score >= `minScore` must lie in a zone that
 *   also contains the subject (restricted to the rule's zones when it has some); when the subject is
 *   in no zone at all, anywhere in the frame.
 */
import { coverage, center, pointInPolygon, type BoxXYXY, type Point } from '../../common/geometry.js';
import type { RuleConfig, ZoneConfig } from '../config/schema.js';

export interface RuleDetection {
  label: string;
  score: number;
  box: BoxXYXY;
  trackId?: number;
}

export interface FrameSize {
  width: number;
  height: number;
}

export interface PxZone {
  id: string;
  kind: ZoneConfig['kind'];
  poly: Point[];
}

export interface SubjectMatch<D extends RuleDetection> {
  det: D;
  zone: string | null;
  /** The anchor lies in a zone of kind `food`. */
  inFood: boolean;
}

export const ZONE_KINDS = ['food', 'raw', 'cooked', 'general'] as const;
const STANDING = new Set(['person', 'rodent', 'cat', 'dog']);
export const UNLESS_MIN_OVERLAP = 0.4;

export function checkFrame(frame: FrameSize): void {
  if (!(frame.width > 0 && frame.height > 0)) {
    throw new Error(`rules: frame size must be positive, got ${frame.width}x${frame.height}`);
  }
}

export function zonesToPx(zones: readonly ZoneConfig[], frame: FrameSize): PxZone[] {
  return zones.map((z) => ({ id: z.id, kind: z.kind, poly: z.points.map(([x, y]) => [x * frame.width, y * frame.height] as const) }));
}

export function anchor(d: RuleDetection): Point {
  const [cx, cy] = center(d.box);
  return STANDING.has(d.label) ? [cx, d.box[3]] : [cx, cy];
}

function wearingRegion(d: RuleDetection): BoxXYXY {
  const [x1, y1, x2, y2] = d.box;
  const h = y2 - y1;
  if (d.label === 'person') return [x1, y1 - 0.1 * h, x2, y1 + 0.25 * h];
  return [x1, y1 - 0.5 * h, x2, y2];
}

export function excuses(u: RuleDetection, subject: RuleDetection): boolean {
  const r = wearingRegion(subject);
  return coverage(u.box, r) >= UNLESS_MIN_OVERLAP || coverage(r, u.box) >= UNLESS_MIN_OVERLAP;
}

/** Zone ids / kinds in a rule that match no zone of this camera and are not a zone kind. */
export function unknownZoneRefs(rule: RuleConfig, zones: readonly ZoneConfig[]): string[] {
  return rule.zones.filter((ref) => !(ZONE_KINDS as readonly string[]).includes(ref) && !zones.some((z) => z.id === ref));
}

/**
 * Subjects of `rule` in one frame. `zones === null` means "zones unknown" (still images without a
 * camera config): rules restricted to zones then match nothing, and the rest see the whole frame.
 */
export function matchSubjects<D extends RuleDetection>(rule: RuleConfig, dets: readonly D[], zones: readonly PxZone[] | null): SubjectMatch<D>[] {
  if (zones === null && rule.zones.length > 0) return [];
  const zs = zones ?? [];
  const out: SubjectMatch<D>[] = [];
  const containingOf = new Map<D, PxZone[]>();
  const containing = (d: D): PxZone[] => {
    let c = containingOf.get(d);
    if (!c) {
      const p = anchor(d);
      c = zs.filter((z) => pointInPolygon(p, z.poly));
      containingOf.set(d, c);
    }
    return c;
  };
  for (const d of dets) {
    if (!rule.labels.includes(d.label) || d.score < rule.minScore) continue;
    const inZones = containing(d);
    const allowed = rule.zones.length > 0 ? inZones.filter((z) => rule.zones.includes(z.id) || rule.zones.includes(z.kind)) : inZones;
    if (rule.zones.length > 0 && allowed.length === 0) continue;
    if (rule.unless.length > 0 && dets.some((u) => u !== d && rule.unless.includes(u.label) && excuses(u, d))) continue;
    if (rule.with.length > 0) {
      const hasCompanion = dets.some((c) => {
        if (c === d || !rule.with.includes(c.label) || c.score < rule.minScore) return false;
        if (allowed.length === 0) return true; // subject outside every zone: the frame is the area
        const cz = containing(c);
        return allowed.some((z) => cz.includes(z));
      });
      if (!hasCompanion) continue;
    }
    out.push({ det: d, zone: allowed[0]?.id ?? null, inFood: inZones.some((z) => z.kind === 'food') });
  }
  return out;
}

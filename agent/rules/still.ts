/**
 * Still-image evaluation for the `detect` CLI: which rules' frame conditions hold in one photo,
 * ignoring duration, cooldown and schedule. Rules restricted to zones only apply when zones are given.
 */
import type { BoxXYXY } from '../../common/geometry.js';
import type { Severity, ViolationKind } from '../../protocol/violations.js';
import type { RuleConfig, ZoneConfig } from '../config/schema.js';
import { builtinRules } from './builtin.js';
import { checkFrame, matchSubjects, zonesToPx, type FrameSize, type RuleDetection } from './match.js';

export interface StillViolation {
  kind: ViolationKind;
  ruleId: string;
  label: string;
  score: number;
  box: [number, number, number, number];
  severity: Severity;
}

export interface StillOptions {
  /** Zones of the camera the photo comes from (normalised points). */
  zones?: readonly ZoneConfig[];
  /** Rules to apply; default: the built-in set. */
  rules?: readonly RuleConfig[];
}

export function evaluateStill(dets: readonly RuleDetection[], frame: FrameSize, opts: StillOptions = {}): StillViolation[] {
  checkFrame(frame);
  const rules = (opts.rules ?? builtinRules()).filter((r) => r.enabled);
  const zones = opts.zones ? zonesToPx(opts.zones, frame) : null;
  const out: StillViolation[] = [];
  for (const rule of rules) {
    for (const m of matchSubjects(rule, dets, zones)) {
      const b: BoxXYXY = m.det.box;
      out.push({ kind: rule.kind, ruleId: rule.id, label: m.det.label, score: m.det.score, box: [b[0], b[1], b[2], b[3]], severity: rule.severity });
    }
  }
  return out;
}

/**
 * Violation-level evaluation at image level: for each photo, is a violation of one kind raised by
 * the still-image rules (what `npm run detect` reports), and is the photo a positive (it shows the
 * violation) or a negative (it does not)? From those outcomes: recall on positives, false-alarm
 * rate on negatives, precision over the raised images. Pure: no files, no models.
 */
import { VIOLATION_KINDS, type ViolationKind } from '../../protocol/violations.js';
import type { RuleConfig } from '../config/schema.js';
import type { StillViolation } from '../rules/still.js';

/** `s` as a violation kind; the error names the bad value and the valid ones. */
export function parseViolationKind(s: string, flag = '--violation'): ViolationKind {
  const k = s.trim();
  if ((VIOLATION_KINDS as readonly string[]).includes(k)) return k as ViolationKind;
  throw new Error(`${flag}: unknown violation kind "${s}" (valid: ${VIOLATION_KINDS.join(', ')})`);
}

/** The enabled rules that raise `kind`, and the detection labels they look at (subjects, `unless`, `with`). */
export function rulesOfKind(rules: readonly RuleConfig[], kind: ViolationKind): { rules: RuleConfig[]; subjects: Set<string>; labels: Set<string> } {
  const of = rules.filter((r) => r.enabled && r.kind === kind);
  return {
    rules: of,
    subjects: new Set(of.flatMap((r) => r.labels)),
    labels: new Set(of.flatMap((r) => [...r.labels, ...r.unless, ...r.with])),
  };
}

export interface Judgement {
  raised: boolean;
  /** Highest score among the violations of the kind; null when none is raised. */
  score: number | null;
  /** Violations of the kind in the photo (one per subject, e.g. per bare face). */
  count: number;
}

/** Whether the still-rule result of one photo raises `kind`. */
export function judge(violations: readonly StillViolation[], kind: ViolationKind): Judgement {
  const of = violations.filter((v) => v.kind === kind);
  if (of.length === 0) return { raised: false, score: null, count: 0 };
  return { raised: true, score: Math.max(...of.map((v) => v.score)), count: of.length };
}

export interface ViolationOutcome extends Judgement {
  file: string;
  /** The photo shows the violation (a positive) or not (a negative). */
  positive: boolean;
  /** Where the photo was listed: a folder, or a labels CSV. */
  source: string;
}

export interface SourceCount {
  source: string;
  positive: boolean;
  images: number;
  raised: number;
}

export interface ViolationMetrics {
  positives: number;
  /** Positives on which the violation is raised. */
  truePositives: number;
  /** Positives on which it is not. */
  misses: number;
  /** truePositives / positives; null without positives. */
  recall: number | null;
  negatives: number;
  /** Negatives on which the violation is raised. */
  falseAlarms: number;
  /** falseAlarms / negatives; null without negatives. */
  falseAlarmRate: number | null;
  /** truePositives / (truePositives + falseAlarms); null when nothing is raised. */
  precision: number | null;
  /** The same counts per source (folder or CSV), positives and negatives apart, in input order. */
  sources: SourceCount[];
}

const ratio = (a: number, b: number): number | null => (b > 0 ? a / b : null);

export function scoreViolations(outcomes: readonly ViolationOutcome[]): ViolationMetrics {
  let positives = 0;
  let tp = 0;
  let negatives = 0;
  let fp = 0;
  const sources = new Map<string, SourceCount>();
  for (const o of outcomes) {
    if (o.positive) {
      positives++;
      if (o.raised) tp++;
    } else {
      negatives++;
      if (o.raised) fp++;
    }
    const key = `${o.positive ? '+' : '-'}${o.source}`;
    let s = sources.get(key);
    if (!s) sources.set(key, (s = { source: o.source, positive: o.positive, images: 0, raised: 0 }));
    s.images++;
    if (o.raised) s.raised++;
  }
  return {
    positives,
    truePositives: tp,
    misses: positives - tp,
    recall: ratio(tp, positives),
    negatives,
    falseAlarms: fp,
    falseAlarmRate: ratio(fp, negatives),
    precision: ratio(tp, tp + fp),
    sources: [...sources.values()],
  };
}

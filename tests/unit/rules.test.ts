import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { RuleSchema, ZoneSchema, type RuleConfig, type ZoneConfig } from '../../agent/config/schema.js';
import {
  RuleEngine,
  builtinRules,
  evaluateStill,
  inServiceHours,
  mergeRules,
  rulesForSite,
  type TrackedRuleDetection,
} from '../../agent/rules/index.js';

type Box = [number, number, number, number];
const FRAME = { width: 1280, height: 720 };
const TZ = 'Asia/Shanghai';
const SERVICE = [{ days: ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'] as const, from: '06:00', to: '20:00' }].map((h) => ({ ...h, days: [...h.days] }));
/** Wednesday 2025-03-05 at hh:mm in Shanghai (UTC+8). */
const sh = (hh: number, mm = 0) => Date.UTC(2025, 2, 5, hh - 8, mm);
const NOON = sh(12);
const NIGHT = sh(23);

const d = (label: string, trackId: number, box: Box, score = 0.9): TrackedRuleDetection => ({ label, score, box, trackId });
const rule = (r: Record<string, unknown>): RuleConfig => RuleSchema.parse(r);
const zone = (z: Record<string, unknown>): ZoneConfig => ZoneSchema.parse(z);
const engine = (rules: RuleConfig[] = builtinRules(), zones: ZoneConfig[] = [], serviceHours = SERVICE) =>
  new RuleEngine({ rules, zones, serviceHours, timezone: TZ });

/** Feeds `frames` frames `stepMs` apart starting at t0; `at(i)` gives the detections of frame i. */
function run(e: RuleEngine, t0: number, frames: number, stepMs: number, at: (i: number, ts: number) => TrackedRuleDetection[]) {
  const alarms: { ts: number; v: ReturnType<RuleEngine['evaluate']>[number] }[] = [];
  for (let i = 0; i < frames; i++) {
    const ts = t0 + i * stepMs;
    for (const v of e.evaluate(at(i, ts), ts, FRAME)) alarms.push({ ts, v });
  }
  return alarms;
}

const FACE: Box = [600, 200, 660, 270];

describe('rule engine: duration, cooldown, episodes', () => {
  it('raises nothing before 3 s and exactly one alarm at 3 s', () => {
    const e = engine();
    const alarms = run(e, NOON, 7, 500, () => [d('face', 1, FACE)]); // 0 .. 3.0 s
    expect(alarms).toHaveLength(1);
    expect(alarms[0]!.ts).toBe(NOON + 3000);
    expect(alarms[0]!.v).toMatchObject({ ruleId: 'no_mask', kind: 'no_mask', severity: 2, trackId: 1, label: 'face', startedAt: NOON, durationSec: 3, zone: null, experimental: false });
    const six = run(engine(), NOON, 6, 500, () => [d('face', 1, FACE)]); // 0 .. 2.5 s
    expect(six).toHaveLength(0);
  });

  it('repeats only after the 30 s cooldown while the target persists (one per person)', () => {
    const e = engine();
    const alarms = run(e, NOON, 131, 500, () => [d('face', 1, FACE), d('face', 2, [100, 100, 150, 160])]); // 0 .. 65 s
    const t1 = alarms.filter((a) => a.v.trackId === 1).map((a) => a.ts - NOON);
    const t2 = alarms.filter((a) => a.v.trackId === 2).map((a) => a.ts - NOON);
    expect(t1).toEqual([3000, 33000, 63000]);
    expect(t2).toEqual([3000, 33000, 63000]);
    expect(alarms.at(-1)!.v.durationSec).toBe(63);
  });

  it('tolerates one or two missed frames, but a longer gap restarts the persistence clock', () => {
    const short = run(engine(), NOON, 7, 500, (i) => (i === 2 || i === 3 ? [] : [d('face', 1, FACE)]));
    expect(short.map((a) => a.ts - NOON)).toEqual([3000]);
    // missing 1.0 .. 3.5 s (gap of 3 s between matches): the episode restarts at 4.0 s
    const long = run(engine(), NOON, 20, 500, (i) => (i >= 2 && i <= 7 ? [] : [d('face', 1, FACE)]));
    expect(long.map((a) => a.ts - NOON)).toEqual([7000]);
    expect(long[0]!.v.startedAt).toBe(NOON + 4000);
  });

  it('starts a new episode (and alarm) after the track has gone, even within the cooldown', () => {
    const e = engine();
    // present 0..5 s, gone 5.5..10 s, back as a track 10.5..15 s
    const alarms = run(e, NOON, 31, 500, (i) => (i <= 10 ? [d('face', 7, FACE)] : i <= 20 ? [] : [d('face', 7, FACE)]));
    expect(alarms.map((a) => a.ts - NOON)).toEqual([3000, 13500]);
    expect(alarms[1]!.v.startedAt).toBe(NOON + 10500);
    // the gone track's state is dropped
    const e2 = engine();
    run(e2, NOON, 4, 500, () => [d('face', 1, FACE)]);
    expect(e2.stateSize).toBe(1);
    e2.evaluate([], NOON + 10_000, FRAME);
    expect(e2.stateSize).toBe(0);
  });

  it('keeps the cooldown when a visible target flickers in and out of the condition', () => {
    // after the alarm at 3 s the face score dips below minScore for 5 s, then it is bare again
    const alarms = run(engine(), NOON, 80, 500, (i) => [d('face', 1, FACE, i > 6 && i <= 16 ? 0.3 : 0.9)]);
    expect(alarms.map((a) => a.ts - NOON)).toEqual([3000, 33000]);
  });

  it('never raises more than one alarm per rule and track within a cooldown window (property)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ present: fc.boolean(), step: fc.integer({ min: 100, max: 2500 }), tracks: fc.integer({ min: 1, max: 3 }) }), { minLength: 1, maxLength: 200 }),
        fc.integer({ min: 0, max: 10 }),
        fc.integer({ min: 1, max: 40 }),
        (frames, minDur, cooldown) => {
          const r = rule({ id: 'r', kind: 'smoking', labels: ['cigarette'], minDurationSec: minDur, cooldownSec: cooldown });
          const e = engine([r]);
          let ts = NOON;
          const last = new Map<number, number>();
          // like the tracker: an object unseen for longer than its max age comes back with a new id
          const ids = [1, 2, 3];
          const lastPresent = [-Infinity, -Infinity, -Infinity];
          let nextId = 4;
          for (const f of frames) {
            ts += f.step;
            const n = f.present ? f.tracks : 0;
            for (let k = 0; k < n; k++) {
              if (ts - lastPresent[k]! > 2000) ids[k] = nextId++;
              lastPresent[k] = ts;
            }
            const dets = Array.from({ length: n }, (_, k) => d('cigarette', ids[k]!, [100 * k, 10, 100 * k + 20, 20]));
            for (const v of e.evaluate(dets, ts, FRAME)) {
              const prev = last.get(v.trackId);
              if (prev !== undefined && ts - prev < cooldown * 1000) return false;
              if (v.durationSec < minDur) return false;
              last.set(v.trackId, ts);
            }
          }
          return true;
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe('rule engine: schedule, zones, severity', () => {
  it('service rules fire during service hours only; smoking always', () => {
    const dets = (i: number) => [d('face', 1, FACE), d('cigarette', 2, [620, 260, 640, 266], i ? 0.8 : 0.8)];
    const day = run(engine(), NOON, 7, 500, dets).map((a) => a.v.kind).sort();
    expect(day).toEqual(['no_mask', 'smoking']);
    const night = run(engine(), NIGHT, 7, 500, dets).map((a) => a.v.kind);
    expect(night).toEqual(['smoking']);
    expect(run(engine(), NIGHT, 7, 500, dets)[0]!.v.severity).toBe(1);
  });

  it('evaluates service hours in the site time zone, including overnight ranges', () => {
    expect(inServiceHours(sh(5, 59), SERVICE, TZ)).toBe(false);
    expect(inServiceHours(sh(6, 0), SERVICE, TZ)).toBe(true);
    expect(inServiceHours(sh(19, 59), SERVICE, TZ)).toBe(true);
    expect(inServiceHours(sh(20, 0), SERVICE, TZ)).toBe(false);
    // 12:00 UTC is 20:00 in Shanghai: closed there, although it is noon in UTC
    expect(inServiceHours(Date.UTC(2025, 2, 5, 12), SERVICE, TZ)).toBe(false);
    expect(inServiceHours(Date.UTC(2025, 2, 5, 12), SERVICE, 'UTC')).toBe(true);
    const night = [{ days: ['fri' as const], from: '22:00', to: '06:00' }];
    const fri = (hh: number) => Date.UTC(2025, 2, 7, hh - 8); // Friday 2025-03-07 local
    expect(inServiceHours(fri(23), night, TZ)).toBe(true); // Fri 23:00
    expect(inServiceHours(fri(27), night, TZ)).toBe(true); // Sat 03:00
    expect(inServiceHours(fri(3), night, TZ)).toBe(false); // Fri 03:00 (Thursday's night is not listed)
    expect(inServiceHours(fri(12), night, TZ)).toBe(false);
    expect(inServiceHours(fri(30), night, TZ)).toBe(false); // Sat 06:00
    // a night-shift kitchen: "closed" rules (rodent) are then active by day
    const e = engine(builtinRules(), [], [{ days: ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'], from: '22:00', to: '06:00' }]);
    expect(e.scheduleActive('closed', NOON)).toBe(true);
    expect(e.scheduleActive('service', sh(2))).toBe(true);
    expect(e.scheduleActive('service', NIGHT)).toBe(true);
  });

  it('rejects an unknown time zone with a clear error', () => {
    expect(() => new RuleEngine({ rules: builtinRules(), serviceHours: SERVICE, timezone: 'Asia/Shangai' })).toThrow(/site\.timezone "Asia\/Shangai"/);
  });

  it('rodent: at night anywhere, by day only inside a food zone (bottom-centre anchor)', () => {
    const food = zone({ id: 'prep', name: 'prep table', kind: 'food', points: [[0.5, 0.5], [1, 0.5], [1, 1], [0.5, 1]] });
    const inside: Box = [900, 500, 960, 540]; // bottom-centre (930, 540) inside
    const outside: Box = [100, 500, 160, 540];
    // box centre (y 350) outside the zone (y >= 360), bottom-centre (y 400) inside: animals count where they stand
    const straddling: Box = [900, 300, 960, 400];
    const day = run(engine(builtinRules(), [food]), NOON, 3, 500, () => [d('rodent', 1, inside), d('rodent', 2, outside), d('cat', 3, straddling)]);
    expect(day.map((a) => a.v.trackId)).toEqual([1, 3]);
    expect(day[0]!.v).toMatchObject({ kind: 'rodent', zone: 'prep', severity: 1, durationSec: 1 });
    const night = run(engine(builtinRules(), [food]), NIGHT, 3, 500, () => [d('rodent', 1, inside), d('rodent', 2, outside), d('cat', 3, straddling)]);
    expect(night.map((a) => a.v.trackId).sort()).toEqual([1, 2, 3]);
  });

  it('wantedLabels: the labels of the rules that can fire on this camera now (what the pipeline runs models for)', () => {
    const food = zone({ id: 'prep', name: 'prep table', kind: 'food', points: [[0.5, 0.5], [1, 0.5], [1, 1], [0.5, 1]] });
    const cooked = zone({ id: 'hot', name: 'hot line', kind: 'cooked', points: [[0, 0], [0.5, 0], [0.5, 0.5]] });
    const sorted = (s: ReadonlySet<string>) => [...s].sort();
    // Service hours, no zones: faces, hats, cigarettes, boards with companions; no animals.
    expect(sorted(engine().wantedLabels(NOON))).toEqual(['chef_hat', 'cigarette', 'cooked_board', 'cooked_knife', 'face', 'head', 'raw_board', 'raw_knife']);
    // A food zone adds the animal rule during service.
    expect(sorted(engine(builtinRules(), [food]).wantedLabels(NOON))).toEqual(expect.arrayContaining(['face', 'rodent', 'cat', 'dog']));
    // Kitchen closed: animals and cigarettes, no faces or hats.
    const night = engine().wantedLabels(NIGHT);
    expect(sorted(night)).toEqual(expect.arrayContaining(['rodent', 'cat', 'dog', 'cigarette']));
    expect(night.has('face') || night.has('head')).toBe(false);
    // A rule restricted to a zone kind the camera lacks wants nothing.
    const inCooked = rule({ id: 'cig_cooked', kind: 'smoking', labels: ['cigarette'], zones: ['cooked'] });
    expect(sorted(engine([inCooked]).wantedLabels(NOON))).toEqual([]);
    expect(sorted(engine([inCooked], [cooked]).wantedLabels(NOON))).toEqual(['cigarette']);
    // The set follows the clock (recomputed each minute).
    const e = engine();
    expect(e.wantedLabels(sh(19, 59)).has('face')).toBe(true);
    expect(e.wantedLabels(sh(20, 1)).has('face')).toBe(false);
  });

  it('restricts a rule to zones named by id or by kind (polygon, not bounding box)', () => {
    // a triangle: the point (0.9, 0.1) is inside its bounding box but outside the triangle
    const tri = zone({ id: 'z1', name: 'triangle', kind: 'raw', points: [[0, 0], [1, 0], [0, 1]] });
    const byId = rule({ id: 'cig_z1', kind: 'smoking', labels: ['cigarette'], zones: ['z1'] });
    const byKind = rule({ id: 'cig_raw', kind: 'smoking', labels: ['cigarette'], zones: ['raw'] });
    const at = (x: number, y: number): Box => [x * 1280 - 5, y * 720 - 5, x * 1280 + 5, y * 720 + 5];
    const res = run(engine([byId, byKind], [tri]), NOON, 7, 500, () => [d('cigarette', 1, at(0.2, 0.2)), d('cigarette', 2, at(0.9, 0.8))]);
    expect(res.map((a) => `${a.v.ruleId}:${a.v.trackId}:${a.v.zone}`).sort()).toEqual(['cig_raw:1:z1', 'cig_z1:1:z1']);
  });

  it('applies minScore and severity tiers from the rules', () => {
    const dets = () => [d('face', 1, FACE, 0.55), d('head', 2, [100, 100, 160, 170]), d('cigarette', 3, [10, 10, 20, 14])];
    const res = run(engine(), NOON, 7, 500, dets);
    expect(res.map((a) => [a.v.kind, a.v.severity]).sort()).toEqual([['no_hat', 3], ['smoking', 1]]);
  });
});

describe('rule engine: unless and with', () => {
  const HEAD: Box = [600, 200, 660, 270];
  it('no_hat: a head with a chef hat on it raises nothing; a hat on someone else does not excuse', () => {
    const hatOn: Box = [595, 150, 665, 210];
    const hatNextDoor: Box = [800, 150, 870, 210];
    const withHat = run(engine(), NOON, 10, 500, () => [d('head', 1, HEAD), d('chef_hat', 2, hatOn)]);
    expect(withHat).toHaveLength(0);
    const otherHat = run(engine(), NOON, 10, 500, () => [d('head', 1, HEAD), d('chef_hat', 2, hatNextDoor)]);
    expect(otherHat.map((a) => a.v.kind)).toEqual(['no_hat']);
  });

  it('a person subject uses the top of the body for `unless`', () => {
    const r = rule({ id: 'no_hat_person', kind: 'no_hat', labels: ['person'], unless: ['chef_hat'], minDurationSec: 0 });
    const person: Box = [500, 100, 620, 500];
    const hatOnHead = evaluateStill([d('person', 1, person), d('chef_hat', 2, [530, 70, 590, 120])], FRAME, { rules: [r] });
    expect(hatOnHead).toHaveLength(0);
    const hatInHand = evaluateStill([d('person', 1, person), d('chef_hat', 2, [530, 380, 590, 430])], FRAME, { rules: [r] });
    expect(hatInHand).toHaveLength(1);
  });

  it('mixed_boards: a raw tool with a cooked tool in the same zone; wrong-kind zones', () => {
    const raw = zone({ id: 'rawdesk', name: '生食区', kind: 'raw', points: [[0, 0], [0.5, 0], [0.5, 1], [0, 1]] });
    const cooked = zone({ id: 'cookdesk', name: '熟食区', kind: 'cooked', points: [[0.5, 0], [1, 0], [1, 1], [0.5, 1]] });
    const rules = rulesForSite([]);
    const still = (dets: TrackedRuleDetection[], zones?: ZoneConfig[]) => evaluateStill(dets, FRAME, { zones, rules }).map((v) => v.ruleId).sort();
    // raw board on the raw desk, cooked knife on the cooked desk: correct, nothing
    expect(still([d('raw_board', 1, [100, 300, 300, 400]), d('cooked_knife', 2, [900, 300, 1000, 320])], [raw, cooked])).toEqual([]);
    // cooked knife brought onto the raw desk, next to the raw board
    expect(still([d('raw_board', 1, [100, 300, 300, 400]), d('cooked_knife', 2, [200, 300, 300, 320])], [raw, cooked])).toEqual(['mixed_boards', 'mixed_boards_cooked_in_raw']);
    // raw board on the cooked desk, alone
    expect(still([d('raw_board', 1, [900, 300, 1100, 400])], [raw, cooked])).toEqual(['mixed_boards_raw_in_cooked']);
    // no zones known: only the whole-frame `with` rule applies
    expect(still([d('raw_board', 1, [100, 300, 300, 400]), d('cooked_knife', 2, [900, 300, 1000, 320])])).toEqual(['mixed_boards']);
    // generic labels never trigger
    expect(still([d('cutting_board', 1, [100, 300, 300, 400]), d('knife', 2, [200, 300, 300, 320])], [raw, cooked])).toEqual([]);
    // streaming: mixed boards persist 10 s before alarming
    const e = engine(rules, [raw, cooked]);
    const alarms = run(e, NOON, 25, 500, () => [d('raw_board', 1, [900, 300, 1100, 400])]);
    expect(alarms.map((a) => [a.ts - NOON, a.v.ruleId, a.v.experimental])).toEqual([[10000, 'mixed_boards_raw_in_cooked', true]]);
  });
});

describe('rule sets', () => {
  it('built-ins cover the five kinds with the documented defaults', () => {
    const b = builtinRules();
    const byId = Object.fromEntries(b.map((r) => [r.id, r]));
    expect(new Set(b.map((r) => r.kind))).toEqual(new Set(['no_hat', 'no_mask', 'smoking', 'mixed_boards', 'rodent']));
    expect(byId.no_mask).toMatchObject({ labels: ['face'], schedule: 'service', severity: 2, minDurationSec: 3, cooldownSec: 30 });
    expect(byId.no_hat).toMatchObject({ labels: ['head'], unless: ['chef_hat'], schedule: 'service', severity: 3 });
    expect(byId.smoking).toMatchObject({ schedule: 'always', severity: 1 });
    expect(byId.rodent).toMatchObject({ labels: ['rodent', 'cat', 'dog'], schedule: 'closed', alwaysInFoodZones: true, severity: 1, minDurationSec: 1 });
  });

  it('site rules override by id, add new ids, and `enabled: false` removes', () => {
    const merged = mergeRules(builtinRules(), [
      rule({ id: 'no_mask', kind: 'no_mask', labels: ['face'], minDurationSec: 10, severity: 1 }),
      rule({ id: 'smoking', kind: 'smoking', labels: ['cigarette'], enabled: false }),
      rule({ id: 'dog_only', kind: 'rodent', labels: ['dog'], severity: 3 }),
    ]);
    const ids = merged.map((r) => r.id);
    expect(ids).not.toContain('smoking');
    expect(ids.at(-1)).toBe('dog_only');
    expect(ids.indexOf('no_mask')).toBe(0);
    expect(merged.find((r) => r.id === 'no_mask')).toMatchObject({ minDurationSec: 10, severity: 1, schedule: 'always' });
    // the override takes effect in the engine: no alarm at 3 s any more, one at 10 s
    const alarms = run(engine(merged), NOON, 25, 500, () => [d('face', 1, FACE), d('cigarette', 2, [10, 10, 20, 14])]);
    expect(alarms.map((a) => [a.ts - NOON, a.v.kind, a.v.severity])).toEqual([[10000, 'no_mask', 1]]);
    expect(() => mergeRules([], [rule({ id: 'x', kind: 'smoking', labels: ['a'] }), rule({ id: 'x', kind: 'smoking', labels: ['b'] })])).toThrow(/"x" appears twice/);
  });

  it('still images: reports every rule whose frame condition holds, ignoring schedule and duration', () => {
    const v = evaluateStill([d('face', 1, FACE), d('masked_face', 2, [100, 100, 150, 160]), d('rodent', 3, [10, 600, 60, 640]), d('cigarette', 4, [10, 10, 20, 14], 0.3)], FRAME);
    expect(v.map((x) => [x.kind, x.label, x.severity])).toEqual([['no_mask', 'face', 2], ['rodent', 'rodent', 1]]);
    expect(v[0]!.box).toEqual(FACE);
    expect(() => evaluateStill([], { width: 0, height: 10 })).toThrow(/frame size/);
  });
});

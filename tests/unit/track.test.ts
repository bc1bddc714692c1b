import { describe, expect, it } from 'vitest';
import { Tracker } from '../../agent/track/index.js';

type Box = [number, number, number, number];
const det = (label: string, box: Box, score = 0.9) => ({ label, score, box });
const boxAt = (x: number, y: number, w: number, h: number): Box => [x, y, x + w, y + h];

describe('Tracker', () => {
  it('keeps one id for a worker standing still for a minute at 2 fps with detector jitter', () => {
    const tr = new Tracker();
    const ids = new Set<number>();
    let seed = 1;
    const rnd = () => ((seed = (seed * 16807) % 2147483647) / 2147483647 - 0.5) * 2;
    for (let i = 0; i <= 120; i++) {
      const jitter = 6 * rnd();
      const [d] = tr.update([det('face', boxAt(400 + jitter, 200 - jitter, 60 + 4 * rnd(), 70))], i * 500);
      ids.add(d!.trackId);
    }
    expect(ids.size).toBe(1);
  });

  it('keeps the id of a box moving faster than its own width per frame', () => {
    const tr = new Tracker();
    const ids: number[] = [];
    for (let i = 0; i < 20; i++) {
      // a 40 px face moving 55 px per frame (0.5 s): IoU with the previous box is 0
      const [d] = tr.update([det('face', boxAt(50 + 55 * i, 300 + 5 * i, 40, 40))], 1000 + i * 500);
      ids.push(d!.trackId);
    }
    expect(new Set(ids).size).toBe(1);
  });

  it('keeps two crossing people apart', () => {
    const tr = new Tracker();
    const a: number[] = [];
    const b: number[] = [];
    for (let i = 0; i < 16; i++) {
      const ts = i * 500;
      // A walks right, B walks left, slightly different rows; their boxes overlap around i = 7..8
      const boxA = boxAt(100 + 60 * i, 100, 80, 200);
      const boxB = boxAt(1000 - 60 * i, 130, 80, 200);
      // alternate the input order so the result cannot depend on it
      const input = i % 2 ? [det('person', boxB), det('person', boxA)] : [det('person', boxA), det('person', boxB)];
      const out = tr.update(input, ts);
      const da = out.find((d) => d.box[0] === boxA[0])!;
      const db = out.find((d) => d.box[0] === boxB[0])!;
      a.push(da.trackId);
      b.push(db.trackId);
    }
    expect(new Set(a).size).toBe(1);
    expect(new Set(b).size).toBe(1);
    expect(a[0]).not.toBe(b[0]);
  });

  it('bridges a gap of missed frames shorter than maxAgeMs, and forgets the track after', () => {
    const tr = new Tracker({ maxAgeMs: 2000 });
    const [d0] = tr.update([det('person', boxAt(100, 100, 80, 200))], 0);
    tr.update([det('person', boxAt(110, 100, 80, 200))], 500);
    // frames at 1000, 1500 and 2000 ms miss the person
    tr.update([], 1000);
    tr.update([], 1500);
    tr.update([], 2000);
    const [d1] = tr.update([det('person', boxAt(150, 100, 80, 200))], 2500);
    expect(d1!.trackId).toBe(d0!.trackId);
    // now gone for longer than maxAgeMs
    tr.update([], 3000);
    expect(tr.size).toBe(1);
    tr.update([], 4600);
    expect(tr.size).toBe(0);
    const [d2] = tr.update([det('person', boxAt(150, 100, 80, 200))], 5000);
    expect(d2!.trackId).not.toBe(d0!.trackId);
  });

  it('gives a new object a new id, and never matches across labels', () => {
    const tr = new Tracker();
    const [p] = tr.update([det('person', boxAt(100, 100, 80, 200))], 0);
    const out = tr.update(
      [det('person', boxAt(104, 100, 80, 200)), det('person', boxAt(900, 400, 80, 200)), det('cat', boxAt(104, 100, 80, 200))],
      500,
    );
    expect(out[0]!.trackId).toBe(p!.trackId);
    const ids = out.map((d) => d.trackId);
    expect(new Set(ids).size).toBe(3);
    expect(out[1]!.trackId).toBeGreaterThan(p!.trackId);
  });

  it('does not let a far, unrelated object steal a track', () => {
    const tr = new Tracker();
    const [p] = tr.update([det('person', boxAt(100, 100, 80, 200))], 0);
    const [q] = tr.update([det('person', boxAt(1000, 100, 80, 200))], 500);
    expect(q!.trackId).not.toBe(p!.trackId);
  });

  it('carries extra fields through and does not mutate its input', () => {
    const tr = new Tracker();
    const input = [{ label: 'face', score: 0.8, box: boxAt(1, 2, 30, 30), model: 'rfb640' }];
    const [out] = tr.update(input, 0);
    expect(out).toMatchObject({ model: 'rfb640', label: 'face', trackId: 1 });
    expect('trackId' in input[0]!).toBe(false);
  });

  it('tolerates a timestamp going backwards and rejects a non-finite one', () => {
    const tr = new Tracker();
    const [a] = tr.update([det('face', boxAt(10, 10, 40, 40))], 10_000);
    const [b] = tr.update([det('face', boxAt(12, 10, 40, 40))], 5_000);
    expect(b!.trackId).toBe(a!.trackId);
    expect(() => tr.update([], Number.NaN)).toThrow(/timestamp/);
  });
});

import { describe, expect, it } from 'vitest';
import { MotionGate } from '../../agent/gate/motion.js';

const W = 640;
const H = 360;

/** A grey kitchen-like frame with a gradient and per-pixel noise of ±`noise` grey levels (seeded). */
function frame(seed: number, noise = 0): { width: number; height: number; data: Uint8Array } {
  const data = new Uint8Array(W * H * 3);
  let s = seed >>> 0 || 1;
  for (let i = 0, p = 0; p < W * H; p++, i += 3) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    const n = noise ? ((s >>> 0) % (2 * noise + 1)) - noise : 0;
    const v = Math.max(0, Math.min(255, 80 + ((p % W) >> 3) + n));
    data[i] = data[i + 1] = data[i + 2] = v;
  }
  return { width: W, height: H, data };
}

/** Paint a dark w x h blob (a rat seen from a ceiling camera) at (x, y). */
function withBlob(f: ReturnType<typeof frame>, x: number, y: number, w: number, h: number): typeof f {
  const data = Uint8Array.from(f.data);
  for (let yy = y; yy < y + h; yy++) for (let xx = x; xx < x + w; xx++) data.fill(20, (yy * W + xx) * 3, (yy * W + xx) * 3 + 3);
  return { ...f, data };
}

describe('MotionGate', () => {
  it('skips a still picture with sensor noise until the periodic re-check', () => {
    const gate = new MotionGate({ recheckMs: 10_000 });
    expect(gate.shouldDetect(frame(1, 6), 0)).toBe(true); // first frame: nothing to compare with
    const decided = [500, 1000, 5000, 9500].map((t, i) => gate.shouldDetect(frame(100 + i, 6), t));
    expect(decided).toEqual([false, false, false, false]);
    expect(gate.moved).toBe(false);
    expect(gate.stillForMs(9500)).toBe(9500);
    expect(gate.shouldDetect(frame(200, 6), 10_000)).toBe(true); // re-check
    expect(gate.moved).toBe(false);
  });

  it('sees a small object move (a 16 x 8 px rat in a 640 x 360 frame) that barely changes the frame mean', () => {
    const gate = new MotionGate();
    const base = frame(1, 6);
    gate.shouldDetect(base, 0);
    expect(gate.shouldDetect(withBlob(frame(2, 6), 300, 200, 16, 8), 500)).toBe(true);
    expect(gate.moved).toBe(true);
    expect(gate.stillForMs(500)).toBe(0);
    // The blob stays where it is: still again.
    expect(gate.shouldDetect(withBlob(frame(3, 6), 300, 200, 16, 8), 1000)).toBe(false);
    // It moves on by its own length: changed.
    expect(gate.shouldDetect(withBlob(frame(4, 6), 316, 200, 16, 8), 1500)).toBe(true);
  });

  it('takes the whole-frame criterion for a global change (lights dimmed)', () => {
    const gate = new MotionGate({ cellThreshold: 255 });
    const a = frame(1);
    gate.shouldDetect(a, 0);
    const dim = { ...a, data: a.data.map((v) => v - 5) };
    expect(gate.shouldDetect(dim, 500)).toBe(true);
    const dimmer = { ...a, data: a.data.map((v) => v - 8) };
    expect(gate.shouldDetect(dimmer, 1000)).toBe(false); // 3 levels from the new reference: below 4
  });

  it('works on frames smaller than the grid', () => {
    const gate = new MotionGate();
    const tiny = { width: 8, height: 4, data: new Uint8Array(8 * 4 * 3).fill(100) };
    expect(gate.shouldDetect(tiny, 0)).toBe(true);
    expect(gate.shouldDetect(tiny, 100)).toBe(false);
    expect(gate.shouldDetect({ ...tiny, data: new Uint8Array(8 * 4 * 3).fill(140) }, 200)).toBe(true);
  });
});

describe('MotionGate cuts', () => {
  it('a worker crossing the picture moves it; a new scene everywhere is a cut', () => {
    const g = new MotionGate();
    const base = frame(1, 2);
    g.shouldDetect(base, 0);
    expect(g.cut).toBe(false);
    g.shouldDetect(withBlob(base, 100, 60, 200, 250), 500); // a person-sized dark region
    expect([g.moved, g.cut]).toEqual([true, false]);
    const other = { ...base, data: base.data.map((v) => 255 - v) }; // another picture altogether
    g.shouldDetect(other, 1000);
    expect([g.moved, g.cut]).toEqual([true, true]);
    g.shouldDetect(other, 1500);
    expect(g.cut).toBe(false);
  });

  it('the black borders of a letterboxed picture do not count: a new photo between the same pillars is a cut', () => {
    // a photo a quarter of the frame wide between black pillars, then another photo there
    const pillared = (f: ReturnType<typeof frame>) => {
      const data = Uint8Array.from(f.data);
      for (let p = 0; p < W * H; p++) if (p % W < (3 * W) / 8 || p % W >= (5 * W) / 8) data.fill(0, p * 3, p * 3 + 3);
      return { ...f, data };
    };
    const base = frame(1, 2);
    const a = pillared(base);
    const b = pillared({ ...base, data: base.data.map((v) => Math.min(255, v + 60)) });
    const g = new MotionGate();
    g.shouldDetect(a, 0);
    g.shouldDetect(b, 500);
    expect([g.moved, g.cut]).toEqual([true, true]); // a quarter of all cells (under cutShare), all of the photo's
    g.shouldDetect(withBlob(b, (3 * W) / 8 + 10, 60, 60, 100), 1000); // someone small moving inside it
    expect([g.moved, g.cut]).toEqual([true, false]);
    // a dark scene (most cells black): the share is of every cell again, so a light in one corner is no cut
    const dark = { width: W, height: H, data: new Uint8Array(W * H * 3) };
    const lit = { ...dark, data: Uint8Array.from(dark.data) };
    for (let y = 0; y < 90; y++) lit.data.fill(200, y * W * 3, (y * W + 120) * 3);
    const g2 = new MotionGate();
    g2.shouldDetect(dark, 0);
    g2.shouldDetect(lit, 500);
    expect([g2.moved, g2.cut]).toEqual([true, false]);
  });

  it('a picture that moved as a whole (a pan) is no cut; the same change without the shift is one', () => {
    // random 20-px blocks (one gate cell each at 640x360), then the view panned by one block
    let seed = 7;
    const blocks = Array.from({ length: 40 * 20 }, () => ((seed = (seed * 1103515245 + 12345) >>> 0) % 200) + 30);
    const view = (dx: number) => {
      const data = new Uint8Array(W * H * 3);
      for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) data.fill(blocks[Math.floor(y / 20) * 40 + Math.floor((x + dx) / 20)]!, (y * W + x) * 3, (y * W + x) * 3 + 3);
      return { width: W, height: H, data };
    };
    const g = new MotionGate();
    g.shouldDetect(view(0), 0);
    g.shouldDetect(view(20), 500);
    expect([g.moved, g.cut]).toEqual([true, false]);
    const g2 = new MotionGate();
    g2.shouldDetect(view(0), 0);
    g2.shouldDetect({ ...view(0), data: view(0).data.map((v) => 260 - v) }, 500); // the same blocks, other values
    expect([g2.moved, g2.cut]).toEqual([true, true]);
  });
});


/** The fused pre-processing pass: bilinear resize against cv2, letterbox, colour order, normalisation, mapping back. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { InputSpecSchema, placement, Preprocessor, toSource, type InputSpec } from '../../agent/detect/index.js';

const spec = (s: Record<string, unknown>): InputSpec =>
  InputSpecSchema.parse({ name: 'x', width: 8, height: 8, layout: 'NCHW', colorOrder: 'RGB', resize: { mode: 'stretch' }, ...s });

/** The 7x5 test pattern used to produce the cv2 references below. */
function pattern() {
  const w = 7;
  const h = 5;
  const data = new Uint8Array(w * h * 3);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) for (let c = 0; c < 3; c++) data[(y * w + x) * 3 + c] = (x * 37 + y * 91 + c * 53 + x * y * 13) % 256;
  return { width: w, height: h, data };
}

// cv2.resize(src, (w, h), interpolation=cv2.INTER_LINEAR) of pattern() with OpenCV 5.0.0 (HWC uint8).
const CV2: Record<string, number[]> = {
  '4x3': [46, 99, 152, 118, 160, 139, 116, 158, 211, 177, 124, 113, 206, 163, 56, 60, 113, 166, 170, 223, 52, 120, 77, 130, 109, 162, 151, 87, 129, 108, 160, 53, 106, 127, 127, 180],
  '11x9': [
    0, 53, 106, 17, 70, 123, 40, 93, 146, 64, 117, 170, 87, 140, 193, 111, 164, 217, 134, 187, 240, 158, 211, 194, 182, 235, 55, 205, 118, 55, 222, 19, 72, 30, 83, 136, 49, 102, 155, 75, 128, 174, 102, 155,
    145, 128, 150, 148, 154, 122, 175, 126, 148, 201, 121, 174, 181, 148, 201, 99, 174, 134, 110, 193, 75, 128, 81, 134, 187, 103, 156, 209, 134, 187, 219, 165, 218, 105, 195, 166, 74, 226, 52, 105, 112, 83,
    136, 61, 114, 159, 91, 145, 172, 123, 160, 200, 144, 169, 222, 131, 184, 123, 157, 158, 149, 182, 131, 172, 145, 167, 117, 149, 151, 113, 185, 96, 149, 130, 131, 112, 114, 135, 106, 149, 99, 141, 123, 124,
    177, 96, 149, 202, 182, 235, 32, 211, 147, 61, 227, 48, 101, 105, 88, 141, 75, 128, 181, 115, 168, 221, 155, 208, 98, 195, 178, 45, 235, 56, 85, 136, 72, 125, 48, 101, 154, 90, 143, 82, 122, 123, 114, 157,
    106, 146, 129, 151, 100, 143, 144, 106, 187, 98, 151, 141, 142, 123, 134, 156, 127, 179, 128, 171, 162, 85, 138, 142, 53, 105, 27, 80, 133, 62, 115, 155, 109, 162, 168, 140, 193, 73, 181, 152, 60, 231, 56,
    109, 135, 88, 140, 94, 127, 179, 125, 176, 229, 172, 101, 154, 207, 33, 86, 77, 131, 184, 116, 169, 145, 154, 207, 97, 100, 153, 97, 107, 129, 128, 161, 129, 181, 161, 74, 127, 137, 66, 119, 82, 120, 173,
    120, 127, 180, 159, 126, 180, 108, 161, 214, 148, 201, 138, 182, 235, 55, 76, 129, 112, 62, 115, 168, 119, 172, 225, 176, 66, 119, 162, 29, 82, 56, 86, 139, 89, 142, 195, 130, 183, 236,
  ],
  // same width: the vertical-only path
  '7x9': [0, 53, 106, 37, 90, 143, 74, 127, 180, 111, 164, 217, 148, 201, 254, 185, 238, 35, 222, 19, 72, 30, 83, 136, 72, 124, 178, 113, 166, 133, 154, 122, 175, 110, 163, 216, 152, 205, 87, 193, 75, 128, 81, 134, 187, 129, 182, 235, 178, 231, 56, 226, 52, 105, 47, 100, 154, 96, 149, 173, 144, 169, 222, 131, 184, 123, 187, 126, 179, 129, 182, 93, 185, 96, 149, 98, 151, 91, 154, 93, 146, 96, 149, 202, 182, 235, 32, 245, 42, 95, 52, 105, 158, 115, 168, 221, 178, 231, 28, 241, 38, 91, 48, 101, 154, 90, 143, 82, 160, 100, 153, 117, 170, 81, 187, 98, 151, 115, 168, 107, 185, 125, 177, 142, 53, 105, 27, 80, 133, 104, 157, 182, 153, 206, 32, 231, 56, 109, 81, 105, 158, 130, 183, 236, 207, 33, 86, 77, 131, 184, 162, 215, 98, 76, 129, 97, 161, 129, 181, 160, 43, 96, 74, 127, 180, 159, 126, 180, 108, 161, 214, 197, 250, 47, 30, 83, 136, 119, 172, 225, 208, 5, 58, 41, 94, 147, 130, 183, 236],
  '7x3': [30, 83, 136, 72, 124, 178, 113, 166, 133, 154, 122, 175, 110, 163, 216, 152, 205, 87, 193, 75, 128, 182, 235, 32, 245, 42, 95, 52, 105, 158, 115, 168, 221, 178, 231, 28, 241, 38, 91, 48, 101, 154, 77, 131, 184, 162, 215, 98, 76, 129, 97, 161, 129, 181, 160, 43, 96, 74, 127, 180, 159, 126, 180],
  // same size: identity
  '7x5': Array.from(pattern().data),
};

/** Tensor (NCHW, identity normalisation) back to HWC for comparison. */
function toHwc(t: Float32Array, w: number, h: number, cw = w, ch = h): number[] {
  const out: number[] = [];
  for (let y = 0; y < ch; y++) for (let x = 0; x < cw; x++) for (let c = 0; c < 3; c++) out.push(t[c * w * h + y * w + x]!);
  return out;
}

describe('stretch resize matches cv2.resize INTER_LINEAR', () => {
  for (const [size, ref] of Object.entries(CV2)) {
    it(`7x5 → ${size} within cv2's uint8 rounding`, () => {
      const [w, h] = size.split('x').map(Number) as [number, number];
      const p = new Preprocessor(spec({ width: w, height: h }));
      p.run(pattern());
      const got = toHwc(p.tensor, w, h);
      const worst = Math.max(...got.map((v, i) => Math.abs(v - ref[i]!)));
      expect(worst).toBeLessThanOrEqual(1);
    });
  }
});

describe('colour order and normalisation', () => {
  it('BGR with per-channel mean/std given in tensor order', () => {
    const p = new Preprocessor(spec({ width: 2, height: 2, colorOrder: 'BGR', mean: [1, 2, 3], std: [2, 4, 8] }));
    const img = { width: 2, height: 2, data: new Uint8Array([10, 20, 30, 11, 21, 31, 12, 22, 32, 13, 23, 33]) };
    p.run(img);
    expect(Array.from(p.tensor)).toEqual([
      // B plane: (b - 1) / 2
      14.5, 15, 15.5, 16,
      // G plane: (g - 2) / 4
      4.5, 4.75, 5, 5.25,
      // R plane: (r - 3) / 8
      0.875, 1, 1.125, 1.25,
    ]);
  });
});

describe('letterbox', () => {
  it('top-left: resized content, pad value elsewhere (normalised like pixels)', () => {
    const s = spec({ width: 8, height: 8, mean: [100, 100, 100], std: [2, 2, 2], resize: { mode: 'letterbox', align: 'top-left', pad: 114 } });
    const p = new Preprocessor(s);
    const img = { width: 4, height: 2, data: new Uint8Array(4 * 2 * 3).fill(200) };
    const pl = p.run(img);
    expect(pl).toMatchObject({ contentWidth: 8, contentHeight: 4, padX: 0, padY: 0, scaleX: 0.5, scaleY: 0.5 });
    for (let c = 0; c < 3; c++)
      for (let y = 0; y < 8; y++) for (let x = 0; x < 8; x++) expect(p.tensor[c * 64 + y * 8 + x]).toBe(y < 4 ? 50 : 7);
  });

  it('centre: content in the middle; a new source size refills the padding', () => {
    const s = spec({ width: 8, height: 8, resize: { mode: 'letterbox', align: 'center', pad: 0 } });
    const p = new Preprocessor(s);
    let pl = p.run({ width: 2, height: 4, data: new Uint8Array(24).fill(9) });
    expect(pl).toMatchObject({ contentWidth: 4, contentHeight: 8, padX: 2, padY: 0 });
    expect(Array.from(p.tensor.subarray(0, 8))).toEqual([0, 0, 9, 9, 9, 9, 0, 0]);
    pl = p.run({ width: 4, height: 2, data: new Uint8Array(24).fill(5) });
    expect(pl).toMatchObject({ contentWidth: 8, contentHeight: 4, padX: 0, padY: 2 });
    expect(Array.from(p.tensor.subarray(0, 8))).toEqual([0, 0, 0, 0, 0, 0, 0, 0]);
    expect(Array.from(p.tensor.subarray(16, 24))).toEqual([5, 5, 5, 5, 5, 5, 5, 5]);
  });

  it('YOLOX sizing: int(w * r) for 640x427 into 416x416', () => {
    const pl = placement(spec({ width: 416, height: 416, resize: { mode: 'letterbox' } }), 640, 427);
    expect(pl.contentWidth).toBe(416);
    expect(pl.contentHeight).toBe(Math.floor(427 * 0.65));
  });

  it('reuses one Float32Array across calls', () => {
    const p = new Preprocessor(spec({}));
    const t = p.tensor;
    p.run({ width: 3, height: 3, data: new Uint8Array(27) });
    p.run({ width: 8, height: 8, data: new Uint8Array(192) });
    expect(p.tensor).toBe(t);
  });

  it('fills a tensor the caller passes exactly like its own, padding included, for each new tensor and size', () => {
    const s = spec({ width: 8, height: 8, resize: { mode: 'letterbox', align: 'center', pad: 114 } });
    const p = new Preprocessor(s);
    const img = (w: number, h: number, v: number) => ({ width: w, height: h, data: new Uint8Array(w * h * 3).fill(v) });
    const a = new Float32Array(p.size);
    const b = new Float32Array(p.size);
    // Back and forth between two source sizes (cameras of different aspect share the model).
    for (const [w, h, v] of [[2, 4, 9], [4, 2, 5], [4, 2, 7], [2, 4, 3], [4, 2, 1]] as const) {
      p.run(img(w, h, v));
      for (const t of [a, b]) {
        expect(p.run(img(w, h, v), t)).toEqual(p.run(img(w, h, v)));
        expect(Array.from(t)).toEqual(Array.from(p.tensor));
      }
    }
    expect(() => p.run(img(2, 2, 0), new Float32Array(10))).toThrow(/input tensor has 10 elements, expected 192/);
  });

  it('rejects an image whose buffer does not match its size', () => {
    const p = new Preprocessor(spec({}));
    expect(() => p.run({ width: 4, height: 4, data: new Uint8Array(47) })).toThrow(/expected 48 bytes of RGB24 for 4x4, got 47/);
  });
});

describe('mapping boxes back to source pixels', () => {
  it('undoes stretch and letterbox exactly, clips to the image', () => {
    const st = placement(spec({ width: 640, height: 480, resize: { mode: 'stretch' } }), 320, 480);
    expect(toSource([64, 48, 320, 240], st)).toEqual([32, 48, 160, 240]);
    const lb = placement(spec({ width: 64, height: 64, resize: { mode: 'letterbox', align: 'center' } }), 100, 50);
    // r = 0.64 → content 64x32, padY 16
    expect(toSource([0, 16, 64, 48], lb)).toEqual([0, 0, 100, 50]);
    expect(toSource([-10, 0, 80, 70], lb)).toEqual([0, 0, 100, 50]);
  });

  it('property: a box placed into the input maps back to itself (any size, any mode)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 8, max: 2000 }),
        fc.integer({ min: 8, max: 2000 }),
        fc.constantFrom('stretch', 'top-left', 'center'),
        fc.tuple(fc.double({ min: 0, max: 1, noNaN: true }), fc.double({ min: 0, max: 1, noNaN: true }), fc.double({ min: 0, max: 1, noNaN: true }), fc.double({ min: 0, max: 1, noNaN: true })),
        (w, h, mode, [a, b, c, d]) => {
          const s = spec({ width: 416, height: 320, resize: mode === 'stretch' ? { mode } : { mode: 'letterbox', align: mode } });
          const p = placement(s, w, h);
          const src: [number, number, number, number] = [Math.min(a, c) * w, Math.min(b, d) * h, Math.max(a, c) * w, Math.max(b, d) * h];
          const inInput: [number, number, number, number] = [
            src[0] / p.scaleX + p.padX,
            src[1] / p.scaleY + p.padY,
            src[2] / p.scaleX + p.padX,
            src[3] / p.scaleY + p.padY,
          ];
          const back = toSource(inInput, p);
          back.forEach((v, i) => expect(v).toBeCloseTo(src[i]!, 6));
          expect(inInput[2]).toBeLessThanOrEqual(s.width + 1e-9);
          expect(inInput[3]).toBeLessThanOrEqual(s.height + 1e-9);
        },
      ),
    );
  });
});

import { describe, expect, it } from 'vitest';
import { clipBox, closeUpFaces, closeUpPeople, cropResize, CropRecipeSchema, facelessCloseUp, headRegions, zoomOut } from '../../agent/detect/heads.js';
import type { Detection, HeadAttribute, RgbImage } from '../../agent/detect/types.js';
import { AttributeVoter, judgeOnce } from '../../agent/track/attributes.js';

type Box = [number, number, number, number];
const det = (label: string, box: Box, score = 0.9): Detection => ({ label, score, box, model: 'm' });
const recipe = CropRecipeSchema.parse({
  face: { labels: ['face', 'masked_face'], grow: { left: 0.3, right: 0.3, top: 0.9, bottom: 0.4 } },
  person: { labels: ['person'], minScore: 0.4, side: 0.6, above: 0.05 },
});

describe('headRegions', () => {
  it('grows a face upward for the hat and downward for the mouth, square around the grown box', () => {
    const [r] = headRegions([det('face', [100, 100, 140, 150])], recipe);
    expect(r!.source).toBe('face');
    const [x1, y1, x2, y2] = r!.box;
    expect(x2 - x1).toBeCloseTo(y2 - y1, 6);
    // grown height 50 * (1 + 0.9 + 0.4) = 115 is the side; it reaches 45 px above the brow and 20 px below the chin
    expect(y2 - y1).toBeCloseTo(115, 6);
    expect(y1).toBeCloseTo(100 - 45, 6);
    expect(y2).toBeCloseTo(150 + 20, 6);
  });

  it('gives one region per worker: a person whose face was found adds none, a person seen from behind adds the top of its box', () => {
    const faceWorker = det('person', [80, 80, 200, 400]);
    const backWorker = det('person', [400, 60, 520, 380]);
    const rs = headRegions([det('face', [120, 100, 160, 150]), faceWorker, backWorker], recipe);
    expect(rs.map((r) => r.source).sort()).toEqual(['face', 'person']);
    const back = rs.find((r) => r.source === 'person')!;
    expect(back.from).toBe(backWorker);
    const side = 0.6 * 120;
    expect(back.box[2] - back.box[0]).toBeCloseTo(side, 6);
    expect(back.box[1]).toBeCloseTo(60 - 0.05 * side, 6);
  });

  it('drops weak and tiny detections, keeps the largest heads first up to maxHeads', () => {
    const small = CropRecipeSchema.parse({ ...recipe, maxHeads: 2 });
    const rs = headRegions(
      [det('face', [0, 0, 5, 5]), det('face', [10, 10, 50, 60], 0.3), det('face', [100, 100, 120, 125]), det('face', [200, 200, 260, 275]), det('face', [300, 300, 340, 350])],
      small,
    );
    expect(rs).toHaveLength(2);
    expect(rs[0]!.from.box).toEqual([200, 200, 260, 275]);
    expect(rs[1]!.from.box).toEqual([300, 300, 340, 350]);
  });

  it('rejects a recipe with a bad field, naming it', () => {
    const r = CropRecipeSchema.safeParse({ face: { labels: ['hat'], grow: { left: 0, right: 0, top: 0, bottom: 0 } } });
    expect(r.success).toBe(false);
    expect(r.error!.issues[0]!.path.join('.')).toBe('face.labels.0');
  });
});

function gradient(w: number, h: number): RgbImage {
  const data = new Uint8Array(w * h * 3);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) data.set([x % 256, y % 256, 200], (y * w + x) * 3);
  return { width: w, height: h, data };
}

describe('cropResize', () => {
  it('samples the box like cv2.resize (pixel centres) and pads outside the frame with grey', () => {
    const img = gradient(64, 48);
    const c = cropResize(img, [8, 8, 24, 24], 16, 114);
    // 1:1 scale: pixel (ox, oy) is source (8 + ox, 8 + oy)
    expect([...c.slice(0, 3)]).toEqual([8, 8, 200]);
    expect([...c.slice((5 * 16 + 7) * 3, (5 * 16 + 7) * 3 + 3)]).toEqual([15, 13, 200]);
    // a head at the frame's border: the part outside is pad grey, the part inside is the image
    const b = cropResize(img, [-16, -16, 16, 16], 16, 114);
    expect([...b.slice(0, 3)]).toEqual([114, 114, 114]);
    expect([...b.slice((15 * 16 + 15) * 3, (15 * 16 + 15) * 3 + 3)]).toEqual([15, 15, 200]);
  });

  it('cuts a 1x1 box and a box wholly outside the frame without throwing', () => {
    const img = gradient(10, 10);
    const one = cropResize(img, [4, 4, 5, 5], 8, 114);
    expect(one).toHaveLength(8 * 8 * 3);
    expect([...one.slice(0, 3)]).toEqual([4, 4, 200]);
    const out = cropResize(img, [100, 100, 120, 120], 4, 50);
    expect([...out].every((v) => v === 50)).toBe(true);
    expect(clipBox([-5, -5, 20, 8], 10, 10)).toEqual([0, 0, 10, 8]);
  });

  it('averages 2x2 samples when shrinking more than 2x, so a thin bright line does not vanish', () => {
    const w = 64;
    const img: RgbImage = { width: w, height: w, data: new Uint8Array(w * w * 3) };
    for (let y = 0; y < w; y++) img.data.set([255, 255, 255], (y * w + 9) * 3); // a 1-px vertical line at x = 9
    const c = cropResize(img, [0, 0, 64, 64], 8, 0);
    const col = Math.floor(9 / 8);
    expect(c[(4 * 8 + col) * 3]!).toBeGreaterThan(20);
  });
});

const head = (p: number, box: Box = [10, 10, 60, 60]): Detection & { trackId: number } => ({
  ...det('head', box),
  trackId: 7,
  source: 'face',
  attributes: [{ name: 'covered', p, threshold: 0.5, positive: 'chef_hat', negative: 'head' } satisfies HeadAttribute],
});

describe('AttributeVoter', () => {
  it('believes nothing before 3 looks, then what 60 % of the last 5 say; one blurred crop flips nothing', () => {
    const v = new AttributeVoter();
    expect(v.update([head(0.9)], 0)).toEqual([]);
    expect(v.update([head(0.8)], 500)).toEqual([]);
    const third = v.update([head(0.2)], 1000); // 2 of 3 covered: 67 % ≥ 60 %
    expect(third.map((d) => d.label)).toEqual(['chef_hat']);
    expect(third[0]!.trackId).toBe(7);
    expect(third[0]!.attributes).toBeUndefined();
    expect(v.update([head(0.1)], 1500).map((d) => d.label)).toEqual(['chef_hat']); // 2 of 4: undecided, the belief stands
    expect(v.update([head(0.1)], 2000).map((d) => d.label)).toEqual(['head']); // 3 of 5 bare
  });

  it('a still picture (frames the motion gate repeats) is judged on its one look, and repeats add no looks', () => {
    const v = new AttributeVoter();
    expect(v.update([head(0.1)], 0)).toEqual([]); // a fresh look alone: not yet
    expect(v.update([head(0.1)], 500, false).map((d) => d.label)).toEqual(['head']); // still: that look is the picture
    for (let t = 1000; t < 5000; t += 500) v.update([head(0.1)], t, false);
    // The repeats were not counted: two fresh covered looks make 2 of 3 covered, the belief turns.
    expect(v.update([head(0.9)], 5000).map((d) => d.label)).toEqual(['head']);
    expect(v.update([head(0.9)], 5500).map((d) => d.label)).toEqual(['chef_hat']);
  });

  it('passes other detections through and reports one label per believed attribute', () => {
    const v = new AttributeVoter({ minLooks: 1 });
    const smoker = { ...head(0.9), attributes: [...head(0.9).attributes!, { name: 'cigarette', p: 0.8, threshold: 0.5, positive: 'cigarette' }] };
    const person = { ...det('person', [0, 0, 100, 200]), trackId: 1 };
    expect(v.update([person, smoker], 0).map((d) => d.label)).toEqual(['person', 'chef_hat', 'cigarette']);
    expect(() => new AttributeVoter({ minLooks: 6 })).toThrow(/minLooks 6/);
  });

  it('judgeOnce: a still photo is one look per head, an attribute without a negative label gives nothing when absent', () => {
    const a: HeadAttribute[] = [
      { name: 'covered', p: 0.2, threshold: 0.5, positive: 'chef_hat', negative: 'head' },
      { name: 'cigarette', p: 0.3, threshold: 0.5, positive: 'cigarette' },
    ];
    const out = judgeOnce([{ ...det('head', [0, 0, 10, 10]), attributes: a }, det('face', [1, 1, 5, 5])]);
    expect(out.map((d) => [d.label, d.score])).toEqual([
      ['head', 0.8],
      ['face', 0.9],
    ]);
  });
});

describe('headRegions: what the training contact sheets showed', () => {
  const strict = CropRecipeSchema.parse({ ...recipe, face: { ...recipe.face, onPerson: true } });
  it('a face off every person (a tray of meat on the counter) is no head when the frame has people', () => {
    const cook = det('person', [100, 50, 300, 500]);
    const rs = headRegions([det('face', [150, 80, 200, 140]), det('face', [600, 400, 660, 460]), cook], strict);
    expect(rs.map((r) => r.from.box[0])).toEqual([150]);
    // without people in the frame (a close-up) a face stands on its own
    expect(headRegions([det('face', [600, 400, 660, 460])], strict)).toHaveLength(1);
  });

  it('a person whose box starts at the frame top (head out of view) gives no region', () => {
    expect(headRegions([det('person', [100, 0, 300, 400])], recipe)).toEqual([]);
    expect(headRegions([det('person', [100, 0, 300, 400])], CropRecipeSchema.parse({ ...recipe, person: { ...recipe.person!, skipTopEdge: false } }))).toHaveLength(1);
  });
});

describe('close-up look (recipe.closeUp)', () => {
  const close = CropRecipeSchema.parse({
    face: { labels: ['face', 'masked_face'], grow: { left: 0.3, right: 0.3, top: 0.9, bottom: 0.4 } },
    person: { labels: ['person'], minScore: 0.4, side: 0.4 },
    closeUp: { personHeight: 0.45, zoomOut: 3 },
  });
  it('a tall person without a face in the upper half of its box is a close-up; one with a face, a small one or no closeUp in the recipe is not', () => {
    const tall = det('person', [10, 100, 290, 390]);
    expect(closeUpPeople([tall], close, 400)).toEqual([tall]);
    expect(closeUpPeople([tall, det('face', [100, 120, 180, 200])], close, 400)).toEqual([]);
    expect(closeUpPeople([det('face', [100, 330, 180, 380]), tall], close, 400)).toEqual([tall]); // a face in its lower half is someone else's
    expect(closeUpPeople([det('person', [10, 300, 100, 390])], close, 400)).toEqual([]); // 90 px of 400: not close
    expect(closeUpPeople([tall], recipe, 400)).toEqual([]); // no closeUp section
  });

  it('zooms out into a grey frame at most 640 wide and maps boxes back to the frame', () => {
    const W = 300, H = 200;
    const data = new Uint8Array(W * H * 3);
    for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) data.set([x < 150 ? 255 : 0, 0, y < 100 ? 255 : 0], (y * W + x) * 3);
    const z = zoomOut({ width: W, height: H, data }, 3);
    expect([z.image.width, z.image.height]).toEqual([640, 427]); // 900 x 600 would be shrunk by the model anyway
    const px = (x: number, y: number) => [...z.image.data.subarray((y * 640 + x) * 3, (y * 640 + x) * 3 + 3)];
    expect(px(5, 5)).toEqual([114, 114, 114]); // the grey around
    expect(px(250, 170)).toEqual([255, 0, 255]); // the frame's top-left quarter, in the middle third
    expect(px(390, 256)).toEqual([0, 0, 0]);
    // the frame's own corners come back where they were
    const back = z.unmap([213, 142, 427, 285]);
    back.forEach((v, i) => expect(v).toBeCloseTo([0, 0, 300, 200][i]!, -0.5));
  });

  it('keeps faces found on the zoomed-out frame only where they belong to a close-up person', () => {
    const person = det('person', [0, 100, 300, 400]);
    const unmap = (b: Box): Box => [b[0] * 2, b[1] * 2, b[2] * 2, b[3] * 2];
    const kept = closeUpFaces([det('face', [50, 60, 100, 110]), det('face', [100, 170, 140, 200]), det('person', [0, 0, 10, 10])], unmap, [person], close);
    expect(kept.map((d) => d.box)).toEqual([[100, 120, 200, 220]]); // the second face's centre (240, 370) is in the lower half
  });

  it('a frame without any face gets a look when the recipe has faceHeight, and keeps only faces that large without a person', () => {
    const faceless = CropRecipeSchema.parse({ ...close, closeUp: { ...close.closeUp!, faceHeight: 0.25 } });
    expect(facelessCloseUp([det('person', [0, 300, 50, 390])], faceless)).toBe(true);
    expect(facelessCloseUp([det('masked_face', [0, 0, 20, 20])], faceless)).toBe(false);
    expect(facelessCloseUp([], close)).toBe(false); // no faceHeight: people only
    const unmap = (b: Box): Box => b;
    const found = [det('face', [10, 10, 110, 110]), det('face', [200, 200, 230, 230])];
    expect(closeUpFaces(found, unmap, [], faceless, 0.25 * 400).map((d) => d.box)).toEqual([[10, 10, 110, 110]]); // 100 px of 400; 30 px is too small
    expect(closeUpFaces(found, unmap, [], faceless)).toEqual([]); // a person's look: no person, no face
  });
});

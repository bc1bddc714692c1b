/**
 * The corridor on real parts without a camera: real models, real evidence files, a real SQLite
 * outbox. Frames are offered with synthetic capture times at 2 fps so persistence and cooldown can
 * be checked in a second of wall time.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SiteConfigSchema, type SiteConfig } from '../../agent/config/schema.js';
import { ModelPack, type Detection } from '../../agent/detect/index.js';
import { EvidenceStore } from '../../agent/evidence/index.js';
import { Outbox } from '../../agent/outbox/index.js';
import { Pipeline, type Detector, type PipelineFrame } from '../../agent/pipeline.js';
import { EventMessage } from '../../protocol/messages.js';

const BARE_FACE = path.resolve(__dirname, '../../../shared/data/masks/images/11-photo.jpg');

describe('pipeline', () => {
  let dir: string;
  let pack: ModelPack;
  let frame: Omit<PipelineFrame, 'capturedAt'>;

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'bk-pipeline-'));
    pack = await ModelPack.load({ pack: [{ manifest: 'rfb640_masked_face' }], threads: 1 });
    const { data, info } = await sharp(BARE_FACE).removeAlpha().raw().toBuffer({ resolveWithObject: true });
    frame = { cameraId: 'cam1', width: info.width, height: info.height, data };
  });
  afterAll(async () => {
    await pack.close();
    rmSync(dir, { recursive: true, force: true });
  });

  function config(): SiteConfig {
    return SiteConfigSchema.parse({
      site: { id: 'site-a', name: '测试食堂' },
      serviceHours: [{ from: '00:00', to: '23:59' }],
      models: { pack: [{ manifest: 'rfb640_masked_face' }] },
      cameras: [{ id: 'cam1', name: '后厨', url: 'rtsp://127.0.0.1/x' }],
      storage: { dir },
    });
  }

  it('raises one no_mask event per episode, with snapshots, after the persistence time', async () => {
    const cfg = config();
    const outbox = Outbox.open({ dir });
    const evidence = new EvidenceStore({ dir, maxAgeDays: 1, maxTotalMB: 50 });
    await evidence.init();
    const pipeline = new Pipeline({ config: cfg, detector: pack, evidence, outbox, motion: false });
    const events: EventMessage[] = [];
    pipeline.on('event', (e) => events.push(e));
    pipeline.start();
    const t0 = Date.now();
    // 20 s of a bare face at 2 fps: persistence 3 s, cooldown 30 s → exactly one event.
    for (let i = 0; i < 40; i++) {
      pipeline.offer({ ...frame, capturedAt: t0 + i * 500 });
      await new Promise((r) => setTimeout(r, 60)); // let the loop take it (no drops)
    }
    await pipeline.stop();
    expect(events).toHaveLength(1);
    const e = EventMessage.parse(events[0]);
    expect(e.kind).toBe('no_mask');
    expect(e.startedAt).toBeGreaterThanOrEqual(t0);
    expect(e.capturedAt - e.startedAt).toBeGreaterThanOrEqual(3000);
    // The outbox holds both snapshots then the event, whose hashes name the snapshots.
    const rows = outbox.peek(10);
    expect(rows.map((r) => r.topic)).toEqual([
      `bk/v1/site/site-a/snapshot/${e.id}/annotated`,
      `bk/v1/site/site-a/snapshot/${e.id}/clean`,
      'bk/v1/site/site-a/event',
    ]);
    const meta = await sharp(rows[0]!.payload).metadata();
    expect(meta.format).toBe('jpeg');
    expect(meta.width).toBe(frame.width);
    expect(rows[0]!.payload.length).toBe(e.snapshots.annotated.bytes);
    const counters = pipeline.counters().cam1!;
    expect(counters.framesProcessed + counters.framesDropped).toBe(40);
    outbox.close();
    evidence.close();
  });

  it('asks the detector for person heads on one frame per camera per 1.5 s (the person model is the costly one), for a close-up look once per 6 s', async () => {
    const outbox = Outbox.open({ dir, fileName: 'people.sqlite' });
    const evidence = new EvidenceStore({ dir, maxAgeDays: 1, maxTotalMB: 50 });
    const asked: boolean[] = [];
    const closeUps: boolean[] = [];
    const recording: Detector = { detect: (img, opts) => (asked.push(opts?.peopleForHeads ?? true), closeUps.push(opts?.closeUp ?? true), pack.detect(img, opts)) };
    const pipeline = new Pipeline({ config: config(), detector: recording, evidence, outbox, motion: false });
    pipeline.start();
    const t0 = Date.now();
    for (let i = 0; i < 8; i++) {
      pipeline.offer({ ...frame, capturedAt: t0 + i * 500 });
      await new Promise((r) => setTimeout(r, 60));
    }
    await pipeline.stop();
    expect(asked).toEqual([true, false, false, true, false, false, true, false]);
    // the close-up look (a second face-model run) at most once per CLOSE_UP_EVERY_MS (6 s) per camera
    expect(closeUps).toEqual([true, false, false, false, false, false, false, false]);
    outbox.close();
  });

  it('while faces account for every head, asks for person heads once per 4.5 s; back to 1.5 s once a head is seen from behind or no face is seen', async () => {
    const outbox = Outbox.open({ dir, fileName: 'people-idle.sqlite' });
    const evidence = new EvidenceStore({ dir, maxAgeDays: 1, maxTotalMB: 50 });
    const t0 = Date.now();
    const asked: number[] = [];
    // frames 0-11: a worker facing the camera; from frame 12 on: one seen from behind as well; from 20: nobody
    const heads = (i: number) => (i < 12 ? ['face'] : i < 20 ? ['face', 'person'] : []);
    const fake: Detector = {
      detect: async (img, opts) => {
        const i = Math.round(((img as PipelineFrame).capturedAt - t0) / 500);
        if (opts?.peopleForHeads) asked.push(i);
        const seen = opts?.peopleForHeads ? heads(i) : heads(i).filter((s) => s === 'face');
        const covered = [{ name: 'covered', p: 0.9, threshold: 0.4, positive: 'chef_hat', negative: 'head' }];
        return seen.map((source, k): Detection => ({ label: 'chef_hat', score: 0.9, model: 'head_attrs', box: [10 + 100 * k, 10, 60 + 100 * k, 60], source: source as 'face' | 'person', attributes: covered }));
      },
    };
    const pipeline = new Pipeline({ config: config(), detector: fake, evidence, outbox, motion: false });
    pipeline.start();
    for (let i = 0; i < 28; i++) {
      pipeline.offer({ ...frame, capturedAt: t0 + i * 500 });
      await new Promise((r) => setTimeout(r, 15));
    }
    await pipeline.stop();
    // 0 (first), 9 (4.5 s: faces only), 18 (4.5 s, and a head from behind seen there), 21 (1.5 s), 24, 27 (nobody: full rate)
    expect(asked).toEqual([0, 9, 18, 21, 24, 27]);
    outbox.close();
  });

  it('where the rodent rule is active (a food zone), asks for the animal labels on one frame per camera per second, people on the same frames', async () => {
    const outbox = Outbox.open({ dir, fileName: 'animals.sqlite' });
    const evidence = new EvidenceStore({ dir, maxAgeDays: 1, maxTotalMB: 50 });
    const asked: { animals: boolean; people: boolean; face: boolean }[] = [];
    const recording: Detector = {
      detect: (img, opts) => (asked.push({ animals: opts!.labels!.has('rodent') && opts!.labels!.has('cat'), people: opts!.peopleForHeads!, face: opts!.labels!.has('face') }), pack.detect(img, opts)),
    };
    const cfg = config();
    cfg.cameras[0]!.zones = [{ id: 'prep', name: '备餐台', kind: 'food', points: [[0, 0], [1, 0], [1, 1]] }];
    const pipeline = new Pipeline({ config: cfg, detector: recording, evidence, outbox, motion: false });
    pipeline.start();
    const t0 = Date.now();
    for (let i = 0; i < 6; i++) {
      pipeline.offer({ ...frame, capturedAt: t0 + i * 500 });
      await new Promise((r) => setTimeout(r, 60));
    }
    await pipeline.stop();
    expect(asked.map((a) => a.animals)).toEqual([true, false, true, false, true, false]);
    expect(asked.map((a) => a.people)).toEqual([true, false, true, false, true, false]);
    expect(asked.every((a) => a.face)).toBe(true); // the face model still sees every frame
    outbox.close();
  });

  it('at night every model runs on one frame per camera per second: animals and the smoking heads together, nothing between', async () => {
    const outbox = Outbox.open({ dir, fileName: 'night.sqlite' });
    const evidence = new EvidenceStore({ dir, maxAgeDays: 1, maxTotalMB: 50 });
    const asked: string[][] = [];
    // (board labels are asked for always but no model makes them: the board check does)
    const recording: Detector = { detect: (img, opts) => (asked.push([...opts!.labels!].filter((l) => !/_board$|_knife$/.test(l)).sort()), pack.detect(img, opts)) };
    const cfg = config();
    const hour = Number(new Intl.DateTimeFormat('en-GB', { timeZone: cfg.site.timezone, hour: '2-digit', hourCycle: 'h23' }).format(Date.now()));
    const hh = (h: number) => `${String((h + 24) % 24).padStart(2, '0')}:00`;
    cfg.serviceHours = [{ days: ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'], from: hh(hour + 3), to: hh(hour + 4) }]; // closed now
    const pipeline = new Pipeline({ config: cfg, detector: recording, evidence, outbox, motion: false });
    pipeline.start();
    const t0 = Date.now();
    for (let i = 0; i < 4; i++) {
      pipeline.offer({ ...frame, capturedAt: t0 + i * 500 });
      await new Promise((r) => setTimeout(r, 60));
    }
    await pipeline.stop();
    expect(asked[0]).toEqual(expect.arrayContaining(['rodent', 'cat', 'dog', 'cigarette']));
    expect(asked[0]).not.toContain('face'); // no_mask is a service-hour rule
    expect(asked[1]).toEqual([]);
    expect(asked[2]).toEqual(asked[0]);
    expect(asked[3]).toEqual([]);
    outbox.close();
  });

  it('a cut to another person at the same spot starts a new track: two people, two alerts', async () => {
    // Two different bare faces whose boxes overlap (IoU 0.7 at 640x480), shown 5 s each.
    const people = await Promise.all(
      ['maksssksksss128.png', 'maksssksksss561.png'].map(async (f) => {
        const { data } = await sharp(path.join(path.dirname(BARE_FACE), f)).removeAlpha().resize(640, 480, { fit: 'fill' }).raw().toBuffer({ resolveWithObject: true });
        return { cameraId: 'cam1', width: 640, height: 480, data };
      }),
    );
    const outbox = Outbox.open({ dir, fileName: 'swap.sqlite' });
    const evidence = new EvidenceStore({ dir, maxAgeDays: 1, maxTotalMB: 50 });
    await evidence.init();
    const pipeline = new Pipeline({ config: config(), detector: pack, evidence, outbox, motion: {} });
    const events: EventMessage[] = [];
    pipeline.on('event', (e) => events.push(e));
    pipeline.start();
    const t0 = Date.now();
    for (let i = 0; i < 20; i++) {
      pipeline.offer({ ...people[i < 10 ? 0 : 1]!, capturedAt: t0 + i * 500 });
      await new Promise((r) => setTimeout(r, 60));
    }
    await pipeline.stop();
    expect(events.map((e) => e.kind)).toEqual(['no_mask', 'no_mask']);
    expect(events[0]!.trackId).not.toBe(events[1]!.trackId);
    outbox.close();
    evidence.close();
  });

  it('after a cut, the first frame gets the person pass and the close-up look, whatever their intervals', async () => {
    const photos = await Promise.all(
      ['maksssksksss128.png', 'maksssksksss561.png', '11-photo.jpg'].map(async (f) => {
        const { data } = await sharp(path.join(path.dirname(BARE_FACE), f)).removeAlpha().resize(640, 480, { fit: 'fill' }).raw().toBuffer({ resolveWithObject: true });
        return { cameraId: 'cam1', width: 640, height: 480, data };
      }),
    );
    const outbox = Outbox.open({ dir, fileName: 'cut-looks.sqlite' });
    const evidence = new EvidenceStore({ dir, maxAgeDays: 1, maxTotalMB: 50 });
    const asked: { i: number; people: boolean; closeUp: boolean }[] = [];
    let i = 0;
    const recording: Detector = { detect: (img, opts) => (asked.push({ i, people: opts?.peopleForHeads ?? true, closeUp: opts?.closeUp ?? true }), pack.detect(img, opts)) };
    const pipeline = new Pipeline({ config: config(), detector: recording, evidence, outbox, motion: {} });
    pipeline.start();
    const t0 = Date.now();
    // a new photo every 2.5 s: within both the person pass's 1.5-4.5 s and the close-up look's 6 s
    for (i = 0; i < 15; i++) {
      pipeline.offer({ ...photos[Math.floor(i / 5)]!, capturedAt: t0 + i * 500 });
      await new Promise((r) => setTimeout(r, 60));
    }
    await pipeline.stop();
    for (const cut of [0, 5, 10]) expect(asked.find((a) => a.i === cut), `frame ${cut}`).toEqual({ i: cut, people: true, closeUp: true });
    outbox.close();
  });

  it('keeps at most one pending frame per camera and counts the rest as dropped', async () => {
    const outbox = Outbox.open({ dir, fileName: 'drops.sqlite' });
    const evidence = new EvidenceStore({ dir, maxAgeDays: 1, maxTotalMB: 50 });
    const pipeline = new Pipeline({ config: config(), detector: pack, evidence, outbox, motion: false });
    pipeline.start();
    const t0 = Date.now();
    for (let i = 0; i < 50; i++) pipeline.offer({ ...frame, capturedAt: t0 + i * 10 }); // a burst, no waiting
    await pipeline.stop();
    const c = pipeline.counters().cam1!;
    expect(c.framesIn).toBe(50);
    expect(c.framesProcessed).toBeLessThanOrEqual(2);
    expect(c.framesDropped).toBe(50 - c.framesProcessed);
    outbox.close();
  });

  it('skips detection on a still scene but re-checks it periodically', async () => {
    const outbox = Outbox.open({ dir, fileName: 'gate.sqlite' });
    const evidence = new EvidenceStore({ dir, maxAgeDays: 1, maxTotalMB: 50 });
    const pipeline = new Pipeline({ config: config(), detector: pack, evidence, outbox, motion: { recheckMs: 5000 } });
    const events: EventMessage[] = [];
    pipeline.on('event', (e) => events.push(e));
    pipeline.start();
    const t0 = Date.now();
    for (let i = 0; i < 40; i++) {
      pipeline.offer({ ...frame, capturedAt: t0 + i * 500 });
      await new Promise((r) => setTimeout(r, 20));
    }
    await pipeline.stop();
    const c = pipeline.counters().cam1!;
    // 20 s of one picture: detected at t=0, 5, 10, 15 s; every other frame skipped.
    expect(c.framesProcessed).toBe(4);
    expect(c.framesSkippedStill).toBe(36);
    // The worker standing still is still caught (the last detections stand for skipped frames).
    expect(events.map((e) => e.kind)).toEqual(['no_mask']);
    outbox.close();
  });

  it('asks for keyframes-only decoding after the picture has been still for idleKeyframesAfterSec, and for full decoding on a change', async () => {
    const cfg = config();
    cfg.cameras[0]!.idleKeyframesAfterSec = 4;
    const outbox = Outbox.open({ dir, fileName: 'idle.sqlite' });
    const evidence = new EvidenceStore({ dir, maxAgeDays: 1, maxTotalMB: 50 });
    const pipeline = new Pipeline({ config: cfg, detector: pack, evidence, outbox, motion: { recheckMs: 5000 } });
    const modes: { mode: string; at: number }[] = [];
    let at = 0;
    pipeline.on('decode', (id, mode) => modes.push({ mode: `${id}:${mode}`, at }));
    pipeline.start();
    const t0 = Date.now();
    const dark = { ...frame, data: Buffer.from(Uint8Array.from(frame.data, (v) => v >> 2)) };
    // 0-7.5 s the same picture, then a different one (7.5-10 s), then still again.
    for (let i = 0; i < 20; i++) {
      at = i * 500;
      pipeline.offer({ ...(i >= 15 ? dark : frame), capturedAt: t0 + at });
      await new Promise((r) => setTimeout(r, 25));
    }
    await pipeline.stop();
    expect(modes.map((m) => m.mode)).toEqual(['cam1:keyframes', 'cam1:full']);
    expect(modes[0]!.at).toBe(4000); // still since t=0
    expect(modes[1]!.at).toBe(7500); // the first changed frame
    outbox.close();
  });

  it('runs only the models the active rules want: faces during service, animals at night or in food zones', async () => {
    const cfg = config();
    cfg.serviceHours = [{ days: ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'], from: '06:00', to: '20:00' }];
    cfg.cameras.push({ ...cfg.cameras[0]!, id: 'cam2', zones: [{ id: 'prep', name: '备餐台', kind: 'food', points: [[0, 0], [1, 0], [1, 1], [0, 1]] }] });
    const seen: { camera: string; labels: string[] }[] = [];
    const detector: Detector = {
      detect(img, opts) {
        seen.push({ camera: (img as PipelineFrame).cameraId, labels: [...(opts?.labels ?? [])] });
        return pack.detect(img, opts);
      },
    };
    const outbox = Outbox.open({ dir, fileName: 'wanted.sqlite' });
    const evidence = new EvidenceStore({ dir, maxAgeDays: 1, maxTotalMB: 50 });
    let clock = 0;
    const pipeline = new Pipeline({ config: cfg, detector, evidence, outbox, motion: false, now: () => clock });
    pipeline.start();
    // Noon and 23:00 in Shanghai (the site's default time zone), each camera once.
    for (const at of [Date.UTC(2026, 10, 25, 4), Date.UTC(2026, 10, 25, 15)]) {
      clock = at;
      for (const cameraId of ['cam1', 'cam2']) {
        const n = seen.length;
        pipeline.offer({ ...frame, cameraId, capturedAt: at });
        while (seen.length === n) await new Promise((r) => setTimeout(r, 10));
      }
    }
    await pipeline.stop();
    const wants = (i: number, l: string) => seen[i]!.labels.includes(l);
    expect(seen.map((x) => x.camera)).toEqual(['cam1', 'cam2', 'cam1', 'cam2']);
    expect([wants(0, 'face'), wants(0, 'rodent')]).toEqual([true, false]); // service, no food zone
    expect([wants(1, 'face'), wants(1, 'rodent')]).toEqual([true, true]); // service, food zone
    expect([wants(2, 'face'), wants(2, 'rodent'), wants(3, 'rodent')]).toEqual([false, true, true]); // closed
    outbox.close();
  });
});

/**
 * Event clips on real parts: photos served as H.264 by the real RTSP server, the real agent (its
 * ffmpeg copying the stream into the clip buffer beside decoding, the cut with ffmpeg, the outbox,
 * MQTT) and a real central (ingest of chunks and manifest, the store, the HTTP API with ranges).
 * Central's ingest is also fed chunks out of order, twice, damaged and from the wrong site.
 */
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Agent } from '../../agent/agent.js';
import { SiteConfigSchema } from '../../agent/config/schema.js';
import { ModelPack, REPO_ROOT } from '../../agent/detect/index.js';
import { clipOutboxMessages, selectSegments } from '../../agent/evidence/clips.js';
import { agentMetrics } from '../../agent/ops/metrics.js';
import { topics } from '../../protocol/topics.js';
import { testMp4 } from '../helpers/media.js';
import { ApiClient, SITE_PASSWORD, startFixture, USERS, type Fixture } from '../helpers/central.js';
import { scopeOf } from './central-fixture.js';
import { MASK_IMAGES, startSimCamera, stopAllSimCameras, type SimCamera } from '../helpers/rtsp.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
// bare face, masked (checked with `npm run detect`): one no_mask episode per 10 s loop
const PHOTOS = ['11-photo.jpg', '15-photo.jpg'];

let work: string;
let camera: SimCamera;
let pack: ModelPack;
let fx: Fixture;

function probe(file: string): { codec: string; durationSec: number } {
  const out = JSON.parse(execFileSync('ffprobe', ['-v', 'error', '-select_streams', 'v:0', '-show_entries', 'stream=codec_name:format=duration', '-of', 'json', file]).toString());
  return { codec: out.streams[0].codec_name, durationSec: Number(out.format.duration) };
}

beforeAll(async () => {
  work = mkdtempSync(path.join(tmpdir(), 'bk-clips-'));
  const photos = path.join(work, 'photos');
  mkdirSync(photos);
  PHOTOS.forEach((p, i) => copyFileSync(path.join(MASK_IMAGES, p), path.join(photos, `${i}-${p}`)));
  camera = await startSimCamera({ source: photos, imageSeconds: 5 });
  pack = await ModelPack.load({ pack: [{ manifest: 'rfb640_masked_face' }], threads: 1 });
  fx = await startFixture();
});

afterAll(async () => {
  await fx?.close();
  await pack?.close();
  await stopAllSimCameras();
  rmSync(work, { recursive: true, force: true });
});

describe('event clips', () => {
  it('RTSP camera → agent clip buffer → MP4 of pre + post roll at central, played over HTTP ranges', async () => {
    const config = SiteConfigSchema.parse({
      site: { id: 'site-a', name: '第一中学学生食堂' },
      serviceHours: [{ from: '00:00', to: '00:00' }],
      models: { dir: path.join(REPO_ROOT, 'var/models'), manifests: path.join(REPO_ROOT, 'models'), pack: [{ manifest: 'rfb640_masked_face' }], threads: 1 },
      cameras: [{ id: 'cam-hot', name: '热菜操作间', url: camera.url, fps: 2 }],
      uplink: { url: fx.central.brokerUrl, usernameEnv: 'U', passwordEnv: 'P' },
      storage: { dir: path.join(work, 'agent') },
      clips: { preSec: 4, postSec: 4, bufferDir: path.join(work, 'buffer') },
    });
    const agent = await Agent.start(config, { detector: pack, env: { U: 'site-a', P: SITE_PASSWORD } });
    const scope = await scopeOf(fx.central, USERS.admin.id);
    let eventId: string | undefined;
    try {
      const deadline = Date.now() + 60_000;
      while (!eventId && Date.now() < deadline) {
        await sleep(500);
        eventId = (await fx.central.store.events(scope, {})).find((e) => e.clip?.state === 'complete')?.id;
      }
      // The buffer is pruned: it never holds much more than the clip window and a wait.
      const segs = readdirSync(path.join(work, 'buffer', 'site-a', 'cam-hot')).filter((f) => f.endsWith('.ts'));
      expect(segs.length).toBeGreaterThan(2);
      expect(segs.length).toBeLessThan(20);
    } finally {
      await agent.stop();
    }
    expect(eventId, 'an event with a complete clip at central within 60 s').toBeTruthy();
    const ev = (await fx.central.internals.store.eventById(eventId!))!;
    expect(ev.clip).toMatchObject({ state: 'complete', url: `/api/events/${eventId}/clip.mp4` });
    expect(ev.clip!.codec).toMatch(/^avc1\./);

    // The manager of the site downloads it; a manager of another site gets 404; a range answers 206.
    const mgr = new ApiClient(fx.url);
    await mgr.login(USERS.mgrA.username);
    const res = await fetch(`${fx.url}${ev.clip!.url}`, { headers: { cookie: mgr.cookie } });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('video/mp4');
    const mp4 = Buffer.from(await res.arrayBuffer());
    expect(mp4.length).toBe(ev.clip!.bytes);
    const file = path.join(work, 'clip.mp4');
    writeFileSync(file, mp4);
    const p = probe(file);
    expect(p.codec).toBe('h264');
    expect(Math.abs(p.durationSec - 8), `clip of ${p.durationSec} s for 4 s + 4 s`).toBeLessThanOrEqual(1);
    const part = await fetch(`${fx.url}${ev.clip!.url}`, { headers: { cookie: mgr.cookie, range: 'bytes=100-199' } });
    expect(part.status).toBe(206);
    expect(part.headers.get('content-range')).toBe(`bytes 100-199/${mp4.length}`);
    expect(Buffer.from(await part.arrayBuffer())).toEqual(mp4.subarray(100, 200));
    const other = new ApiClient(fx.url);
    await other.login(USERS.mgrB.username);
    expect((await fetch(`${fx.url}${ev.clip!.url}`, { headers: { cookie: other.cookie } })).status).toBe(404);
    expect((await fetch(`${fx.url}${ev.clip!.url}`)).status).toBe(401);

    // The agent keeps the clip beside the event's snapshots (evicted with them).
    const day = readdirSync(path.join(work, 'agent', 'evidence'))[0]!;
    expect(existsSync(path.join(work, 'agent', 'evidence', day, `${eventId}-clip.mp4`))).toBe(true);
    expect(agent.clips.counters.cut).toBeGreaterThanOrEqual(1);
    expect(agent.clips.counters.failed).toBe(0);
    // both sides count them for Prometheus
    const reg = agentMetrics({ siteId: 'site-a', version: 'test', pipeline: agent.pipeline, cameras: agent.cameras, outbox: agent.outbox, uplink: agent.uplink, voice: null, clips: agent.clips });
    expect(await reg.getSingleMetricAsString('bk_clips_total')).toContain(`bk_clips_total{result="cut"} ${agent.clips.counters.cut}`);
    expect((await fx.central.metrics()).clips).toBeGreaterThanOrEqual(1);
  }, 120_000);

  it('central assembles chunks in any order, once, and refuses damaged or foreign ones', async () => {
    const ev = await fx.publishEvent('site-a');
    const mp4 = testMp4(path.join(work, 'pattern.mp4'), 3);
    const msgs = clipOutboxMessages({ eventId: ev.id, siteId: 'site-a', cameraId: 'cam-hot', mime: 'video/mp4', codec: 'avc1.42e01f', startAt: Date.now(), durationMs: 3000 }, mp4, 'bk/v1', 20_000);
    expect(msgs.length).toBeGreaterThan(3);
    const site = await mqtt.connectAsync(fx.central.brokerUrl, { username: 'site-a', password: SITE_PASSWORD, clientId: 'clip-test-a', reconnectPeriod: 0 });
    const siteB = await mqtt.connectAsync(fx.central.brokerUrl, { username: 'site-b', password: SITE_PASSWORD, clientId: 'clip-test-b', reconnectPeriod: 0 });
    const counters = fx.central.internals.ingest.counters;
    const rejected = () => counters.rejected;
    try {
      const before = rejected(), received = counters.messages;
      // Another site claims a chunk of site-a's event: refused.
      await siteB.publishAsync(topics().clipChunk('site-b', ev.id, 0), Buffer.from('not yours'), { qos: 1 });
      // The manifest first, then the chunks backwards with one sent twice.
      const [manifest, ...chunks] = [msgs.at(-1)!, ...msgs.slice(0, -1)];
      await site.publishAsync(manifest.topic, manifest.payload as string, { qos: 1 });
      await sleep(200);
      await fx.central.internals.ingest.idle();
      expect(await fx.central.store.clips.view(ev.id)).toMatchObject({ state: 'incomplete', chunksReceived: 0, chunks: chunks.length });
      for (const m of [...chunks].reverse()) await site.publishAsync(m.topic, m.payload as Buffer, { qos: 1 });
      await site.publishAsync(chunks[1]!.topic, chunks[1]!.payload as Buffer, { qos: 1 });
      const deadline = Date.now() + 5000;
      while ((await fx.central.store.clips.view(ev.id))?.state !== 'complete' && Date.now() < deadline) await sleep(50);
      expect(await fx.central.store.clips.view(ev.id)).toMatchObject({ state: 'complete', bytes: mp4.length });
      expect(readFileSync((await fx.central.store.clips.file(ev.id))!)).toEqual(mp4);
      // every message sent (site-b's chunk and the copy of chunk 1 too) has been handled
      while (counters.messages < received + msgs.length + 2 && Date.now() < deadline) await sleep(50);
      await fx.central.internals.ingest.idle();
      expect(rejected() - before).toBe(1); // only site-b's chunk
      expect(await fx.central.internals.store.sql.value('SELECT COUNT(*) FROM clip_chunks')).toBe(0);

      // A clip whose chunks do not hash to the manifest is marked failed, not stored.
      const ev2 = await fx.publishEvent('site-a');
      const bad = clipOutboxMessages({ eventId: ev2.id, siteId: 'site-a', cameraId: 'cam-hot', mime: 'video/mp4', codec: 'avc1.42e01f', startAt: Date.now(), durationMs: 3000 }, mp4, 'bk/v1', 20_000);
      const damaged = Buffer.from(bad[0]!.payload as Buffer);
      damaged[10] = damaged[10]! ^ 0xff;
      bad[0] = { ...bad[0]!, payload: damaged };
      for (const m of bad) await site.publishAsync(m.topic, m.payload as Buffer, { qos: 1 });
      const d2 = Date.now() + 5000;
      while ((await fx.central.store.clips.view(ev2.id))?.state !== 'failed' && Date.now() < d2) await sleep(50);
      expect((await fx.central.store.clips.view(ev2.id))?.state).toBe('failed');
      expect(await fx.central.store.clips.file(ev2.id)).toBeNull();
      expect(fx.central.internals.ingest.counters.recent.at(-1)).toMatch(/the chunks join to .* bytes hashing to/);
    } finally {
      await site.endAsync(true);
      await siteB.endAsync(true);
    }
  });
});

describe('clip retention at central', () => {
  it('expires clips past the age limit, then the oldest past the size limit; the alert keeps its snapshots', async () => {
    const store = fx.central.internals.store;
    const evs = [await fx.publishEvent('site-c'), await fx.publishEvent('site-c'), await fx.publishEvent('site-c')];
    for (const [i, ev] of evs.entries()) await fx.publishClip('site-c', ev.id, testMp4(path.join(work, `r${i}.mp4`), 1 + i), 1000 * (1 + i));
    const day = 86_400_000;
    const setAge = (id: string, ageMs: number) => store.sql.run('UPDATE clips SET complete_at = ? WHERE event_id = ?', [Date.now() - ageMs, id]);
    await setAge(evs[0]!.id, 31 * day);
    await setAge(evs[1]!.id, 2 * day);
    await setAge(evs[2]!.id, 1 * day);
    const state = async (id: string) => (await store.clips.view(id))?.state;
    const file0 = (await store.clips.file(evs[0]!.id))!;
    expect(existsSync(file0)).toBe(true);
    // other tests' clips are younger: only ours are old enough
    expect(await store.clips.enforceRetention({ maxAgeDays: 30, maxTotalMB: 1e6 })).toMatchObject({ clips: 1 });
    expect(existsSync(file0)).toBe(false);
    expect(await state(evs[0]!.id)).toBe('expired');
    expect(await store.clips.file(evs[0]!.id)).toBeNull();
    expect((await store.eventById(evs[0]!.id))?.snapshotReceived).toBe(true);
    // a size limit smaller than everything expires oldest first
    const r = await store.clips.enforceRetention({ maxAgeDays: 30, maxTotalMB: 0.0001 });
    expect(r.clips).toBeGreaterThanOrEqual(2);
    expect(await state(evs[1]!.id)).toBe('expired');
    expect(await state(evs[2]!.id)).toBe('expired');
    const admin = new ApiClient(fx.url);
    await admin.login(USERS.admin.username);
    expect((await fetch(`${fx.url}/api/events/${evs[2]!.id}/clip.mp4`, { headers: { cookie: admin.cookie } })).status).toBe(404);
  });
});

describe('selectSegments', () => {
  const seg = (startAt: number, endAt: number) => ({ file: `${startAt}.ts`, startAt, endAt });
  const segs = [seg(0, 2000), seg(2000, 4000), seg(4000, 6000), seg(6000, 8000), seg(8000, 10_000), seg(10_000, 12_000)];
  it('starts on the boundary nearest the pre-roll and covers the duration', () => {
    expect(selectSegments(segs, 3100, 5000, 6000).map((s) => s.startAt)).toEqual([4000, 6000, 8000]);
    expect(selectSegments(segs, 2900, 5000, 6000).map((s) => s.startAt)).toEqual([2000, 4000, 6000]);
  });
  it('never starts after the event, and is empty without segments of that time', () => {
    expect(selectSegments(segs, 9000, 2000, 9500).map((s) => s.startAt)).toEqual([8000]);
    expect(selectSegments(segs, 30_000, 5000, 31_000)).toEqual([]);
    expect(selectSegments([], 0, 5000, 1000)).toEqual([]);
  });
});

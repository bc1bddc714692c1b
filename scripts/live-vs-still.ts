/**
 * Live vs still: does a camera raise a violation on the same photos as `npm run detect` does?
 *
 *   npx tsx scripts/live-vs-still.ts --violation KIND --positives DIR[,DIR] --negatives DIR[,DIR]
 *        [--seconds-per-photo 6] [--limit N] [--json]
 *
 * Still: every photo through the default pack and the still rules (`npm run eval -- --violation`).
 * Live: the same photos, in one order, shown `--seconds-per-photo` each by the project's simulated RTSP
 * camera (no sensor noise: after each cut the motion gate sees a still picture), to the real agent
 * (ffmpeg ingest, gate, tracker, per-track vote, rules) with its MQTT uplink on a local Mosquitto. A
 * photo raises KIND live when an episode of that kind started while it was on screen (the episode's
 * start, not the alert, decides: the alert comes after the rule's persistence). Prints recall and
 * false-alarm rate both ways and the photos on which the two disagree. Progress on stderr.
 *
 * The camera's picture is not the photo: the photo is letterboxed into the camera's 16:9 frame,
 * H.264-encoded and scaled to the agent's frame width. So the agent's own decoded frame of each
 * photo (the first one past mid-photo) goes through the still rules too ("camera picture"): what
 * separates it from the photo is the picture, what separates it from live is the live path (gate,
 * tracker, per-track vote, persistence). `--keep-frames DIR` keeps those frames to look at.
 */
import { mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import sharp from 'sharp';
import { Agent } from '../agent/agent.js';
import { runViolationEval } from '../agent/cli/eval.js';
import { SiteConfigSchema } from '../agent/config/schema.js';
import { DEFAULT_PACK, ModelPack } from '../agent/detect/pack.js';
import { imagesFromFolders } from '../agent/eval/image-sets.js';
import { parseViolationKind } from '../agent/eval/violations.js';
import { startBroker } from './bench/run.js';
import { startSimCamera } from './sim-camera.js';

const HELP = 'usage: npx tsx scripts/live-vs-still.ts --violation KIND --positives DIR[,DIR] --negatives DIR[,DIR] [--seconds-per-photo 6] [--limit N] [--keep-frames DIR] [--json]';
const say = (s: string) => process.stderr.write(`live-vs-still: ${s}\n`);

async function main(): Promise<void> {
  const { values: a } = parseArgs({
    options: {
      violation: { type: 'string' },
      positives: { type: 'string', default: '' },
      negatives: { type: 'string', default: '' },
      'seconds-per-photo': { type: 'string', default: '6' },
      limit: { type: 'string' },
      'keep-frames': { type: 'string' },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (a.help || !a.violation) {
    process.stdout.write(`${HELP}\n`);
    if (!a.help) process.exit(2);
    return;
  }
  const kind = parseViolationKind(a.violation);
  const split = (s: string) => s.split(',').map((x) => x.trim()).filter(Boolean);
  let images = imagesFromFolders(split(a.positives), split(a.negatives));
  if (a.limit) images = images.slice(0, Number(a.limit));
  const show = Number(a['seconds-per-photo']);
  if (!(show >= 2)) throw new Error(`--seconds-per-photo: expected at least 2, got ${a['seconds-per-photo']}`);

  say(`still: ${images.length} photos through the default pack`);
  const still = await runViolationEval({ kind, images });

  const work = mkdtempSync(path.join(tmpdir(), 'bk-live-still-'));
  const photos = path.join(work, 'photos');
  mkdirSync(photos);
  const link = (file: string, i: number) => symlinkSync(path.resolve(file), path.join(photos, `${String(i).padStart(5, '0')}${path.extname(file)}`));
  images.forEach((im, i) => link(im.file, i));
  // An image sequence ends on its last image's first frame: a copy after it keeps the last photo on screen its full time.
  link(images[images.length - 1]!.file, images.length);
  const broker = await startBroker();
  const camera = await startSimCamera({ source: photos, imageSeconds: show, width: 960, height: 540, fps: 15, gop: 15, loop: false });
  const shownFrom = Date.now(); // the slideshow starts when the camera is up
  const pack = await ModelPack.load({ pack: DEFAULT_PACK, threads: 2 });
  const config = SiteConfigSchema.parse({
    site: { id: 'live-vs-still', name: 'live vs still' },
    serviceHours: [{ from: '00:00', to: '23:59' }],
    models: { pack: DEFAULT_PACK },
    cameras: [{ id: 'cam1', name: 'cam1', url: camera.url, fps: 2 }],
    uplink: { url: broker.url, usernameEnv: 'BK_LVS_USER', passwordEnv: 'BK_LVS_PASS' },
    storage: { dir: path.join(work, 'agent') },
  });
  const agent = await Agent.start(config, { detector: pack, env: { BK_LVS_USER: 'live-vs-still', BK_LVS_PASS: 'unused' } });
  // The agent's decoded frame of each photo, the first one past its middle (away from the cut).
  const frames = a['keep-frames'] ? path.resolve(a['keep-frames']) : path.join(work, 'frames');
  mkdirSync(frames, { recursive: true });
  const framed = new Map<number, Promise<string>>();
  agent.cameras[0]!.on('frame', (f) => {
    const dt = f.capturedAt - shownFrom;
    const i = Math.floor(dt / (show * 1000));
    if (i < 0 || i >= images.length || framed.has(i) || dt - i * show * 1000 < (show * 1000) / 2) return;
    const file = path.join(frames, `${String(i).padStart(5, '0')}-${path.basename(images[i]!.file, path.extname(images[i]!.file))}.png`);
    framed.set(i, sharp(f.data, { raw: { width: f.width, height: f.height, channels: 3 } }).png().toFile(file).then(() => file));
  });
  const liveRaised = new Set<number>();
  agent.pipeline.on('event', (e) => {
    if (e.kind !== kind) return;
    const i = Math.floor((e.startedAt - shownFrom) / (show * 1000));
    if (i >= 0 && i < images.length) liveRaised.add(i);
  });
  const total = images.length * show * 1000 + 3000;
  say(`live: ${images.length} photos x ${show} s on ${camera.url} (${Math.round(total / 1000)} s)`);
  for (let t = 0; t < total; t += 10_000) {
    await new Promise((r) => setTimeout(r, Math.min(10_000, total - t)));
    say(`live: ${Math.min(100, Math.round(((t + 10_000) / total) * 100))} %, ${liveRaised.size} photos raised so far`);
  }
  await agent.stop();
  await camera.stop();
  await pack.close();
  await broker.stop();

  const onCamera = await Promise.all([...framed].map(async ([i, file]) => ({ i, file: await file })));
  say(`camera picture: ${onCamera.length} frames through the default pack`);
  const onPicture = onCamera.length ? await runViolationEval({ kind, images: onCamera.map(({ i, file }) => ({ ...images[i]!, file })) }) : null;
  const cameraRaised = new Map(onCamera.map(({ i }, k) => [i, onPicture!.images[k]!.raised]));
  rmSync(work, { recursive: true, force: true });

  const mark = (raised: boolean) => (raised ? 'raised' : '-');
  const rate = (xs: boolean[]) => (xs.length ? Math.round((xs.filter(Boolean).length / xs.length) * 1000) / 1000 : null);
  const rows = still.images.map((im, i) => ({ file: im.file, positive: im.positive, still: im.raised, camera: cameraRaised.get(i) ?? null, live: liveRaised.has(i) }));
  const pos = rows.filter((r) => r.positive);
  const neg = rows.filter((r) => !r.positive);
  const report = {
    kind,
    secondsPerPhoto: show,
    photos: rows.length,
    still: { recall: rate(pos.map((r) => r.still)), falseAlarmRate: rate(neg.map((r) => r.still)) },
    live: { recall: rate(pos.map((r) => r.live)), falseAlarmRate: rate(neg.map((r) => r.live)) },
    // only the photos of which a frame was caught
    cameraPicture: {
      photos: cameraRaised.size,
      recall: rate(pos.filter((r) => r.camera !== null).map((r) => r.camera!)),
      falseAlarmRate: rate(neg.filter((r) => r.camera !== null).map((r) => r.camera!)),
      liveOnTheSamePhotos: { recall: rate(pos.filter((r) => r.camera !== null).map((r) => r.live)), falseAlarmRate: rate(neg.filter((r) => r.camera !== null).map((r) => r.live)) },
    },
    disagree: rows.filter((r) => r.still !== r.live || (r.camera !== null && r.camera !== r.live)),
  };
  if (a.json) process.stdout.write(`${JSON.stringify(report)}\n`);
  else {
    process.stdout.write(
      `${kind}: ${rows.length} photos, ${show} s each\n` +
        `  still  recall ${report.still.recall}  false alarms ${report.still.falseAlarmRate}\n` +
        `  live   recall ${report.live.recall}  false alarms ${report.live.falseAlarmRate}\n` +
        `  camera picture (${report.cameraPicture.photos} photos): still recall ${report.cameraPicture.recall}  false alarms ${report.cameraPicture.falseAlarmRate}; ` +
        `live on them recall ${report.cameraPicture.liveOnTheSamePhotos.recall}  false alarms ${report.cameraPicture.liveOnTheSamePhotos.falseAlarmRate}\n` +
        `  disagree on ${report.disagree.length}: ${report.disagree.map((r) => `${path.basename(r.file)} (${r.positive ? 'pos' : 'neg'}, still ${mark(r.still)}, camera picture ${r.camera === null ? '?' : mark(r.camera)}, live ${mark(r.live)})`).join(', ') || 'none'}\n`,
    );
  }
}

main().catch((err: Error) => {
  say(err.message);
  process.exit(1);
});

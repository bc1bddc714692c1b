/**
 * The clip buffer's segments from a camera that sends its H.264 parameter sets (SPS/PPS) only in
 * the SDP, as the benchmark's cameras do (a pre-encoded clip copied into the real GStreamer RTSP
 * server): without them repeated in each segment, every segment but the first is undecodable and
 * no clip of a later event can be cut (every clip of `npm run bench` failed so before 2026-12-07).
 */
import { spawn, execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clipSegmentOutput } from '../../agent/camera/ffmpeg.js';
import { cutClip, listSegments } from '../../agent/evidence/clips.js';
import { startFeed, waitExit, type Feed } from '../../scripts/bench/feed.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
let work: string;
let feed: Feed;

beforeAll(async () => {
  work = mkdtempSync(path.join(tmpdir(), 'bk-clipseg-'));
  const clip = path.join(work, 'cam.ts');
  // encoded as the benchmark encodes (scripts/bench/media.ts): a keyframe a second, headers repeated in-band
  execFileSync('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-y', '-f', 'lavfi', '-i', 'testsrc=size=320x180:rate=15:duration=12',
    '-c:v', 'libx264', '-preset', 'ultrafast', '-tune', 'zerolatency', '-g', '15', '-keyint_min', '15', '-sc_threshold', '0', '-bf', '0',
    '-x264-params', 'repeat-headers=1', '-pix_fmt', 'yuv420p', '-f', 'mpegts', clip]);
  feed = await startFeed([{ mount: 'cam', clip, offsetSec: 0 }]);
});

afterAll(async () => {
  await feed?.stop();
  rmSync(work, { recursive: true, force: true });
});

describe('clip buffer segments', () => {
  it('every segment of an RTSP camera decodes on its own, so a clip can start at any of them', async () => {
    const dir = path.join(work, 'buffer');
    mkdirSync(dir, { recursive: true });
    const out = clipSegmentOutput(dir, String(Date.now()), 1);
    const ff = spawn('ffmpeg', ['-hide_banner', '-nostdin', '-loglevel', 'error', '-rtsp_transport', 'tcp', '-i', feed.url('cam'), ...out.options, out.target], { stdio: 'ignore' });
    await sleep(6000);
    ff.kill('SIGINT');
    await waitExit(ff);
    const segments = await listSegments(dir, 1);
    expect(segments.length).toBeGreaterThanOrEqual(4);
    // a clip that starts at the third segment (its parameter sets are not in the stream's first packets)
    const clip = await cutClip(segments.slice(2, 4), 2000, 16 << 20, path.join(work, 'clip.mp4'));
    expect(clip.codec).toMatch(/^avc1\./);
    expect(clip.durationMs).toBeGreaterThan(500);
    const frames = execFileSync('ffprobe', ['-v', 'error', '-count_frames', '-select_streams', 'v:0', '-show_entries', 'stream=nb_read_frames', '-of', 'csv=p=0', path.join(work, 'clip.mp4')]).toString().trim();
    expect(Number(frames)).toBeGreaterThan(10);
  }, 60_000);

  it('a file camera (MP4: parameter sets not in Annex B) segments and cuts as well', async () => {
    const dir = path.join(work, 'file-buffer');
    mkdirSync(dir, { recursive: true });
    const mp4 = path.join(work, 'in.mp4');
    execFileSync('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-y', '-f', 'lavfi', '-i', 'testsrc=size=320x180:rate=10:duration=6', '-c:v', 'libx264', '-preset', 'ultrafast', '-g', '10', '-pix_fmt', 'yuv420p', mp4]);
    const out = clipSegmentOutput(dir, String(Date.now()), 1, false);
    execFileSync('ffmpeg', ['-hide_banner', '-nostdin', '-loglevel', 'error', '-i', mp4, ...out.options, out.target]);
    const segments = await listSegments(dir, 1);
    expect(segments.length).toBeGreaterThanOrEqual(4);
    const clip = await cutClip(segments.slice(2, 4), 2000, 16 << 20, path.join(work, 'file-clip.mp4'));
    expect(clip.durationMs).toBeGreaterThan(1000);
  });
});


/**
 * PPM frame cutting on real ffmpeg output (images of different sizes, cut at random chunk borders),
 * and the select filter's frame-rate semantics checked with real ffmpeg.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FrameStreamError, PpmFrameSplitter } from '../../agent/camera/ppm-splitter.js';
import { buildIdleIngest, buildIngestCommand, keyframeSampler, selectFilter } from '../../agent/camera/ffmpeg.js';
import { Backoff } from '../../agent/camera/backoff.js';
import { MASK_IMAGES } from '../helpers/rtsp.js';

function ffmpegOut(args: string[]): Buffer {
  const r = spawnSync('ffmpeg', ['-hide_banner', '-nostdin', '-loglevel', 'error', ...args], { maxBuffer: 256 << 20 });
  if (r.status !== 0) throw new Error(`ffmpeg failed: ${r.stderr.toString()}`);
  return r.stdout;
}

/** One PPM image of `file` scaled to `width` (aspect kept), as ffmpeg writes it. */
function ppmOf(file: string, width: number): Buffer {
  return ffmpegOut(['-i', file, '-frames:v', '1', '-vf', `scale=${width}:-2,format=rgb24`, '-f', 'image2pipe', '-c:v', 'ppm', '-']);
}

/** Deterministic pseudo-random chunk sizes. */
function* chunks(buf: Buffer, seed: number, max: number): Generator<Buffer> {
  let s = seed;
  let off = 0;
  while (off < buf.length) {
    s = (s * 1103515245 + 12345) & 0x7fffffff;
    const n = 1 + (s % max);
    yield buf.subarray(off, off + n);
    off += n;
  }
}

describe('PpmFrameSplitter', () => {
  const files = readdirSync(MASK_IMAGES).sort().slice(0, 3).map((f) => join(MASK_IMAGES, f));
  const widths = [320, 160, 250];
  const ppms = files.map((f, i) => ppmOf(f, widths[i]!));
  const stream = Buffer.concat(ppms);
  const expected = ppms.map((p) => {
    const m = /^P6\n(\d+) (\d+)\n255\n/.exec(p.toString('latin1', 0, 32))!;
    return { width: Number(m[1]), height: Number(m[2]), data: p.subarray(m[0].length) };
  });

  it.each([
    ['tiny chunks', 7, 13],
    ['pipe-sized chunks', 3, 65536],
    ['one chunk', 1, stream.length],
  ])('cuts whole frames of changing size from %s', (_name, seed, max) => {
    const got: Array<{ data: Buffer; width: number; height: number }> = [];
    const sp = new PpmFrameSplitter((data, width, height) => got.push({ data: Buffer.from(data), width, height }));
    for (const c of chunks(stream, seed, max)) sp.push(c);
    expect(got.map((g) => [g.width, g.height])).toEqual(expected.map((e) => [e.width, e.height]));
    got.forEach((g, i) => expect(g.data.equals(expected[i]!.data)).toBe(true));
    expect(new Set(got.map((g) => g.height)).size).toBeGreaterThan(1);
    expect(sp.pending).toBe(0);
  });

  it('hands out each frame in its own memory, not a view of the chunk', () => {
    const frames: Buffer[] = [];
    const sp = new PpmFrameSplitter((data) => frames.push(data));
    sp.push(stream);
    expect(frames).toHaveLength(3);
    for (const f of frames) {
      expect(f.buffer).not.toBe(stream.buffer);
      expect(f.byteLength).toBe(f.buffer.byteLength);
    }
    expect(new Set(frames.map((f) => f.buffer)).size).toBe(3);
  });

  it('rejects data that is not a PPM stream, naming what is wrong', () => {
    const sp = new PpmFrameSplitter(() => undefined);
    expect(() => sp.push(Buffer.from('RTSP/1.0 200 OK\r\n'))).toThrow(FrameStreamError);
    expect(() => sp.push(Buffer.from('P6\n'))).toThrow(/expected a PPM header/);
    const bad = new PpmFrameSplitter(() => undefined);
    expect(() => bad.push(Buffer.from('P6\n640 x\n255\n'))).toThrow(/bad PPM frame size/);
    const deep = new PpmFrameSplitter(() => undefined);
    expect(() => deep.push(Buffer.from('P6\n4 4\n65535\n'))).toThrow(/maxval 255/);
    const huge = new PpmFrameSplitter(() => undefined, 1000);
    expect(() => huge.push(Buffer.from('P6\n100 100\n255\n'))).toThrow(/bad PPM frame size/);
  });

  it('a truncated stream leaves a partial frame pending and emits nothing', () => {
    const got: Buffer[] = [];
    const sp = new PpmFrameSplitter((d) => got.push(d));
    sp.push(ppms[0]!.subarray(0, ppms[0]!.length - 1));
    expect(got).toHaveLength(0);
    expect(sp.pending).toBe(expected[0]!.data.length - 1);
  });
});

describe('select filter (detection rate)', () => {
  /** Frames out of ffmpeg for a `secs` test source at `inFps` through the camera's filter at `fps`. */
  const count = (inFps: number, fps: number, secs: number, jitterSec = 0): number => {
    // Jitter: each timestamp moved by up to ±jitterSec/2 on RTP's 90 kHz clock (random(0) is seeded).
    const jitter = jitterSec ? `settb=1/90000,setpts='PTS+(random(0)-0.5)*${jitterSec}/TB',` : '';
    const out = ffmpegOut([
      '-f', 'lavfi', '-i', `testsrc2=size=64x48:rate=${inFps}:duration=${secs}`,
      '-vf', `${jitter}${selectFilter(fps)},format=rgb24`, '-fps_mode', 'passthrough', '-enc_time_base', '-1',
      '-f', 'image2pipe', '-c:v', 'ppm', '-',
    ]);
    let n = 0;
    new PpmFrameSplitter(() => n++).push(out);
    return n;
  };

  it('keeps exactly fps frames per second from a faster stream', () => {
    // Slots are centred on multiples of 1/fps from the first frame: a clip of S seconds touches
    // S x fps slots plus the one around its end (e.g. 4 s at 2 fps: t = 0, 0.5, ... 3.5 and 4.0).
    expect(count(15, 2, 4)).toBe(9);
    expect(count(25, 5, 2)).toBe(11);
    expect(count(15, 0.5, 6)).toBe(4);
    expect(count(15, 2, 20)).toBe(41);
  });

  it('keeps every frame of a stream at exactly the target rate, also with timestamp jitter (RTSP)', () => {
    expect(count(15, 15, 4)).toBe(60);
    expect(count(15, 15, 4, 0.02)).toBe(60);
    expect(count(15, 2, 4, 0.02)).toBe(9);
  });

  it('never duplicates frames when the input is slower than the target (keyframes only)', () => {
    expect(count(1, 2, 4)).toBe(4);
  });
});

describe('ingest command', () => {
  it('rtsp: TCP, low-latency probing, keyframes only on request, frames at the configured width', () => {
    const c = buildIngestCommand({ id: 'c', url: 'rtsp://u:p@10.0.0.2/s', fps: 2, keyframesOnly: true, frameWidth: 640 });
    expect(c.inputOptions.join(' ')).toMatch(/-rtsp_transport tcp/);
    expect(c.inputOptions.join(' ')).toMatch(/-skip_frame nokey/);
    expect(c.filter).toMatch(/scale=w=640:/);
    const plain = buildIngestCommand({ id: 'c', url: 'rtsp://10.0.0.2/s', fps: 2, keyframesOnly: false, frameWidth: 640 });
    expect(plain.inputOptions).not.toContain('-skip_frame');
  });

  it('file: native rate, looping, a path rather than a URL', () => {
    const c = buildIngestCommand({ id: 'c', url: 'file:///tmp/a%20b.mp4', fps: 2, keyframesOnly: false, frameWidth: 320 });
    expect(c.input).toBe('/tmp/a b.mp4');
    expect(c.inputOptions.join(' ')).toMatch(/-re -stream_loop -1/);
    expect(c.inputOptions).not.toContain('-rtsp_transport');
  });

  it('sub-stream: decoded for detection; the main stream is opened only as the clip buffer\'s input (its segments map input 1)', () => {
    const cfg = { id: 'c', url: 'rtsp://10.0.0.2/main', substreamUrl: 'rtsp://10.0.0.2/sub', fps: 2, keyframesOnly: false, frameWidth: 640 };
    const clips = { dir: '/tmp/clips', prefix: '1', segmentSec: 2 };
    const c = buildIngestCommand(cfg, clips);
    expect(c.input).toBe('rtsp://10.0.0.2/sub');
    expect(c.clipInput?.input).toBe('rtsp://10.0.0.2/main');
    expect(c.clipInput?.options.join(' ')).toMatch(/-rtsp_transport tcp/);
    expect(c.segments?.options.join(' ')).toMatch(/-map 1:v:0 .*-c:v copy/);
    expect(c.segments?.target).toBe('/tmp/clips/1-%06d.ts');
    const noClips = buildIngestCommand(cfg);
    expect([noClips.input, noClips.clipInput, noClips.segments]).toEqual(['rtsp://10.0.0.2/sub', undefined, undefined]);
    // Without a sub-stream the one input serves both outputs.
    const single = buildIngestCommand({ ...cfg, substreamUrl: undefined }, clips);
    expect([single.input, single.clipInput]).toEqual(['rtsp://10.0.0.2/main', undefined]);
    expect(single.segments?.options.join(' ')).toMatch(/-map 0:v:0 /);
    expect(buildIdleIngest(cfg, 5).receiver.join(' ')).toMatch(/-i rtsp:\/\/10\.0\.0\.2\/sub /);
  });

  it('idle: a receiver that copies the camera stream without decoding, a decoder reading it on stdin', () => {
    const { receiver, decoder } = buildIdleIngest({ id: 'c', url: 'rtsp://10.0.0.2/s', fps: 2, keyframesOnly: false, frameWidth: 640 }, 5);
    const rx = receiver.join(' ');
    expect(rx).toMatch(/-rtsp_transport tcp .*-i rtsp:\/\/10\.0\.0\.2\/s /);
    expect(rx).toMatch(/-c copy -bsf:v noise=drop=/);
    expect(rx).toMatch(/-f nut -flush_packets 1 pipe:1$/);
    expect(decoder.input).toBe('pipe:0');
    expect(decoder.inputOptions.join(' ')).toMatch(/-f nut -probesize 32/);
    expect(decoder.inputOptions).not.toContain('-rtsp_transport');
    // The receiver chooses the frames: no select filter, only the scaling.
    expect(decoder.filter).not.toMatch(/select/);
    expect(decoder.filter).toMatch(/scale=w=640:/);
  });
});

describe('keyframe sampler (idle ingest), on real ffmpeg', () => {
  it('keeps the first keyframe and then one at least every N seconds, nothing else', () => {
    const dir = mkdtempSync(join(tmpdir(), 'bk-sampler-'));
    try {
      // 12.5 s at 15 fps, a keyframe every second (GOP 15).
      const clip = join(dir, 'gop1.ts');
      ffmpegOut(['-f', 'lavfi', '-i', 'testsrc=s=160x120:r=15', '-t', '12.5', '-c:v', 'libx264', '-g', '15', '-keyint_min', '15', '-sc_threshold', '0', '-y', clip]);
      const out = join(dir, 'kept.nut');
      ffmpegOut(['-i', clip, '-map', '0:v', '-c', 'copy', '-bsf:v', keyframeSampler(4), '-f', 'nut', '-y', out]);
      const probe = spawnSync('ffprobe', ['-v', 'error', '-show_entries', 'packet=pts_time,flags', '-of', 'csv=p=0', out], { encoding: 'utf8' });
      const packets = probe.stdout.trim().split('\n').map((l) => l.split(','));
      expect(packets.every(([, flags]) => flags!.startsWith('K'))).toBe(true);
      const t = packets.map(([pts]) => Number(pts));
      // Keyframes at 0, 1, 2 ... s (+ the stream's start offset): 0, 4, 8, 12 are kept.
      expect(t).toHaveLength(4);
      for (let i = 1; i < t.length; i++) expect(t[i]! - t[i - 1]!).toBeCloseTo(4, 1);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('Backoff', () => {
  it('doubles from the initial delay up to the cap, and resets', () => {
    const b = new Backoff(1000, 30_000);
    expect(Array.from({ length: 7 }, () => b.next())).toEqual([1000, 2000, 4000, 8000, 16000, 30000, 30000]);
    b.reset();
    expect(b.next()).toBe(1000);
    expect(() => new Backoff(0, 10)).toThrow(/initialMs/);
  });
});

/**
 * The ffmpeg command line of one camera ingest, and the reading of ffmpeg's stderr into a short,
 * readable reason. Pure functions: unit-tested without a camera.
 */
import { redactUrl } from '../../common/redact.js';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { detectUrl, type CameraIngestConfig } from './types.js';

export interface IngestCommand {
  /** What follows `-i` (`pipe:0` for the decoder of idle sampling, see buildSampledDecoder). */
  input: string;
  inputOptions: string[];
  /** The video filter chain (select at the detection rate, scale, pixel format). */
  filter: string;
  outputOptions: string[];
  /** Output format and codec: image2pipe of PPM (RGB24 with a tiny per-frame size header). */
  format: 'image2pipe';
  codec: 'ppm';
  /** A second output of the same process: the clip buffer's segments (clipSegmentOutput). */
  segments?: SegmentOutput;
  /** The segments' own input (the main stream) when detection decodes the camera's sub-stream. */
  clipInput?: { input: string; options: string[] };
}

/** Where and how the clip buffer of one ffmpeg run writes (the prefix: one per run). */
export interface ClipBufferSpec {
  dir: string;
  prefix: string;
  segmentSec: number;
}

/** An ffmpeg output given as its target and the options before it. */
export interface SegmentOutput {
  target: string;
  options: string[];
}

/**
 * The clip buffer (agent/evidence/clips.ts): the camera's stream copied, not re-encoded, into MPEG-TS
 * segments `<prefix>-000000.ts`, … of about `segmentSec` (cut at the first keyframe after it). MPEG-TS
 * because a segment cut short by a kill or a reconnect still plays and concatenates. One prefix per
 * ffmpeg run, so a reconnect never overwrites the segments of the run before. For an RTSP camera
 * (`rtsp`), `dump_extra` repeats the stream's parameter sets (SPS/PPS) before every keyframe: a
 * camera that sends them only in its SDP (and the bench's GStreamer cameras) otherwise leaves every
 * segment but the first undecodable, and no clip could be cut. Not for a file: an MP4's parameter
 * sets are not Annex B, and ffmpeg's own conversion for MPEG-TS already repeats them.
 */
export function clipSegmentOutput(dir: string, prefix: string, segmentSec: number, rtsp = true, input = 0): SegmentOutput {
  return {
    target: path.join(dir, `${prefix}-%06d.ts`),
    options: [
      '-map', `${input}:v:0`, '-an', '-sn', '-dn', '-c:v', 'copy', ...(rtsp ? ['-bsf:v', 'dump_extra=freq=keyframe'] : []),
      '-f', 'segment', '-segment_time', String(segmentSec), '-segment_format', 'mpegts', '-reset_timestamps', '1',
    ],
  };
}


/**
 * Keeps the first frame of every 1/fps time slot. Unlike the `fps` filter this never duplicates a
 * frame when the input is slower than the target (keyframes-only decoding, a camera at 1 fps), so
 * the detector is never fed copies; with faster input it yields exactly `fps` frames per second.
 * Slots are counted from the stream's first frame and centred on multiples of 1/fps: frames of a
 * stream at exactly `fps` then sit mid-slot, and timestamp jitter (RTSP) cannot put two of them in
 * one slot (slots counted from t = 0 kept 88 of 150 frames of a 15 fps camera at fps 15).
 */
export function selectFilter(fps: number): string {
  const r = Number(fps.toPrecision(6));
  const slot = (t: string) => `floor((${t}-start_t)*${r}+0.5)`;
  return `select='isnan(prev_selected_t)+gte(${slot('t')}-${slot('prev_selected_t')},1)'`;
}

/** ffmpeg's socket I/O timeout for network cameras (connect and read). */
export const RTSP_IO_TIMEOUT_MS = 5000;

/** Options of the input: the camera connection (RTSP over TCP, or a file played in real time). */
function sourceOptions(url: string): { input: string; options: string[] } {
  if (url.startsWith('file://')) {
    // Demo/test input: play at native rate, forever.
    return { input: fileURLToPath(url), options: ['-re', '-stream_loop', '-1'] };
  }
  return {
    input: url,
    options: [
      '-rtsp_transport', 'tcp',
      '-allowed_media_types', 'video',
      // Socket I/O timeout (µs): connect and read. The CameraSource watchdog covers what this does not.
      '-timeout', String(RTSP_IO_TIMEOUT_MS * 1000),
      '-fflags', 'nobuffer+discardcorrupt',
      '-flags', 'low_delay',
      '-analyzeduration', '0',
      '-probesize', '32',
    ],
  };
}

const QUIET = ['-hide_banner', '-nostdin', '-nostats', '-loglevel', 'warning'];

/**
 * Idle sampling keeps a keyframe at least this long after the last one kept: a little under the
 * interval, so that a frame of timestamp jitter does not skip a keyframe. Used by both samplers
 * (keyframeSampler here, rtp-keyframes.ts).
 */
export function keyframeGapSec(everySec: number): number {
  return Number((everySec * 0.95).toPrecision(6));
}

/**
 * Bitstream filter of idle sampling: drops every packet except a keyframe at least `everySec` after
 * the last one kept (the first keyframe is kept). ld(0): time of the last kept keyframe, ld(1): one
 * has been kept. Timestamps are the stream's own (RTP), so the interval holds whatever the GOP is.
 */
export function keyframeSampler(everySec: number): string {
  const gap = keyframeGapSec(everySec);
  return `noise=drop='if(key*(gte(pts*tb-ld(0),${gap})+not(ld(1))),st(0,pts*tb);st(1,1);0,1)'`;
}

function decodeSteps(cfg: CameraIngestConfig): { decode: string[]; scale: string[]; out: Pick<IngestCommand, 'outputOptions' | 'format' | 'codec'> } {
  return {
    // Decoder: one thread (no frame-threading delay; 4-16 cameras share a small box).
    decode: ['-threads', '1'],
    scale: [
      // Height from the display aspect ratio (handles non-square pixels), rounded down to even.
      `scale=w=${cfg.frameWidth}:h=trunc(ow/dar/2)*2:flags=bilinear`,
      'setsar=1',
      'format=rgb24',
    ],
    out: {
      outputOptions: [
        '-map', '0:v:0',
        '-an', '-sn', '-dn',
        '-filter_threads', '1',
        // Hand every selected frame over as it comes: no duplication, no dropping by ffmpeg's muxer.
        '-fps_mode', 'passthrough',
        '-enc_time_base', '-1',
        '-flush_packets', '1',
      ],
      format: 'image2pipe',
      codec: 'ppm',
    },
  };
}

/**
 * The ingest of one camera: connect, decode (every frame, or keyframes only), keep the detection rate,
 * scale; with `clips`, also copy the main stream into the clip buffer. A camera with a sub-stream is
 * decoded from it, and its main stream is then a second input of the same process, for the clips only
 * (no clip buffer: the main stream is not opened at all).
 */
export function buildIngestCommand(cfg: CameraIngestConfig, clips?: ClipBufferSpec): IngestCommand {
  const src = sourceOptions(detectUrl(cfg));
  const { decode, scale, out } = decodeSteps(cfg);
  const inputOptions = [...QUIET, ...src.options, ...decode];
  // -skip_frame is a decoder option: the segments still get every packet.
  if (cfg.keyframesOnly) inputOptions.push('-skip_frame', 'nokey');
  const cmd: IngestCommand = { input: src.input, inputOptions, filter: [selectFilter(cfg.fps), ...scale].join(','), ...out };
  if (!clips) return cmd;
  const sub = cfg.substreamUrl !== undefined;
  cmd.segments = clipSegmentOutput(clips.dir, clips.prefix, clips.segmentSec, !cfg.url.startsWith('file://'), sub ? 1 : 0);
  if (sub) cmd.clipInput = sourceOptions(cfg.url);
  return cmd;
}

/**
 * The ingest of a camera whose picture is still (CameraSource.setIdleDecode): one keyframe every
 * `everySec` seconds is decoded, nothing else. ffmpeg 5 cannot drop packets before its decoder, so
 * this takes two processes: a `receiver` that copies the stream without decoding and keeps one
 * keyframe per interval (`keyframeSampler`), muxed as NUT (framed: each packet can be read as soon as
 * it is written), and the `decoder`, which reads that on stdin. The camera then costs about what
 * receiving its stream costs. RTSP cameras are received by the agent itself (rtsp-receiver.ts,
 * cheaper); this serves files and cameras that receiver cannot (RTSPS, codecs other than H.264/5).
 */
export function buildIdleIngest(cfg: CameraIngestConfig, everySec: number): { receiver: string[]; decoder: IngestCommand } {
  const src = sourceOptions(detectUrl(cfg));
  const receiver = [
    ...QUIET, ...src.options, '-i', src.input,
    '-map', '0:v:0', '-c', 'copy', '-bsf:v', keyframeSampler(everySec),
    '-f', 'nut', '-flush_packets', '1', 'pipe:1',
  ];
  return { receiver, decoder: buildSampledDecoder(cfg, 'nut') };
}

/**
 * The decoder of idle sampling: sampled keyframes arrive on stdin, as NUT from the ffmpeg receiver
 * (buildIdleIngest) or as an Annex-B H.264 / H.265 stream from the agent's own (rtsp-receiver.ts).
 */
export function buildSampledDecoder(cfg: CameraIngestConfig, format: 'nut' | 'h264' | 'hevc'): IngestCommand {
  const { decode, scale, out } = decodeSteps(cfg);
  const inputOptions = [...QUIET, '-f', format, '-probesize', '32', '-analyzeduration', '0', '-flags', 'low_delay', ...decode];
  return { input: 'pipe:0', inputOptions, filter: scale.join(','), ...out };
}

const INVALID_DATA = 'invalid data: not a playable video stream';

const RULES: Array<[RegExp, string | ((m: RegExpMatchArray) => string)]> = [
  [/401 unauthorized/i, 'unauthorized (RTSP 401): wrong or missing credentials'],
  [/403 forbidden/i, 'forbidden (RTSP 403)'],
  [/404 not found/i, 'stream path not found (RTSP 404)'],
  [/503 service unavailable/i, 'camera server unavailable (RTSP 503): no media on that path yet'],
  [/method (\w+) failed: (\d{3}[^\r\n]*)/i, (m) => `RTSP ${m[1]} failed: ${m[2]!.trim()}`],
  [/connection refused/i, 'connection refused'],
  [/failed to resolve hostname|name or service not known|temporary failure in name resolution/i, 'host name could not be resolved'],
  [/no route to host/i, 'no route to host'],
  [/network is unreachable/i, 'network unreachable'],
  [/timed out/i, 'connection timed out'],
  [/connection reset by peer|broken pipe/i, 'connection closed by the camera'],
  [/no such file or directory/i, 'file not found'],
  [/permission denied/i, 'permission denied'],
  [/could not find codec parameters|unable to find a suitable output format/i, 'could not detect the video stream format'],
  [/matches no streams|does not contain any stream/i, 'no video stream in the source'],
  [/invalid data found when processing input/i, INVALID_DATA],
];

/** The most specific known reason in ffmpeg's stderr lines (oldest first), newest lines first; null if none. */
export function knownFfmpegReason(stderr: readonly string[]): string | null {
  const lines = stderr.map((l) => l.trim()).filter(Boolean);
  for (const [re, out] of RULES) {
    for (let i = lines.length - 1; i >= 0; i--) {
      const m = lines[i]!.match(re);
      if (m) return typeof out === 'string' ? out : redactUrl(out(m));
    }
  }
  return null;
}

/**
 * A short reason for an ffmpeg exit, from its last stderr lines (oldest first), exit code and signal.
 * `attempt`: about the ffmpeg run. A network camera that accepts the connection and never answers
 * makes ffmpeg report only "Invalid data found" once its I/O timeout has passed; so does one that
 * answers with bytes that never form an RTSP reply (ffmpeg's stderr cannot tell the two apart, even
 * at -loglevel verbose). Both read "no valid RTSP answer … (timeout)"; invalid data that arrives
 * before the timeout stays "invalid data".
 */
export function describeFfmpegExit(stderr: readonly string[], code: number | null, signal: string | null,
  attempt?: { network: boolean; gotFrame: boolean; ranMs: number }): string {
  const known = knownFfmpegReason(stderr);
  if (known === INVALID_DATA && attempt?.network && !attempt.gotFrame && attempt.ranMs >= RTSP_IO_TIMEOUT_MS - 250) {
    return `no valid RTSP answer from camera (timeout after ${(RTSP_IO_TIMEOUT_MS / 1000).toFixed(0)} s)`;
  }
  if (known) return known;
  if (signal) return `ffmpeg was killed (${signal})`;
  if (code === 0) return 'stream ended';
  const last = stderr.map((l) => l.trim()).filter(Boolean).at(-1);
  const detail = last ? `: ${redactUrl(last).slice(0, 300)}` : '';
  return `ffmpeg exited with code ${code ?? '?'}${detail}`;
}

/** Public types of the camera ingest stage. */
import type { CameraConfig } from '../config/schema.js';

/** One decoded frame, already at detection rate and size. */
export interface Frame {
  cameraId: string;
  /** 1, 2, 3 ... per CameraSource, across reconnects. */
  seq: number;
  /** ms since the epoch when the frame's last byte arrived from ffmpeg. */
  capturedAt: number;
  width: number;
  height: number;
  /** Packed RGB24, width * height * 3 bytes, row-major, no padding. Owned by the receiver. */
  data: Buffer;
}

/** Same states as the wire contract's CameraState (protocol/messages.ts). */
export type CameraState = 'connecting' | 'online' | 'offline';

export interface CameraSourceStatus {
  cameraId: string;
  state: CameraState;
  /** ms epoch of the last frame, or null if none yet. */
  lastFrameAt: number | null;
  /** Frames per second measured over a sliding window (0 when not online). */
  fps: number;
  /** Why the camera is (or last went) offline, readable, credentials removed; null while online. */
  error: string | null;
  /** Reconnect attempts since start(). */
  reconnects: number;
  /** Frames emitted since start(). */
  frames: number;
  /** ms epoch of the last state change. */
  since: number;
}

export interface CameraSourceEvents {
  frame: [Frame];
  status: [CameraSourceStatus];
}

/** The fields of a camera's configuration the ingest uses. */
export type CameraIngestConfig = Pick<CameraConfig, 'id' | 'url' | 'fps' | 'keyframesOnly' | 'frameWidth'> & Partial<Pick<CameraConfig, 'idleFrameEverySec' | 'substreamUrl'>>;

/** The stream detection decodes: the sub-stream where the camera has one, else its main stream. */
export function detectUrl(cfg: Pick<CameraIngestConfig, 'url' | 'substreamUrl'>): string {
  return cfg.substreamUrl ?? cfg.url;
}

export interface CameraSourceOptions {
  /**
   * Restart ffmpeg when no frame arrived for this long while online. Default: max(10 s, 4 frame
   * intervals, 3x the longest gap seen on the connection), at most 60 s.
   */
  stallTimeoutMs?: number;
  /** Give up a connection attempt that produced no frame within this time. Default: max(15 s, stallTimeoutMs). */
  connectTimeoutMs?: number;
  /** Reconnect delays: first `initialMs`, doubling up to `maxMs`; reset after `healthyMs` online. */
  backoff?: { initialMs?: number; maxMs?: number; healthyMs?: number };
  /** Window of the fps measurement (default 5 s). */
  fpsWindowMs?: number;
  /**
   * Clip buffer: while decoding fully, ffmpeg also writes the stream, copied, into segments in `dir`
   * (clipSegmentOutput). Idle sampling writes none.
   */
  clipSegments?: { dir: string; segmentSec: number };
  /** ffmpeg binary (default: FFMPEG_PATH or `ffmpeg` on PATH). */
  ffmpegPath?: string;
}

/** Alias used by agent/agent.ts. */
export type CameraStatusInfo = CameraSourceStatus;

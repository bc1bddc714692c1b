export { CameraSource, DECODE_NICE } from './source.js';
export { Backoff } from './backoff.js';
export { PpmFrameSplitter, FrameStreamError } from './ppm-splitter.js';
export { buildIngestCommand, describeFfmpegExit, knownFfmpegReason, selectFilter } from './ffmpeg.js';
export { redactUrl } from '../../common/redact.js';
export type { Frame, CameraState, CameraSourceStatus, CameraStatusInfo, CameraSourceEvents, CameraSourceOptions, CameraIngestConfig } from './types.js';
export { detectUrl } from './types.js';

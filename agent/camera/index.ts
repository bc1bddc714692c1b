export { CameraSource, DECODE_NICE } from './source.js';
export { Backoff } from './backoff.js';
export { PpmFrameSplitter, FrameStreamError } from './ppm-splitter.js';
export { buildIngestCommand, describeFfmpegExit, knownFfmpegReason, redactUrl, selectFilter } from './ffmpeg.js';
export type { Frame, CameraState, CameraSourceStatus, CameraStatusInfo, CameraSourceEvents, CameraSourceOptions, CameraIngestConfig } from './types.js';

/** Public entry of central's HTTP layer (called by central/main.ts). */
export { startHttp, PUBLIC_DIR, type HttpOptions, type HttpHandle } from './server.js';
export { LiveManager, type LiveOptions, type LiveStreamInfo } from './live.js';

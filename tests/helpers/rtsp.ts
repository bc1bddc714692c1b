/**
 * Simulated RTSP cameras for integration tests: a real GStreamer RTSP server fed by real ffmpeg
 * (scripts/sim-camera.ts), on 127.0.0.1 and a free port.
 *
 *   const cam = await startSimCamera({ source: MASK_IMAGES, width: 640, height: 360 });
 *   ... new CameraSource({ id: 'c1', url: cam.url, ... }) ...
 *   await cam.restart(2000);   // camera outage of 2 s
 *   await cam.stop();
 *
 * `stopAllSimCameras()` in an afterAll stops whatever a failed test left running.
 */
import { existsSync } from 'node:fs';
import { startSimCamera as start, type SimCamera, type SimCameraOptions } from '../../scripts/sim-camera.js';

export type { SimCamera, SimCameraOptions };
export { freeTcpPort } from '../../scripts/sim-camera.js';

/** Shared development images (never committed): 101 photos of people, jpg and png of mixed sizes. */
export const MASK_IMAGES = new URL('../../../shared/data/masks/images', import.meta.url).pathname;
export const COCO_IMAGES = new URL('../../../shared/data/coco-sample', import.meta.url).pathname;

const live = new Set<SimCamera>();

/**
 * Starts a simulated camera. Defaults for tests: 640x360, 15 fps, GOP 15 (a keyframe per second, so
 * a client gets its first picture within ~1 s), looping, port picked free, path "cam1".
 */
export async function startSimCamera(opts: SimCameraOptions): Promise<SimCamera> {
  if (!existsSync(opts.source)) throw new Error(`startSimCamera: source "${opts.source}" not found (shared data missing?)`);
  const cam = await start({ width: 640, height: 360, fps: 15, gop: 15, loop: true, ...opts });
  live.add(cam);
  const stop = cam.stop.bind(cam);
  return Object.assign(Object.create(cam) as SimCamera, {
    stop: async () => {
      live.delete(cam);
      await stop();
    },
  });
}

export async function stopAllSimCameras(): Promise<void> {
  await Promise.all([...live].map((c) => c.stop()));
  live.clear();
}

/** Small real media files for tests, made by ffmpeg. */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

/** An H.264 MP4 of `sec` seconds (ffmpeg's test pattern, a keyframe a second), like a camera's clip. */
export function testMp4(file: string, sec: number): Buffer {
  execFileSync('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-y', '-f', 'lavfi', '-i', `testsrc=size=320x180:rate=10:duration=${sec}`,
    '-c:v', 'libx264', '-preset', 'ultrafast', '-g', '10', '-pix_fmt', 'yuv420p', '-movflags', '+faststart', file]);
  return readFileSync(file);
}

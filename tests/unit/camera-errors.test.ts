/** Reasons read from real ffmpeg stderr (ffmpeg is run against a closed port, a missing file, junk). */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { RTSP_IO_TIMEOUT_MS, buildIngestCommand, describeFfmpegExit } from '../../agent/camera/ffmpeg.js';
import { redactUrl } from '../../common/redact.js';
import type { CameraIngestConfig } from '../../agent/camera/types.js';
import { freeTcpPort } from '../helpers/rtsp.js';

function runFfmpeg(input: string, extra: string[] = []): { lines: string[]; code: number | null } {
  const r = spawnSync('ffmpeg', ['-hide_banner', '-nostdin', '-loglevel', 'warning', ...extra, '-i', input, '-f', 'null', '-'], {
    encoding: 'utf8',
    timeout: 20_000,
  });
  return { lines: r.stderr.split('\n'), code: r.status };
}

describe('describeFfmpegExit', () => {
  it('names a refused RTSP connection', async () => {
    const port = await freeTcpPort();
    const { lines, code } = runFfmpeg(`rtsp://127.0.0.1:${port}/cam`, ['-rtsp_transport', 'tcp']);
    expect(code).not.toBe(0);
    expect(describeFfmpegExit(lines, code, null)).toBe('connection refused');
  });

  it('names a missing file', () => {
    const { lines, code } = runFfmpeg('/nonexistent/clip.mp4');
    expect(describeFfmpegExit(lines, code, null)).toBe('file not found');
  });

  it('names a file that is not video', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cam-err-'));
    const f = join(dir, 'junk.mp4');
    writeFileSync(f, Buffer.alloc(4096, 7));
    const { lines, code } = runFfmpeg(f);
    expect(describeFfmpegExit(lines, code, null)).toMatch(/invalid data/);
  });

  it('names a camera that accepts the connection and never answers (not "invalid data")', () => {
    // All ffmpeg 5.1.9 prints, even at -loglevel verbose, when an RTSP server accepts and then says nothing
    // (or nothing RTSP) until the ingest command's I/O timeout; end to end: tests/faults cameras scenario.
    // (Not run here against a real silent server: 5 s of ffmpeg in parallel upsets camera-ingest's back-off timings.)
    const lines = ['rtsp://127.0.0.1:40001/live: Invalid data found when processing input', ''];
    expect(buildIngestCommand({ id: 'c', url: 'rtsp://127.0.0.1:40001/live', fps: 2 } as CameraIngestConfig).inputOptions.join(' '))
      .toContain(`-timeout ${RTSP_IO_TIMEOUT_MS * 1000}`);
    const ranMs = RTSP_IO_TIMEOUT_MS + 150;
    expect(describeFfmpegExit(lines, 1, null, { network: true, gotFrame: false, ranMs })).toBe('no valid RTSP answer from camera (timeout after 5 s)');
    // the same stderr quickly (garbage answered at once), from a file, or after frames: still "invalid data"
    expect(describeFfmpegExit(lines, 1, null, { network: true, gotFrame: false, ranMs: 300 })).toMatch(/^invalid data/);
    expect(describeFfmpegExit(lines, 1, null, { network: false, gotFrame: false, ranMs })).toMatch(/^invalid data/);
    expect(describeFfmpegExit(lines, 1, null, { network: true, gotFrame: true, ranMs })).toMatch(/^invalid data/);
    expect(describeFfmpegExit(lines, 1, null)).toMatch(/^invalid data/);
  });

  it('falls back to the exit code or signal, and never leaks credentials', () => {
    expect(describeFfmpegExit([], 0, null)).toBe('stream ended');
    expect(describeFfmpegExit([], null, 'SIGKILL')).toBe('ffmpeg was killed (SIGKILL)');
    const r = describeFfmpegExit(['rtsp://admin:secret@10.1.1.1/s: something odd'], 1, null);
    expect(r).toBe('ffmpeg exited with code 1: rtsp://***@10.1.1.1/s: something odd');
    expect(redactUrl('a rtsp://admin:pa:ss@cam/x b')).toBe('a rtsp://***@cam/x b');
  });
});

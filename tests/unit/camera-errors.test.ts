/** Reasons read from real ffmpeg stderr (ffmpeg is run against a closed port, a missing file, junk). */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { describeFfmpegExit, redactUrl } from '../../agent/camera/ffmpeg.js';
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

  it('falls back to the exit code or signal, and never leaks credentials', () => {
    expect(describeFfmpegExit([], 0, null)).toBe('stream ended');
    expect(describeFfmpegExit([], null, 'SIGKILL')).toBe('ffmpeg was killed (SIGKILL)');
    const r = describeFfmpegExit(['rtsp://admin:secret@10.1.1.1/s: something odd'], 1, null);
    expect(r).toBe('ffmpeg exited with code 1: rtsp://***@10.1.1.1/s: something odd');
    expect(redactUrl('a rtsp://admin:pa:ss@cam/x b')).toBe('a rtsp://***@cam/x b');
  });
});

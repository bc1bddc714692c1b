/** Reasons read from real ffmpeg stderr (ffmpeg is run against a closed port, a missing file, junk). */
import { spawn, spawnSync } from 'node:child_process';
import net from 'node:net';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { RTSP_IO_TIMEOUT_MS, buildIngestCommand, describeFfmpegExit, redactUrl } from '../../agent/camera/ffmpeg.js';
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

  it('names a camera that accepts the connection and never answers (not "invalid data")', async () => {
    const server = net.createServer(() => { /* accept, say nothing */ });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    try {
      const url = `rtsp://127.0.0.1:${(server.address() as net.AddressInfo).port}/live`;
      const t0 = Date.now();
      // the ingest command's network options (its I/O timeout); async: the server must keep accepting
      const args = ['-hide_banner', '-nostdin', '-loglevel', 'warning', ...buildIngestCommand({ id: 'cam-silent', url, fps: 2, keyframesOnly: false, frameWidth: 640 } as CameraIngestConfig).inputOptions.filter((o) => o !== '-hide_banner' && o !== '-nostdin'), '-i', url, '-f', 'null', '-'];
      const { lines, code } = await new Promise<{ lines: string[]; code: number | null }>((resolve) => {
        const p = spawn('ffmpeg', args, { stdio: ['ignore', 'ignore', 'pipe'] });
        let err = '';
        p.stderr.on('data', (d: Buffer) => { err += d.toString(); });
        p.on('close', (c) => resolve({ lines: err.split('\n'), code: c }));
      });
      const ranMs = Date.now() - t0;
      expect(code).not.toBe(0);
      expect(ranMs).toBeGreaterThanOrEqual(RTSP_IO_TIMEOUT_MS - 250);
      expect(describeFfmpegExit(lines, code, null, { network: true, gotFrame: false, ranMs })).toBe('no answer from camera (timeout after 5 s)');
      // the same stderr quickly (garbage answered at once), or from a file: still "invalid data"
      expect(describeFfmpegExit(lines, code, null, { network: true, gotFrame: false, ranMs: 300 })).toMatch(/^invalid data/);
      expect(describeFfmpegExit(lines, code, null, { network: false, gotFrame: false, ranMs })).toMatch(/^invalid data/);
    } finally {
      server.close();
    }
  }, 20_000);

  it('falls back to the exit code or signal, and never leaks credentials', () => {
    expect(describeFfmpegExit([], 0, null)).toBe('stream ended');
    expect(describeFfmpegExit([], null, 'SIGKILL')).toBe('ffmpeg was killed (SIGKILL)');
    const r = describeFfmpegExit(['rtsp://admin:secret@10.1.1.1/s: something odd'], 1, null);
    expect(r).toBe('ffmpeg exited with code 1: rtsp://***@10.1.1.1/s: something odd');
    expect(redactUrl('a rtsp://admin:pa:ss@cam/x b')).toBe('a rtsp://***@cam/x b');
  });
});

/**
 * On-demand live view. node-rtsp-stream's own VideoStream opens a WebSocket server on every
 * interface with no host option or authentication, and its Mpeg1Muxer puts every ffmpeg option
 * after `-i` (so input options such as `-rtsp_transport tcp` cannot be given) and writes to the
 * console on errors. So this module keeps node-rtsp-stream's approach (ffmpeg → MPEG-TS with
 * MPEG-1 video on stdout, broadcast to WebSocket viewers as binary messages for jsmpeg) but runs
 * it inside our own `ws` server attached to the authenticated HTTP server at `/api/live/ws`.
 *
 * A viewer first asks `POST /api/live/:siteId/:cameraId` (session + CSRF + scope checked there) and
 * gets a short-lived, single-use token bound to its session and that camera. One ffmpeg per camera
 * is shared by all its viewers and stopped `graceMs` after the last one leaves.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import { childLog } from '../../common/log.js';

const log = childLog({ mod: 'central/http/live' });

export const LIVE_WS_PATH = '/api/live/ws';

export interface LiveOptions {
  ffmpegPath?: string;
  /** How long a token may wait before it is used. */
  tokenTtlMs?: number;
  /** Keep the stream this long after the last viewer leaves (a page reload should not restart ffmpeg). */
  graceMs?: number;
  /** Output video bit rate (MPEG-1), e.g. '800k'. */
  bitrate?: string;
  /** Cap on concurrent camera streams (each is one ffmpeg). */
  maxStreams?: number;
  /** Cap on viewers per stream. */
  maxViewers?: number;
}

interface Ticket {
  sessionKey: string;
  userId: string;
  siteId: string;
  cameraId: string;
  url: string;
  expiresAt: number;
}

interface Stream {
  key: string;
  siteId: string;
  cameraId: string;
  proc: ChildProcess;
  viewers: Set<WebSocket>;
  stopTimer: NodeJS.Timeout | null;
  bytes: number;
  startedAt: number;
  exited: Promise<void>;
}

export interface LiveStreamInfo {
  siteId: string;
  cameraId: string;
  pid: number | undefined;
  viewers: number;
  bytes: number;
  startedAt: number;
}

/** Only network camera URLs go to ffmpeg: no files, no option injection. */
export function checkLiveUrl(url: string): boolean {
  try {
    const u = new URL(url);
    return ['rtsp:', 'rtsps:', 'http:', 'https:'].includes(u.protocol) && !url.startsWith('-');
  } catch {
    return false;
  }
}

export class LiveManager {
  private readonly tickets = new Map<string, Ticket>();
  private readonly streams = new Map<string, Stream>();
  private readonly wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, maxPayload: 1024 });
  private readonly opts: Required<LiveOptions>;

  constructor(
    opts: LiveOptions,
    /** Is the session behind this key still valid (not logged out / expired)? */
    private readonly sessionAlive: (sessionKey: string) => Promise<boolean>,
    private readonly onView: (t: { userId: string; siteId: string; cameraId: string; ip: string }) => void = () => {},
  ) {
    this.opts = {
      ffmpegPath: opts.ffmpegPath ?? 'ffmpeg',
      tokenTtlMs: opts.tokenTtlMs ?? 30_000,
      graceMs: opts.graceMs ?? 5_000,
      bitrate: opts.bitrate ?? '1000k',
      maxStreams: opts.maxStreams ?? 16,
      maxViewers: opts.maxViewers ?? 20,
    };
  }

  issueToken(t: Omit<Ticket, 'expiresAt'>): { token: string; expiresAt: number } {
    const now = Date.now();
    for (const [k, v] of this.tickets) if (v.expiresAt < now) this.tickets.delete(k);
    const token = randomBytes(32).toString('base64url');
    const expiresAt = now + this.opts.tokenTtlMs;
    this.tickets.set(token, { ...t, expiresAt });
    return { token, expiresAt };
  }

  /** HTTP `upgrade` handler; returns false when the path is not ours (caller destroys the socket). */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer, ip: string): boolean {
    const url = new URL(req.url ?? '/', 'http://x');
    if (url.pathname !== LIVE_WS_PATH) return false;
    const token = url.searchParams.get('token') ?? '';
    const ticket = this.tickets.get(token);
    this.tickets.delete(token); // single use, whatever happens next
    this.admit(req, socket, head, ip, ticket).catch((err: Error) => {
      log.error({ err: err.message }, 'live view: upgrade failed');
      socket.end('HTTP/1.1 500 Internal Server Error\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
    });
    return true;
  }

  /** The rest of an upgrade to our path, once the session is checked (in the store). */
  private async admit(req: IncomingMessage, socket: Duplex, head: Buffer, ip: string, ticket: Ticket | undefined): Promise<void> {
    if (!ticket || ticket.expiresAt < Date.now() || !(await this.sessionAlive(ticket.sessionKey))) {
      socket.end('HTTP/1.1 401 Unauthorized\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    const key = `${ticket.siteId}/${ticket.cameraId}`;
    const existing = this.streams.get(key);
    if ((!existing && this.streams.size >= this.opts.maxStreams) || (existing && existing.viewers.size >= this.opts.maxViewers)) {
      socket.end('HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    this.wss.handleUpgrade(req, socket, head, (ws) => {
      const stream = existing ?? this.start(key, ticket);
      this.addViewer(stream, ws);
      this.onView({ userId: ticket.userId, siteId: ticket.siteId, cameraId: ticket.cameraId, ip });
    });
  }

  private start(key: string, t: Ticket): Stream {
    const input = t.url.startsWith('rtsp') ? ['-rtsp_transport', 'tcp'] : [];
    const args = [
      '-hide_banner', '-loglevel', 'error', '-nostdin',
      ...input, '-analyzeduration', '1000000', '-probesize', '1000000',
      '-i', t.url,
      '-an', '-f', 'mpegts', '-codec:v', 'mpeg1video', '-b:v', this.opts.bitrate, '-bf', '0', '-r', '25',
      '-',
    ];
    const proc = spawn(this.opts.ffmpegPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const stream: Stream = {
      key, siteId: t.siteId, cameraId: t.cameraId, proc, viewers: new Set(), stopTimer: null, bytes: 0, startedAt: Date.now(),
      exited: new Promise<void>((resolve) => proc.once('close', () => resolve())),
    };
    this.streams.set(key, stream);
    log.info({ key, pid: proc.pid }, 'live stream started');
    let stderr = '';
    proc.stderr!.on('data', (d: Buffer) => {
      stderr = (stderr + d.toString()).slice(-2000);
    });
    proc.stdout!.on('data', (data: Buffer) => {
      stream.bytes += data.length;
      for (const ws of stream.viewers) {
        // A slow phone must not grow our memory: drop data for it while its buffer is full.
        if (ws.readyState === ws.OPEN && ws.bufferedAmount < 4 * 1024 * 1024) ws.send(data, { binary: true });
      }
    });
    proc.on('error', (err) => log.error({ key, err: err.message }, 'live ffmpeg failed to start'));
    proc.on('close', (code, signal) => {
      if (this.streams.get(key) === stream) this.streams.delete(key);
      if (stream.stopTimer) clearTimeout(stream.stopTimer);
      const level = signal || code === 0 ? 'info' : 'warn';
      log[level]({ key, code, signal, stderr: code ? stderr.trim().slice(-500) : undefined }, 'live stream ended');
      for (const ws of stream.viewers) ws.close(1011, 'stream ended');
      stream.viewers.clear();
    });
    return stream;
  }

  private addViewer(stream: Stream, ws: WebSocket): void {
    if (stream.stopTimer) {
      clearTimeout(stream.stopTimer);
      stream.stopTimer = null;
    }
    stream.viewers.add(ws);
    ws.on('message', () => {}); // viewers have nothing to say
    ws.on('error', () => ws.terminate());
    ws.on('close', () => {
      stream.viewers.delete(ws);
      if (stream.viewers.size === 0 && !stream.stopTimer && this.streams.get(stream.key) === stream) {
        stream.stopTimer = setTimeout(() => this.stop(stream), this.opts.graceMs);
        stream.stopTimer.unref();
      }
    });
  }

  private stop(stream: Stream): Promise<void> {
    if (stream.proc.exitCode === null && stream.proc.signalCode === null) {
      stream.proc.kill('SIGTERM');
      const hard = setTimeout(() => stream.proc.kill('SIGKILL'), 2000);
      hard.unref();
      void stream.exited.then(() => clearTimeout(hard));
    }
    return stream.exited;
  }

  list(): LiveStreamInfo[] {
    return [...this.streams.values()].map((s) => ({
      siteId: s.siteId, cameraId: s.cameraId, pid: s.proc.pid, viewers: s.viewers.size, bytes: s.bytes, startedAt: s.startedAt,
    }));
  }

  /** Drop every viewer of a session (logout). */
  async close(): Promise<void> {
    this.tickets.clear();
    const all = [...this.streams.values()];
    for (const s of all) for (const ws of s.viewers) ws.terminate();
    await Promise.all(all.map((s) => this.stop(s)));
    this.wss.close();
  }
}

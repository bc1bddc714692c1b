/**
 * The receiving half of a still camera's ingest: a small RTSP client (TCP interleaved, Basic and
 * Digest authentication, keep-alive) that keeps one keyframe every few seconds (rtp-keyframes.ts)
 * and writes it, Annex-B, to `output`, which the decoder ffmpeg reads on stdin.
 *
 * Why not ffmpeg: ffmpeg 5 reads an interleaved RTSP stream with three recv() calls and three poll()
 * calls per RTP packet (about 1,600 system calls a second for a 720p camera), which made receiving
 * alone 0.37 % of a core per still camera. Node reads the socket in 64 KiB chunks and only looks at
 * packet headers; see docs/performance.md "Still cameras".
 *
 * Network errors carry the wording ffmpeg would print ("Connection refused", "timed out" ...), so that
 * describeFfmpegExit() gives the same readable reason for either ingest.
 */
import { createHash, randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import net from 'node:net';
import { PassThrough } from 'node:stream';
import { parse as parseSdp } from 'sdp-transform';
import { RtpKeyframeSampler, type VideoCodec } from './rtp-keyframes.js';

const USER_AGENT = 'bright-kitchen-agent';
/** RTSP session keep-alive when the server does not say (RFC 2326: 60 s timeout). */
const DEFAULT_SESSION_TIMEOUT_S = 60;
/** Socket reads go into one buffer of this size per camera (no allocation per read). */
const READ_BYTES = 256 * 1024;
/**
 * While playing, the socket is read in batches: after a read that emptied the kernel's buffer,
 * reading pauses this long. ~10 reads a second instead of one per RTP packet (~300/s): a wake-up of
 * the event loop per packet cost more than parsing the packets. The kernel holds ~50 KB meanwhile.
 */
const BATCH_MS = 100;

/**
 * The camera answered, but not as this receiver needs: a 4xx status (even a 401: ffmpeg connected
 * with the same credentials before the picture went still), no H.264/H.265 video, no TCP interleaving,
 * an unknown authentication scheme. The camera's idle sampling then goes through ffmpeg instead,
 * whose errors, if any, become the camera's status as usual.
 */
export class RtspUnsupported extends Error {}

export interface RtspReceiverOptions {
  url: string;
  everySec: number;
  /** Connect, answer and data timeout. */
  timeoutMs: number;
}

interface Response {
  status: number;
  reason: string;
  headers: Map<string, string>;
  body: string;
}

interface Pending {
  resolve(r: Response): void;
  reject(e: Error): void;
}

export interface RtspReceiverEvents {
  /** The connection ended after start() succeeded; `reason` in ffmpeg's wording. */
  closed: [reason: string];
}

export class RtspReceiver extends EventEmitter<RtspReceiverEvents> {
  /** Annex-B keyframes for the decoder's stdin; ends when the connection does. */
  readonly output = new PassThrough({ highWaterMark: 1 << 20 });
  /** CPU time (ms) spent parsing what the socket delivered: this camera's receiving cost inside the agent. */
  cpuMs = 0;
  private readonly url: URL;
  private readonly requestUrl: string;
  private sock: net.Socket | null = null;
  private buf: Buffer = Buffer.alloc(0);
  private cseq = 0;
  private readonly pending = new Map<number, Pending>();
  private auth: ((method: string, uri: string) => string) | null = null;
  private session: string | null = null;
  private aggregate: string | null = null;
  private keepAlive: NodeJS.Timeout | null = null;
  private sampler: RtpKeyframeSampler | null = null;
  private rtpChannel = 0;
  private closedReason: string | null = null;
  private playing = false;
  private resumeTimer: NodeJS.Timeout | null = null;

  constructor(private readonly o: RtspReceiverOptions) {
    super();
    this.url = new URL(o.url);
    if (this.url.protocol !== 'rtsp:') throw new RtspUnsupported(`${this.url.protocol} is not handled by the agent's receiver`);
    const plain = new URL(o.url);
    plain.username = plain.password = '';
    this.requestUrl = plain.toString();
    this.output.on('error', () => undefined);
  }

  /** Connects and starts playing; resolves with the codec, rejects with a readable reason. */
  async start(): Promise<VideoCodec> {
    await this.connect();
    const options = await this.request('OPTIONS', this.requestUrl);
    const canGetParameter = /GET_PARAMETER/i.test(options.headers.get('public') ?? '');
    const describe = await this.request('DESCRIBE', this.requestUrl, { Accept: 'application/sdp' });
    const track = pickVideoTrack(describe, this.requestUrl);
    const setup = await this.request('SETUP', track.control, { Transport: 'RTP/AVP/TCP;unicast;interleaved=0-1' });
    const transport = setup.headers.get('transport') ?? '';
    const channels = /interleaved=(\d+)/i.exec(transport);
    if (!/TCP/i.test(transport) && !channels) throw new RtspUnsupported(`SETUP answered without TCP interleaving: "${transport}"`);
    this.rtpChannel = channels ? Number(channels[1]) : 0;
    const [id, ...params] = (setup.headers.get('session') ?? '').split(';').map((s) => s.trim());
    if (!id) throw new RtspUnsupported('SETUP answered without a Session');
    this.session = id;
    this.aggregate = track.aggregate;
    const timeoutS = Number(/timeout=(\d+)/i.exec(params.join(';'))?.[1] ?? DEFAULT_SESSION_TIMEOUT_S) || DEFAULT_SESSION_TIMEOUT_S;
    this.sampler = new RtpKeyframeSampler({
      codec: track.codec,
      clockRate: track.clockRate,
      everySec: this.o.everySec,
      parameterSets: track.parameterSets,
      onKeyframe: (annexB) => this.output.write(annexB),
    });
    await this.request('PLAY', track.aggregate, { Range: 'npt=0.000-' });
    this.playing = true;
    // Keep the session alive at half its timeout (what ffmpeg does), with the cheapest command.
    this.keepAlive = setInterval(() => {
      this.request(canGetParameter ? 'GET_PARAMETER' : 'OPTIONS', this.requestUrl).catch(() => undefined);
    }, (timeoutS * 1000) / 2);
    this.keepAlive.unref();
    return track.codec;
  }

  /** Counters of the sampler (packets seen, lost, keyframes passed on). */
  get stats() {
    return this.sampler?.stats ?? { packets: 0, lost: 0, passed: 0 };
  }

  /** Ends the session (TEARDOWN, best effort) and the connection. Idempotent. */
  stop(): void {
    if (this.sock && this.session && !this.closedReason) {
      try {
        this.sock.write(this.format('TEARDOWN', this.aggregate ?? this.requestUrl, {}));
      } catch {
        /* closing anyway */
      }
    }
    this.close('stopped');
  }

  // ------------------------------------------------------------------------------------ internals

  private connect(): Promise<void> {
    return new Promise((resolve, reject) => {
      const readBuf = Buffer.allocUnsafe(READ_BYTES);
      const sock = net.connect({
        host: this.url.hostname.replace(/^\[|\]$/g, ''),
        port: Number(this.url.port || 554),
        onread: { buffer: readBuf, callback: (n) => this.onRead(readBuf.subarray(0, n)) },
      });
      this.sock = sock;
      sock.setNoDelay(true);
      sock.setTimeout(this.o.timeoutMs, () => this.close('Connection timed out'));
      sock.once('connect', () => resolve());
      sock.on('error', (err: NodeJS.ErrnoException) => {
        const reason = errnoText(err);
        reject(new Error(reason));
        this.close(reason);
      });
      sock.on('close', () => {
        reject(new Error('Connection closed'));
        this.close('stream ended: the camera closed the connection');
      });
    });
  }

  private close(reason: string): void {
    if (this.closedReason) return;
    this.closedReason = reason;
    if (this.keepAlive) clearInterval(this.keepAlive);
    if (this.resumeTimer) clearTimeout(this.resumeTimer);
    for (const p of this.pending.values()) p.reject(new Error(reason));
    this.pending.clear();
    this.sock?.destroy();
    this.output.end();
    if (this.playing) this.emit('closed', reason);
  }

  /** One socket read (`chunk` is a view of the reused read buffer). Returns false to pause reading. */
  private onRead(chunk: Buffer): boolean {
    const t0 = process.hrtime.bigint();
    try {
      this.parse(chunk);
    } catch (err) {
      this.close(`Invalid data found when processing input: ${(err as Error).message}`);
    }
    this.cpuMs += Number(process.hrtime.bigint() - t0) / 1e6;
    if (!this.playing || this.closedReason || chunk.length === READ_BYTES) return true;
    this.resumeTimer = setTimeout(() => {
      this.resumeTimer = null;
      if (!this.closedReason) this.sock?.resume();
    }, BATCH_MS);
    return false;
  }

  /** Splits the stream into interleaved packets ($, channel, length) and RTSP messages; keeps a copy of an incomplete tail. */
  private parse(chunk: Buffer): void {
    const b = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    let i = 0;
    while (i < b.length) {
      if (b[i] === 0x24) {
        if (i + 4 > b.length) break;
        const len = b.readUInt16BE(i + 2);
        if (i + 4 + len > b.length) break;
        if (b[i + 1] === this.rtpChannel) this.sampler?.push(b.subarray(i + 4, i + 4 + len));
        i += 4 + len;
        continue;
      }
      const head = b.indexOf('\r\n\r\n', i, 'latin1');
      if (head < 0) {
        if (b.length - i > 64 * 1024) throw new Error('RTSP header over 64 KiB');
        break;
      }
      const lines = b.toString('latin1', i, head).split('\r\n');
      const headers = new Map<string, string>();
      for (const l of lines.slice(1)) {
        const c = l.indexOf(':');
        if (c > 0) headers.set(l.slice(0, c).trim().toLowerCase(), l.slice(c + 1).trim());
      }
      const bodyLen = Number(headers.get('content-length') ?? 0);
      if (head + 4 + bodyLen > b.length) break;
      const body = b.toString('utf8', head + 4, head + 4 + bodyLen);
      i = head + 4 + bodyLen;
      const status = /^RTSP\/\d\.\d (\d{3}) ?(.*)$/.exec(lines[0]!);
      if (!status) continue; // a request from the server (ANNOUNCE ...): not needed here
      const seq = Number(headers.get('cseq'));
      const p = this.pending.get(seq);
      this.pending.delete(seq);
      p?.resolve({ status: Number(status[1]), reason: status[2]!, headers, body });
    }
    this.buf = i < b.length ? Buffer.from(b.subarray(i)) : Buffer.alloc(0);
  }

  private format(method: string, uri: string, headers: Record<string, string>): string {
    const h: Record<string, string> = { CSeq: String(++this.cseq), 'User-Agent': USER_AGENT, ...headers };
    if (this.session) h.Session = this.session;
    if (this.auth) h.Authorization = this.auth(method, uri);
    return `${method} ${uri} RTSP/1.0\r\n${Object.entries(h).map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n`;
  }

  /** One request; a 401 is answered once with the URL's credentials. 4xx rejects with RtspUnsupported. */
  private async request(method: string, uri: string, headers: Record<string, string> = {}, retried = false): Promise<Response> {
    if (!this.sock || this.closedReason) throw new Error(this.closedReason ?? 'not connected');
    const text = this.format(method, uri, headers);
    const seq = this.cseq;
    const res = await new Promise<Response>((resolve, reject) => {
      this.pending.set(seq, { resolve, reject });
      this.sock!.write(text);
    });
    if (res.status === 401 && !retried && this.url.username) {
      this.auth = authorizer(res.headers.get('www-authenticate') ?? '', decodeURIComponent(this.url.username), decodeURIComponent(this.url.password));
      return this.request(method, uri, headers, true);
    }
    if (res.status >= 200 && res.status <= 299) return res;
    const failed = `method ${method} failed: ${res.status} ${res.reason}`;
    // 5xx: the camera is busy or restarting (a shared stream being torn down answers 503) and ffmpeg
    // would meet the same; a retry with back-off, not a fallback.
    throw res.status >= 500 ? new Error(failed) : new RtspUnsupported(failed);
  }
}

interface VideoTrack {
  codec: VideoCodec;
  clockRate: number;
  control: string;
  /** The session's URL (PLAY, TEARDOWN): its SDP control attribute, else the base URL. */
  aggregate: string;
  parameterSets: Buffer[];
}

/** The first H.264 or H.265 video track of a DESCRIBE answer, with its absolute control URL. */
function pickVideoTrack(describe: Response, requestUrl: string): VideoTrack {
  const sdp = parseSdp(describe.body);
  const base = describe.headers.get('content-base') ?? describe.headers.get('content-location') ?? requestUrl;
  for (const m of sdp.media ?? []) {
    if (m.type !== 'video') continue;
    const pt = String(m.payloads ?? '').split(' ')[0];
    const rtp = m.rtp.find((r) => String(r.payload) === pt);
    const name = rtp?.codec.toUpperCase();
    const codec: VideoCodec | null = name === 'H264' ? 'H264' : name === 'H265' || name === 'HEVC' ? 'H265' : null;
    if (!rtp || !codec) continue;
    const fmtp = m.fmtp.find((f) => String(f.payload) === pt)?.config ?? '';
    return {
      codec,
      clockRate: rtp.rate ?? 90000,
      control: resolveControl(base, m.control ?? '*'),
      aggregate: resolveControl(base, sdp.control ?? '*'),
      parameterSets: spropSets(fmtp),
    };
  }
  throw new RtspUnsupported('no H.264 or H.265 video track in the camera\'s SDP');
}

function resolveControl(base: string, control: string): string {
  if (control === '*' || control === '') return base;
  if (/^rtsps?:\/\//i.test(control)) return control;
  return base.endsWith('/') ? base + control : `${base}/${control}`;
}

/** NAL units carried in the fmtp line (base64), in VPS, SPS, PPS order. */
function spropSets(fmtp: string): Buffer[] {
  const get = (key: string) => new RegExp(`(?:^|;)\\s*${key}=([^;]+)`, 'i').exec(fmtp)?.[1]?.trim();
  const lists = ['sprop-vps', 'sprop-sps', 'sprop-pps', 'sprop-parameter-sets'].map(get).filter((x): x is string => !!x);
  return lists.flatMap((l) => l.split(',')).map((s) => Buffer.from(s, 'base64')).filter((b) => b.length > 0);
}

/** The Authorization header for a challenge: Basic, or Digest (MD5, with or without qop=auth). */
function authorizer(challenge: string, user: string, pass: string): (method: string, uri: string) => string {
  const scheme = challenge.split(/\s+/)[0]?.toLowerCase();
  if (scheme === 'basic') {
    const token = `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`;
    return () => token;
  }
  if (scheme !== 'digest') throw new RtspUnsupported(`401 Unauthorized: authentication scheme "${scheme ?? ''}" is not supported`);
  const p: Record<string, string> = {};
  for (const m of challenge.matchAll(/(\w+)=(?:"([^"]*)"|([^,\s]*))/g)) p[m[1]!.toLowerCase()] = m[2] ?? m[3] ?? '';
  const algorithm = p.algorithm ?? 'MD5';
  if (algorithm.toUpperCase() !== 'MD5') throw new RtspUnsupported(`401 Unauthorized: digest algorithm ${algorithm} is not supported`);
  const md5 = (s: string) => createHash('md5').update(s).digest('hex');
  const ha1 = md5(`${user}:${p.realm ?? ''}:${pass}`);
  const qop = p.qop?.split(',').map((s) => s.trim()).includes('auth') ? 'auth' : null;
  let nc = 0;
  return (method, uri) => {
    const ha2 = md5(`${method}:${uri}`);
    const fields = [`username="${user}"`, `realm="${p.realm ?? ''}"`, `nonce="${p.nonce ?? ''}"`, `uri="${uri}"`];
    if (qop) {
      const ncHex = (++nc).toString(16).padStart(8, '0');
      const cnonce = randomBytes(8).toString('hex');
      fields.push(`qop=${qop}`, `nc=${ncHex}`, `cnonce="${cnonce}"`, `response="${md5(`${ha1}:${p.nonce}:${ncHex}:${cnonce}:${qop}:${ha2}`)}"`);
    } else {
      fields.push(`response="${md5(`${ha1}:${p.nonce ?? ''}:${ha2}`)}"`);
    }
    if (p.opaque !== undefined) fields.push(`opaque="${p.opaque}"`);
    if (p.algorithm) fields.push(`algorithm=${p.algorithm}`);
    return `Digest ${fields.join(', ')}`;
  };
}

/** Socket errors in the words ffmpeg uses (camera-errors rules read them). */
function errnoText(err: NodeJS.ErrnoException): string {
  switch (err.code) {
    case 'ECONNREFUSED': return 'Connection refused';
    case 'ECONNRESET': return 'Connection reset by peer';
    case 'EPIPE': return 'Broken pipe';
    case 'ENOTFOUND': case 'EAI_AGAIN': return 'Name or service not known';
    case 'EHOSTUNREACH': return 'No route to host';
    case 'ENETUNREACH': return 'Network is unreachable';
    case 'ETIMEDOUT': return 'Connection timed out';
    default: return err.message;
  }
}

/**
 * RtspReceiver against a scripted camera on a real local socket: the request sequence, Digest
 * authentication (checked here with RFC 2617's formulas), keep-alive at half the session timeout with
 * replies arriving between RTP packets, TEARDOWN, and how failures surface. The same receiver on a
 * real GStreamer RTSP server and decoder: tests/integration/camera-ingest.test.ts.
 */
import { createHash } from 'node:crypto';
import { createServer, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { RtspReceiver, RtspUnsupported } from '../../agent/camera/rtsp-receiver.js';
import { freeTcpPort } from '../../scripts/sim-camera.js';
import { h264Key, idr, rtp, SC } from '../helpers/rtp.js';

interface Req {
  method: string;
  uri: string;
  headers: Record<string, string>;
}

const SPS = Buffer.from([0x67, 0x42, 0xc0, 0x1e]);
const PPS = Buffer.from([0x68, 0xce, 0x3c, 0x80]);
const SDP = [
  'v=0', 'o=- 1 1 IN IP4 127.0.0.1', 's=cam', 't=0 0', 'a=control:*',
  'm=audio 0 RTP/AVP 0', 'a=control:trackID=0',
  'm=video 0 RTP/AVP 96', 'a=rtpmap:96 H264/90000',
  `a=fmtp:96 packetization-mode=1;sprop-parameter-sets=${SPS.toString('base64')},${PPS.toString('base64')}`,
  'a=control:trackID=1', '',
].join('\r\n');
const md5 = (s: string) => createHash('md5').update(s).digest('hex');

const servers: Server[] = [];
afterEach(() => {
  for (const s of servers.splice(0)) s.close();
});

/** A camera that speaks just enough RTSP, requires Digest (qop=auth) and streams H.264 at 10 fps. */
async function fakeCamera(o: { sessionTimeout?: number; setupStatus?: string; closeAfterMs?: number } = {}) {
  const reqs: Req[] = [];
  const authFailures: string[] = [];
  let sock: Socket | null = null;
  const port = await freeTcpPort();
  const srv = createServer((s) => {
    sock = s;
    s.on('error', () => undefined);
    let buf = '';
    let streaming: NodeJS.Timeout | null = null;
    s.on('close', () => streaming && clearInterval(streaming));
    s.on('data', (d) => {
      buf += d.toString('latin1');
      for (let end = buf.indexOf('\r\n\r\n'); end >= 0; end = buf.indexOf('\r\n\r\n')) {
        const lines = buf.slice(0, end).split('\r\n');
        buf = buf.slice(end + 4);
        const [method, uri] = lines[0]!.split(' ');
        const headers = Object.fromEntries(lines.slice(1).map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]));
        reqs.push({ method: method!, uri: uri!, headers });
        const reply = (status: string, extra: Record<string, string> = {}, body = '') =>
          s.write(`RTSP/1.0 ${status}\r\nCSeq: ${headers.cseq}\r\n${Object.entries({ ...extra, ...(body ? { 'Content-Length': String(body.length) } : {}) }).map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n${body}`);
        const auth = headers.authorization ?? '';
        const p = Object.fromEntries([...auth.matchAll(/(\w+)="?([^",]*)"?/g)].map((m) => [m[1], m[2]]));
        const want = md5(`${md5('admin:cam:pa ss')}:n0nce:${p.nc}:${p.cnonce}:auth:${md5(`${method}:${p.uri}`)}`);
        if (p.response !== want || p.uri !== uri) {
          if (auth) authFailures.push(auth);
          reply('401 Unauthorized', { 'WWW-Authenticate': 'Digest realm="cam", nonce="n0nce", qop="auth", algorithm=MD5' });
          continue;
        }
        if (method === 'OPTIONS') reply('200 OK', { Public: 'OPTIONS, DESCRIBE, SETUP, PLAY, TEARDOWN, GET_PARAMETER' });
        else if (method === 'DESCRIBE') reply('200 OK', { 'Content-Base': `rtsp://127.0.0.1:${port}/live/`, 'Content-Type': 'application/sdp' }, SDP);
        else if (method === 'SETUP') {
          if (o.setupStatus) reply(o.setupStatus);
          else reply('200 OK', { Transport: 'RTP/AVP/TCP;unicast;interleaved=2-3', Session: `s1;timeout=${o.sessionTimeout ?? 60}` });
        } else if (method === 'PLAY') {
          reply('200 OK', { Session: 's1' });
          let seq = 1;
          let f = 0;
          const frame = (pkt: Buffer, ch = 2) => Buffer.concat([Buffer.from([0x24, ch, pkt.length >> 8, pkt.length & 0xff]), pkt]);
          streaming = setInterval(() => {
            const ts = f * 9000;
            // A keyframe every 5 frames (0.5 s), without in-band parameter sets; RTCP on channel 3.
            const pkts = f % 5 === 0 ? h264Key(seq, ts, idr(3000, f & 0xff), 1200, false) : [rtp(seq, ts, true, [0x41, 1, 2, 3])];
            seq += pkts.length;
            f++;
            s.write(Buffer.concat([...pkts.map((x) => frame(x)), frame(Buffer.from([0x80, 200, 0, 1, 0, 0, 0, 0]), 3)]));
          }, 100);
          if (o.closeAfterMs) setTimeout(() => s.destroy(), o.closeAfterMs);
        } else reply('200 OK', { Session: 's1' });
      }
    });
  });
  await new Promise<void>((r) => srv.listen(port, '127.0.0.1', r));
  servers.push(srv);
  return { url: `rtsp://admin:pa%20ss@127.0.0.1:${port}/live`, port, reqs, authFailures, socket: () => sock };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('RtspReceiver', () => {
  it('authenticates with Digest, sets up the video track over TCP, samples keyframes and keeps the session alive', async () => {
    const cam = await fakeCamera({ sessionTimeout: 2 });
    const rx = new RtspReceiver({ url: cam.url, everySec: 1, timeoutMs: 2000 });
    const out: Buffer[] = [];
    rx.output.on('data', (b: Buffer) => out.push(b));
    expect(await rx.start()).toBe('H264');
    await sleep(2_400);
    rx.stop();
    await sleep(100);

    const base = `rtsp://127.0.0.1:${cam.port}`;
    expect(cam.authFailures).toEqual([]);
    const seq = cam.reqs.map((r) => `${r.method} ${r.uri}${r.headers.authorization ? '' : ' (no auth)'}`);
    expect(seq.slice(0, 5)).toEqual([
      `OPTIONS ${base}/live (no auth)`,
      `OPTIONS ${base}/live`,
      `DESCRIBE ${base}/live`,
      `SETUP ${base}/live/trackID=1`, // the video track, not the audio one
      `PLAY ${base}/live/`, // the aggregate (session-level control "*")
    ]);
    expect(cam.reqs[3]!.headers.transport).toBe('RTP/AVP/TCP;unicast;interleaved=0-1');
    // Session timeout 2 s: GET_PARAMETER (the camera lists it) every second, with the session id.
    const keepAlive = cam.reqs.filter((r) => r.method === 'GET_PARAMETER');
    expect(keepAlive.length).toBeGreaterThanOrEqual(1);
    expect(keepAlive.length).toBeLessThanOrEqual(3);
    expect(keepAlive.every((r) => r.headers.session === 's1')).toBe(true);
    expect(cam.reqs.at(-1)!.method).toBe('TEARDOWN');
    // Keyframes every 0.5 s, one per second passed on, SDP parameter sets first, AUD last.
    const bytes = Buffer.concat(out);
    const head = Buffer.from([...SC, ...SPS, ...SC, ...PPS, ...SC, 0x65]);
    let n = 0;
    for (let i = bytes.indexOf(head); i >= 0; i = bytes.indexOf(head, i + 1)) n++;
    expect(n).toBeGreaterThanOrEqual(2);
    expect(n).toBeLessThanOrEqual(3);
    expect(bytes.subarray(-6).equals(Buffer.from([...SC, 0x09, 0xf0]))).toBe(true);
    expect(rx.stats).toMatchObject({ lost: 0, passed: n });
    expect(rx.cpuMs).toBeGreaterThan(0);
  });

  it('reports a camera that closes the connection while playing, and ends its output', async () => {
    const cam = await fakeCamera({ closeAfterMs: 300 });
    const rx = new RtspReceiver({ url: cam.url, everySec: 1, timeoutMs: 2000 });
    const closed = new Promise<string>((r) => rx.once('closed', r));
    const ended = new Promise<void>((r) => rx.output.on('end', r).resume());
    await rx.start();
    expect(await closed).toBe('stream ended: the camera closed the connection');
    await ended;
  });

  it('rejects what it cannot serve with RtspUnsupported, and network failures in ffmpeg\'s words', async () => {
    const cam = await fakeCamera({ setupStatus: '461 Unsupported Transport' });
    const rx = new RtspReceiver({ url: cam.url, everySec: 1, timeoutMs: 2000 });
    const err = await rx.start().catch((e: Error) => e);
    expect(err).toBeInstanceOf(RtspUnsupported);
    expect((err as Error).message).toBe('method SETUP failed: 461 Unsupported Transport');
    rx.stop();

    const wrong = new RtspReceiver({ url: cam.url.replace('pa%20ss', 'nope'), everySec: 1, timeoutMs: 2000 });
    const e401 = await wrong.start().catch((e: Error) => e);
    expect(e401).toBeInstanceOf(RtspUnsupported);
    expect((e401 as Error).message).toBe('method OPTIONS failed: 401 Unauthorized');
    wrong.stop();

    // 5xx is the camera's trouble (busy, restarting): a failure to retry, ffmpeg would meet it too.
    const busy = await fakeCamera({ setupStatus: '503 Service Unavailable' });
    const rx503 = new RtspReceiver({ url: busy.url, everySec: 1, timeoutMs: 2000 });
    const e503 = await rx503.start().catch((e: Error) => e);
    expect(e503).not.toBeInstanceOf(RtspUnsupported);
    expect((e503 as Error).message).toBe('method SETUP failed: 503 Service Unavailable');
    rx503.stop();

    const closedPort = await freeTcpPort();
    const refused = new RtspReceiver({ url: `rtsp://127.0.0.1:${closedPort}/x`, everySec: 1, timeoutMs: 2000 });
    const e = await refused.start().catch((x: Error) => x);
    expect(e).not.toBeInstanceOf(RtspUnsupported);
    expect((e as Error).message).toBe('Connection refused');
    expect(() => new RtspReceiver({ url: 'rtsps://127.0.0.1/x', everySec: 1, timeoutMs: 1000 })).toThrow(RtspUnsupported);
  });
});

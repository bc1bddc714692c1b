/**
 * Simulated cameras for the benchmark: the project's GStreamer RTSP server (scripts/rtsp-server.py,
 * the one scripts/sim-camera.ts runs) with one mount per camera, each fed by an ffmpeg that streams a
 * pre-encoded clip with `-c copy` (no live encoding, see media.ts), at its native rate, looping,
 * starting at a different offset per camera so cameras show different scenes.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { REPO_ROOT } from '../../agent/detect/pack.js';
import { freeTcpPort, freeUdpPorts } from '../../common/net.js';
import { waitExit } from '../sim-camera.js';

export { waitExit };

export { freeTcpPort };

const PYTHON = '/usr/bin/python3';
const SERVER_SCRIPT = path.join(REPO_ROOT, 'scripts/rtsp-server.py');

export interface FeedSpec {
  mount: string;
  clip: string;
  /** Seconds into the clip where this camera starts. */
  offsetSec: number;
}

export interface Feed {
  port: number;
  url(mount: string): string;
  /** Pids of the server and the feeders (for CPU accounting). */
  pids(): number[];
  stop(): Promise<void>;
}


/**
 * Children die with this process, even on SIGKILL (setpriv --pdeathsig). They run at nice 10 (like
 * the agent's decoders): the simulated cameras are not part of the box being measured and must not
 * take a core from its detection worker when both want one.
 */
export function spawnChild(cmd: string, args: string[]): ChildProcess & { tail(): string } {
  const c = spawn('nice', ['-n', '10', 'setpriv', '--pdeathsig', 'KILL', '--', cmd, ...args], { stdio: ['ignore', 'pipe', 'pipe'] }) as ChildProcess & { tail(): string };
  let tail = '';
  c.stderr!.setEncoding('utf8').on('data', (s: string) => (tail = (tail + s).slice(-2000)));
  c.stdout!.resume();
  c.tail = () => tail.trim();
  c.on('error', () => undefined);
  return c;
}


export async function startFeed(specs: readonly FeedSpec[]): Promise<Feed> {
  const port = await freeTcpPort();
  const udp = await freeUdpPorts(specs.length);
  const server = spawnChild(PYTHON, [SERVER_SCRIPT, '--port', String(port), ...specs.flatMap((s, i) => ['--mount', `${s.mount}=${udp[i]}`])]);
  server.stdout!.pause();
  await new Promise<void>((resolve, reject) => {
    let out = '';
    server.stdout!.setEncoding('utf8').on('data', (s: string) => {
      out += s;
      if (/^READY \d+/m.test(out)) resolve();
    });
    server.stdout!.resume();
    server.once('exit', () => reject(new Error(`RTSP server did not start: ${server.tail() || server.exitCode}`)));
  });
  const feeders = specs.map((s, i) =>
    spawnChild('ffmpeg', [
      '-hide_banner', '-nostdin', '-loglevel', 'error',
      '-re', '-stream_loop', '-1', ...(s.offsetSec > 0 ? ['-ss', String(s.offsetSec)] : []), '-i', s.clip,
      '-map', '0:v:0', '-c', 'copy', '-f', 'rtp', `rtp://127.0.0.1:${udp[i]}?pkt_size=1316`,
    ]),
  );
  let stopped = false;
  for (const [i, f] of feeders.entries())
    f.once('exit', (code) => {
      if (!stopped) process.stderr.write(`bench: feeder for /${specs[i]!.mount} exited (${code}): ${f.tail()}\n`);
    });
  return {
    port,
    url: (mount) => `rtsp://127.0.0.1:${port}/${mount}`,
    pids: () => [server, ...feeders].map((c) => c.pid).filter((p): p is number => p !== undefined),
    async stop() {
      stopped = true;
      const kids = [...feeders, server];
      for (const k of kids) if (k.exitCode === null && k.signalCode === null) k.kill('SIGTERM');
      await Promise.all(kids.map((k) => waitExit(k)));
    },
  };
}

/**
 * Camera faults through the whole agent: three cameras on one agent —
 *   cam-good:    a real RTSP server (GStreamer, fed by ffmpeg), killed and restarted mid-run;
 *   cam-garbage: a TCP server that accepts and answers every byte with random bytes;
 *   cam-stall:   a TCP server that accepts and never answers (nor closes).
 * Expected: the agent never crashes, reports each camera's status to central (offline with a
 * readable error, online again after the restart), reconnects, and cam-good's violations keep
 * reaching central while the other two fail.
 */
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import path from 'node:path';
import type { CentralInternals } from '../../../central/central.js';
import { freePort } from '../../helpers/brokers.js';
import { startSimCamera, type SimCamera } from '../../helpers/rtsp.js';
import {
  AgentProc, Scratch, centralConfig, centralEventIds, dupCount, mustWait, row, sleep, startCentralAt, testVideo, waitDelivered, waitUntil, writeAgentConfig,
  type Row,
} from '../lib/harness.js';

async function tcpServer(onConn: (s: net.Socket) => void): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const srv = net.createServer((s) => {
    sockets.add(s);
    s.on('error', () => undefined);
    s.on('close', () => sockets.delete(s));
    onConn(s);
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  return {
    port: (srv.address() as net.AddressInfo).port,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => srv.close(() => r()));
    },
  };
}

export async function cameraFaultsScenario(): Promise<Row> {
  const t0 = Date.now();
  const scratch = new Scratch();
  let agent: AgentProc | null = null;
  let central: CentralInternals | null = null;
  let sim: SimCamera | null = null;
  try {
    sim = await startSimCamera({ source: testVideo(), width: 320, height: 240, fps: 10, gop: 10 });
    const garbage = await tcpServer((s) => {
      s.write(randomBytes(4096));
      s.on('data', () => s.write(randomBytes(16 * 1024)));
    });
    scratch.defer(() => garbage.close());
    const stall = await tcpServer(() => undefined);
    scratch.defer(() => stall.close());
    const dataDir = scratch.dir('central');
    const port = await freePort();
    central = await startCentralAt(await centralConfig({ dataDir, brokerPort: port, cameras: ['cam-good', 'cam-garbage', 'cam-stall'] }));
    const c = central;
    const agentDir = scratch.dir('agent');
    const storage = path.join(agentDir, 'var');
    const conf = writeAgentConfig(agentDir, {
      storageDir: storage, brokerUrl: `mqtt://127.0.0.1:${port}`, cooldownSec: 1,
      cameras: [
        { id: 'cam-good', url: sim.url, fps: 4 },
        { id: 'cam-garbage', url: `rtsp://127.0.0.1:${garbage.port}/live` },
        { id: 'cam-stall', url: `rtsp://127.0.0.1:${stall.port}/live` },
      ],
    });
    agent = await AgentProc.start(conf);
    const a = agent;
    const camAtCentral = async (id: string) => {
      const site = (await c.store.sites(await c.scopeOf((await c.store.user('u-insp'))!))).find((s) => s.id === 'site-a');
      return site?.cameras.find((x) => x.id === id);
    };
    // 1. the two bad cameras are reported offline with an error at central; the good one online and raising events
    const reported = await waitUntil(async () => {
      const [g, j, s] = await Promise.all(['cam-good', 'cam-garbage', 'cam-stall'].map(camAtCentral));
      return g?.state === 'online' && j?.state === 'offline' && !!j.error && s?.state === 'offline' && !!s.error;
    }, 45_000, 250);
    const errGarbage = (await camAtCentral('cam-garbage'))?.error ?? '(none)';
    const errStall = (await camAtCentral('cam-stall'))?.error ?? '(none)';
    const goodBefore = a.eventIds().length;
    // 2. the RTSP server is killed and comes back after 5 s
    await sim.stop();
    const wentOffline = await waitUntil(async () => (await camAtCentral('cam-good'))?.state === 'offline', 20_000, 200);
    const errGood = (await camAtCentral('cam-good'))?.error ?? '(none)';
    await sleep(3000);
    await sim.start();
    const cameBack = await waitUntil(async () => (await camAtCentral('cam-good'))?.state === 'online', 45_000, 250);
    const goodAfterRestart = a.eventIds().length;
    await waitUntil(() => a.eventIds().length >= goodAfterRestart + 3, 20_000, 200);
    const garbageRetries = a.cameraStates('cam-garbage').filter((l) => l.state === 'connecting').length;
    const stallRetries = a.cameraStates('cam-stall').filter((l) => l.state === 'connecting').length;
    await a.stopCameras();
    const sent = a.eventIds();
    await waitDelivered(dataDir, sent, storage, 30_000);
    const stored = centralEventIds(dataDir);
    const got = new Set(stored);
    const lost = sent.filter((id) => !got.has(id)).length;
    const otherCams = a.lines.filter((l) => l.t === 'event' && l.cam !== 'cam-good').length;
    const pass = reported && wentOffline && cameBack && lost === 0 && a.alive && goodBefore > 0 && a.eventIds().length > goodAfterRestart && otherCams === 0;
    return row({
      group: 'fault',
      name: 'RTSP server killed and restarted; a garbage camera and a stalled camera on the same agent',
      expected: 'agent stays up, reconnects, reports each camera\'s status with an error; the good camera keeps raising events',
      observed: `at central: cam-garbage offline "${errGarbage.slice(0, 60)}", cam-stall offline "${errStall.slice(0, 60)}" (${reported ? 'reported' : 'NOT reported'}); ` +
        `cam-good ${wentOffline ? `offline "${errGood.slice(0, 50)}"` : 'NOT reported offline'} then ${cameBack ? 'online again' : 'NOT back online'}; ` +
        `retries: garbage ${garbageRetries}, stall ${stallRetries}; ${goodBefore} good-camera events before the kill, ${sent.length - goodAfterRestart} after; agent ${a.alive ? 'alive' : 'DEAD'}`,
      sent: sent.length,
      received: sent.length - lost,
      lost,
      duplicated: dupCount(stored),
      pass,
      ...(pass ? {} : { owner: 'agent/camera/source.ts (reconnect, status) and agent/agent.ts (status relay)' }),
      seconds: (Date.now() - t0) / 1000,
    });
  } finally {
    await agent?.stop();
    await sim?.stop();
    await central?.stop();
    await scratch.dispose();
  }
}

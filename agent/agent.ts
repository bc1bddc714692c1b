/**
 * The edge agent as one object: config → model pack, one camera ingest per camera, the pipeline,
 * the outbox and uplink, voice. `agent/main.ts` is its command line; tests and the benchmark start it
 * in-process.
 */
import { tmpdir } from 'node:os';
import path from 'node:path';
import { childLog } from '../common/log.js';
import { PROTOCOL_VERSION, type CameraStatus } from '../protocol/messages.js';
import { CameraSource, type CameraStatusInfo } from './camera/index.js';
import type { SiteConfig } from './config/schema.js';
import { ModelPack } from './detect/index.js';
import { WorkerPack } from './detect/workers.js';
import { EvidenceStore } from './evidence/index.js';
import { EventClips } from './evidence/clips.js';
import { Outbox } from './outbox/index.js';
import { Pipeline, type Detector } from './pipeline.js';
import type { MotionGateOptions } from './gate/motion.js';
import { Uplink, uplinkOptionsFromConfig } from './uplink/index.js';
import { voiceFromConfig, type VoiceAgent } from './voice/index.js';
import { agentMetrics } from './ops/metrics.js';
import { startOpsServer, type OpsServer } from './ops/server.js';

const log = childLog({ module: 'agent' });
export const AGENT_VERSION = '0.1.0';

export interface AgentOptions {
  /** Replace the model pack (tests, benchmark). */
  detector?: Detector;
  motion?: MotionGateOptions | false;
  env?: NodeJS.ProcessEnv;
}

export class Agent {
  private constructor(
    readonly config: SiteConfig,
    readonly pipeline: Pipeline,
    readonly cameras: CameraSource[],
    readonly outbox: Outbox,
    readonly evidence: EvidenceStore,
    readonly clips: EventClips,
    readonly uplink: Uplink | null,
    readonly voice: VoiceAgent | null,
    /** Only a pack the agent loaded itself is closed by stop(). */
    private readonly ownDetector: { close(): Promise<void> } | null,
    private readonly timers: NodeJS.Timeout[],
    /** /healthz, /readyz, /metrics (config `health`), or null. */
    readonly ops: OpsServer | null,
  ) {}

  static async start(config: SiteConfig, opts: AgentOptions = {}): Promise<Agent> {
    const env = opts.env ?? process.env;
    const m = config.models;
    const ownDetector = opts.detector
      ? null
      : m.workers
        ? await WorkerPack.load({ pack: m.pack, dir: m.dir, manifests: m.manifests, threads: m.threads })
        : await ModelPack.fromConfig(m);
    const detector = opts.detector ?? ownDetector!;
    const storageDir = path.resolve(config.storage.dir);
    const outbox = Outbox.open({ dir: storageDir });
    const evidence = new EvidenceStore({ dir: storageDir, ...config.storage.evidence, timezone: config.site.timezone });
    await evidence.init();

    const uplink = config.uplink ? new Uplink({ ...uplinkOptionsFromConfig(config, outbox, env), agentVersion: AGENT_VERSION }) : null;
    const voice = voiceFromConfig(config);
    if (voice && uplink) uplink.onVoiceCommand((payload) => voice.handleCommand(payload));

    const pipeline = new Pipeline({ config, detector, evidence, outbox, motion: opts.motion });
    const enabled = config.cameras.filter((c) => c.enabled);
    const clips = new EventClips(config.clips, {
      siteId: config.site.id,
      cameraIds: enabled.filter((c) => c.clips ?? config.clips.enabled).map((c) => c.id),
      root: path.resolve(config.clips.bufferDir ?? path.join(tmpdir(), 'bk-clips'), config.site.id),
      evidence,
      outbox,
      topicPrefix: config.uplink?.topicPrefix,
      ffmpegPath: process.env.FFMPEG_PATH,
    });
    pipeline.on('event', (e) => {
      uplink?.notify();
      clips.request(e);
      void voice?.remind(e.kind, e.cameraId);
    });

    const cameras = enabled.map((cfg) => {
      const dir = clips.bufferDir(cfg.id);
      const cam = new CameraSource(cfg, dir ? { clipSegments: { dir, segmentSec: config.clips.segmentSec } } : {});
      cam.on('frame', (f) => pipeline.offer(f));
      cam.on('status', (s) => uplink?.publishCameraStatus(cameraStatusMessage(config, cfg.id, cfg.name, s)));
      return cam;
    });
    // A camera whose picture stays still decodes one keyframe every idleFrameEverySec until it changes (pipeline decides).
    pipeline.on('decode', (id, mode) => cameras.find((c) => c.id === id)?.setIdleDecode(mode === 'keyframes'));

    const timers: NodeJS.Timeout[] = [];
    if (uplink && config.uplink) {
      const statsEvery = config.uplink.statsIntervalSec * 1000;
      let last = pipeline.totals();
      timers.push(
        setInterval(() => {
          const now = pipeline.totals();
          uplink.publishStats({
            v: PROTOCOL_VERSION,
            siteId: config.site.id,
            ts: Date.now(),
            uptimeSec: Math.round(now.uptimeSec),
            inferencesPerSec: (now.inferences - last.inferences) / Math.max(1e-3, now.uptimeSec - last.uptimeSec),
            framesProcessed: now.framesProcessed,
            framesDropped: now.framesDropped,
            outboxPending: outbox.pending(),
            eventsRaised: now.eventsRaised,
          });
          last = now;
        }, statsEvery).unref(),
      );
      uplink.start();
    }

    const parts = { siteId: config.site.id, version: AGENT_VERSION, pipeline, cameras, outbox, uplink, voice, clips };
    let ops: OpsServer | null = null;
    try {
      if (config.health) ops = await startOpsServer({ ...config.health, registry: agentMetrics(parts), parts });
    } catch (err) {
      // Nothing has started yet: release what was opened, then refuse to start.
      for (const t of timers) clearInterval(t);
      await uplink?.stop();
      evidence.close();
      outbox.close();
      await ownDetector?.close();
      throw err;
    }

    clips.start();
    pipeline.start();
    for (const c of cameras) c.start();
    log.info({ site: config.site.id, cameras: cameras.length, uplink: config.uplink?.url ?? null }, 'agent started');
    return new Agent(config, pipeline, cameras, outbox, evidence, clips, uplink, voice, ownDetector, timers, ops);
  }

  /** Clean shutdown: cameras, pipeline (finishing events in progress), uplink (offline status), stores. */
  async stop(): Promise<void> {
    for (const t of this.timers) clearInterval(t);
    await this.ops?.close();
    await Promise.allSettled(this.cameras.map((c) => c.stop()));
    await this.pipeline.stop();
    await this.clips.stop();
    await this.uplink?.stop();
    await this.voice?.close();
    this.evidence.close();
    this.outbox.close();
    await this.ownDetector?.close();
    log.info('agent stopped');
  }
}

function cameraStatusMessage(config: SiteConfig, cameraId: string, name: string, s: CameraStatusInfo): CameraStatus {
  return {
    v: PROTOCOL_VERSION,
    siteId: config.site.id,
    cameraId,
    name,
    state: s.state,
    lastFrameAt: s.lastFrameAt,
    fps: Math.round(s.fps * 100) / 100,
    error: s.error ? s.error.slice(0, 500) : null,
    ts: Date.now(),
  };
}

/**
 * A real edge agent in its own process for the fault scenarios (not a test file). Runs
 * `Agent.start(loadSiteConfig(argv[2]), { detector })` — real config loader, cameras (ffmpeg), pipeline,
 * evidence, outbox, uplink and voice — with ONE replacement: the detector is deterministic (every
 * frame shows a cigarette at a fixed place), so the event rate is set by the config's rule cooldown
 * instead of by a model on two shared cores.
 *
 * stdout, one JSON object per line:
 *   {"t":"ready"}                                   after Agent.start resolved
 *   {"t":"event","id":…,"cam":…,"at":…}             after the event's outbox transaction committed
 *   {"t":"camera","cam":…,"state":…,"error":…}      camera status changes
 *   {"t":"cameras-stopped","counters":{…}}          after SIGUSR2 (cameras stopped, uplink keeps draining)
 *   {"t":"stopped"}                                 after SIGTERM and a clean Agent.stop()
 * stderr: the agent's pino logs (LOG_LEVEL from the parent).
 */
import { Agent } from '../../../agent/agent.js';
import { loadSiteConfig } from '../../../agent/config/load.js';
import type { RgbImage } from '../../../agent/detect/types.js';

const file = process.argv[2];
if (!file) throw new Error('usage: agent-child.ts <site config>');
const out = (o: Record<string, unknown>) => process.stdout.write(`${JSON.stringify(o)}\n`);

const detector = {
  async detect(img: RgbImage) {
    const w = img.width, h = img.height;
    return [{ label: 'cigarette', score: 0.93, box: [w * 0.4, h * 0.4, w * 0.5, h * 0.5] as [number, number, number, number], model: 'fault-deterministic' }];
  },
};

const config = loadSiteConfig(file);
const agent = await Agent.start(config, { detector, motion: false });
agent.pipeline.on('event', (e) => out({ t: 'event', id: e.id, cam: e.cameraId, at: Date.now() }));
for (const cam of agent.cameras) {
  cam.on('status', (s) => out({ t: 'camera', cam: s.cameraId, state: s.state, error: s.error ?? null }));
}
out({ t: 'ready' });

process.on('SIGUSR2', () => {
  void Promise.allSettled(agent.cameras.map((c) => c.stop())).then(() => out({ t: 'cameras-stopped', counters: agent.pipeline.counters() }));
});
process.once('SIGTERM', () => {
  void agent.stop().then(
    () => { out({ t: 'stopped' }); process.exit(0); },
    (err: Error) => { process.stderr.write(`stop failed: ${err.message}\n`); process.exit(1); },
  );
});

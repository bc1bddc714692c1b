/**
 * The agent's Prometheus metrics (prom-client, a registry per agent). Values are read from the
 * stages at scrape time — the pipeline's counters, the cameras' status, the outbox, the uplink, voice
 * — so the hot path does no extra work. Names follow Prometheus conventions: `bk_` prefix, base
 * units in the name, `_total` for counters.
 */
import { Registry } from 'prom-client';
import { scraped, type Read } from '../../common/metrics.js';
import type { CameraSource } from '../camera/index.js';
import type { EventClips } from '../evidence/clips.js';
import type { Outbox } from '../outbox/index.js';
import type { Pipeline } from '../pipeline.js';
import type { Uplink } from '../uplink/index.js';
import type { VoiceAgent } from '../voice/index.js';

export interface AgentParts {
  siteId: string;
  version: string;
  pipeline: Pipeline;
  cameras: readonly CameraSource[];
  outbox: Outbox;
  uplink: Uplink | null;
  voice: VoiceAgent | null;
  clips?: EventClips;
}

const mirrored = (reg: Registry, name: string, help: string, labels: string[], read: Read) => scraped(reg, 'counter', name, help, labels, read);
const gauge = (reg: Registry, name: string, help: string, labels: string[], read: Read) => scraped(reg, 'gauge', name, help, labels, read);

export function agentMetrics(p: AgentParts): Registry {
  const reg = new Registry();
  gauge(reg, 'bk_agent_info', 'The agent: its version and site (always 1).', ['version', 'site'], () => [[{ version: p.version, site: p.siteId }, 1]]);
  const perCamera = (f: (c: CameraSource) => number) => () => p.cameras.map((c) => [{ camera: c.id }, f(c)] as [Record<string, string>, number]);
  const lanes = () => p.pipeline.counters();
  gauge(reg, 'bk_camera_up', 'Whether the camera delivers frames (1 online, 0 connecting or offline).', ['camera'], perCamera((c) => (c.status().state === 'online' ? 1 : 0)));
  gauge(reg, 'bk_camera_fps', 'Frames per second the camera delivers now (sliding window).', ['camera'], perCamera((c) => c.status().fps));
  mirrored(reg, 'bk_camera_frames_total', 'Frames decoded from the camera.', ['camera'], perCamera((c) => c.status().frames));
  mirrored(reg, 'bk_camera_decode_restarts_total', 'Reconnects of the camera ingest (ffmpeg restarts).', ['camera'], perCamera((c) => c.status().reconnects));
  mirrored(reg, 'bk_camera_frames_dropped_total', 'Frames replaced before detection (detection behind).', ['camera'], perCamera((c) => lanes()[c.id]?.framesDropped ?? 0));
  mirrored(reg, 'bk_camera_frames_still_total', 'Frames the motion gate judged still (no detection run).', ['camera'], perCamera((c) => lanes()[c.id]?.framesSkippedStill ?? 0));
  mirrored(reg, 'bk_camera_events_total', 'Violations raised on the camera.', ['camera'], perCamera((c) => lanes()[c.id]?.eventsRaised ?? 0));
  const totals = () => p.pipeline.totals();
  mirrored(reg, 'bk_detect_frames_total', 'Frames that went through the model pack.', [], () => [[{}, totals().inferences]]);
  mirrored(reg, 'bk_detect_seconds_total', 'Wall time of the model pack on those frames (seconds; divide by frames for the time per frame).', [], () => [[{}, totals().inferenceMs / 1000]]);
  mirrored(reg, 'bk_head_crops_total', 'Head crops judged by the head classifier.', [], () => [[{}, totals().headCrops]]);
  mirrored(reg, 'bk_board_checks_total', 'Board colour checks of raw / cooked zones.', [], () => [[{}, totals().boardChecks]]);
  mirrored(reg, 'bk_board_check_seconds_total', 'Time spent in board checks (seconds).', [], () => [[{}, totals().boardMs / 1000]]);
  gauge(reg, 'bk_outbox_depth', 'Messages waiting in the outbox (events, snapshots, status).', [], () => [[{}, p.outbox.pending()]]);
  gauge(reg, 'bk_outbox_oldest_age_seconds', 'Age of the oldest waiting message (0 when empty).', [], () => [[{}, (p.outbox.oldestAgeMs() ?? 0) / 1000]]);
  gauge(reg, 'bk_uplink_connected', "Whether the uplink holds a connection to central's broker (absent without an uplink).", [], () => (p.uplink ? [[{}, p.uplink.state().connected ? 1 : 0]] : []));
  const clips = (k: 'cut' | 'failed' | 'skipped') => () => (p.clips ? [[{ result: k }, p.clips.counters[k]]] : []) as [Record<string, string>, number][];
  mirrored(reg, 'bk_clips_total', 'Event clips by result: cut (queued for central), failed, skipped (no buffer of that moment).', ['result'],
    () => [...clips('cut')(), ...clips('failed')(), ...clips('skipped')()]);
  mirrored(reg, 'bk_clip_bytes_total', 'Bytes of the event clips queued for central.', [], () => (p.clips ? [[{}, p.clips.counters.bytes]] : []));
  mirrored(reg, 'bk_voice_commands_total', 'Voice commands from central by outcome.', ['result'], () => (p.voice ? Object.entries(p.voice.outcomes).map(([result, n]) => [{ result }, n]) : []));
  return reg;
}

export interface Readiness {
  ready: boolean;
  cameras: { id: string; state: string; error: string | null }[];
  uplink: { connected: boolean; lastError: string | null } | null;
  problems: string[];
}

/** Ready: every enabled camera online and, when there is an uplink, connected to central. */
export function readiness(p: AgentParts): Readiness {
  const cameras = p.cameras.map((c) => {
    const s = c.status();
    return { id: c.id, state: s.state, error: s.error };
  });
  const up = p.uplink?.state();
  const problems = [
    ...cameras.filter((c) => c.state !== 'online').map((c) => `camera ${c.id} ${c.state}${c.error ? `: ${c.error}` : ''}`),
    ...(up && !up.connected ? [`uplink not connected${up.lastError ? `: ${up.lastError}` : ''}`] : []),
  ];
  return { ready: problems.length === 0, cameras, uplink: up ? { connected: up.connected, lastError: up.lastError } : null, problems };
}

/**
 * The benchmark as the lead runs it, with tiny parameters: the JSON result has every field, with
 * sane values. Not a timing assertion (the machine is shared); figures belong in docs/performance.md.
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../agent/detect/index.js';
import { parseArgs } from '../../scripts/bench.js';
import { HEAP_FLAG } from '../../common/heap.js';

const run = promisify(execFile);
const TSX = path.join(REPO_ROOT, 'node_modules/.bin/tsx');

describe('bench', () => {
  it('parses its arguments and rejects bad ones', () => {
    const o = parseArgs(['--cameras', '16', '--fps=2', '--seconds', '60', '--json', '--keyframes-only', '--frame-width', '416']);
    expect(o).toMatchObject({ cameras: 16, fps: 2, seconds: 60, json: true, keyframesOnly: true, frameWidth: 416, threads: 1, motion: true, workers: true, spinning: false, foodZones: false });
    expect(parseArgs(['--food-zones']).foodZones).toBe(true);
    expect([parseArgs([]).substream, parseArgs(['--substream']).substream]).toEqual([false, true]);
    expect(() => parseArgs(['--cameras', '0'])).toThrow(/--cameras/);
    expect(() => parseArgs(['--frobnicate'])).toThrow(/unknown argument/);
  });

  it('runs 1 camera x 2 fps for 5 s and prints one JSON object with every figure', { timeout: 300_000 }, async () => {
    const { stdout } = await run(TSX, [HEAP_FLAG, path.join(REPO_ROOT, 'scripts/bench.ts'), '--cameras', '1', '--fps', '2', '--seconds', '5', '--json', '--warmup', '2', '--gate-seconds', '6'], {
      cwd: REPO_ROOT,
      env: { ...process.env, LOG_LEVEL: 'warn' },
      maxBuffer: 16 * 2 ** 20,
    });
    const lines = stdout.trim().split('\n');
    expect(lines).toHaveLength(1);
    const r = JSON.parse(lines[0]!);
    expect(r).toMatchObject({ cameras: 1, fps: 2, seconds: 5 });
    // Service hours, a camera without zones: of the default pack the face model and, for the head
    // cascade (no_hat, smoking), the person model and the head classifier are wanted (and measured bare).
    expect(r.config.pack).toEqual(['rfb640_masked_face', 'yolox_nano', 'rodent_yolox', 'head_attrs']);
    expect(r.config.models).toEqual(['rfb640_masked_face', 'yolox_nano', 'head_attrs']);
    expect(r.headCropsPerSec).toBeGreaterThanOrEqual(0);
    expect(r.classifierMsPerCrop).toBeGreaterThan(0);
    // The V8 flag reaches node through tsx (as in the package.json scripts).
    expect(r.config.heapSized).toBe(true);
    const positive = (x: unknown) => expect(typeof x === 'number' && x > 0, `${String(x)} > 0`).toBe(true);
    positive(r.pipelineInferencesPerSec);
    positive(r.bareInferencesPerSec);
    positive(r.efficiency);
    expect(r.efficiency).toBeLessThan(3);
    // The limit once decoding has its share never exceeds the bare rate; the overhead is a CPU ratio.
    positive(r.limitInferencesPerSec);
    expect(r.limitInferencesPerSec).toBeLessThanOrEqual(r.bareInferencesPerSec);
    positive(r.bareCpuMsPerInference);
    positive(r.pipelineCpuMsPerInference);
    expect(r.overheadFraction).toBeCloseTo(r.pipelineCpuMsPerInference / r.bareCpuMsPerInference - 1, 1);
    expect(typeof r.saturated).toBe('boolean');
    // One camera at 2 fps: the corridor keeps up, every camera got frames through.
    expect(r.perCameraFps.min).toBeGreaterThan(0);
    expect(r.perCameraFps.median).toBeGreaterThanOrEqual(r.perCameraFps.min);
    expect(r.perCameraFps.median).toBeLessThanOrEqual(4);
    expect(Number.isInteger(r.framesDropped) && r.framesDropped >= 0).toBe(true);
    positive(r.cpuPercent);
    positive(r.decodeCpuPercentBare);
    for (const k of ['start', 'max', 'end']) positive(r.rssMB[k]);
    expect(r.rssMB.max).toBeGreaterThanOrEqual(r.rssMB.start);
    expect(r.rssMB.max).toBeLessThan(4096);
    expect(r.alertLatencyMs).toHaveProperty('p50');
    expect(r.alertLatencyMs).toHaveProperty('p95');
    for (const v of [r.alertLatencyMs.p50, r.alertLatencyMs.p95]) if (v !== null) expect(v).toBeGreaterThanOrEqual(0);
    // Motion gate: the still camera ran detection less often than the busy one.
    expect(r.motionGate).not.toBeNull();
    positive(r.motionGate.busy.inferencesPerSec);
    expect(r.motionGate.still.inferencesPerSec).toBeLessThan(r.motionGate.busy.inferencesPerSec);
    expect(r.motionGate.stillCostRatio).toBeGreaterThanOrEqual(0);
    expect(r.motionGate.stillCostRatio).toBeLessThan(1);
    // ... and, still for longer than the phase's idle time, decoded keyframes only; the busy one never.
    expect(r.motionGate.stillDecodeModes).toEqual(['keyframes']);
    expect(r.motionGate.busyDecodeModes).toEqual([]);
    // The agent received the still camera's stream itself, and that is part of the camera's cost.
    positive(r.motionGate.still.receiveCpuPercent);
  });
});

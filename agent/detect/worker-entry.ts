/**
 * Worker-thread side of WorkerPack (workers.ts): loads a ModelPack from `workerData` (one model, or
 * several) and answers detect requests. onnxruntime-node runs a session synchronously on the thread
 * that calls it, so inference here keeps the agent's main thread (camera pipes, evidence, MQTT) free.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { ModelPack, type PackOptions } from './pack.js';

export interface DetectRequest {
  id: number;
  width: number;
  height: number;
  data: Uint8Array;
  minScore?: number;
}

/** Benchmark: the models bare (prepared tensor, no pre/post-processing) in a tight loop. */
export interface BareRequest {
  id: number;
  bareSeconds: number;
  width: number;
  height: number;
  data: Uint8Array;
}

async function bare(pack: ModelPack, m: BareRequest): Promise<{ id: number; runs: number; seconds: number; cpuSec: number }> {
  for (const model of pack.models) {
    model.prepare({ width: m.width, height: m.height, data: m.data });
    for (let i = 0; i < 3; i++) await model.runBare();
  }
  const c0 = process.cpuUsage(); // process-wide: the caller prices CPU from the whole set
  const t0 = performance.now();
  let runs = 0;
  while (performance.now() - t0 < m.bareSeconds * 1000) {
    for (const model of pack.models) await model.runBare();
    runs++;
  }
  const c = process.cpuUsage(c0);
  return { id: m.id, runs, seconds: (performance.now() - t0) / 1000, cpuSec: (c.user + c.system) / 1e6 };
}

const port = parentPort!;
try {
  const pack = await ModelPack.load(workerData as PackOptions);
  port.on('message', (m: DetectRequest | BareRequest) => {
    if ('bareSeconds' in m) {
      void bare(pack, m).then((r) => port.postMessage(r), (err: Error) => port.postMessage({ id: m.id, error: err.message }));
      return;
    }
    pack.detect({ width: m.width, height: m.height, data: m.data }, m.minScore === undefined ? {} : { minScore: m.minScore }).then(
      (detections) => port.postMessage({ id: m.id, detections }),
      (err: Error) => port.postMessage({ id: m.id, error: err.message }),
    );
  });
  port.postMessage({ ready: true, models: pack.models.map((x) => x.name), labels: [...pack.labels] });
} catch (err) {
  port.postMessage({ ready: false, error: (err as Error).message });
}

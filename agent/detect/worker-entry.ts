/**
 * Worker-thread side of WorkerPack (workers.ts): loads one model from `workerData` and runs it on
 * input tensors the main thread pre-processed. onnxruntime-node runs a session synchronously on the
 * thread that calls it, so inference here keeps the agent's main thread (camera pipes, evidence,
 * MQTT) free, and this thread does little else than inference.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { BARE_CROPS } from './classifier.js';
import { ModelPack, type PackOptions } from './pack.js';
import type { Placement } from './preprocess.js';

/** Detect on a pre-processed input tensor; the tensor's buffer is transferred and sent back with the answer. */
export interface DetectRequest {
  id: number;
  tensor: Float32Array<ArrayBuffer>;
  placement: Placement;
  minScore?: number;
}

/** Classifier workers: a batch of `n` prepared crops; the buffer is transferred and sent back. */
export interface ClassifyRequest {
  id: number;
  batch: Float32Array<ArrayBuffer>;
  n: number;
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
  const clf = pack.classifier;
  if (clf) {
    const batch = new Float32Array(BARE_CROPS * 3 * clf.cascade.size * clf.cascade.size);
    for (let i = 0; i < 3; i++) await clf.run(batch, BARE_CROPS);
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    let runs = 0;
    while (performance.now() - t0 < m.bareSeconds * 1000) {
      await clf.run(batch, BARE_CROPS);
      runs++;
    }
    const cu = process.cpuUsage(c0);
    return { id: m.id, runs, seconds: (performance.now() - t0) / 1000, cpuSec: (cu.user + cu.system) / 1e6 };
  }
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
  const pack = await ModelPack.load({ ...(workerData as PackOptions), feedersElsewhere: true });
  const classifier = pack.classifier;
  if (pack.models.length + (classifier ? 1 : 0) !== 1) throw new Error(`a detection worker runs one model, got ${pack.models.length + (classifier ? 1 : 0)}`);
  const model = pack.models[0];
  port.on('message', (m: DetectRequest | BareRequest | ClassifyRequest) => {
    if ('bareSeconds' in m) {
      void bare(pack, m).then((r) => port.postMessage(r), (err: Error) => port.postMessage({ id: m.id, error: err.message }));
      return;
    }
    if ('batch' in m) {
      classifier!.run(m.batch, m.n).then(
        ({ probs, columns }) => port.postMessage({ id: m.id, probs, columns }),
        (err: Error) => port.postMessage({ id: m.id, error: err.message }),
      );
      return;
    }
    if (!model) {
      port.postMessage({ id: m.id, error: 'this worker runs a classifier', tensor: m.tensor }, [m.tensor.buffer]);
      return;
    }
    const back = { tensor: m.tensor };
    model.inferPrepared(m.tensor, m.placement, m.minScore === undefined ? {} : { minScore: m.minScore }).then(
      (detections) => port.postMessage({ id: m.id, detections, ...back }, [m.tensor.buffer]),
      (err: Error) => port.postMessage({ id: m.id, error: err.message, ...back }, [m.tensor.buffer]),
    );
  });
  if (classifier) port.postMessage({ ready: true, models: [classifier.name], labels: [...classifier.cascade.labels], classifier: classifier.manifest });
  else port.postMessage({ ready: true, models: [model!.name], labels: [...model!.labels], input: model!.manifest.input });
} catch (err) {
  port.postMessage({ ready: false, error: (err as Error).message });
}

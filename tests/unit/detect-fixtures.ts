/**
 * Test helpers for the detection stage: tiny ONNX graphs built with onnx-proto (outputs are
 * constants we choose, plus an `echo` output = Identity(input)), written with a manifest as a
 * bundled model in a temp folder.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import onnxProto from 'onnx-proto';
import { stringify } from 'yaml';

const { onnx } = onnxProto;

export interface ConstOutput {
  name: string;
  dims: number[];
  data: Float32Array | number[];
}

const valueInfo = (name: string, dims: number[]) => ({
  name,
  type: { tensorType: { elemType: onnx.TensorProto.DataType.FLOAT, shape: { dim: dims.map((d) => ({ dimValue: d })) } } },
});

/** An ONNX model with input `inputName` [1, 3, H, W], constant outputs, and `echo` = the input. */
export function constantModel(inputName: string, width: number, height: number, outputs: ConstOutput[]): Uint8Array {
  const inputDims = [1, 3, height, width];
  const model = onnx.ModelProto.create({
    irVersion: 8,
    opsetImport: [{ domain: '', version: 13 }],
    producerName: 'bk-tests',
    graph: {
      name: 'g',
      input: [valueInfo(inputName, inputDims)],
      output: [...outputs.map((o) => valueInfo(o.name, o.dims)), valueInfo('echo', inputDims)],
      initializer: outputs.map((o) => {
        const data = Float32Array.from(o.data);
        if (data.length !== o.dims.reduce((a, b) => a * b, 1)) throw new Error(`fixture ${o.name}: ${data.length} values for dims ${o.dims}`);
        return { name: `${o.name}_const`, dims: o.dims, dataType: onnx.TensorProto.DataType.FLOAT, rawData: new Uint8Array(data.buffer) };
      }),
      node: [
        ...outputs.map((o) => ({ opType: 'Identity', input: [`${o.name}_const`], output: [o.name] })),
        { opType: 'Identity', input: [inputName], output: ['echo'] },
      ],
    },
  });
  return onnx.ModelProto.encode(model).finish();
}

export const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

export function tempDir(prefix = 'bk-detect-'): string {
  return mkdtempSync(path.join(os.tmpdir(), prefix));
}

/** Write `<dir>/<name>.onnx` and `<dir>/<name>.model.yaml` (bundled); returns the manifest path. */
export function writeBundled(dir: string, name: string, bytes: Uint8Array, manifest: Record<string, unknown>): string {
  writeFileSync(path.join(dir, `${name}.onnx`), bytes);
  const file = path.join(dir, `${name}.model.yaml`);
  writeFileSync(
    file,
    stringify({
      name,
      file: `${name}.onnx`,
      sha256: sha256(bytes),
      bundled: true,
      source: 'built by the test',
      license: 'MIT',
      ...manifest,
    }),
  );
  return file;
}

/** A uniform RGB image. */
export function solidImage(width: number, height: number, rgb: [number, number, number]) {
  const data = new Uint8Array(width * height * 3);
  for (let i = 0; i < width * height; i++) data.set(rgb, i * 3);
  return { width, height, data };
}

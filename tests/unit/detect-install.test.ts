/** The model installer: copy or download from a mirror, verify sha256, idempotent, bundled files verified in place. */
import { copyFileSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { installModels } from '../../scripts/install-models.js';
import { constantModel, sha256, tempDir } from './detect-fixtures.js';

const bytes = constantModel('images', 8, 8, [{ name: 'out', dims: [1, 1, 6], data: [1, 2, 3, 4, 5, 6] }]);
const manifest = (name: string, extra: Record<string, unknown> = {}) => ({
  name,
  file: `${name}.onnx`,
  sha256: sha256(bytes),
  source: 'test',
  license: 'MIT',
  input: { name: 'images', width: 8, height: 8, layout: 'NCHW', colorOrder: 'RGB', resize: { mode: 'stretch' } },
  decoder: { family: 'yolov5', output: 'out' },
  scoreThreshold: 0.5,
  nmsIou: 0.5,
  classes: { 0: 'person' },
  ...extra,
});

function setup() {
  const root = tempDir('bk-install-');
  const manifests = path.join(root, 'models');
  const mirror = path.join(root, 'mirror');
  const dest = path.join(root, 'var/models');
  mkdirSync(manifests);
  mkdirSync(mirror);
  writeFileSync(path.join(manifests, 'a.model.yaml'), stringify(manifest('a')));
  writeFileSync(path.join(manifests, 'b.model.yaml'), stringify(manifest('b', { bundled: true })));
  writeFileSync(path.join(manifests, 'b.onnx'), bytes);
  writeFileSync(path.join(mirror, 'a.onnx'), bytes);
  return { root, manifests, mirror, dest };
}

describe('installModels', () => {
  it('installs from a mirror folder, verifies bundled files, and is idempotent', async () => {
    const s = setup();
    const r1 = await installModels({ mirror: s.mirror, dest: s.dest, manifests: s.manifests });
    expect(r1.map((r) => [r.name, r.status])).toEqual([
      ['a', 'installed'],
      ['b', 'bundled'],
    ]);
    expect(sha256(readFileSync(path.join(s.dest, 'a.onnx')))).toBe(sha256(bytes));
    const mtime = statSync(path.join(s.dest, 'a.onnx')).mtimeMs;
    const r2 = await installModels({ mirror: '/nonexistent', dest: s.dest, manifests: s.manifests });
    expect(r2.map((r) => r.status)).toEqual(['present', 'bundled']);
    expect(statSync(path.join(s.dest, 'a.onnx')).mtimeMs).toBe(mtime);
  });

  it('replaces a corrupt installed file', async () => {
    const s = setup();
    mkdirSync(s.dest, { recursive: true });
    writeFileSync(path.join(s.dest, 'a.onnx'), 'garbage');
    const r = await installModels({ mirror: s.mirror, dest: s.dest, manifests: s.manifests });
    expect(r[0]!.status).toBe('installed');
    expect(sha256(readFileSync(path.join(s.dest, 'a.onnx')))).toBe(sha256(bytes));
  });

  it('names a file missing from the mirror, and a corrupt one, and installs nothing corrupt', async () => {
    const s = setup();
    writeFileSync(path.join(s.manifests, 'c.model.yaml'), stringify(manifest('c')));
    writeFileSync(path.join(s.mirror, 'a.onnx'), Buffer.concat([Buffer.from(bytes), Buffer.from([0])]));
    const err = await installModels({ mirror: s.mirror, dest: s.dest, manifests: s.manifests }).catch((e: Error) => e);
    expect(String(err)).toMatch(/mirror\/a\.onnx: corrupt: sha256 [0-9a-f]{64}, expected [0-9a-f]{64} \(model a, .*a\.model\.yaml\)/);
    expect(String(err)).toMatch(/mirror\/c\.onnx: missing from the mirror \(model c/);
    expect(() => statSync(path.join(s.dest, 'a.onnx'))).toThrow();
  });

  it('names a corrupt bundled file', async () => {
    const s = setup();
    writeFileSync(path.join(s.manifests, 'b.onnx'), 'x');
    await expect(installModels({ mirror: s.mirror, dest: s.dest, manifests: s.manifests })).rejects.toThrow(/bundled model file .*b\.onnx is corrupt/);
  });

  describe('over http', () => {
    let server: http.Server;
    let url = '';
    const files: Record<string, Uint8Array> = {};
    beforeAll(async () => {
      server = http.createServer((req, res) => {
        const f = files[req.url ?? ''];
        if (!f) return res.writeHead(404).end();
        res.writeHead(200, { 'content-type': 'application/octet-stream' }).end(Buffer.from(f));
      });
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/models`;
    });
    afterAll(() => new Promise<void>((r) => server.close(() => r())));

    it('downloads <URL>/<file> and verifies it; 404 is named', async () => {
      const s = setup();
      files['/models/a.onnx'] = bytes;
      const r = await installModels({ mirror: url, dest: s.dest, manifests: s.manifests });
      expect(r[0]).toMatchObject({ name: 'a', status: 'installed' });
      copyFileSync(path.join(s.dest, 'a.onnx'), path.join(s.root, 'check.onnx'));
      expect(sha256(readFileSync(path.join(s.root, 'check.onnx')))).toBe(sha256(bytes));
      const s2 = setup();
      delete files['/models/a.onnx'];
      await expect(installModels({ mirror: url, dest: s2.dest, manifests: s2.manifests })).rejects.toThrow(/models\/a\.onnx: download failed \(HTTP 404/);
    });
  });
});

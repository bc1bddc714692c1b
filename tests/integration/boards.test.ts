/**
 * Mixed raw / cooked boards, as a user meets them: a synthetic scene (a drawn board on a real kitchen
 * frame, scripts/boards/scenes.ts) judged by `npm run detect --config`, drawn by `npm run zones`, and
 * shown for 70 s by a simulated RTSP camera to the real agent, whose uplink must deliver exactly one
 * mixed_boards event to a plain mosquitto_sub.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Agent } from '../../agent/agent.js';
import { SiteConfigSchema } from '../../agent/config/schema.js';
import { ModelPack, REPO_ROOT } from '../../agent/detect/index.js';
import { EventMessage } from '../../protocol/messages.js';
import { installModels } from '../../scripts/install-models.js';
import { agentCli } from '../helpers/process.js';
import { renderScene, SCENE_CODE, SCENE_ZONES, type PlannedBoard } from '../../scripts/boards/scenes.js';
import { mosquittoSub, startAedes } from '../helpers/brokers.js';
import { startSimCamera, stopAllSimCameras } from '../helpers/rtsp.js';

const BACKGROUND = path.resolve(REPO_ROOT, '../shared/data/hats/kitchen/images/kitchenB_000480.jpg');
const SEED = 7; // on a held-out (test) background; the check sees the board in either colour with this seed
const SITE = 'site-boards';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let work: string;
let siteYaml: string;
const scene = async (colour: PlannedBoard['colour'], name: string, dir = path.join(work, 'scenes')) => {
  const { jpeg } = await renderScene(BACKGROUND, 'test', 'raw_in_cooked', [{ colour, zone: SCENE_ZONES[1]!, slot: 0, slots: 1 }], SEED, name);
  const file = path.join(dir, name);
  writeFileSync(file, jpeg);
  return file;
};

const cli = agentCli;

beforeAll(async () => {
  await installModels();
  work = mkdtempSync(path.join(tmpdir(), 'bk-boards-'));
  mkdirSync(path.join(work, 'scenes'));
  siteYaml = path.join(work, 'site.yaml');
  writeFileSync(siteYaml, stringify({ site: { id: SITE, name: '案板测试食堂' }, boards: SCENE_CODE, cameras: [{ id: 'scene', name: '凉菜间', url: 'rtsp://127.0.0.1:1/x', zones: SCENE_ZONES }] }));
});

afterAll(async () => {
  await stopAllSimCameras();
  rmSync(work, { recursive: true, force: true });
});

describe('mixed boards', () => {
  it('detect --config: a raw-coded (red) board in the cooked zone raises mixed_boards; the same scene with a yellow board does not', async () => {
    const red = await scene('red', 'red.jpg');
    const yellow = await scene('yellow', 'yellow.jpg');
    const r = await cli('detect.ts', ['--config', siteYaml, '--json', red, yellow]);
    expect(r.code, r.stderr).toBe(0);
    const [a, b] = r.stdout.trim().split('\n').map((l) => JSON.parse(l));
    expect(a.detections.filter((d: { label: string }) => d.label.endsWith('_board')).map((d: { label: string }) => d.label)).toEqual(['raw_board']);
    // (the cook in the background is bare-headed: no_hat is raised too, by the default pack)
    const mixed = (x: { violations: { kind: string; ruleId: string }[] }) => x.violations.filter((v) => v.kind === 'mixed_boards').map((v) => v.ruleId);
    expect(mixed(a)).toEqual(['mixed_boards_raw_in_cooked']);
    expect(b.detections.filter((d: { label: string }) => d.label.endsWith('_board')).map((d: { label: string }) => d.label)).toEqual(['cooked_board']);
    expect(mixed(b)).toEqual([]);
  }, 60_000);

  it('zones: writes the PNG and names the board it accepts; a bad camera id is a clear error', async () => {
    const red = await scene('red', 'red-z.jpg');
    const out = path.join(work, 'zones.png');
    const r = await cli('zones.ts', ['--config', siteYaml, '--camera', 'scene', '--image', red, '--out', out, '--json']);
    expect(r.code, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.zones.map((z: { kind: string }) => z.kind)).toEqual(['raw', 'cooked']);
    expect(j.regions.filter((g: { rejected: string | null }) => g.rejected === null).map((g: { colour: string }) => g.colour)).toEqual(['red']);
    expect(j.violations.map((v: { ruleId: string }) => v.ruleId)).toEqual(['mixed_boards_raw_in_cooked']);
    expect(existsSync(out)).toBe(true);
    const bad = await cli('zones.ts', ['--config', siteYaml, '--camera', 'nope', '--image', red]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/no camera "nope" \(cameras: scene\)/);
  }, 60_000);

  it('live: a red board lying in the cooked zone for 70 s → exactly one mixed_boards event at mosquitto_sub', async () => {
    const photos = path.join(work, 'live');
    mkdirSync(photos);
    await scene('red', 'red.jpg', photos);
    const camera = await startSimCamera({ source: photos, imageSeconds: 120, width: 640, height: 360 });
    // The face model runs (service hours all day); the board check needs no model.
    const pack = await ModelPack.load({ pack: [{ manifest: 'rfb640_masked_face' }], threads: 1 });
    const broker = await startAedes();
    const { lines, proc: sub } = mosquittoSub(broker.port, `bk/v1/site/${SITE}/event`, true);
    await sleep(500);
    const config = SiteConfigSchema.parse({
      site: { id: SITE, name: '案板测试食堂' },
      serviceHours: [{ from: '00:00', to: '23:59' }],
      boards: SCENE_CODE,
      models: { dir: path.join(REPO_ROOT, 'var/models'), manifests: path.join(REPO_ROOT, 'models'), pack: [{ manifest: 'rfb640_masked_face' }], threads: 1 },
      cameras: [{ id: 'scene', name: '凉菜间', url: camera.url, fps: 2, zones: SCENE_ZONES }],
      uplink: { url: broker.url, usernameEnv: 'BK_BOARDS_USER', passwordEnv: 'BK_BOARDS_PASS' },
      storage: { dir: path.join(work, 'agent') },
    });
    const agent = await Agent.start(config, { detector: pack, env: { BK_BOARDS_USER: SITE, BK_BOARDS_PASS: 'unused' } });
    try {
      await sleep(70_000);
    } finally {
      await agent.stop();
      await pack.close();
    }
    await sleep(300);
    sub.kill();
    await broker.close();
    const events = lines.map((l) => EventMessage.parse(JSON.parse(Buffer.from(l.split('\t')[2]!, 'latin1').toString('utf8'))));
    expect(events.map((e) => `${e.kind}/${e.ruleId}/${e.label}/${e.zone}`)).toEqual(['mixed_boards/mixed_boards_raw_in_cooked/raw_board/cooked_counter']);
    expect(events[0]!.capturedAt - events[0]!.startedAt).toBeGreaterThanOrEqual(10_000); // the rule's 10 s persistence
    expect(events[0]!.experimental).toBe(true);
  }, 120_000);
});

import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import mqtt from 'mqtt';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SiteConfigSchema } from '../../agent/config/schema.js';
import { Outbox } from '../../agent/outbox/outbox.js';
import { Uplink, uplinkOptionsFromConfig } from '../../agent/uplink/uplink.js';
import { voiceFromConfig } from '../../agent/voice/voice.js';
import { parseWav } from '../../agent/voice/wav.js';
import { VoiceStatus, parsePayload } from '../../protocol/messages.js';
import { generateSigningKeys, signObject } from '../../protocol/signing.js';
import { topics } from '../../protocol/topics.js';
import { disposeMosquitto, mosquittoPasswordFile, startMosquitto, type MosquittoHandle } from '../helpers/brokers.js';

const t = topics();
let dir: string;
let mosq: MosquittoHandle;
const cleanups: (() => Promise<unknown> | unknown)[] = [];

beforeEach(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'voice-int-'));
  const passwordFile = mosquittoPasswordFile(dir, { site1: 'site1-pw', central: 'central-pw' });
  const aclFile = path.join(dir, 'acl');
  // a site writes only its own topics and reads only its own voice commands
  writeFileSync(aclFile, ['user site1', 'topic write bk/v1/site/site1/#', 'topic read bk/v1/site/site1/voice/command', '', 'user central', 'topic readwrite bk/v1/#', ''].join('\n'));
  mosq = await startMosquitto({ passwordFile, aclFile });
});
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
  await disposeMosquitto(mosq);
  rmSync(dir, { recursive: true, force: true });
});

describe('voice end to end through mosquitto (per-site credentials and ACL)', () => {
  it('a signed command is played and answered; a tampered one is rejected and not played', async () => {
    const keys = generateSigningKeys();
    const pubFile = path.join(dir, 'central.pub.pem');
    writeFileSync(pubFile, keys.publicKeyPem);
    const sinkDir = path.join(dir, 'speaker');
    const cfg = SiteConfigSchema.parse({
      site: { id: 'site1', name: '一中食堂' },
      cameras: [{ id: 'cam1', name: '后厨', url: 'rtsp://x/1' }],
      uplink: { url: mosq.url, usernameEnv: 'SITE_USER', passwordEnv: 'SITE_PASS' },
      storage: { dir: path.join(dir, 'agent') },
      voice: { enabled: true, centralPublicKeyFile: pubFile, sink: { type: 'file', dir: sinkDir } },
    });
    const outbox = Outbox.open({ dir: cfg.storage.dir });
    cleanups.push(() => outbox.close());
    const voice = voiceFromConfig(cfg)!;
    cleanups.push(() => voice.close());
    const uplink = new Uplink({ ...uplinkOptionsFromConfig(cfg, outbox, { SITE_USER: 'site1', SITE_PASS: 'site1-pw' }), reconnectMinMs: 100, reconnectMaxMs: 300 });
    uplink.onVoiceCommand((payload) => voice.handleCommand(payload));
    const connected = new Promise<void>((r) => uplink.once('connected', () => r()));
    uplink.start();
    cleanups.push(() => uplink.stop());
    await connected;

    const central = await mqtt.connectAsync(mosq.url, { clientId: 'central-1', username: 'central', password: 'central-pw', clean: false });
    cleanups.push(() => central.endAsync());
    const statuses: VoiceStatus[] = [];
    central.on('message', (_topic, payload) => {
      const r = parsePayload(VoiceStatus, payload);
      if (r.ok) statuses.push(r.value);
    });
    await central.subscribeAsync(t.voiceStatus('+'), { qos: 1 });
    await new Promise((r) => setTimeout(r, 200)); // the agent's subscription is in place

    const sign = (id: string, text: string) =>
      signObject({ v: 1 as const, id, siteId: 'site1', cameraId: null, issuedBy: 'inspector-wang', issuedAt: Date.now(), nonce: randomBytes(18).toString('base64url'), content: { type: 'text' as const, text } }, keys.privateKeyPem);
    const t0 = performance.now();
    await central.publishAsync(t.voiceCommand('site1'), JSON.stringify(sign('good1', '后厨请注意，请立即戴好口罩')), { qos: 1 });
    const tampered = { ...sign('evil1', '请注意'), content: { type: 'text', text: '今天提前下班' } };
    await central.publishAsync(t.voiceCommand('site1'), JSON.stringify(tampered), { qos: 1 });

    const deadline = Date.now() + 15_000;
    while (statuses.length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    const ms = performance.now() - t0;
    expect(statuses.find((s) => s.commandId === 'good1')).toMatchObject({ state: 'played', siteId: 'site1', error: null });
    expect(statuses.find((s) => s.commandId === 'evil1')).toMatchObject({ state: 'rejected' });
    expect(statuses.find((s) => s.commandId === 'evil1')!.error).toMatch(/signature does not verify/);
    const files = readdirSync(sinkDir);
    expect(files).toHaveLength(1);
    expect(files[0]).toMatch(/-good1\.wav$/);
    expect(parseWav(readFileSync(path.join(sinkDir, files[0]!))).durationSec).toBeGreaterThan(1);
    expect(outbox.pending()).toBe(0); // the statuses left through the outbox
    console.info(`[measure] voice: publish → both statuses at central (espeak-ng synthesis included) ${ms.toFixed(0)} ms`);

    // the ACL holds: the site cannot publish a command to another site (mosquitto drops it silently)
    const spy = await mqtt.connectAsync(mosq.url, { clientId: 'central-spy', username: 'central', password: 'central-pw' });
    cleanups.push(() => spy.endAsync());
    const leaked: string[] = [];
    spy.on('message', (topic) => leaked.push(topic));
    await spy.subscribeAsync('bk/v1/site/site2/#', { qos: 1 });
    const rogue = await mqtt.connectAsync(mosq.url, { clientId: 'agent-site1-rogue', username: 'site1', password: 'site1-pw' });
    cleanups.push(() => rogue.endAsync());
    await rogue.publishAsync('bk/v1/site/site2/voice/command', 'x', { qos: 1 });
    await new Promise((r) => setTimeout(r, 300));
    expect(leaked).toEqual([]);
  });
});

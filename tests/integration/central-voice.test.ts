import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { CoreError } from '../../central/store/types.js';
import { VoiceCommand, parsePayload } from '../../protocol/messages.js';
import { verifyObject } from '../../protocol/signing.js';
import { scopeOf, startCore, T, until, userOf, type CoreFixture } from './central-fixture.js';

describe('central voice commands', () => {
  let f: CoreFixture;
  beforeAll(async () => { f = await startCore(); });
  afterAll(async () => { await f?.close(); });
  const user = (id: string) => userOf(f.central, id);
  const scope = (id: string) => scopeOf(f.central, id);

  it('signs, publishes QoS 1 to the site, and the agent can verify with the public key file', async () => {
    const site = await f.connect('site-a');
    const got: Buffer[] = [];
    site.on('message', (_t, p) => got.push(p));
    await site.subscribeAsync(T.voiceCommand('site-a'), { qos: 1 });
    const rec = await f.central.voice.send(await user('u-insp'), { siteId: 'site-a', type: 'preset', presetId: 'hat-mask' }, { ip: '127.0.0.1' });
    expect(rec).toMatchObject({ siteId: 'site-a', type: 'preset', text: '请佩戴好帽子和口罩', issuedBy: 'u-insp', state: 'sent' });
    await until(() => got.length, 3000, 'command at the site');
    const parsed = parsePayload(VoiceCommand, got[0]!);
    expect(parsed.ok).toBe(true);
    const cmd = (parsed as { ok: true; value: VoiceCommand }).value;
    expect(cmd.id).toBe(rec.id);
    expect(cmd.nonce.length).toBeGreaterThanOrEqual(16);
    const pub = readFileSync(path.join(f.dir, 'voice-signing.pub.pem'), 'utf8');
    expect(verifyObject(cmd, pub)).toBe(true);
    expect(verifyObject({ ...cmd, siteId: 'site-b' }, pub)).toBe(false);
    expect(verifyObject({ ...cmd, content: { type: 'text', text: '随便说' } }, pub)).toBe(false);
    const audit = await f.central.store.auditList(await scope('u-admin'));
    expect(audit.find((a) => a.action === 'voice.send' && a.target === rec.id)).toMatchObject({ userId: 'u-insp', ip: '127.0.0.1' });
  });

  it('authorises: the site manager yes; vice-principal forbidden; another district not found; bad input invalid', async () => {
    await expect(f.central.voice.send(await user('u-mgr'), { siteId: 'site-a', type: 'text', text: '请注意卫生' })).resolves.toMatchObject({ state: 'sent' });
    await expect(f.central.voice.send(await user('u-vp'), { siteId: 'site-a', type: 'text', text: 'x' })).rejects.toMatchObject({ code: 'forbidden' });
    await expect(f.central.voice.send(await user('u-insp2'), { siteId: 'site-a', type: 'text', text: 'x' })).rejects.toMatchObject({ code: 'not_found' });
    await expect(f.central.voice.send(await user('u-mgr'), { siteId: 'site-b', type: 'text', text: 'x' })).rejects.toMatchObject({ code: 'not_found' });
    const e = await f.central.voice.send(await user('u-admin'), { siteId: 'site-a', type: 'preset', presetId: 'nope' }).catch((x) => x);
    expect(e).toBeInstanceOf(CoreError);
    expect(e.field).toBe('presetId');
    await expect(f.central.voice.send(await user('u-admin'), { siteId: 'site-a', cameraId: 'cam-9', type: 'text', text: 'x' })).rejects.toMatchObject({ code: 'invalid', field: 'cameraId' });
  });

  it('voice/status from the site updates the record and emits bus "voice"; other sites cannot touch it', async () => {
    const admin = await user('u-admin');
    await f.central.store.org.update(admin, 'users', 'u-admin', { ...admin, name: '管理员' }); // the fixture's name is the id
    const rec = await f.central.voice.send(await user('u-admin'), { siteId: 'site-a', type: 'text', text: '请勿在后厨吸烟' });
    const seen: string[] = [];
    f.central.bus.on('voice', (v) => seen.push(`${v.id}:${v.state}`));
    const siteB = await f.connect('site-b');
    await siteB.publishAsync(T.voiceStatus('site-b'), JSON.stringify({ v: 1, commandId: rec.id, siteId: 'site-b', state: 'played', at: Date.now(), error: null }), { qos: 1 });
    const siteA = await f.connect('site-a');
    await siteA.publishAsync(T.voiceStatus('site-a'), JSON.stringify({ v: 1, commandId: rec.id, siteId: 'site-a', state: 'played', at: Date.now(), error: null }), { qos: 1 });
    await until(() => seen.includes(`${rec.id}:played`), 3000, 'voice status');
    expect(seen).toEqual([`${rec.id}:played`]);
    const list = await f.central.store.voiceCommands(await scope('u-mgr'), 'site-a');
    expect(list.find((v) => v.id === rec.id)).toMatchObject({ state: 'played', issuedBy: 'u-admin', issuedByName: '管理员' });
  });

  it('the first final state from the site stands: a later "rejected" (replayed / redelivered copy) is audited, not applied', async () => {
    const rec = await f.central.voice.send(await user('u-admin'), { siteId: 'site-a', type: 'text', text: '请洗手' });
    const seen: string[] = [];
    f.central.bus.on('voice', (v) => { if (v.id === rec.id) seen.push(v.state); });
    const siteA = await f.connect('site-a');
    const status = (state: string, at: number, error: string | null) => JSON.stringify({ v: 1, commandId: rec.id, siteId: 'site-a', state, at, error });
    const playedAt = Date.now();
    await siteA.publishAsync(T.voiceStatus('site-a'), status('played', playedAt, null), { qos: 1 });
    await until(() => seen.includes('played'), 3000, 'played status');
    await siteA.publishAsync(T.voiceStatus('site-a'), status('played', playedAt, null), { qos: 1 }); // exact duplicate (QoS 1 redelivery)
    await siteA.publishAsync(T.voiceStatus('site-a'), status('rejected', playedAt + 50, 'nonce already used'), { qos: 1 });
    const audited = async () => (await f.central.store.auditList(await scope('u-admin'), { limit: 1000 })).filter((a) => a.target === rec.id && a.action === 'voice.status_ignored');
    await until(async () => (await audited()).length, 3000, 'the ignored status in the audit log');
    await new Promise((r) => setTimeout(r, 200));
    expect(seen).toEqual(['played']);
    const ignored = await audited();
    expect(ignored).toHaveLength(1);
    expect(ignored[0]).toMatchObject({ userId: 'site:site-a' });
    expect(ignored[0]!.detail).toMatch(/rejected.*nonce already used.*already "played"/);
    const list = await f.central.store.voiceCommands(await scope('u-admin'), 'site-a');
    expect(list.find((v) => v.id === rec.id)).toMatchObject({ state: 'played', stateAt: playedAt, error: null });
  });
});

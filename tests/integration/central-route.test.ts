import { afterEach, describe, expect, it } from 'vitest';
import type { MqttClient } from 'mqtt';
import { RecipientAlert, parsePayload } from '../../protocol/messages.js';
import { eventMsg, jpeg, sleep, startCore, T, until, userOf, type CoreFixture } from './central-fixture.js';

type Got = { user: string; alert: RecipientAlert };
async function listen(f: CoreFixture, users: string[]): Promise<{ got: Got[]; clients: MqttClient[] }> {
  const got: Got[] = [];
  const clients: MqttClient[] = [];
  for (const u of users) {
    const c = await f.connect(u); // logs in with the user's own MQTT password
    c.on('message', (_t, p) => {
      const r = parsePayload(RecipientAlert, p);
      if (r.ok) got.push({ user: u, alert: r.value });
    });
    const granted = await c.subscribeAsync(T.userAlert(`u-${u}`).replace(/alert$/, '#'), { qos: 1 });
    expect(granted[0]!.qos).toBe(1);
    clients.push(c);
  }
  return { got, clients };
}

describe('central routing and escalation', () => {
  let f: CoreFixture | undefined;
  afterEach(async () => { await f?.close(); f = undefined; });

  it('a tier-1 event reaches manager, vice-principal and inspector on their MQTT topics at once', async () => {
    f = await startCore();
    const { got } = await listen(f, ['mgr', 'vp', 'insp', 'insp2']);
    const site = await f.connect('site-a');
    const a = await jpeg('t1a'), c = await jpeg('t1c');
    await site.publishAsync(T.event('site-a'), JSON.stringify(eventMsg('ev-t1', 'site-a', { annotated: a, clean: c }, { severity: 1, kind: 'smoking' })), { qos: 1 });
    await until(() => got.length >= 3, 5000, 'three alerts');
    await sleep(200);
    expect(got.map((g) => g.user).sort()).toEqual(['insp', 'mgr', 'vp']); // insp2 is another district
    const m = got.find((g) => g.user === 'mgr')!.alert;
    expect(m).toMatchObject({ eventId: 'ev-t1', siteId: 'site-a', siteName: '一中食堂', kind: 'smoking', severity: 1, role: 'canteen_manager', level: 0 });
    expect(m.title).toContain('抽烟');
    expect(m.textEn).toMatch(/^Smoking[^—]* at 一中食堂 \(.*\), tier 1\.$/); // one sentence, said once
    expect(m.text).toContain('时间：');
    expect(m.text).not.toMatch(/[[\]#>]|\]\(/); // plain text: no Markdown on a plain channel
    expect(m.snapshotUrl).toBe(`http://central.test:8080/api/snapshots/${eventMsg('x', 'site-a', { annotated: a, clean: c }).snapshots.annotated.sha256}`);
    const deliveries = await f.central.internals.store.deliveries('ev-t1');
    await until(async () => (await f!.central.internals.store.deliveries('ev-t1')).filter((d) => d.channel === 'mqtt' && d.status === 'sent').length === 3, 5000, 'mqtt deliveries sent');
    expect(deliveries.filter((d) => d.channel === 'dashboard')).toHaveLength(3);
  });

  it('a tier-2 event escalates manager → vice-principal → inspector when nobody acknowledges, and an ack stops it', async () => {
    f = await startCore((c) => {
      c.routing = { tier2: { mode: 'escalate', viceAfterMin: 0.01, inspectorAfterMin: 0.01, rectifyWithinHours: 1, webhook: 'never' }, checkIntervalSec: 0.1 };
    });
    const alerts: { level: number; users: string[] }[] = [];
    f.central.bus.on('alert', (n) => alerts.push({ level: n.level, users: n.recipients.map((r) => r.userId) }));
    const { got } = await listen(f, ['mgr', 'vp', 'insp']);
    const site = await f.connect('site-a');
    const a = await jpeg('t2a'), c = await jpeg('t2c');
    await site.publishAsync(T.event('site-a'), JSON.stringify(eventMsg('ev-t2', 'site-a', { annotated: a, clean: c }, { severity: 2 })), { qos: 1 });
    await until(() => got.length >= 3, 8000, 'escalation to inspectors');
    expect(got.map((g) => `${g.user}@${g.alert.level}`)).toEqual(['mgr@0', 'vp@1', 'insp@2']);
    expect(alerts.map((x) => x.level)).toEqual([0, 1, 2]);
    const ev = (await f.central.internals.store.eventRow('ev-t2'))!;
    expect(ev.escalation_level).toBe(2);
    expect(ev.next_escalation_at).toBeNull();

    // second event: acknowledged by the manager before the vice-principal's turn
    const before = got.length;
    f.central.config.routing.tier2.viceAfterMin = 0.02; // 1.2 s
    await site.publishAsync(T.event('site-a'), JSON.stringify(eventMsg('ev-t2b', 'site-a', { annotated: a, clean: c }, { severity: 2 })), { qos: 1 });
    await until(() => got.length > before, 5000, 'manager alert');
    const acked = await f.central.store.acknowledge(await userOf(f.central, 'u-mgr'), 'ev-t2b', '已处理');
    expect(acked.status).toBe('acknowledged');
    await sleep(2500);
    expect(got.slice(before).map((g) => g.user)).toEqual(['mgr']);
    expect((await f.central.internals.store.eventRow('ev-t2b'))!.escalation_level).toBe(0);
  });

  it('the escalation schedule survives a restart (persisted in the store)', async () => {
    f = await startCore((c) => {
      c.routing = { tier2: { mode: 'escalate', viceAfterMin: 0.03, inspectorAfterMin: 60, rectifyWithinHours: 1, webhook: 'never' }, checkIntervalSec: 0.1 };
    }, { keepDir: true });
    const dir = f.dir;
    const site = await f.connect('site-a');
    const a = await jpeg('t3a'), c = await jpeg('t3c');
    await site.publishAsync(T.event('site-a'), JSON.stringify(eventMsg('ev-r', 'site-a', { annotated: a, clean: c }, { severity: 2 })), { qos: 1 });
    await until(() => f!.central.internals.store.eventRow('ev-r'), 5000, 'event');
    await f.close();
    f = await startCore((c) => {
      c.routing = { tier2: { mode: 'escalate', viceAfterMin: 0.03, inspectorAfterMin: 60, rectifyWithinHours: 1, webhook: 'never' }, checkIntervalSec: 0.1 };
    }, { dir });
    await until(async () => (await f!.central.internals.store.eventRow('ev-r'))!.escalation_level === 1, 8000, 'escalation after restart');
    const d = await f.central.internals.store.deliveries('ev-r');
    expect(d.filter((x) => x.level === 1 && x.recipientId === 'u-vp').length).toBeGreaterThan(0);
  });
});

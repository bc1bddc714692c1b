/**
 * The three-level network (市-县-乡): a city above the districts, township offices between a district
 * and its schools. Real central (embedded broker, SQLite), recipients as real MQTT clients.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { MqttClient } from 'mqtt';
import { parseCentralConfig } from '../../central/config/load.js';
import { RecipientAlert, parsePayload } from '../../protocol/messages.js';
import { eventMsg, hashes, jpeg, orgConfig, scopeOf, sleep, startCore, T, until, type CoreFixture } from './central-fixture.js';

type Org = Awaited<ReturnType<typeof orgConfig>> & Record<string, unknown>;

/** The fixture's org plus a city over both districts, a township office over school 1, and an inspector at each level. */
function threeLevels(org: Org, mqttPasswordHash: string, passwordHash: string): void {
  const u = (id: string, extra: Record<string, unknown>) => ({ id, username: id.replace('u-', ''), name: id, role: 'inspector', passwordHash, mqttPasswordHash, ...extra });
  Object.assign(org, {
    cities: [{ id: 'city-1', name: '某市' }],
    townships: [{ id: 't1', name: '东华门所', districtId: 'd1' }],
    districts: org.districts.map((d) => ({ ...d, cityId: 'city-1' })),
    schools: org.schools.map((s) => (s.id === 'sch1' ? { ...s, townshipId: 't1' } : s)),
    users: [...org.users, u('u-town', { townshipId: 't1' }), u('u-city', { cityId: 'city-1' })],
  });
}

async function listen(f: CoreFixture, users: string[]): Promise<{ got: { user: string; level: number }[]; clients: MqttClient[] }> {
  const got: { user: string; level: number }[] = [];
  const clients: MqttClient[] = [];
  for (const user of users) {
    const c = await f.connect(user);
    c.on('message', (_t, p) => {
      const r = parsePayload(RecipientAlert, p);
      if (r.ok) got.push({ user, level: r.value.level });
    });
    await c.subscribeAsync(T.userAlert(`u-${user}`), { qos: 1 });
    clients.push(c);
  }
  return { got, clients };
}

describe('the three-level network', () => {
  let f: CoreFixture | undefined;
  afterEach(async () => { await f?.close(); f = undefined; });

  it('refuses a config that breaks the hierarchy, naming the field', async () => {
    const h = await hashes();
    const bad = async (edit: (o: Org) => void) => {
      const org = (await orgConfig(h)) as Org;
      threeLevels(org, h.mosq, h.scrypt);
      edit(org);
      try {
        parseCentralConfig({ dataDir: '/tmp/x', broker: { mode: 'embedded', host: '127.0.0.1', port: 0 }, org });
        return 'accepted';
      } catch (err) {
        return (err as Error).message;
      }
    };
    expect(await bad(() => {})).toBe('accepted');
    expect(await bad((o) => { (o.schools as { townshipId?: string }[])[1]!.townshipId = 't1'; })).toMatch(/org\.schools\[1\]\.townshipId: township "t1" is in district "d1", the school in "d2"/);
    expect(await bad((o) => { (o.users as Record<string, unknown>[]).at(-1)!.districtId = 'd1'; })).toMatch(/an inspector belongs to one office: give one of townshipId, districtId, cityId \(got districtId and cityId\)/);
    expect(await bad((o) => { (o.districts as { cityId?: string }[])[0]!.cityId = 'nowhere'; })).toMatch(/org\.districts\[0\]\.cityId: no city "nowhere"/);
    expect(await bad((o) => { (o.townships as { districtId: string }[])[0]!.districtId = 'd9'; })).toMatch(/org\.townships\[0\]\.districtId: no district "d9"/);
  });

  it('each inspector sees everything below their office and nothing beside it', async () => {
    const h = await hashes();
    f = await startCore((c) => threeLevels(c.org as Org, h.mosq, h.scrypt));
    const store = f.central.internals.store;
    const sites = async (id: string) => [...(await scopeOf(f!.central, id)).siteIds].sort();
    expect(await sites('u-town')).toEqual(['site-a', 'site-b']); // school 1, under township t1
    expect(await sites('u-insp')).toEqual(['site-a', 'site-b']); // district d1
    expect(await sites('u-insp2')).toEqual(['site-c']); // district d2
    expect(await sites('u-city')).toEqual(['site-a', 'site-b', 'site-c']); // the whole city
    const offices = async (siteId: string) => (await store.siteContext(siteId))!.offices.map((o) => `${o.level}:${o.id}`);
    expect(await offices('site-a')).toEqual(['township:t1', 'district:d1', 'city:city-1']);
    expect(await offices('site-c')).toEqual(['district:d2', 'city:city-1']);
  });

  it('statistics roll up by office within the user scope', async () => {
    const h = await hashes();
    f = await startCore((c) => threeLevels(c.org as Org, h.mosq, h.scrypt));
    const site = await f.connect('site-a'), siteC = await f.connect('site-c');
    const a = await jpeg('s1a'), c = await jpeg('s1c');
    for (const id of ['s1', 's2']) await site.publishAsync(T.event('site-a'), JSON.stringify(eventMsg(id, 'site-a', { annotated: a, clean: c })), { qos: 1 });
    await siteC.publishAsync(T.event('site-c'), JSON.stringify(eventMsg('s3', 'site-c', { annotated: a, clean: c })), { qos: 1 });
    const store = f.central.internals.store;
    await until(async () => (await store.eventRow('s3')) && (await store.eventRow('s2')), 5000, 'events');
    const roll = async (id: string) => (await store.stats(await scopeOf(f!.central, id))).byOffice.map((o) => `${o.level}:${o.id}=${o.sites}/${o.events}`);
    expect(await roll('u-city')).toEqual(['city:city-1=3/3', 'district:d1=2/2', 'district:d2=1/1', 'township:t1=2/2']);
    expect(await roll('u-town')).toEqual(['city:city-1=2/2', 'district:d1=2/2', 'township:t1=2/2']); // only their own sites count
    expect(await roll('u-insp2')).toEqual(['city:city-1=1/1', 'district:d2=1/1']);
  });

  it('tier 1 reaches the township office and the district at once (not the city); escalation climbs one office at a time', async () => {
    const h = await hashes();
    f = await startCore((c) => {
      threeLevels(c.org as Org, h.mosq, h.scrypt);
      c.routing = { tier2: { mode: 'escalate', viceAfterMin: 0.01, inspectorAfterMin: 0.01, rectifyWithinHours: 1, webhook: 'never' }, checkIntervalSec: 0.1 };
    });
    const { got } = await listen(f, ['mgr', 'vp', 'town', 'insp', 'city', 'insp2']);
    const site = await f.connect('site-a');
    const a = await jpeg('n1a'), c = await jpeg('n1c');
    await site.publishAsync(T.event('site-a'), JSON.stringify(eventMsg('ev-n1', 'site-a', { annotated: a, clean: c }, { severity: 1, kind: 'smoking' })), { qos: 1 });
    await until(() => got.length >= 4, 5000, 'tier-1 alerts');
    await sleep(300);
    expect(got.map((g) => g.user).sort()).toEqual(['insp', 'mgr', 'town', 'vp']);

    got.length = 0;
    await site.publishAsync(T.event('site-a'), JSON.stringify(eventMsg('ev-n2', 'site-a', { annotated: a, clean: c }, { severity: 2 })), { qos: 1 });
    await until(() => got.length >= 5, 10_000, 'escalation to the city');
    await sleep(300);
    expect(got.map((g) => `${g.user}@${g.level}`)).toEqual(['mgr@0', 'vp@1', 'town@2', 'insp@3', 'city@4']);
    const row = (await f.central.internals.store.eventRow('ev-n2'))!;
    expect(row.escalation_level).toBe(4);
    expect(row.next_escalation_at).toBeNull();
    // a site without a township: district, then city
    got.length = 0;
    const siteC = await f.connect('site-c');
    await siteC.publishAsync(T.event('site-c'), JSON.stringify(eventMsg('ev-n3', 'site-c', { annotated: a, clean: c }, { severity: 2 })), { qos: 1 });
    await until(() => got.length >= 2, 10_000, 'site C escalation');
    await sleep(500);
    expect(got.map((g) => `${g.user}@${g.level}`)).toEqual(['insp2@2', 'city@3']);
  });
});

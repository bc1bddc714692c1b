import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import sharp from 'sharp';
import path from 'node:path';
import { SCHEMA_VERSION } from '../../central/store/migrations.js';
import { openStore } from '../../central/store/open.js';
import type { Store } from '../../central/store/store.js';
import type { Role, StoreConfig } from '../../central/config/schema.js';
import { parseCentralConfig } from '../../central/config/load.js';
import { CoreError } from '../../central/store/types.js';
import { eventMsg, hashes, jpeg, orgConfig } from '../integration/central-fixture.js';
import { testStore } from '../helpers/postgres.js';

/** A store with the fixture's org, on the database of this project run (SQLite in `dir`, or PostgreSQL). */
async function orgStore(dir: string, config?: StoreConfig): Promise<Store> {
  const store = await openStore({ dataDir: dir, store: config });
  await store.syncOrg(parseCentralConfig({ dataDir: dir, broker: { mode: 'embedded' }, org: await orgConfig(await hashes()) }).org);
  return store;
}

describe('central store (real database)', () => {
  let dir: string;
  let config: StoreConfig | undefined;
  let store: Store;
  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'bk-store-'));
    config = await testStore();
    store = await orgStore(dir, config);
    const a = await jpeg('a'), c = await jpeg('c');
    const t = Date.now();
    await store.insertEvent(eventMsg('e1', 'site-a', { annotated: a, clean: c }, { raisedAt: t - 10_000 }), { receivedAt: t, deadlineAt: t - 1, nextEscalationAt: null });
    await store.insertEvent(eventMsg('e2', 'site-c', { annotated: a, clean: c }, { kind: 'rodent', raisedAt: t - 5000 }), { receivedAt: t, deadlineAt: t + 3_600_000, nextEscalationAt: null });
    await store.insertEvent(eventMsg('e3', 'site-a', { annotated: a, clean: c }, { kind: 'smoking', raisedAt: t - 1000 }), { receivedAt: t, deadlineAt: t + 3_600_000, nextEscalationAt: t + 1000 });
  });
  afterAll(async () => { await store?.close(); rmSync(dir, { recursive: true, force: true }); });
  const u = async (id: string) => (await store.user(id))!;
  const scope = async (id: string) => store.scopeOf(await u(id));

  it('stats count by the sites\' day, not the server\'s: 01:30 in Shanghai is the next day in UTC terms', async () => {
    const d2 = mkdtempSync(path.join(tmpdir(), 'bk-store-day-'));
    const s2 = await orgStore(d2, await testStore());
    try {
      const t = Date.UTC(2026, 0, 5, 17, 30); // 2026-01-06 01:30 in Asia/Shanghai
      await s2.insertEvent(eventMsg('e-day', 'site-b', { annotated: await jpeg('day-a'), clean: await jpeg('day-c') }, { kind: 'rodent', raisedAt: t }), { receivedAt: t, deadlineAt: t + 1, nextEscalationAt: null });
      const range = { from: t - 3_600_000, to: t + 3_600_000 };
      const admin = await s2.scopeOf((await s2.user('u-admin'))!);
      expect((await s2.stats(admin, range, 'Asia/Shanghai')).perDay).toEqual([{ day: '2026-01-06', siteId: 'site-b', kind: 'rodent', count: 1 }]);
      expect((await s2.stats(admin, range, 'UTC')).perDay).toEqual([{ day: '2026-01-05', siteId: 'site-b', kind: 'rodent', count: 1 }]);
    } finally {
      await s2.close();
      rmSync(d2, { recursive: true, force: true });
    }
  });

  it('migrates to the current schema version and reopens without redoing it', async () => {
    const version = 'SELECT version FROM schema_version';
    expect(await store.sql.value(version)).toBe(SCHEMA_VERSION);
    const again = await openStore({ dataDir: dir, store: config });
    try {
      expect(await again.sql.values(version)).toEqual([SCHEMA_VERSION]);
      expect(await again.user('u-admin')).toMatchObject({ id: 'u-admin' }); // the org synced before is there
    } finally {
      await again.close();
    }
    if (store.sql.dialect.name === 'sqlite') expect(await store.sql.value('PRAGMA journal_mode')).toBe('wal');
  });

  it('scopes: manager → own site, vice-principal → school, inspector → district, admin → all', async () => {
    const ids = async (id: string, f?: Parameters<Store['events']>[1]) => (await store.events(await scope(id), f)).map((e) => e.id).sort();
    expect(await ids('u-mgr')).toEqual(['e1', 'e3']);
    expect(await ids('u-vp')).toEqual(['e1', 'e3']);
    expect(await ids('u-insp')).toEqual(['e1', 'e3']);
    expect(await ids('u-insp2')).toEqual(['e2']);
    expect(await ids('u-admin')).toEqual(['e1', 'e2', 'e3']);
    expect(await store.event(await scope('u-insp2'), 'e1')).toBeNull();
    expect((await store.sites(await scope('u-vp'))).map((s) => s.id)).toEqual(['site-a', 'site-b']);
    expect(await ids('u-admin', { kind: 'smoking' })).toEqual(['e3']);
    expect(await ids('u-admin', { limit: 1 })).toEqual(['e3']); // newest first
  });

  it('open → acknowledged → rectified (note + photo) → reopened → rectified → closed, with history and audit', async () => {
    // the fixture's names equal the ids: give two users real ones so names and ids can be told apart
    const rename = (name: string, id: string) => store.sql.run('UPDATE users SET name = ? WHERE id = ?', [name, id]);
    await rename('王经理', 'u-mgr');
    await rename('陈监管', 'u-insp');
    const [mgr, insp] = [await u('u-mgr'), await u('u-insp')];
    await expect(store.acknowledge(await u('u-insp2'), 'e3')).rejects.toThrow(CoreError); // out of scope → not_found
    const acked = await store.acknowledge(mgr, 'e3', '收到', { ip: '10.0.0.1' });
    expect(acked).toMatchObject({ status: 'acknowledged', ackBy: 'u-mgr', ackByName: '王经理' });
    expect((await store.eventRow('e3'))!.next_escalation_at).toBeNull(); // escalation stopped
    await expect(store.acknowledge(mgr, 'e3')).rejects.toThrow(/only open or reopened/);
    await expect(store.rectify(mgr, 'e3', { note: '  ' })).rejects.toThrow(/needs a note/);
    await expect(store.rectify(mgr, 'e3', { note: 'x', photo: { bytes: Buffer.from('nope'), mime: 'image/jpeg' } })).rejects.toThrow(/neither a JPEG nor a PNG/);
    const photo = await jpeg('photo');
    expect((await store.rectify(mgr, 'e3', { note: '已处理，员工已戴口罩', photo: { bytes: photo, mime: 'image/jpeg' } })).status).toBe('rectified');
    await expect(store.review(mgr, 'e3', 'close')).rejects.toThrow(/only inspectors and admins/);
    expect((await store.review(insp, 'e3', 'reopen', '照片不清楚')).status).toBe('reopened');
    await store.rectify(mgr, 'e3', { note: '重新拍照' });
    expect((await store.review(insp, 'e3', 'close')).status).toBe('closed');
    const d = (await store.event(await scope('u-admin'), 'e3'))!;
    expect(d.history.map((h) => h.action)).toEqual(['raised', 'acknowledged', 'rectified', 'reopened', 'rectified', 'closed']);
    // names for the dashboard: users by name, system actors (agent) without one
    expect(d.history.map((h) => [h.by, h.byName])).toEqual([
      ['agent', null], ['u-mgr', '王经理'], ['u-mgr', '王经理'], ['u-insp', '陈监管'], ['u-mgr', '王经理'], ['u-insp', '陈监管'],
    ]);
    expect(d.rectifications).toHaveLength(2);
    const ph = (await store.rectificationPhoto(await scope('u-vp'), d.rectifications[0]!.id))!;
    expect(existsSync(ph.path)).toBe(true);
    expect(await store.rectificationPhoto(await scope('u-insp2'), d.rectifications[0]!.id)).toBeNull();
    const audit = await store.auditList(await scope('u-insp'));
    expect(audit.map((a) => a.action)).toContain('event.ack');
    expect((await store.auditList(await scope('u-insp2'))).map((a) => a.target)).not.toContain('e3');
    expect(await store.auditList(await scope('u-mgr'))).toEqual([]);
  });

  it('overdue list and stats (per day per site per kind; time to ack)', async () => {
    const over = await store.overdue(await scope('u-admin'));
    expect(over.map((e) => e.id)).toEqual(['e1']);
    expect(over[0]!.overdue).toBe(true);
    const s = await store.stats(await scope('u-admin'), {});
    expect(s.perDay.reduce((n, r) => n + r.count, 0)).toBe(3);
    expect(s.perDay.find((r) => r.kind === 'rodent')).toMatchObject({ siteId: 'site-c', count: 1 });
    expect(s.timeToAck.count).toBe(1);
    expect(s.timeToAck.medianSec).toBeGreaterThan(0);
    expect((await store.stats(await scope('u-insp2'), {})).timeToAck.count).toBe(0);
  });

  it('org CRUD: admin only, validated, audit-logged, refuses dangling references', async () => {
    const admin = await u('u-admin');
    await expect(store.org.create(await u('u-insp'), 'schools', { id: 'sch9', name: 'x', districtId: 'd1' })).rejects.toThrow(/only admins/);
    expect(await store.org.create(admin, 'schools', { id: 'sch9', name: '九中', districtId: 'd1' })).toEqual({ id: 'sch9', name: '九中', districtId: 'd1' });
    await expect(store.org.create(admin, 'schools', { id: 'sch8', name: 'x', districtId: 'nope' })).rejects.toThrow(/no district "nope"/);
    expect(await store.org.create(admin, 'cameras', { siteId: 'site-a', id: 'cam-2', name: '凉菜间' })).toMatchObject({ siteId: 'site-a', id: 'cam-2' });
    expect((await store.org.update(admin, 'users', 'u-mgr', { id: 'u-mgr', username: 'mgr', name: '张经理', role: 'canteen_manager', siteIds: ['site-a', 'site-b'] })).siteIds).toEqual(['site-a', 'site-b']);
    expect((await store.userByUsername('mgr'))!.passwordHash).toMatch(/^scrypt\$/); // kept when not given
    await expect(store.org.remove(admin, 'districts', 'd1')).rejects.toThrow(/still has schools/);
    await store.org.remove(admin, 'schools', 'sch9');
    expect(await store.org.get('schools', 'sch9')).toBeNull();
    expect((await store.auditList(await store.scopeOf(admin))).map((a) => a.action)).toEqual(expect.arrayContaining(['org.schools.create', 'org.cameras.create', 'org.users.update', 'org.schools.delete']));
  });
  it('rectify decodes the photo: truncated, garbage between markers, wrong type or too many pixels → invalid photoBase64, event unchanged', async () => {
    const t = Date.now();
    const a = await jpeg('pa'), c = await jpeg('pc');
    await store.insertEvent(eventMsg('e-photo', 'site-a', { annotated: a, clean: c }, { raisedAt: t - 1000 }), { receivedAt: t, deadlineAt: t + 3_600_000, nextEscalationAt: null });
    const noise = Buffer.from(Array.from({ length: 320 * 240 * 3 }, (_, i) => (i * 7919) % 251));
    const real = await sharp(noise, { raw: { width: 320, height: 240, channels: 3 } }).jpeg().toBuffer();
    const realPng = await sharp(noise, { raw: { width: 320, height: 240, channels: 3 } }).png().toBuffer();
    const bomb = await sharp({ create: { width: 8000, height: 8000, channels: 3, background: '#fff' } }).jpeg().toBuffer(); // 64 MP, small file
    const bad: [string, Buffer, 'image/jpeg' | 'image/png', RegExp][] = [
      ['truncated JPEG', real.subarray(0, real.length >> 1), 'image/jpeg', /not a decodable JPEG/],
      ['JPEG markers around garbage', Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xe0]), Buffer.alloc(500, 0x41), Buffer.from([0xff, 0xd9])]), 'image/jpeg', /not a decodable JPEG/],
      ['truncated PNG', realPng.subarray(0, realPng.length >> 1), 'image/png', /not a decodable PNG/],
      ['PNG signature then zeros', Buffer.concat([Buffer.from('89504e470d0a1a0a', 'hex'), Buffer.alloc(100)]), 'image/png', /not a decodable PNG/],
      ['64 MP decompression bomb', bomb, 'image/jpeg', /megapixels/],
    ];
    for (const [name, bytes, mime, msg] of bad) {
      const e = await store.rectify(await u('u-mgr'), 'e-photo', { note: 'x', photo: { bytes, mime } }).then(() => null, (x: unknown) => x);
      expect(e, name).toBeInstanceOf(CoreError);
      expect({ name, code: (e as CoreError).code, field: (e as CoreError).field }).toEqual({ name, code: 'invalid', field: 'photoBase64' });
      expect((e as Error).message, name).toMatch(msg);
    }
    expect((await store.eventRow('e-photo'))!.status).toBe('open');
    expect((await store.rectify(await u('u-mgr'), 'e-photo', { note: 'ok', photo: { bytes: realPng, mime: 'image/png' } })).status).toBe('rectified');
  });

  it('two acknowledgements of one event at the same moment: one is applied, the other is a conflict', async () => {
    const t = Date.now();
    await store.insertEvent(eventMsg('e-race', 'site-a', { annotated: await jpeg('race-a'), clean: await jpeg('race-c') }), { receivedAt: t, deadlineAt: t + 3_600_000, nextEscalationAt: t + 60_000 });
    const results = await Promise.allSettled([store.acknowledge(await u('u-mgr'), 'e-race', 'a'), store.acknowledge(await u('u-vp'), 'e-race', 'b')]);
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    const rejected = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    expect(rejected).toHaveLength(1);
    expect((rejected[0]!.reason as CoreError).code).toBe('conflict');
    const d = (await store.event(await store.scopeOf(await u('u-admin')), 'e-race'))!;
    expect(d.history.filter((h) => h.action === 'acknowledged')).toHaveLength(1);
  });
  it('a site or camera status is applied once: the same retained message again (another instance, a restart) changes nothing', async () => {
    const ts = Date.now();
    const cam = { v: 1, siteId: 'site-a', cameraId: 'cam-status', name: '操作间', state: 'online', lastFrameAt: ts, fps: 2, error: null, ts } as const;
    expect(await store.applyCameraStatus(cam)).toMatchObject({ siteId: 'site-a', id: 'cam-status' });
    expect(await store.applyCameraStatus(cam)).toBeNull();
    expect(await store.applyCameraStatus({ ...cam, ts: ts - 1000, state: 'offline', error: 'old' })).toBeNull(); // out of order
    expect(await store.applyCameraStatus({ ...cam, ts: ts + 1, fps: 1 })).toMatchObject({ fps: 1 });
    const site = { v: 1, siteId: 'site-a', online: true, ts } as const;
    expect(await store.applySiteStatus(site)).toMatchObject({ id: 'site-a', online: true });
    expect(await store.applySiteStatus(site)).toBeNull();
    expect(await store.applySiteStatus({ ...site, online: false, ts: ts + 1 })).toMatchObject({ online: false });
  });
});

describe('central store: a site\'s recipients follow the users\' site lists (user_sites)', () => {
  const both = ['canteen_manager', 'vice_principal'] as const;
  const ids = async (s: Store, siteId: string, roles: readonly Role[] = both) => (await s.recipients(siteId, roles)).map((x) => x.id);
  const dirs: string[] = [];
  afterAll(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });
  const fresh = async () => {
    const d = mkdtempSync(path.join(tmpdir(), 'bk-store-us-'));
    dirs.push(d);
    const config = await testStore();
    return { d, config, store: await orgStore(d, config) };
  };

  it('the org API and syncOrg change who is told about a site, in the same write', async () => {
    const { d, store } = await fresh();
    try {
      expect(await ids(store, 'site-a')).toEqual(['u-mgr', 'u-vp']);
      expect(await ids(store, 'site-a', ['canteen_manager'])).toEqual(['u-mgr']);
      expect(await ids(store, 'site-a', ['vice_principal'])).toEqual(['u-vp']);
      expect(await ids(store, 'site-a', [])).toEqual([]);
      expect(await ids(store, 'site-b')).toEqual(['u-vp']);
      const admin = (await store.user('u-admin'))!;
      const mgr = { id: 'u-mgr', username: 'mgr', name: 'u-mgr', role: 'canteen_manager' as const };
      // moved from site-a to site-b: stops hearing about a, starts hearing about b
      await store.org.update(admin, 'users', 'u-mgr', { ...mgr, siteIds: ['site-b'] });
      expect(await ids(store, 'site-a')).toEqual(['u-vp']);
      expect(await ids(store, 'site-b')).toEqual(['u-mgr', 'u-vp']);
      await store.org.create(admin, 'users', { id: 'u-mgr2', username: 'mgr2', name: 'u-mgr2', role: 'canteen_manager', siteIds: ['site-c', 'site-a'], passwordHash: (await store.userByUsername('mgr'))!.passwordHash });
      expect(await ids(store, 'site-c')).toEqual(['u-mgr2']);
      expect(await ids(store, 'site-a')).toEqual(['u-mgr2', 'u-vp']);
      await store.org.update(admin, 'users', 'u-mgr2', { id: 'u-mgr2', username: 'mgr2', name: 'u-mgr2', role: 'canteen_manager', siteIds: ['site-c'], disabled: true });
      expect(await ids(store, 'site-c')).toEqual([]); // disabled users are told nothing
      await store.org.remove(admin, 'users', 'u-mgr2');
      expect(await store.sql.value('SELECT COUNT(*) FROM user_sites WHERE user_id = ?', ['u-mgr2'])).toBe(0);
      // a failed update changes neither the user nor the table
      await expect(store.org.update(admin, 'users', 'u-mgr', { ...mgr, siteIds: ['site-c', 'no-such-site'] })).rejects.toThrow(/existing siteIds/);
      expect(await ids(store, 'site-b')).toEqual(['u-mgr', 'u-vp']);
      // the config wins at the next start: syncOrg writes the user's sites again
      const base = await orgConfig(await hashes());
      const org = { ...base, users: base.users.map((x) => (x.id === 'u-mgr' ? { ...x, siteIds: ['site-a', 'site-c'] } : x)) };
      await store.syncOrg(parseCentralConfig({ dataDir: d, broker: { mode: 'embedded' }, org }).org);
      expect(await ids(store, 'site-a')).toEqual(['u-mgr', 'u-vp']);
      expect(await ids(store, 'site-b')).toEqual(['u-vp']);
      expect(await ids(store, 'site-c')).toEqual(['u-mgr']);
    } finally {
      await store.close();
    }
  });

  it('a database migrated from version 6 gets user_sites from its users\' site_ids, before any syncOrg', async () => {
    const { d, config, store } = await fresh();
    // back to version 6, with a site list written the way version 6 wrote it
    await store.sql.exec('DROP TABLE user_sites; DROP INDEX users_school; UPDATE schema_version SET version = 6');
    await store.sql.run('UPDATE users SET site_ids = ? WHERE id = ?', [JSON.stringify(['site-b', 'site-c']), 'u-mgr']);
    await store.close();
    const again = await openStore({ dataDir: d, store: config });
    try {
      expect(await again.sql.value('SELECT version FROM schema_version')).toBe(SCHEMA_VERSION);
      expect(await ids(again, 'site-a')).toEqual(['u-vp']);
      expect(await ids(again, 'site-b')).toEqual(['u-mgr', 'u-vp']);
      expect(await ids(again, 'site-c')).toEqual(['u-mgr']);
    } finally {
      await again.close();
    }
  });
});

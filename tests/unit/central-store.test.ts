import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import sharp from 'sharp';
import path from 'node:path';
import { openDb, SCHEMA_VERSION } from '../../central/store/db.js';
import { Store } from '../../central/store/store.js';
import { parseCentralConfig } from '../../central/config/load.js';
import { CoreError } from '../../central/store/types.js';
import { eventMsg, hashes, jpeg, orgConfig } from '../integration/central-fixture.js';

describe('central store (real SQLite)', () => {
  let dir: string;
  let store: Store;
  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'bk-store-'));
    const cfg = parseCentralConfig({ dataDir: dir, broker: { mode: 'embedded' }, org: await orgConfig(await hashes()) });
    store = new Store(openDb(dir), dir);
    store.syncOrg(cfg.org);
    const a = await jpeg('a'), c = await jpeg('c');
    const t = Date.now();
    store.insertEvent(eventMsg('e1', 'site-a', { annotated: a, clean: c }, { raisedAt: t - 10_000 }), { receivedAt: t, deadlineAt: t - 1, nextEscalationAt: null });
    store.insertEvent(eventMsg('e2', 'site-c', { annotated: a, clean: c }, { kind: 'rodent', raisedAt: t - 5000 }), { receivedAt: t, deadlineAt: t + 3_600_000, nextEscalationAt: null });
    store.insertEvent(eventMsg('e3', 'site-a', { annotated: a, clean: c }, { kind: 'smoking', raisedAt: t - 1000 }), { receivedAt: t, deadlineAt: t + 3_600_000, nextEscalationAt: t + 1000 });
  });
  afterAll(() => { store.db.close(); rmSync(dir, { recursive: true, force: true }); });
  const u = (id: string) => store.user(id)!;

  it('stats count by the sites\' day, not the server\'s: 01:30 in Shanghai is the next day in UTC terms', async () => {
    const d2 = mkdtempSync(path.join(tmpdir(), 'bk-store-day-'));
    const s2 = new Store(openDb(d2), d2);
    try {
      s2.syncOrg(parseCentralConfig({ dataDir: d2, broker: { mode: 'embedded' }, org: await orgConfig(await hashes()) }).org);
      const t = Date.UTC(2026, 0, 5, 17, 30); // 2026-01-06 01:30 in Asia/Shanghai
      s2.insertEvent(eventMsg('e-day', 'site-b', { annotated: await jpeg('day-a'), clean: await jpeg('day-c') }, { kind: 'rodent', raisedAt: t }), { receivedAt: t, deadlineAt: t + 1, nextEscalationAt: null });
      const range = { from: t - 3_600_000, to: t + 3_600_000 };
      const admin = s2.scopeOf(s2.user('u-admin')!);
      expect(s2.stats(admin, range, 'Asia/Shanghai').perDay).toEqual([{ day: '2026-01-06', siteId: 'site-b', kind: 'rodent', count: 1 }]);
      expect(s2.stats(admin, range, 'UTC').perDay).toEqual([{ day: '2026-01-05', siteId: 'site-b', kind: 'rodent', count: 1 }]);
    } finally {
      s2.db.close();
      rmSync(d2, { recursive: true, force: true });
    }
  });

  it('migrates to the current schema version and reopens without redoing it', () => {
    expect(store.db.prepare('SELECT version FROM schema_version').pluck().get()).toBe(SCHEMA_VERSION);
    const again = openDb(dir);
    expect(again.prepare('SELECT version FROM schema_version').pluck().get()).toBe(SCHEMA_VERSION);
    again.close();
    expect(store.db.pragma('journal_mode', { simple: true })).toBe('wal');
  });

  it('scopes: manager → own site, vice-principal → school, inspector → district, admin → all', () => {
    const ids = (id: string) => store.events(store.scopeOf(u(id))).map((e) => e.id).sort();
    expect(ids('u-mgr')).toEqual(['e1', 'e3']);
    expect(ids('u-vp')).toEqual(['e1', 'e3']);
    expect(ids('u-insp')).toEqual(['e1', 'e3']);
    expect(ids('u-insp2')).toEqual(['e2']);
    expect(ids('u-admin')).toEqual(['e1', 'e2', 'e3']);
    expect(store.event(store.scopeOf(u('u-insp2')), 'e1')).toBeNull();
    expect(store.sites(store.scopeOf(u('u-vp'))).map((s) => s.id)).toEqual(['site-a', 'site-b']);
    expect(store.events(store.scopeOf(u('u-admin')), { kind: 'smoking' }).map((e) => e.id)).toEqual(['e3']);
    expect(store.events(store.scopeOf(u('u-admin')), { limit: 1 }).map((e) => e.id)).toEqual(['e3']); // newest first
  });

  it('open → acknowledged → rectified (note + photo) → reopened → rectified → closed, with history and audit', async () => {
    // the fixture's names equal the ids: give two users real ones so names and ids can be told apart
    const rename = store.db.prepare('UPDATE users SET name = ? WHERE id = ?');
    rename.run('王经理', 'u-mgr');
    rename.run('陈监管', 'u-insp');
    expect(() => store.acknowledge(u('u-insp2'), 'e3')).toThrow(CoreError); // out of scope → not_found
    const acked = store.acknowledge(u('u-mgr'), 'e3', '收到', { ip: '10.0.0.1' });
    expect(acked).toMatchObject({ status: 'acknowledged', ackBy: 'u-mgr', ackByName: '王经理' });
    expect(store.eventRow('e3')!.next_escalation_at).toBeNull(); // escalation stopped
    expect(() => store.acknowledge(u('u-mgr'), 'e3')).toThrow(/only open or reopened/);
    await expect(store.rectify(u('u-mgr'), 'e3', { note: '  ' })).rejects.toThrow(/needs a note/);
    await expect(store.rectify(u('u-mgr'), 'e3', { note: 'x', photo: { bytes: Buffer.from('nope'), mime: 'image/jpeg' } })).rejects.toThrow(/neither a JPEG nor a PNG/);
    const photo = await jpeg('photo');
    expect((await store.rectify(u('u-mgr'), 'e3', { note: '已处理，员工已戴口罩', photo: { bytes: photo, mime: 'image/jpeg' } })).status).toBe('rectified');
    expect(() => store.review(u('u-mgr'), 'e3', 'close')).toThrow(/only inspectors and admins/);
    expect(store.review(u('u-insp'), 'e3', 'reopen', '照片不清楚').status).toBe('reopened');
    await store.rectify(u('u-mgr'), 'e3', { note: '重新拍照' });
    expect(store.review(u('u-insp'), 'e3', 'close').status).toBe('closed');
    const d = store.event(store.scopeOf(u('u-admin')), 'e3')!;
    expect(d.history.map((h) => h.action)).toEqual(['raised', 'acknowledged', 'rectified', 'reopened', 'rectified', 'closed']);
    // names for the dashboard: users by name, system actors (agent) without one
    expect(d.history.map((h) => [h.by, h.byName])).toEqual([
      ['agent', null], ['u-mgr', '王经理'], ['u-mgr', '王经理'], ['u-insp', '陈监管'], ['u-mgr', '王经理'], ['u-insp', '陈监管'],
    ]);
    expect(d.rectifications).toHaveLength(2);
    const ph = store.rectificationPhoto(store.scopeOf(u('u-vp')), d.rectifications[0]!.id)!;
    expect(existsSync(ph.path)).toBe(true);
    expect(store.rectificationPhoto(store.scopeOf(u('u-insp2')), d.rectifications[0]!.id)).toBeNull();
    const audit = store.auditList(store.scopeOf(u('u-insp')));
    expect(audit.map((a) => a.action)).toContain('event.ack');
    expect(store.auditList(store.scopeOf(u('u-insp2'))).map((a) => a.target)).not.toContain('e3');
    expect(store.auditList(store.scopeOf(u('u-mgr')))).toEqual([]);
  });

  it('overdue list and stats (per day per site per kind; time to ack)', () => {
    const over = store.overdue(store.scopeOf(u('u-admin')));
    expect(over.map((e) => e.id)).toEqual(['e1']);
    expect(over[0]!.overdue).toBe(true);
    const s = store.stats(store.scopeOf(u('u-admin')), {});
    expect(s.perDay.reduce((n, r) => n + r.count, 0)).toBe(3);
    expect(s.perDay.find((r) => r.kind === 'rodent')).toMatchObject({ siteId: 'site-c', count: 1 });
    expect(s.timeToAck.count).toBe(1);
    expect(s.timeToAck.medianSec).toBeGreaterThan(0);
    expect(store.stats(store.scopeOf(u('u-insp2')), {}).timeToAck.count).toBe(0);
  });

  it('org CRUD: admin only, validated, audit-logged, refuses dangling references', () => {
    const admin = u('u-admin');
    expect(() => store.org.create(u('u-insp'), 'schools', { id: 'sch9', name: 'x', districtId: 'd1' })).toThrow(/only admins/);
    expect(store.org.create(admin, 'schools', { id: 'sch9', name: '九中', districtId: 'd1' })).toEqual({ id: 'sch9', name: '九中', districtId: 'd1' });
    expect(() => store.org.create(admin, 'schools', { id: 'sch8', name: 'x', districtId: 'nope' })).toThrow(/no district "nope"/);
    expect(store.org.create(admin, 'cameras', { siteId: 'site-a', id: 'cam-2', name: '凉菜间' })).toMatchObject({ siteId: 'site-a', id: 'cam-2' });
    expect(store.org.update(admin, 'users', 'u-mgr', { id: 'u-mgr', username: 'mgr', name: '张经理', role: 'canteen_manager', siteIds: ['site-a', 'site-b'] }).siteIds).toEqual(['site-a', 'site-b']);
    expect(store.userByUsername('mgr')!.passwordHash).toMatch(/^scrypt\$/); // kept when not given
    expect(() => store.org.remove(admin, 'districts', 'd1')).toThrow(/still has schools/);
    store.org.remove(admin, 'schools', 'sch9');
    expect(store.org.get('schools', 'sch9')).toBeNull();
    expect(store.auditList(store.scopeOf(admin)).map((a) => a.action)).toEqual(expect.arrayContaining(['org.schools.create', 'org.cameras.create', 'org.users.update', 'org.schools.delete']));
  });
  it('rectify decodes the photo: truncated, garbage between markers, wrong type or too many pixels → invalid photoBase64, event unchanged', async () => {
    const t = Date.now();
    const a = await jpeg('pa'), c = await jpeg('pc');
    store.insertEvent(eventMsg('e-photo', 'site-a', { annotated: a, clean: c }, { raisedAt: t - 1000 }), { receivedAt: t, deadlineAt: t + 3_600_000, nextEscalationAt: null });
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
      const e = await store.rectify(u('u-mgr'), 'e-photo', { note: 'x', photo: { bytes, mime } }).then(() => null, (x: unknown) => x);
      expect(e, name).toBeInstanceOf(CoreError);
      expect({ name, code: (e as CoreError).code, field: (e as CoreError).field }).toEqual({ name, code: 'invalid', field: 'photoBase64' });
      expect((e as Error).message, name).toMatch(msg);
    }
    expect(store.eventRow('e-photo')!.status).toBe('open');
    expect((await store.rectify(u('u-mgr'), 'e-photo', { note: 'ok', photo: { bytes: realPng, mime: 'image/png' } })).status).toBe('rectified');
  });
});

/**
 * Central HTTP API against a real central (SQLite store, embedded broker, ingest over MQTT):
 * authentication, CSRF, role scoping, limits, validation, static files, SSE, audit.
 */
import { spawnSync } from 'node:child_process';
import ExcelJS from 'exceljs';
import http from 'node:http';
import https from 'node:https';
import path from 'node:path';
import { readFileSync } from 'node:fs';
import { startHttp } from '../../central/http/index.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiClient, PASSWORD, USERS, makeJpeg, startFixture, type Fixture } from '../helpers/central.js';
import type { EventDetail } from '../../central/core.js';

let fx: Fixture;
let evA: EventDetail;
let evB: EventDetail;

/** GET with the path sent byte for byte (fetch and URL would normalise `..`). */
function rawGet(base: string, rawPath: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string; headers: http.IncomingHttpHeaders }> {
  const u = new URL(base);
  return new Promise((resolve, reject) => {
    const req = http.request({ host: u.hostname, port: u.port, path: rawPath, method: 'GET', headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
    });
    req.on('error', reject);
    req.end();
  });
}

async function as(user: keyof typeof USERS): Promise<ApiClient> {
  const c = new ApiClient(fx.url);
  const res = await c.login(USERS[user].username);
  expect(res.status).toBe(200);
  return c;
}

beforeAll(async () => {
  fx = await startFixture({ http: { sseHeartbeatMs: 300 } });
  evA = await fx.publishEvent('site-a');
  evB = await fx.publishEvent('site-b', { kind: 'smoking', severity: 1 });
});
afterAll(async () => {
  await fx?.close();
});

describe('login and sessions', () => {
  it('answers 401 to a wrong password and to an unknown user, in the asked language', async () => {
    const c = new ApiClient(fx.url, 'zh-CN,zh;q=0.9');
    const r1 = await c.login(USERS.mgrA.username, 'wrong-password');
    expect(r1.status).toBe(401);
    const b1 = (await r1.json()) as { error: string; message: string };
    expect(b1.error).toBe('bad_credentials');
    expect(b1.message).toContain('用户名或密码错误');
    const r2 = await new ApiClient(fx.url).login('nobody', 'x');
    expect(r2.status).toBe(401);
    expect(((await r2.json()) as { message: string }).message).toMatch(/wrong username or password/i);
  });

  it('sets an HttpOnly SameSite=Strict session cookie with a 32-byte random id, and a CSRF token', async () => {
    const c = new ApiClient(fx.url);
    const res = await c.login(USERS.mgrA.username);
    expect(res.status).toBe(200);
    const cookie = res.headers.get('set-cookie')!;
    expect(cookie).toMatch(/^bk_session=[A-Za-z0-9_-]{43};/);
    expect(cookie).toContain('HttpOnly');
    expect(cookie).toContain('SameSite=Strict');
    expect(cookie).not.toContain('Secure'); // plain HTTP in this test
    const body = (await res.json()) as { user: { id: string; role: string }; csrfToken: string };
    expect(body.user).toMatchObject({ id: USERS.mgrA.id, role: 'canteen_manager' });
    expect(body.csrfToken.length).toBeGreaterThanOrEqual(32);
    expect(JSON.stringify(body)).not.toMatch(/passwordHash|scrypt/);
    const me = await c.json('GET', '/api/me');
    expect(me.status).toBe(200);
    expect(me.body.csrfToken).toBe(body.csrfToken);
  });

  it('refuses the API without a session, and after logout', async () => {
    expect((await fetch(`${fx.url}/api/events`)).status).toBe(401);
    expect((await fetch(`${fx.url}/api/sites`, { headers: { Cookie: 'bk_session=forged' } })).status).toBe(401);
    const c = await as('vpA');
    expect((await c.json('GET', '/api/sites')).status).toBe(200);
    expect((await c.json('POST', '/api/logout')).status).toBe(200);
    expect((await c.json('GET', '/api/sites')).status).toBe(401);
  });

  it('GET /api/events.csv: every alert of the filter in the user\'s scope, Excel-ready, formulas defused', async () => {
    const mine = await fx.publishEvent('site-a', { kind: 'smoking', severity: 1, cameraName: '=HYPERLINK("http://evil")' });
    const other = await fx.publishEvent('site-b', { kind: 'smoking', severity: 1 });
    const c = new ApiClient(fx.url, 'zh');
    expect((await c.login(USERS.mgrA.username)).status).toBe(200);
    const res = await c.req('GET', '/api/events.csv?kind=smoking');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/csv; charset=utf-8');
    expect(res.headers.get('content-disposition')).toMatch(/^attachment; filename="alerts-\d{8}\.csv"$/);
    const bytes = Buffer.from(await res.arrayBuffer());
    expect([...bytes.subarray(0, 3)]).toEqual([0xef, 0xbb, 0xbf]); // BOM: Excel reads UTF-8 Chinese
    const text = bytes.subarray(3).toString('utf8');
    const lines = text.trim().split('\r\n');
    expect(lines[0]).toBe('编号,食堂,摄像头,类型,级别,状态,发生时间,整改期限,逾期,确认人,确认时间');
    expect(text).toContain(mine.id);
    expect(text).not.toContain(other.id); // site B is not the manager's
    expect(lines.every((l, i) => i === 0 || l.includes(',smoking') === false)).toBe(true); // kinds in Chinese
    expect(text).toContain(`"'=HYPERLINK(""http://evil"")"`); // a cell that Excel would run as a formula
    expect(lines.slice(1).every((l) => l.includes('吸烟') || l.includes('抽烟'))).toBe(true);
    expect((await fetch(`${fx.url}/api/events.csv`)).status).toBe(401);

    // the same rows as XLSX: a workbook Excel opens, values only (the formula-like name stays text)
    const x = await c.req('GET', '/api/events.xlsx?kind=smoking');
    expect(x.status).toBe(200);
    expect(x.headers.get('content-type')).toBe('application/vnd.openxmlformats-officedocument.spreadsheetml.sheet');
    const wb = new ExcelJS.Workbook();
    await wb.xlsx.load(Buffer.from(await x.arrayBuffer()) as unknown as ArrayBuffer);
    const ws = wb.getWorksheet('告警明细')!;
    expect((ws.getRow(1).values as unknown[]).slice(1, 4)).toEqual(['编号', '食堂', '摄像头']);
    const cells = ws.getColumn(1).values.slice(2).map(String);
    expect(cells).toContain(mine.id);
    expect(cells).not.toContain(other.id);
    const cam = ws.getColumn(3).values.slice(2);
    expect(cam).toContain('=HYPERLINK("http://evil")');
    ws.eachRow((row) => row.eachCell((cell) => expect(cell.type).not.toBe(ExcelJS.ValueType.Formula)));
  });

  it('GET /api/session: 200 {user: null} before login (the dashboard probe logs no error), the user and token after', async () => {
    const anon = await fetch(`${fx.url}/api/session`, { headers: { Cookie: 'bk_session=forged' } });
    expect(anon.status).toBe(200);
    expect(await anon.json()).toEqual({ user: null });
    const c = await as('mgrA');
    const s = await c.json('GET', '/api/session');
    expect(s.status).toBe(200);
    expect(s.body.user).toMatchObject({ id: USERS.mgrA.id });
    expect(s.body.csrfToken).toBe((await c.json('GET', '/api/me')).body.csrfToken);
  });

  it('sends security headers on API and static answers', async () => {
    for (const p of ['/', '/api/me', '/app.js']) {
      const res = await fetch(fx.url + p);
      const csp = res.headers.get('content-security-policy') ?? '';
      expect(csp).toContain("default-src 'self'");
      expect(csp).toContain("frame-ancestors 'none'");
      expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    }
  });
});

describe('session expiry and HTTPS', () => {
  it('expires an idle session', async () => {
    const h2 = await startHttp(fx.central, { port: 0, session: { idleMs: 300 } });
    try {
      const c = new ApiClient(h2.url);
      expect((await c.login(USERS.vpA.username)).status).toBe(200);
      expect((await c.json('GET', '/api/me')).status).toBe(200);
      await new Promise((r) => setTimeout(r, 450));
      expect((await c.json('GET', '/api/me')).status).toBe(401);
    } finally {
      await h2.close();
    }
  });

  it('keeps a user logged in, and a password guesser locked out, across a restart of central and on a second instance', async () => {
    const f2 = await startFixture();
    try {
      const c = new ApiClient(f2.url);
      expect((await c.login(USERS.mgrA.username)).status).toBe(200);
      const guesser = new ApiClient(f2.url);
      const tries: number[] = [];
      for (let i = 0; i < 5; i++) tries.push((await guesser.login(USERS.vpA.username, 'wrong-password')).status);
      expect(tries).toEqual([401, 401, 401, 401, 429]); // the fifth failure locks
      expect((await guesser.login(USERS.vpA.username)).status).toBe(429); // even with the right password
      // a second HTTP instance on the same store: same session, same CSRF token, same lock
      const other = await startHttp(f2.central, { port: 0 });
      try {
        const me = await fetch(`${other.url}/api/me`, { headers: { cookie: c.cookie } });
        expect(me.status).toBe(200);
        expect(((await me.json()) as { csrfToken: string }).csrfToken).toBe(c.csrf);
      } finally {
        await other.close();
      }
      await f2.restart();
      const after = await fetch(`${f2.url}/api/me`, { headers: { cookie: c.cookie } });
      expect(after.status).toBe(200);
      expect(((await after.json()) as { user: { id: string } }).user.id).toBe(USERS.mgrA.id);
      expect((await new ApiClient(f2.url).login(USERS.vpA.username)).status).toBe(429);
      // logging out ends it for every instance
      const logout = await fetch(`${f2.url}/api/logout`, { method: 'POST', headers: { cookie: c.cookie, 'X-CSRF-Token': c.csrf, 'Content-Type': 'application/json' }, body: '{}' });
      expect(logout.status).toBe(200);
      expect((await fetch(`${f2.url}/api/me`, { headers: { cookie: c.cookie } })).status).toBe(401);
    } finally {
      await f2.close();
    }
  });

  it('serves HTTPS with a Secure cookie and HSTS', async () => {
    const key = path.join(fx.dir, 'key.pem');
    const cert = path.join(fx.dir, 'cert.pem');
    const gen = spawnSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1',
      '-subj', '/CN=127.0.0.1', '-keyout', key, '-out', cert]);
    expect(gen.status, gen.stderr.toString()).toBe(0);
    const h2 = await startHttp(fx.central, { port: 0, tls: { cert, key } });
    try {
      expect(h2.url).toMatch(/^https:/);
      const u = new URL(h2.url);
      const body = JSON.stringify({ username: USERS.vpA.username, password: PASSWORD });
      const res = await new Promise<http.IncomingMessage>((resolve, reject) => {
        const req = https.request({ host: u.hostname, port: u.port, path: '/api/login', method: 'POST', ca: readFileSync(cert), servername: undefined, checkServerIdentity: () => undefined,
          headers: { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) } }, resolve);
        req.on('error', reject);
        req.end(body);
      });
      res.resume();
      expect(res.statusCode).toBe(200);
      expect(String(res.headers['set-cookie'])).toMatch(/HttpOnly; SameSite=Strict; Max-Age=\d+; Secure/);
      expect(res.headers['strict-transport-security']).toContain('max-age=');
    } finally {
      await h2.close();
    }
  });
});

describe('CSRF', () => {
  it('refuses a state change without the token, with a wrong one, or from a foreign origin', async () => {
    const c = await as('mgrA');
    const ev = await fx.publishEvent('site-a');
    const path = `/api/events/${ev.id}/ack`;
    const noToken = await c.req('POST', path, {}, { 'X-CSRF-Token': '' });
    expect(noToken.status).toBe(403);
    expect(((await noToken.json()) as { error: string }).error).toBe('csrf');
    expect((await c.req('POST', path, {}, { 'X-CSRF-Token': 'x'.repeat(43) })).status).toBe(403);
    expect((await c.req('POST', path, {}, { Origin: 'https://evil.example' })).status).toBe(403);
    // nothing changed
    expect((await c.json('GET', `/api/events/${ev.id}`)).body.status).toBe('open');
    const ok = await c.json('POST', path, { note: '已提醒' });
    expect(ok.status).toBe(200);
    expect(ok.body.status).toBe('acknowledged');
  });
});

describe('role scoping', () => {
  it("a manager of site A sees only A's events and gets 404 for B's", async () => {
    const a = await as('mgrA');
    const list = await a.json('GET', '/api/events');
    expect(list.status).toBe(200);
    const sites = new Set((list.body.events as { siteId: string }[]).map((e) => e.siteId));
    expect([...sites]).toEqual(['site-a']);
    expect((await a.json('GET', '/api/events?siteId=site-b')).status).toBe(404);
    expect((await a.json('GET', `/api/events/${evB.id}`)).status).toBe(404);
    expect((await a.json('POST', `/api/events/${evB.id}/ack`, {})).status).toBe(404);
    const sitesList = await a.json('GET', '/api/sites');
    expect((sitesList.body as { id: string }[]).map((s) => s.id)).toEqual(['site-a']);
    // the other manager sees B's event, and not A's
    const b = await as('mgrB');
    expect((await b.json('GET', `/api/events/${evB.id}`)).status).toBe(200);
    expect((await b.json('GET', `/api/events/${evA.id}`)).status).toBe(404);
  });

  it("serves a snapshot only to users whose scope holds an event referencing it", async () => {
    const a = await as('mgrA');
    const own = await a.req('GET', evA.snapshotUrl);
    expect(own.status).toBe(200);
    expect(own.headers.get('content-type')).toBe('image/jpeg');
    const bytes = Buffer.from(await own.arrayBuffer());
    expect(bytes[0]).toBe(0xff);
    expect(bytes[1]).toBe(0xd8);
    expect((await a.req('GET', evB.snapshotUrl)).status).toBe(404);
    expect((await a.req('GET', evB.cleanSnapshotUrl)).status).toBe(404);
    expect((await a.req('GET', `/api/snapshots/${'0'.repeat(64)}`)).status).toBe(404);
    expect((await a.req('GET', '/api/snapshots/..%2f..%2fetc%2fpasswd')).status).toBe(404);
    const insp = await as('inspector'); // district d-east holds both sites
    expect((await insp.req('GET', evB.snapshotUrl)).status).toBe(200);
    const insp2 = await as('inspector2'); // d-west holds neither
    expect((await insp2.req('GET', evA.snapshotUrl)).status).toBe(404);
  });

  it('voice: managers only to their own site, vice-principals not at all, inspectors in their district', async () => {
    const a = await as('mgrA');
    expect((await a.json('POST', '/api/voice', { siteId: 'site-b', type: 'preset', presetId: 'hat-mask' })).status).toBe(404);
    const sent = await a.json('POST', '/api/voice', { siteId: 'site-a', type: 'preset', presetId: 'hat-mask' });
    expect(sent.status).toBe(200);
    expect(sent.body.state).toBe('sent');
    const vp = await as('vpA');
    expect((await vp.json('POST', '/api/voice', { siteId: 'site-a', type: 'text', text: '请戴口罩' })).status).toBe(403);
    const insp = await as('inspector');
    const t = await insp.json('POST', '/api/voice', { siteId: 'site-b', cameraId: 'cam-b1', type: 'text', text: '请勿吸烟' });
    expect(t.status).toBe(200);
    const insp2 = await as('inspector2');
    expect((await insp2.json('POST', '/api/voice', { siteId: 'site-a', type: 'text', text: 'x' })).status).toBe(404);
    const listA = await a.json('GET', '/api/voice');
    expect((listA.body as { siteId: string }[]).every((v) => v.siteId === 'site-a')).toBe(true);
    expect((listA.body as { id: string }[]).some((v) => v.id === sent.body.id)).toBe(true);
    expect((await a.json('GET', '/api/voice?siteId=site-b')).status).toBe(404);
  });

  it('live view of another site is 404; a camera without a live URL is 409', async () => {
    const a = await as('mgrA');
    expect((await a.json('POST', '/api/live/site-b/cam-b1')).status).toBe(404);
    expect((await a.json('POST', '/api/live/site-a/no-such-cam')).status).toBe(404);
    expect((await a.json('POST', '/api/live/site-a/cam-cold')).status).toBe(409);
  });

  it('review is for inspectors; the whole loop ack → rectify (photo) → close works', async () => {
    const ev = await fx.publishEvent('site-a', { kind: 'rodent', severity: 1 });
    const a = await as('mgrA');
    const photo = await makeJpeg(64, 48);
    const rect = await a.json('POST', `/api/events/${ev.id}/rectify`, { note: '已封堵鼠洞', photoBase64: photo.toString('base64'), photoMime: 'image/jpeg' });
    expect(rect.status).toBe(200);
    expect(rect.body.status).toBe('rectified');
    expect((await a.json('POST', `/api/events/${ev.id}/review`, { decision: 'close' })).status).toBe(403);
    const detail = await a.json('GET', `/api/events/${ev.id}`);
    const photoUrl = detail.body.rectifications[0].photoUrl as string;
    expect((await a.req('GET', photoUrl)).status).toBe(200);
    expect((await (await as('mgrB')).req('GET', photoUrl)).status).toBe(404);
    const insp = await as('inspector');
    const closed = await insp.json('POST', `/api/events/${ev.id}/review`, { decision: 'close', note: '复核通过' });
    expect(closed.status).toBe(200);
    expect(closed.body.status).toBe('closed');
    // a wrong photo type is refused naming the field
    const ev2 = await fx.publishEvent('site-a');
    const bad = await a.json('POST', `/api/events/${ev2.id}/rectify`, { note: 'x', photoBase64: Buffer.from('not an image at all').toString('base64'), photoMime: 'image/png' });
    expect(bad.status).toBe(400);
    expect(bad.body.field).toMatch(/^photo/);
  });

  it('org edits and the audit log are for admins (inspectors: audit of their district)', async () => {
    const a = await as('mgrA');
    expect((await a.json('GET', '/api/org/users')).status).toBe(403);
    expect((await a.json('GET', '/api/audit')).status).toBe(403);
    const admin = await as('admin');
    const users = await admin.json('GET', '/api/org/users');
    expect(users.status).toBe(200);
    expect(JSON.stringify(users.body)).not.toMatch(/scrypt\$/);
    const cam = await admin.json('POST', '/api/org/cameras', { siteId: 'site-c', id: 'cam-c2', name: '面点间' });
    expect(cam.status).toBe(201);
    expect((await admin.json('GET', '/api/org/cameras/site-c/cam-c2')).status).toBe(200);
    const audit = await admin.json('GET', '/api/audit?limit=500');
    expect(audit.status).toBe(200);
    const actions = new Set((audit.body as { action: string }[]).map((x) => x.action));
    for (const a2 of ['login', 'login_failed']) expect(actions.has(a2), a2).toBe(true);
    expect([...actions].some((x) => /ack/.test(x))).toBe(true);
    expect([...actions].some((x) => /voice/.test(x))).toBe(true);
    expect([...actions].some((x) => /org/.test(x))).toBe(true);
    const logins = (audit.body as { action: string; ip: string | null }[]).filter((x) => x.action === 'login');
    expect(logins[0]!.ip).toMatch(/127\.0\.0\.1/);
  });

  it('admins build the city → district → township → school chain; refusals name the field; delete waits for children', async () => {
    const admin = await as('admin');
    const post = (kind: string, body: object) => admin.json('POST', `/api/org/${kind}`, body);
    expect((await post('cities', { id: 'city-t', name: '测试市' })).status).toBe(201);
    expect((await post('districts', { id: 'dist-t', name: '测试区', cityId: 'city-t' })).body).toMatchObject({ cityId: 'city-t' });
    expect((await post('townships', { id: 'town-t', name: '测试市场监管所', districtId: 'dist-t' })).status).toBe(201);
    expect((await post('schools', { id: 'school-t', name: '测试小学', districtId: 'dist-t', townshipId: 'town-t' })).body).toMatchObject({ townshipId: 'town-t' });
    expect((await post('sites', { id: 'site-t', name: '测试食堂', schoolId: 'school-t' })).status).toBe(201);
    expect((await post('users', { id: 'u-insp-t', username: 'insp_t', name: '所监管', role: 'inspector', townshipId: 'town-t', password: PASSWORD })).status).toBe(201);
    expect((await admin.json('GET', '/api/org/cities/city-t')).body).toMatchObject({ id: 'city-t', name: '测试市', webhooks: [] });
    expect((await admin.json('GET', '/api/org/townships')).body).toContainEqual(expect.objectContaining({ id: 'town-t', districtId: 'dist-t' }));
    const renamed = await admin.json('PUT', '/api/org/townships/town-t', { id: 'town-t', name: '测试所', districtId: 'dist-t' });
    expect(renamed.body).toMatchObject({ name: '测试所' });

    // the township's inspector sees that school's site only
    const insp = new ApiClient(fx.url);
    expect((await insp.login('insp_t')).status).toBe(200);
    expect(((await insp.json('GET', '/api/sites')).body as { id: string }[]).map((x) => x.id)).toEqual(['site-t']);

    // unknown parents, named
    for (const [kind, body, field] of [
      ['districts', { id: 'dist-x', name: 'x', cityId: 'no-city' }, 'cityId'],
      ['townships', { id: 'town-x', name: 'x', districtId: 'no-district' }, 'districtId'],
      ['schools', { id: 'school-x', name: 'x', districtId: 'dist-t', townshipId: 'no-town' }, 'townshipId'],
      ['users', { id: 'u-x', username: 'u_x', name: 'x', role: 'inspector', cityId: 'no-city', password: PASSWORD }, 'cityId'],
    ] as const) {
      const r = await post(kind, body);
      expect(r.status, kind).toBe(400);
      expect(r.body.field, kind).toBe(field);
    }
    // delete refused while children remain, saying which
    const del = (kind: string, id: string) => admin.json('DELETE', `/api/org/${kind}/${id}`);
    const busyCity = await del('cities', 'city-t');
    expect(busyCity.status).toBe(409);
    expect(busyCity.body.message).toMatch(/districts/);
    expect((await del('townships', 'town-t')).body.message).toMatch(/schools/);
    expect((await del('sites', 'site-t')).status).toBe(200);
    expect((await del('schools', 'school-t')).status).toBe(200);
    const busyTown = await del('townships', 'town-t');
    expect(busyTown.status).toBe(409);
    expect(busyTown.body.message).toMatch(/inspectors/);
    expect((await del('users', 'u-insp-t')).status).toBe(200);
    expect((await del('townships', 'town-t')).status).toBe(200);
    expect((await del('districts', 'dist-t')).status).toBe(200);
    expect((await del('cities', 'city-t')).status).toBe(200);
    expect((await admin.json('GET', '/api/org/cities/city-t')).status).toBe(404);

    const actions = ((await admin.json('GET', '/api/audit?limit=1000')).body as { action: string }[]).map((x) => x.action);
    for (const a2 of ['org.cities.create', 'org.cities.delete', 'org.townships.create', 'org.townships.update', 'org.townships.delete']) expect(actions, a2).toContain(a2);

    // non-admins may neither read nor change them
    const inspector = await as('inspector');
    expect((await inspector.json('GET', '/api/org/cities')).status).toBe(403);
    expect((await inspector.json('POST', '/api/org/townships', { id: 'town-y', name: 'y', districtId: 'dist-t' })).status).toBe(403);
    expect((await (await as('mgrA')).json('DELETE', '/api/org/cities/city-t')).status).toBe(403);
  });
});

describe('bodies, queries and limits', () => {
  it('413 for a body over 64 KB, and for a rectification over the photo limit', async () => {
    const a = await as('mgrA');
    const big = await a.req('POST', `/api/events/${evA.id}/ack`, { note: 'x'.repeat(70 * 1024) });
    expect(big.status).toBe(413);
    const huge = await a.req('POST', `/api/events/${evA.id}/rectify`, { note: 'x', photoBase64: 'A'.repeat(8 * 1024 * 1024), photoMime: 'image/jpeg' });
    expect(huge.status).toBe(413);
    // the server is still fine afterwards
    expect((await a.json('GET', '/api/me')).status).toBe(200);
  });

  it('400 for bad JSON, naming the field for schema errors', async () => {
    const a = await as('inspector');
    const bad = await a.req('POST', `/api/events/${evA.id}/review`, '{"decision": ');
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: string }).error).toBe('bad_json');
    const r1 = await a.json('POST', `/api/events/${evA.id}/review`, { decision: 'maybe' });
    expect(r1.status).toBe(400);
    expect(r1.body).toMatchObject({ error: 'invalid', field: 'decision' });
    const r2 = await a.json('POST', '/api/voice', { siteId: 'site-a', type: 'text' });
    expect(r2.status).toBe(400);
    expect(r2.body.field).toBe('text');
    const r3 = await a.json('POST', '/api/voice', { siteId: 'site-a', type: 'preset', presetId: 'hat-mask', extra: 1 });
    expect(r3.status).toBe(400);
    const r4 = await a.json('GET', '/api/events?limit=9999');
    expect(r4.status).toBe(400);
    expect(r4.body.field).toBe('limit');
    const r5 = await a.json('GET', '/api/events?kind=cooking');
    expect(r5.body.field).toBe('kind');
    const r6 = await a.req('POST', '/api/login', 'username=a&password=b', { 'Content-Type': 'application/x-www-form-urlencoded' });
    expect(r6.status).toBe(415);
  });
});

describe('static files', () => {
  it('serves the dashboard and the protocol texts', async () => {
    const index = await fetch(`${fx.url}/`);
    expect(index.status).toBe(200);
    expect(await index.text()).toContain('<script type="module" src="/app.js">');
    const proto = await (await fetch(`${fx.url}/api/protocol.js`)).text();
    expect(proto).toContain('未戴厨师帽');
  });

  it('refuses path traversal, plain, encoded and double-encoded', async () => {
    const attempts = [
      '/../package.json', '/../../etc/passwd', '/..%2fpackage.json', '/..%2F..%2Fpackage.json', '/%2e%2e/%2e%2e/package.json',
      '/%2e%2e%2f%2e%2e%2fpackage.json', '/..%252f..%252fpackage.json', '/%252e%252e%252fpackage.json', '/..%5c..%5cpackage.json',
      '/public/..%2f..%2fserver.ts', '/..%2fserver.ts', '/%2e%2e/server.ts', '/index.html%00.js', '/./../server.ts',
    ];
    for (const p of attempts) {
      const r = await rawGet(fx.url, p);
      expect([400, 404], p).toContain(r.status);
      expect(r.body, p).not.toContain('bright-kitchen');
      expect(r.body, p).not.toContain('startHttp');
      expect(r.body, p).not.toContain('root:');
    }
    expect((await rawGet(fx.url, '/style.css')).status).toBe(200);
  });
});

describe('server-sent events', () => {
  it("streams in-scope alerts and heartbeats, and nothing of other sites", async () => {
    const a = await as('mgrA');
    const res = await a.req('GET', '/api/stream');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('text/event-stream');
    const reader = res.body!.getReader();
    let text = '';
    const readUntil = async (pred: () => boolean, ms: number) => {
      const deadline = Date.now() + ms;
      while (!pred() && Date.now() < deadline) {
        const r = await Promise.race([reader.read(), new Promise<null>((r2) => setTimeout(() => r2(null), deadline - Date.now()))]);
        if (!r || r.done) break;
        text += Buffer.from(r.value).toString('utf8');
      }
    };
    await readUntil(() => text.includes(': connected'), 2000);
    const evOther = await fx.publishEvent('site-b');
    const evOwn = await fx.publishEvent('site-a', { kind: 'no_hat' });
    await readUntil(() => text.includes(evOwn.id) && text.includes(': ping'), 5000);
    expect(text).toContain(evOwn.id);
    expect(text).toMatch(/event: (alert|event)\ndata: /);
    expect(text).toContain(': ping');
    expect(text).not.toContain(evOther.id);
    await reader.cancel();
  });
});

describe('rate limiting', () => {
  it('locks a username+address after 5 failures: 429 even with the right password', async () => {
    const c = new ApiClient(fx.url);
    for (let i = 0; i < 4; i++) expect((await c.login(USERS.inspector2.username, `bad-${i}`)).status).toBe(401);
    const fifth = await c.login(USERS.inspector2.username, 'bad-5');
    expect(fifth.status).toBe(429);
    const right = await c.login(USERS.inspector2.username, PASSWORD);
    expect(right.status).toBe(429);
    expect(Number(right.headers.get('retry-after'))).toBeGreaterThan(800);
    // another user from the same address is not locked
    expect((await new ApiClient(fx.url).login(USERS.admin.username)).status).toBe(200);
  });
});

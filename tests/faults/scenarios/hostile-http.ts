/**
 * The HTTP API under hostile input and a cross-cutting scope sweep, on a real central + HTTP layer
 * (tests/helpers/central.ts fixture: three sites in two districts, one user per role; events arrive
 * over MQTT as from a site):
 *  - fuzzing (fast-check, fixed seed, bounded) of every endpoint of docs/central-api.md: bodies,
 *    queries, path parameters, content types; never a 5xx, every refusal a JSON error with a code
 *    and a message; afterwards the API still works;
 *  - a scope sweep: for each user and a site outside their scope, every endpoint that can name that
 *    site's alerts, snapshots, photos, voice or live view answers 404 (or 403 for role-only ones)
 *    and no listing leaks it; a positive control on the user's own site;
 *  - the audit log holds every remote action;
 *  - path traversal in snapshot, photo and static URLs; corrupt and oversized uploads.
 */
import { tmpdir } from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { ApiClient, USERS, startFixture, makeJpeg, type Fixture } from '../../helpers/central.js';
import { testMp4 } from '../../helpers/media.js';
import { row, sleep, type Row } from '../lib/harness.js';
import { PUBLIC_SLUG_A, SWEEP_PUBLIC, publicWindowSweep } from './public-window.js';

const SEED = 4242;

interface Endpoint {
  method: string;
  path: string;
  body?: 'json' | 'none';
}

/** docs/central-api.md, every row (login/logout/stream handled separately). */
const ENDPOINTS: Endpoint[] = [
  { method: 'GET', path: '/api/me' },
  { method: 'GET', path: '/api/session' },
  { method: 'GET', path: '/api/events.csv' },
  { method: 'GET', path: '/api/events.xlsx' },
  { method: 'GET', path: '/api/sites' },
  { method: 'GET', path: '/api/events' },
  { method: 'GET', path: '/api/events/:id' },
  { method: 'POST', path: '/api/events/:id/ack', body: 'json' },
  { method: 'POST', path: '/api/events/:id/rectify', body: 'json' },
  { method: 'POST', path: '/api/events/:id/review', body: 'json' },
  { method: 'GET', path: '/api/overdue' },
  { method: 'GET', path: '/api/snapshots/:sha' },
  { method: 'GET', path: '/api/events/:id/clip.mp4' },
  { method: 'GET', path: '/api/rectifications/:id/photo' },
  { method: 'GET', path: '/api/voice/presets' },
  { method: 'POST', path: '/api/voice', body: 'json' },
  { method: 'GET', path: '/api/voice' },
  { method: 'GET', path: '/api/stats' },
  { method: 'GET', path: '/api/audit' },
  ...['districts', 'schools', 'sites', 'cameras', 'users'].flatMap((k) => [
    { method: 'GET', path: `/api/org/${k}` },
    { method: 'POST', path: `/api/org/${k}`, body: 'json' as const },
    { method: 'GET', path: `/api/org/${k}/:id` },
    { method: 'PUT', path: `/api/org/${k}/:id`, body: 'json' as const },
    { method: 'DELETE', path: `/api/org/${k}/:id` },
  ]),
  { method: 'POST', path: '/api/live/:site/:cam' },
  { method: 'GET', path: '/api/public/:slug' },
  { method: 'GET', path: '/api/public/:slug/still.jpg' },
  { method: 'GET', path: '/api/public/:slug/images/:sha' },
];

const param = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.constantFrom('..', '../..', '%2e%2e', '..%2F..%2Fcentral.db', '%00', 'site-a', 'a'.repeat(300), '<script>', '1e309', '-1', '中文'),
);
const queryArb = fc.dictionary(fc.constantFrom('siteId', 'kind', 'status', 'from', 'to', 'limit', 'before', 'x', '__proto__'), fc.oneof(fc.string({ maxLength: 20 }), fc.integer().map(String), fc.constant('')), { maxKeys: 4 });
const bodyArb = fc.oneof(
  { arbitrary: fc.jsonValue({ maxDepth: 3 }).map((j) => JSON.stringify(j) ?? 'null'), weight: 3 },
  { arbitrary: fc.string({ maxLength: 200 }), weight: 1 },
  { arbitrary: fc.record({
    note: fc.oneof(fc.string({ maxLength: 30 }), fc.integer(), fc.constant(null)),
    decision: fc.oneof(fc.constantFrom('close', 'reopen', 'CLOSE'), fc.integer()),
    siteId: fc.oneof(fc.constantFrom('site-a', 'site-b', '../x'), fc.integer()),
    type: fc.constantFrom('text', 'preset', 'audio', 'shell'),
    text: fc.oneof(fc.string({ maxLength: 30 }), fc.string({ minLength: 501, maxLength: 600 })),
    photoBase64: fc.oneof(fc.base64String({ maxLength: 40 }), fc.string({ maxLength: 20 })),
    photoMime: fc.constantFrom('image/jpeg', 'image/png', 'text/html'),
    id: param, name: fc.string({ maxLength: 10 }), role: fc.constantFrom('admin', 'root'),
  }, { requiredKeys: [] }).map((o) => JSON.stringify(o)), weight: 4 },
);
const ctypeArb = fc.constantFrom('application/json', 'application/json', 'text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', '');

function fill(p: string, params: string[]): string {
  let i = 0;
  return p.replace(/:[a-z]+/g, () => encodeURIComponent(params[i++] ?? 'x'));
}

export async function hostileHttpScenario(o: { runsPerEndpoint?: number } = {}): Promise<Row[]> {
  const runs = o.runsPerEndpoint ?? 12;
  const rows: Row[] = [];
  let fx: Fixture | null = null;
  try {
    // Site A public, site B with a slug but not opted in (public-window.ts); no public rate limit in the way of the sweep.
    fx = await startFixture({ sitePublic: SWEEP_PUBLIC, threeLevels: true, http: { publicWindow: { maxPerIp: 100_000 } } });
    const f = fx;
    const evA = await f.publishEvent('site-a');
    const evB = await f.publishEvent('site-b');
    const evC = await f.publishEvent('site-c');
    // a clip on every event: the scope sweep asks for foreign ones
    const mp4 = testMp4(path.join(tmpdir(), `bk-hostile-${process.pid}.mp4`), 2);
    for (const ev of [evA, evB, evC]) await f.publishClip(ev.siteId, ev.id, mp4, 2000);

    // ── 1. fuzz every endpoint as admin (the widest scope: validation, not scoping, must stop it) ──
    const t0 = Date.now();
    const admin = new ApiClient(f.url);
    await admin.login(USERS.admin.username);
    let requests = 0, fiveXX = 0, resets = 0, badErrorBodies = 0;
    const codes: Record<number, number> = {};
    const samples5xx: string[] = [];
    for (const [i, ep] of ENDPOINTS.entries()) {
      const cases = fc.sample(fc.tuple(fc.array(param, { minLength: 3, maxLength: 3 }), queryArb, bodyArb, ctypeArb), { numRuns: runs, seed: SEED + i });
      for (const [params, query, body, ctype] of cases) {
        const qs = new URLSearchParams(query).toString();
        const url = `${fill(ep.path, params)}${qs ? `?${qs}` : ''}`;
        requests++;
        try {
          const res = await admin.req(ep.method, url, ep.body ? body : undefined, ep.body ? { 'Content-Type': ctype } : {});
          const text = await res.text();
          codes[res.status] = (codes[res.status] ?? 0) + 1;
          if (res.status >= 500) {
            fiveXX++;
            if (samples5xx.length < 3) samples5xx.push(`${ep.method} ${url.slice(0, 60)} → ${res.status}`);
          }
          if (res.status >= 400 && res.status !== 404) {
            try {
              const j = JSON.parse(text) as { error?: unknown; message?: unknown };
              if (typeof j.error !== 'string' || typeof j.message !== 'string' || !j.message) badErrorBodies++;
            } catch {
              badErrorBodies++;
            }
          }
        } catch {
          resets++;
        }
      }
    }
    // login: random bodies, unauthenticated
    const anon = new ApiClient(f.url);
    for (const body of fc.sample(bodyArb, { numRuns: runs * 2, seed: SEED - 1 })) {
      requests++;
      try {
        const res = await anon.req('POST', '/api/login', body);
        await res.text();
        codes[res.status] = (codes[res.status] ?? 0) + 1;
        if (res.status >= 500) fiveXX++;
      } catch {
        resets++;
      }
    }
    // still works afterwards: the admin session, a fresh login, an ack
    const me = await admin.json('GET', '/api/me');
    const mgr = new ApiClient(f.url);
    const relog = await mgr.login(USERS.mgrA.username);
    const ack = await mgr.json('POST', `/api/events/${evA.id}/ack`, { note: 'after fuzz' });
    const works = me.status === 200 && relog.status === 200 && ack.status === 200;
    const codeList = Object.entries(codes).sort().map(([c, n]) => `${c}×${n}`).join(' ');
    const fuzzPass = fiveXX === 0 && resets === 0 && badErrorBodies === 0 && works;
    rows.push(row({
      group: 'hostile',
      name: `fuzzing every HTTP endpoint of docs/central-api.md (fast-check, ${runs} cases × ${ENDPOINTS.length} endpoints + login, seed ${SEED})`,
      expected: 'no 5xx, no dropped connection, every refusal a JSON error naming code and message; the API works afterwards',
      observed: `${requests} requests: ${codeList}; ${fiveXX} 5xx${samples5xx.length ? ` (${samples5xx.join('; ')})` : ''}, ${resets} dropped, ${badErrorBodies} error bodies without code/message; afterwards ${works ? 'working' : 'BROKEN'}`,
      sent: requests, received: requests - resets, pass: fuzzPass,
      ...(fuzzPass ? {} : { owner: 'central/http/server.ts' }),
      seconds: (Date.now() - t0) / 1000,
    }));

    // ── 2. scope sweep ──
    const t1 = Date.now();
    // a rectification photo and a voice record on every site (by admin)
    const png = await makeJpeg(32, 32, { r: 1, g: 2, b: 3 }, 'p');
    const photoIds: Record<string, number> = {};
    for (const ev of [evB, evC]) {
      await admin.json('POST', `/api/events/${ev.id}/rectify`, { note: 'fixed', photoBase64: png.toString('base64'), photoMime: 'image/jpeg' });
      const d = await admin.json('GET', `/api/events/${ev.id}`);
      const url = (d.body.rectifications?.[0]?.photoUrl as string | undefined) ?? '';
      photoIds[ev.siteId] = Number(/\/api\/rectifications\/(\d+)\/photo/.exec(url)?.[1] ?? -1);
      await admin.json('POST', '/api/voice', { siteId: ev.siteId, type: 'preset', presetId: 'hat-mask' });
    }
    const cases: { user: (typeof USERS)[keyof typeof USERS]; own: typeof evA; foreign: typeof evB; foreignCam: string }[] = [
      { user: USERS.mgrA, own: evA, foreign: evB, foreignCam: 'cam-b1' },
      { user: USERS.vpA, own: evA, foreign: evB, foreignCam: 'cam-b1' },
      { user: USERS.inspector, own: evA, foreign: evC, foreignCam: 'cam-c1' },
      { user: USERS.inspector2, own: evC, foreign: evA, foreignCam: 'cam-hot' },
      // the three-level network: a township office sees its school's site, not the next school's in the same district
      { user: USERS.townInspector, own: evA, foreign: evB, foreignCam: 'cam-b1' },
    ];
    let checks = 0;
    const leaks: string[] = [];
    const expectStatus = (who: string, what: string, got: number, want: number[]) => {
      checks++;
      if (!want.includes(got)) leaks.push(`${who} ${what} → ${got}`);
    };
    const expectAbsent = (who: string, what: string, body: unknown, needles: string[]) => {
      checks++;
      const s = JSON.stringify(body);
      for (const n of needles) if (s.includes(n)) leaks.push(`${who} ${what} lists ${n}`);
    };
    for (const c of cases) {
      const api = new ApiClient(f.url);
      await api.login(c.user.username);
      const who = c.user.username;
      const fid = c.foreign.id, fsite = c.foreign.siteId;
      // positive control: own site visible
      const own = await api.json('GET', `/api/events/${c.own.id}`);
      checks++;
      if (own.status !== 200) leaks.push(`${who} cannot see their own event (${own.status}): the sweep would be vacuous`);
      const shaA = c.foreign.snapshotUrl?.split('/').pop() ?? '';
      const shaC = c.foreign.cleanSnapshotUrl?.split('/').pop() ?? '';
      expectStatus(who, 'GET foreign event', (await api.req('GET', `/api/events/${fid}`)).status, [404]);
      expectStatus(who, 'ack foreign event', (await api.req('POST', `/api/events/${fid}/ack`, {})).status, [404]);
      expectStatus(who, 'rectify foreign event', (await api.req('POST', `/api/events/${fid}/rectify`, { note: 'x' })).status, [404]);
      expectStatus(who, 'review foreign event', (await api.req('POST', `/api/events/${fid}/review`, { decision: 'close' })).status, [404]);
      expectStatus(who, 'events?siteId=foreign', (await api.req('GET', `/api/events?siteId=${fsite}`)).status, [404]);
      expectStatus(who, 'events.csv?siteId=foreign', (await api.req('GET', `/api/events.csv?siteId=${fsite}`)).status, [404]);
      expectStatus(who, 'events.xlsx?siteId=foreign', (await api.req('GET', `/api/events.xlsx?siteId=${fsite}`)).status, [404]);
      expectStatus(who, 'foreign annotated snapshot', (await api.req('GET', `/api/snapshots/${shaA}`)).status, [404]);
      expectStatus(who, 'foreign clean snapshot', (await api.req('GET', `/api/snapshots/${shaC}`)).status, [404]);
      expectStatus(who, 'own clip (control)', (await api.req('GET', `/api/events/${c.own.id}/clip.mp4`)).status, [200]);
      expectStatus(who, 'foreign clip', (await api.req('GET', `/api/events/${fid}/clip.mp4`)).status, [404]);
      expectStatus(who, 'foreign clip, a range', (await fetch(`${f.url}/api/events/${fid}/clip.mp4`, { headers: { cookie: api.cookie, range: 'bytes=0-9' } })).status, [404]);
      if (photoIds[fsite] !== undefined) expectStatus(who, 'foreign rectification photo', (await api.req('GET', `/api/rectifications/${photoIds[fsite]}/photo`)).status, [404]);
      expectStatus(who, 'voice?siteId=foreign', (await api.req('GET', `/api/voice?siteId=${fsite}`)).status, [404]);
      expectStatus(who, 'voice to foreign site', (await api.req('POST', '/api/voice', { siteId: fsite, type: 'preset', presetId: 'hat-mask' })).status, [404]);
      expectStatus(who, 'live view of foreign camera', (await api.req('POST', `/api/live/${fsite}/${c.foreignCam}`)).status, [404]);
      expectAbsent(who, '/api/sites', (await api.json('GET', '/api/sites')).body, [`"${fsite}"`]);
      expectAbsent(who, '/api/events', (await api.json('GET', '/api/events?limit=500')).body, [fid]);
      expectAbsent(who, '/api/overdue', (await api.json('GET', '/api/overdue')).body, [fid]);
      expectAbsent(who, '/api/events.csv', await (await api.req('GET', '/api/events.csv')).text(), [fid]);
      expectAbsent(who, '/api/voice', (await api.json('GET', '/api/voice')).body, [`"${fsite}"`]);
      expectAbsent(who, '/api/stats', (await api.json('GET', '/api/stats')).body, [`"${fsite}"`]);
      const audit = await api.json('GET', '/api/audit?limit=1000');
      if (c.user.role === 'inspector') expectAbsent(who, '/api/audit', audit.body, [fid]);
      else expectStatus(who, '/api/audit', audit.status, [403]);
      for (const k of ['districts', 'schools', 'sites', 'cameras', 'users']) {
        expectStatus(who, `GET /api/org/${k}`, (await api.req('GET', `/api/org/${k}`)).status, [403]);
        expectStatus(who, `POST /api/org/${k}`, (await api.req('POST', `/api/org/${k}`, { id: 'evil', name: 'x' })).status, [403, 400]);
        expectStatus(who, `DELETE /api/org/${k}/x`, (await api.req('DELETE', `/api/org/${k}/${fsite}`)).status, [403]);
      }
      // SSE: nothing of the foreign site is pushed
      const ctrl = new AbortController();
      const sse = await fetch(`${f.url}/api/stream`, { headers: { Cookie: api.cookie }, signal: ctrl.signal });
      let streamed = '';
      const reader = sse.body!.getReader();
      const pump = (async () => {
        try {
          for (;;) {
            const { value, done } = await reader.read();
            if (done) break;
            streamed += Buffer.from(value).toString();
          }
        } catch { /* aborted */ }
      })();
      const fresh = await f.publishEvent(fsite);
      const ownFresh = await f.publishEvent(c.own.siteId);
      await sleep(800);
      ctrl.abort();
      await pump;
      checks++;
      if (streamed.includes(fresh.id)) leaks.push(`${who} SSE pushed foreign event ${fresh.id}`);
      checks++;
      if (!streamed.includes(ownFresh.id)) leaks.push(`${who} SSE did not push their own event (control)`);
    }
    // the city's inspector: every site of the city in the lists (a positive control for the top level)
    {
      const api = new ApiClient(f.url);
      await api.login(USERS.cityInspector.username);
      const listed = JSON.stringify((await api.json('GET', '/api/events?limit=500')).body);
      for (const ev of [evA, evB, evC]) {
        checks++;
        if (!listed.includes(ev.id)) leaks.push(`insp_city does not see ${ev.siteId}'s event ${ev.id} (the whole city is theirs)`);
      }
      checks++;
      if ((await api.req('GET', `/api/events/${evC.id}/clip.mp4`)).status !== 200) leaks.push('insp_city cannot open a clip in the city');
    }
    const scopePass = leaks.length === 0;
    rows.push(row({
      group: 'security',
      name: 'role scoping sweep over every endpoint (manager, vice-principal, inspectors of two districts and of a township office vs a site outside their scope; the city inspector sees all)',
      expected: '404 for out-of-scope alerts, snapshots, photos, voice, live view; 403 for admin-only; nothing foreign in lists or SSE',
      observed: `${checks} checks over 6 users, ${leaks.length} leaks${leaks.length ? `: ${leaks.slice(0, 4).join('; ')}` : ''}`,
      sent: checks, received: checks - leaks.length, pass: scopePass,
      ...(scopePass ? {} : { owner: 'central/http/server.ts, central/store/store.ts (scope SQL)' }),
      seconds: (Date.now() - t1) / 1000,
    }));

    // ── 2b. the public window: no path from it to anything private ──
    const foreignShas = [evB, evC].flatMap((e) => [e.snapshotSha256, e.cleanSnapshotSha256]);
    rows.push(...(await publicWindowSweep(f, foreignShas)));

    // ── 3. audit log of every remote action ──
    const t2 = Date.now();
    const actor = new ApiClient(f.url);
    await actor.login(USERS.inspector.username);
    await new ApiClient(f.url).login(USERS.inspector.username, 'wrong-password');
    const ev = await f.publishEvent('site-a');
    await actor.json('POST', `/api/events/${ev.id}/ack`, { note: 'seen' });
    await actor.json('POST', `/api/events/${ev.id}/rectify`, { note: 'fixed' });
    await actor.json('POST', `/api/events/${ev.id}/review`, { decision: 'close' });
    await actor.json('POST', '/api/voice', { siteId: 'site-a', type: 'text', text: '请戴帽子' });
    await actor.json('POST', '/api/live/site-b/cam-b1'); // the fixture's camera with a live URL
    await admin.json('POST', '/api/org/districts', { id: 'd-new', name: '新区' });
    await admin.json('PUT', '/api/org/districts/d-new', { id: 'd-new', name: '新区2' });
    await admin.json('DELETE', '/api/org/districts/d-new');
    await actor.json('POST', '/api/logout');
    const log = await admin.json<{ action: string; target: string; userId: string; ip: string }[]>('GET', '/api/audit?limit=1000');
    const actions = new Set((log.body ?? []).map((x) => x.action));
    const wanted: [string, RegExp][] = [['login', /^login$|login\b/], ['failed login', /login_failed|login.fail/], ['ack', /ack/], ['rectify', /rectif/], ['review', /close|review/],
      ['voice', /voice/], ['live view', /live/], ['org create', /create/], ['org update', /update/], ['org delete', /delete/], ['logout', /logout/]];
    const missing = wanted.filter(([, re]) => ![...actions].some((a) => re.test(a))).map(([n]) => n);
    const withIp = (log.body ?? []).filter((x) => x.ip && x.ip !== '-').length;
    const auditPass = missing.length === 0;
    rows.push(row({
      group: 'security',
      name: 'audit log of every remote action (login, failed login, ack, rectify, review, voice, live view, org create/update/delete, logout)',
      expected: 'each action in /api/audit with user and address',
      observed: `${(log.body ?? []).length} entries; actions seen: ${[...actions].sort().join(', ')}; missing: ${missing.join(', ') || 'none'}; ${withIp} with an address`,
      pass: auditPass,
      ...(auditPass ? {} : { owner: 'central/http/server.ts / central/store/store.ts (audit of the missing actions)' }),
      seconds: (Date.now() - t2) / 1000,
    }));

    // ── 4. path traversal ──
    const t3 = Date.now();
    const probe = new ApiClient(f.url);
    await probe.login(USERS.admin.username);
    const traversal = [
      '/api/snapshots/..%2F..%2Fcentral.db', '/api/events/..%2F..%2Fcentral.db/clip.mp4', '/api/events/%2e%2e/clip.mp4', '/api/snapshots/%2e%2e%2f%2e%2e%2fcentral.db', '/api/snapshots/../../central.db',
      `/api/snapshots/${'a'.repeat(63)}%00`, '/api/rectifications/..%2F..%2Fcentral.db/photo', '/api/rectifications/1%2F..%2F..%2Fcentral.db/photo',
      '/..%2f..%2fpackage.json', '/%2e%2e/%2e%2e/package.json', '/%252e%252e/%252e%252e/package.json', '/..%5c..%5cpackage.json', '/..\\..\\package.json',
      '//etc/passwd', '/%2F%2Fetc%2Fpasswd', '/index.html%00.js', '/../../../../etc/passwd', '/api/../../package.json', '/app.js/..%2f..%2f..%2fserver.ts',
      '/%c0%ae%c0%ae/%c0%ae%c0%ae/package.json', `/${'..%2f'.repeat(12)}etc/passwd`,
      '/public/..%2F..%2Fpackage.json', `/public/${PUBLIC_SLUG_A}/..%2F..%2Fpackage.json`, '/api/public/..%2F..%2Fcentral.db',
      `/api/public/${PUBLIC_SLUG_A}/images/..%2F..%2Fcentral.db`, `/api/public/${PUBLIC_SLUG_A}/images/%2e%2e%2f%2e%2e%2fcentral.db`,
      `/api/public/${PUBLIC_SLUG_A}%2F..%2F..%2Fcentral.db/still.jpg`, '/window.js/..%2f..%2fpublic-window.ts',
    ];
    const served: string[] = [];
    for (const p of traversal) {
      let status = 0, text = '';
      try {
        const res = await probe.req('GET', p);
        status = res.status;
        text = await res.text();
      } catch {
        status = -1;
      }
      if (status === 200 || /SQLite format|root:x:0|"name": "bright-kitchen"|import \{|export async function/.test(text)) served.push(`${p} → ${status}`);
    }
    const travPass = served.length === 0;
    rows.push(row({
      group: 'hostile',
      name: `path traversal in snapshot, photo and static URLs (${traversal.length} forms: plain, encoded, double-encoded, backslash, NUL, overlong UTF-8)`,
      expected: 'nothing served outside its folder',
      observed: served.length ? `SERVED: ${served.join('; ')}` : `all ${traversal.length} refused (4xx), no file content in any answer`,
      sent: traversal.length, received: traversal.length - served.length, pass: travPass,
      ...(travPass ? {} : { owner: 'central/http/static.ts / files.ts' }),
      seconds: (Date.now() - t3) / 1000,
    }));

    // ── 5. corrupt and oversized uploads ──
    const t4 = Date.now();
    const target = await f.publishEvent('site-a');
    const uploads: [string, unknown, number[], string?][] = [
      ['random bytes as JPEG', { note: 'x', photoBase64: Buffer.from(Array.from({ length: 300 }, (_, i) => (i * 37) & 0xff)).toString('base64'), photoMime: 'image/jpeg' }, [400], 'photoBase64'],
      ['PNG declared as JPEG', { note: 'x', photoBase64: Buffer.concat([Buffer.from('89504e470d0a1a0a', 'hex'), Buffer.alloc(100)]).toString('base64'), photoMime: 'image/jpeg' }, [400], 'photoMime'],
      ['HTML declared as PNG', { note: 'x', photoBase64: Buffer.from('<html><script>alert(1)</script></html>').toString('base64'), photoMime: 'image/png' }, [400], 'photoBase64'],
      ['not base64', { note: 'x', photoBase64: '@@@@not-base64', photoMime: 'image/jpeg' }, [400], 'photoBase64'],
      ['mime not allowed', { note: 'x', photoBase64: png.toString('base64'), photoMime: 'image/svg+xml' }, [400], 'photoMime'],
      ['JPEG markers around garbage', { note: 'x', photoBase64: Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xe0]), Buffer.alloc(500, 0x41), Buffer.from([0xff, 0xd9])]).toString('base64'), photoMime: 'image/jpeg' }, [400], 'photoBase64'],
      ['photo over 5 MB', { note: 'x', photoBase64: Buffer.alloc(5 * 1024 * 1024 + 10, 1).toString('base64'), photoMime: 'image/jpeg' }, [413, 400]],
    ];
    const wrong: string[] = [];
    const uploadApi = new ApiClient(f.url);
    await uploadApi.login(USERS.mgrA.username);
    for (const [name, body, want, field] of uploads) {
      const r = await uploadApi.json('POST', `/api/events/${target.id}/rectify`, body);
      if (!want.includes(r.status) || (field && r.body?.field !== field)) wrong.push(`${name} → ${r.status}${r.body?.field ? ` (${r.body.field})` : ''}`);
    }
    const over = await uploadApi.req('POST', `/api/events/${target.id}/ack`, JSON.stringify({ note: 'y'.repeat(70 * 1024) }));
    if (over.status !== 413) wrong.push(`70 KB JSON body → ${over.status}`);
    const overVoice = await uploadApi.req('POST', '/api/voice', JSON.stringify({ siteId: 'site-a', type: 'audio', mime: 'audio/wav', audioBase64: 'A'.repeat(4_300_000) }));
    if (overVoice.status !== 413) wrong.push(`4.3 MB voice audio → ${overVoice.status}`);
    const still = await uploadApi.json('GET', `/api/events/${target.id}`);
    const untouched = still.status === 200 && still.body.status !== 'rectified';
    if (!untouched) wrong.push(`event status after the refused uploads: ${still.body?.status}`);
    const upPass = wrong.length === 0;
    rows.push(row({
      group: 'hostile',
      name: 'corrupt and oversized uploads (rectification photos, JSON bodies, voice audio)',
      expected: '400 naming the field for corrupt images, 413 for oversized; the event is not changed',
      observed: upPass ? `all ${uploads.length + 2} refused as expected; event unchanged` : `unexpected: ${wrong.join('; ')}`,
      sent: uploads.length + 2, received: uploads.length + 2 - wrong.length, pass: upPass,
      ...(upPass ? {} : { owner: wrong.some((w) => /garbage/.test(w)) ? 'central/store/store.ts rectify (imageMime checks magic bytes only; a photo that does not decode is stored and served)' : 'central/http/server.ts, body.ts' }),
      seconds: (Date.now() - t4) / 1000,
    }));
    return rows;
  } finally {
    await fx?.close();
  }
}

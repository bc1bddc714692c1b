/**
 * The public window (社会公众) in the security sweep, on the hostile-HTTP fixture after its scope sweep
 * (so the store holds acknowledgements, rectifications with notes and photos, voice records and
 * audit rows of every site). Site A is public with everything on; site B has a slug and everything on
 * but `enabled: false`; site C has no public section.
 *  - fuzzing the public endpoints without a session: no 5xx, JSON errors, nothing answers 200 but A;
 *  - no public answer (page, JSON, still, pictures) holds a private value of the
 *    seeded data: user names, usernames and ids, notes, camera ids, names and URLs, internal site ids,
 *    other sites' names, password hashes;
 *  - B's slug, B's internal id and a made-up slug answer byte for byte the same, with or without a
 *    dashboard session of any role; a session changes nothing in A's answers either;
 *  - A's picture path opens A's alert pictures only, never B's or C's.
 */
import fc from 'fast-check';
import { ApiClient, USERS, type Fixture } from '../../helpers/central.js';
import { row, type Row } from '../lib/harness.js';

export const PUBLIC_SLUG_A = 'sweepA-4d9e1c7b20f36a85';
export const PUBLIC_SLUG_B = 'sweepB-8a2f6d0c93e71b54';
/** The `sitePublic` of the hostile fixture. */
export const SWEEP_PUBLIC = {
  'site-a': { enabled: true, slug: PUBLIC_SLUG_A, camera: 'cam-hot', rectifications: true, violationImages: true },
  'site-b': { enabled: false, slug: PUBLIC_SLUG_B, camera: 'cam-b1', rectifications: true, violationImages: true },
};

const NOTE_ACK = '公开扫描：已提醒厨师赵一鸣';
const NOTE_FIX = '公开扫描：钱二宝已重新培训';

export async function publicWindowSweep(f: Fixture, foreignShas: string[]): Promise<Row[]> {
  const t0 = Date.now();
  const rows: Row[] = [];
  // Seed site A with the kind of text that must never go public: names in notes.
  const mgr = new ApiClient(f.url);
  await mgr.login(USERS.mgrA.username);
  const e1 = await f.publishEvent('site-a', { kind: 'no_hat' });
  const e2 = await f.publishEvent('site-a', { kind: 'rodent', severity: 1 });
  await mgr.json('POST', `/api/events/${e1.id}/ack`, { note: NOTE_ACK });
  await mgr.json('POST', `/api/events/${e2.id}/rectify`, { note: NOTE_FIX });

  const anon = async (p: string, headers: Record<string, string> = {}) => {
    const res = await fetch(f.url + p, { headers, redirect: 'manual' });
    const body = Buffer.from(await res.arrayBuffer());
    return { status: res.status, type: res.headers.get('content-type') ?? '', cookie: res.headers.get('set-cookie'), body, text: body.toString('latin1'), utf8: body.toString('utf8') };
  };
  const problems: string[] = [];
  let checks = 0;
  const check = (ok: boolean, what: string) => {
    checks++;
    if (!ok) problems.push(what);
  };

  // ── fuzz, no session ──
  const slugArb = fc.oneof(
    fc.string({ maxLength: 70 }),
    fc.constantFrom(PUBLIC_SLUG_A, PUBLIC_SLUG_B, 'site-a', 'site-b', '..', '%2e%2e', '%00', 'a'.repeat(300), '<script>', '中文', `${PUBLIC_SLUG_A}%00`, PUBLIC_SLUG_A.toUpperCase()),
  );
  const tail = fc.constantFrom('', '/still.jpg', `/images/${foreignShas[0] ?? 'a'.repeat(64)}`, '/images/..%2F..%2Fcentral.db', '/x', '/still.jpg/..');
  const query = fc.constantFrom('', '?x=1', '?__proto__=1', '?t=123', `?slug=${PUBLIC_SLUG_A}`);
  let fuzzed = 0, fiveXX = 0, badErrors = 0;
  const unexpected200: string[] = [];
  for (const [slug, end, q, page] of fc.sample(fc.tuple(slugArb, tail, query, fc.boolean()), { numRuns: 120, seed: 1717 })) {
    const p = page ? `/public/${encodeURIComponent(slug)}${q}` : `/api/public/${encodeURIComponent(slug)}${end}${q}`;
    // fetch resolves a ".." segment itself ("/public/.." is "/"): such a case is not a public request
    if (!/^\/(api\/)?public\//.test(new URL(p, f.url).pathname)) continue;
    fuzzed++;
    let r;
    try {
      r = await anon(p);
    } catch {
      problems.push(`${p.slice(0, 60)} dropped the connection`);
      continue;
    }
    if (r.status >= 500 && r.status !== 503) fiveXX++;
    if (r.status >= 400 && r.status !== 404) {
      try {
        const j = JSON.parse(r.utf8) as { error?: unknown; message?: unknown };
        if (typeof j.error !== 'string' || typeof j.message !== 'string') badErrors++;
      } catch {
        badErrors++;
      }
    }
    // only A's own page, JSON, still (503 without a camera) and, never, anything of B
    if (r.status === 200 && slug !== PUBLIC_SLUG_A) unexpected200.push(`${p.slice(0, 60)} → 200`);
  }
  checks += fuzzed;
  if (fiveXX) problems.push(`${fiveXX} 5xx while fuzzing`);
  if (badErrors) problems.push(`${badErrors} error answers without code/message`);
  problems.push(...unexpected200.slice(0, 3));

  // ── nothing private in any public answer ──
  const admin = new ApiClient(f.url);
  await admin.login(USERS.admin.username);
  const cams = (await admin.json<{ siteId: string; id: string; name: string; liveUrl: string | null }[]>('GET', '/api/org/cameras')).body;
  const sites = (await admin.json<{ id: string; name: string }[]>('GET', '/api/org/sites')).body;
  const notes = new Set<string>([NOTE_ACK, NOTE_FIX, '赵一鸣', '钱二宝']);
  for (const ev of (await admin.json<{ events: { id: string }[] }>('GET', '/api/events?limit=500')).body.events) {
    const d = (await admin.json<{ history: { note: string | null }[]; rectifications: { note: string }[] }>('GET', `/api/events/${ev.id}`)).body;
    // Short ASCII notes ("fixed") would match words of the answers' keys: notes of 8+ characters or with CJK text.
    const distinctive = (n: string | null): n is string => !!n && (n.trim().length >= 8 || /[\u4e00-\u9fff]{2}/.test(n));
    for (const h of d.history) if (distinctive(h.note) && !/^level \d/.test(h.note) && !h.note.includes(' @ ')) notes.add(h.note);
    for (const r of d.rectifications) if (distinctive(r.note)) notes.add(r.note);
  }
  const needles = [
    ...Object.values(USERS).flatMap((u) => [u.name, u.username, u.id]),
    ...notes,
    ...cams.flatMap((c) => [c.id, c.name, ...(c.liveUrl ? [c.liveUrl] : [])]), 'rtsp://',
    ...sites.flatMap((s) => (s.id === 'site-a' ? [s.id] : [s.id, s.name])),
    'scrypt$', 'csrfToken', 'passwordHash',
  ].filter((n) => n.length >= 2);
  // The page's own files (window.html / .js / .css) are static code without data: the answers that carry data are checked.
  const publicPaths = [`/public/${PUBLIC_SLUG_A}`, `/api/public/${PUBLIC_SLUG_A}`, `/api/public/${PUBLIC_SLUG_A}/still.jpg`];
  const aJson = await anon(`/api/public/${PUBLIC_SLUG_A}`);
  const listed = ((JSON.parse(aJson.utf8) as { record?: { recent?: { image: string | null }[] } }).record?.recent ?? []).map((x) => x.image).filter((x): x is string => !!x);
  check(aJson.status === 200 && listed.length > 0, `positive control: A's JSON answered ${aJson.status} with ${listed.length} pictures`);
  for (const p of [...publicPaths, ...listed]) {
    for (const headers of [{}, { Cookie: admin.cookie }] as Record<string, string>[]) {
      const r = await anon(p, headers);
      check(r.cookie === null, `${p} set a cookie`);
      for (const n of needles) check(!r.utf8.includes(n), `${p} holds "${n}"`);
    }
  }

  // ── an opted-out site is an unknown site, for everyone ──
  const sessions: Record<string, string>[] = [{}];
  for (const u of [USERS.admin, USERS.mgrB, USERS.inspector]) {
    const c = new ApiClient(f.url);
    await c.login(u.username);
    sessions.push({ Cookie: c.cookie });
  }
  for (const tailPath of ['', '/still.jpg', `/images/${foreignShas[0] ?? 'a'.repeat(64)}`]) {
    for (const [prefix, suffix] of [['/api/public/', tailPath], ['/public/', '']] as const) {
      if (prefix === '/public/' && tailPath) continue;
      const answers = new Set<string>();
      for (const slug of [PUBLIC_SLUG_B, 'site-b', 'sweepZ-0000000000000000']) {
        for (const headers of sessions) {
          const r = await anon(`${prefix}${slug}${suffix}`, headers);
          answers.add(`${r.status} ${r.type} ${r.utf8}`);
        }
      }
      check(answers.size === 1 && [...answers][0]!.startsWith('404 '), `${prefix}<slug>${suffix}: ${answers.size} different answers (${[...answers].map((a) => a.slice(0, 40)).join(' | ')})`);
    }
  }
  // a session widens nothing in A's answer either (generatedAt aside)
  const strip = (s: string) => s.replace(/"generatedAt":\d+/, '');
  const plain = await anon(`/api/public/${PUBLIC_SLUG_A}`);
  for (const headers of sessions.slice(1)) check(strip((await anon(`/api/public/${PUBLIC_SLUG_A}`, headers)).utf8) === strip(plain.utf8), 'a session changed the public JSON');

  // ── A's picture path: A's pictures only ──
  for (const sha of foreignShas) check((await anon(`/api/public/${PUBLIC_SLUG_A}/images/${sha}`)).status === 404, `A's slug opened a foreign picture ${sha.slice(0, 12)}`);
  check((await anon(listed[0] ?? '/none')).status === 200, "positive control: A's own listed picture did not open");

  const pass = problems.length === 0;
  rows.push(row({
    group: 'security',
    name: 'public window: fuzzed without a session, nothing private in any public answer, an opted-out site answers like an unknown one, no path to other sites\' pictures',
    expected: 'no 5xx, JSON errors; no user, note, camera, URL, internal id or other site in any public answer; one 404 for opted-out, internal-id and made-up slugs with any session; foreign pictures 404',
    observed: `${fuzzed} fuzzed requests, ${checks} checks against ${needles.length} private values; ${problems.length} problems${problems.length ? `: ${problems.slice(0, 4).join('; ')}` : ''}`,
    sent: checks, received: checks - problems.length, pass,
    ...(pass ? {} : { owner: 'central/http/public-window.ts, central/store/public-record.ts' }),
    seconds: (Date.now() - t0) / 1000,
  }));
  return rows;
}

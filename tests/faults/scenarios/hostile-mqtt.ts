/**
 * Hostile MQTT input, property-based (fast-check, fixed seed, bounded runs), against a real central
 * (embedded broker) and a real agent (child process, voice enabled with a file sink):
 *  - an authenticated site publishes malformed, wrong-type, mutated and oversized payloads on every
 *    site topic central subscribes to; every one that is invalid by the protocol schemas must be
 *    rejected (counted, with a logged reason), and afterwards a valid event is still stored;
 *  - garbage on the agent's only subscribed topic (voice/command), published with central's own
 *    broker credential: every one refused with a reason, nothing played, the agent stays up;
 *  - voice end to end through central: a signed command is played and reported "played"; the same
 *    command replayed, and an unsigned / badly signed one, are refused and reported "rejected".
 */
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { createHash } from 'node:crypto';
import fc from 'fast-check';
import mqtt, { type MqttClient } from 'mqtt';
import type { CentralInternals } from '../../../central/central.js';
import { isJpeg } from '../../../central/store/store.js';
import { CameraStatus, ClipManifest, EventMessage, SiteStats, SiteStatus, VoiceStatus, parsePayload } from '../../../protocol/messages.js';
import { topics } from '../../../protocol/topics.js';
import { freePort } from '../../helpers/brokers.js';
import { makeJpeg } from '../../helpers/central.js';
import {
  AgentProc, SITE_PASSWORD, Scratch, centralConfig, centralEventIds, mustWait, row, sleep, startCentralAt, waitUntil, writeAgentConfig, type Row,
} from '../lib/harness.js';

const T = topics('bk/v1');
const SEED = 20260601;

function validEvent(id: string, shaA: string, shaC: string, bytes: number): EventMessage {
  const now = Date.now();
  return {
    v: 1, id, siteId: 'site-a', cameraId: 'cam1', cameraName: 'c', kind: 'smoking', severity: 1, ruleId: 'smoking', trackId: 1, label: 'cigarette',
    score: 0.9, box: [1, 2, 3, 4], zone: null, startedAt: now - 1000, capturedAt: now - 10, raisedAt: now, durationSec: 1,
    frame: { width: 320, height: 240 }, detections: [], snapshots: { annotated: { sha256: shaA, bytes }, clean: { sha256: shaC, bytes } },
  };
}

/** Payloads: raw bytes, arbitrary JSON, valid messages with one field replaced / removed / added. */
function payloadArb(valid: Record<string, unknown>): fc.Arbitrary<Buffer> {
  const keys = Object.keys(valid);
  const wrong = fc.oneof(fc.string(), fc.integer(), fc.double(), fc.boolean(), fc.constant(null), fc.array(fc.integer(), { maxLength: 3 }), fc.object({ maxDepth: 1 }),
    fc.constant(-1), fc.constant(1e308), fc.string({ minLength: 600, maxLength: 2000 }));
  const mutated = fc.tuple(fc.constantFrom(...keys), wrong, fc.constantFrom('replace', 'delete', 'extra')).map(([k, v, op]) => {
    const o: Record<string, unknown> = structuredClone(valid);
    if (op === 'replace') o[k] = v;
    else if (op === 'delete') delete o[k];
    else o[`x_${k}`] = v;
    return Buffer.from(JSON.stringify(o));
  });
  return fc.oneof(
    { arbitrary: fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b)), weight: 2 },
    { arbitrary: fc.jsonValue({ maxDepth: 3 }).map((j) => Buffer.from(JSON.stringify(j) ?? 'null')), weight: 2 },
    { arbitrary: fc.string({ maxLength: 200 }).map((s) => Buffer.from(s)), weight: 1 },
    { arbitrary: mutated, weight: 5 },
  );
}

async function connect(url: string, username: string, password: string, clientId: string): Promise<MqttClient> {
  const c = await mqtt.connectAsync(url, { username, password, clientId, reconnectPeriod: 300, connectTimeout: 5000, protocolVersion: 4 });
  c.on('error', () => {});
  return c;
}

export async function hostileMqttScenario(o: { runsPerTopic?: number } = {}): Promise<Row[]> {
  const runs = o.runsPerTopic ?? 40;
  const scratch = new Scratch();
  let agent: AgentProc | null = null;
  let central: CentralInternals | null = null;
  const clients: MqttClient[] = [];
  const rows: Row[] = [];
  try {
    const t0 = Date.now();
    const dataDir = scratch.dir('central');
    const port = await freePort();
    central = await startCentralAt(await centralConfig({ dataDir, brokerPort: port }));
    const c = central;
    const url = c.brokerUrl;
    const site = await connect(url, 'site-a', SITE_PASSWORD, 'fuzz-site-a');
    clients.push(site);

    // ── 1. site topics → central ingest ──
    const jpeg = await makeJpeg(64, 48, { r: 10, g: 20, b: 30 }, 'fuzz');
    const sha = createHash('sha256').update(jpeg).digest('hex');
    const now = Date.now();
    let clipSha: string | undefined;
    const targets: { topic: string; valid: Record<string, unknown>; check: (p: Buffer) => boolean }[] = [
      { topic: T.event('site-a'), valid: validEvent('fuzz-valid', sha, sha, jpeg.length), check: (p) => { const r = parsePayload(EventMessage, p, 1_000_000); return r.ok && r.value.siteId === 'site-a'; } },
      { topic: T.siteStatus('site-a'), valid: { v: 1, siteId: 'site-a', online: true, ts: now }, check: (p) => { const r = parsePayload(SiteStatus, p, 1_000_000); return r.ok && r.value.siteId === 'site-a'; } },
      { topic: T.cameraStatus('site-a', 'cam1'), valid: { v: 1, siteId: 'site-a', cameraId: 'cam1', name: 'c', state: 'online', lastFrameAt: now, fps: 2, error: null, ts: now },
        check: (p) => { const r = parsePayload(CameraStatus, p, 1_000_000); return r.ok && r.value.siteId === 'site-a' && r.value.cameraId === 'cam1'; } },
      { topic: T.stats('site-a'), valid: { v: 1, siteId: 'site-a', ts: now, uptimeSec: 1, inferencesPerSec: 1, framesProcessed: 1, framesDropped: 0, outboxPending: 0, eventsRaised: 0 },
        check: (p) => { const r = parsePayload(SiteStats, p, 1_000_000); return r.ok && r.value.siteId === 'site-a'; } },
      // no voice command was ever sent: even a well-formed status names an unknown command → rejected
      { topic: T.voiceStatus('site-a'), valid: { v: 1, commandId: 'nope', siteId: 'site-a', state: 'played', at: now, error: null }, check: (p) => parsePayload(VoiceStatus, p).ok && false },
      { topic: T.snapshot('site-a', 'fuzz-snap', 'annotated'), valid: { jpeg: true }, check: (p) => isJpeg(p) },
      // a clip's manifest (before its chunks and its event: accepted); later ones must repeat its sha256
      { topic: T.clip('site-a', 'fuzz-clip'), valid: { v: 1, eventId: 'fuzz-clip', siteId: 'site-a', cameraId: 'cam1', mime: 'video/mp4', codec: 'avc1.42e01f', sha256: sha, bytes: 1000, chunks: 2, startAt: now, durationMs: 10_000 },
        check: (p) => {
          const r = parsePayload(ClipManifest, p, 1_000_000);
          if (!r.ok || r.value.siteId !== 'site-a' || r.value.eventId !== 'fuzz-clip') return false;
          clipSha ??= r.value.sha256;
          return clipSha === r.value.sha256;
        } },
    ];
    const m0 = await c.metrics();
    let published = 0;
    let expectInvalid = 0;
    for (const [i, t] of targets.entries()) {
      const samples = fc.sample(payloadArb(t.valid), { numRuns: runs, seed: SEED + i });
      for (const p of samples) {
        if (!t.check(p)) expectInvalid++;
        await site.publishAsync(t.topic, p, { qos: 1 });
        published++;
      }
    }
    // oversized: JSON over ingest.maxJsonBytes (1 MB), a snapshot over maxSnapshotBytes (5 MB)
    const big = Buffer.from(JSON.stringify({ ...validEvent('fuzz-big', sha, sha, jpeg.length), cameraName: 'x'.repeat(1_100_000) }));
    await site.publishAsync(T.event('site-a'), big, { qos: 1 });
    const bigSnap = Buffer.concat([Buffer.from([0xff, 0xd8, 0xff]), Buffer.alloc(5_200_000, 7), Buffer.from([0xff, 0xd9])]);
    await site.publishAsync(T.snapshot('site-a', 'fuzz-big', 'clean'), bigSnap, { qos: 1 });
    published += 2;
    expectInvalid += 2;
    await waitUntil(async () => (await c.metrics()).messages - m0.messages >= published, 20_000, 100);
    await c.internals.ingest.idle(); // the rejections are counted once the messages are handled
    const m1 = await c.metrics();
    const reached = m1.messages - m0.messages;
    const rejected = m1.rejected - m0.rejected;
    const reasons = c.internals.ingest.counters.reasons;
    const topReasons = Object.entries(reasons).sort((a, b) => b[1] - a[1]).slice(0, 5).map(([k, n]) => `${k} ×${n}`).join(', ');
    // an over-limit packet (7 MB > broker maxPacketBytes) from a fresh connection: the broker must refuse it, nobody else affected
    const huge = await connect(url, 'site-a', SITE_PASSWORD, 'fuzz-site-a-huge');
    clients.push(huge);
    const hugeResult = await Promise.race([
      huge.publishAsync(T.event('site-a'), Buffer.alloc(7_000_000, 0x20), { qos: 1 }).then(() => 'PUBACK (accepted?)', (e: Error) => `refused: ${e.message}`),
      new Promise<string>((r) => huge.once('close', () => r('connection closed by the broker'))),
      sleep(8000).then(() => 'no answer in 8 s'),
    ]);
    huge.end(true);
    // afterwards: a valid event with its snapshots is still stored
    const ev = validEvent(`after-fuzz-${Date.now()}`, sha, sha, jpeg.length);
    await site.publishAsync(T.event('site-a'), JSON.stringify(ev), { qos: 1 });
    await site.publishAsync(T.snapshot('site-a', ev.id, 'annotated'), jpeg, { qos: 1 });
    const stillWorks = await waitUntil(() => centralEventIds(dataDir).includes(ev.id), 10_000, 100);
    const ingestPass = reached === published && rejected === expectInvalid && stillWorks && !/accepted/.test(hugeResult);
    rows.push(row({
      group: 'hostile',
      name: `malformed / wrong-type / mutated / oversized payloads on every site topic central reads (fast-check, ${runs} runs × 7 topics, seed ${SEED})`,
      expected: 'every payload invalid by the protocol schemas rejected with a logged reason; nothing crashes; a valid event afterwards is stored',
      observed: `${published} published, ${reached} reached ingest, ${rejected} rejected (expected ${expectInvalid} invalid by the schemas); reasons: ${topReasons}; ` +
        `7 MB packet: ${hugeResult}; valid event afterwards ${stillWorks ? 'stored' : 'NOT stored'}`,
      sent: published, received: reached, lost: published - reached, duplicated: null, pass: ingestPass,
      ...(ingestPass ? {} : { owner: 'central/ingest/ingest.ts' }),
      seconds: (Date.now() - t0) / 1000,
    }));

    // ── 2. topic fuzz: a site publishing outside the topic map is refused by the broker ──
    const t1 = Date.now();
    await sleep(500); // let the last messages of part 1 land
    const mt0 = (await c.metrics()).messages;
    const segment = fc.oneof(
      fc.constantFrom('event', 'status', 'stats', 'voice', 'command', 'camera', 'snapshot', 'x', '..', '$SYS', '%2F', '中文', '', 'site-b'),
      fc.string({ maxLength: 10 }).filter((x) => !/[+#\u0000/]/.test(x)),
    );
    const subtopics = fc.sample(fc.array(segment, { minLength: 1, maxLength: 4 }).map((p) => p.join('/')), { numRuns: 20, seed: SEED });
    let odd = 0;
    for (const s of subtopics) {
      const topic = `bk/v1/site/site-a/${s}`;
      const probe = await connect(url, 'site-a', SITE_PASSWORD, `fuzz-topic-${odd}`);
      clients.push(probe);
      await Promise.race([probe.publishAsync(topic, '{}', { qos: 1 }).catch(() => undefined), sleep(1000)]);
      probe.end(true);
      odd++;
    }
    await sleep(500);
    const leaked = c.internals.ingest.counters.recent.filter((r) => /unknown topic/.test(r)).length;
    const reachedOdd = (await c.metrics()).messages - mt0;
    const validSub = subtopics.filter((s) => ['event', 'status', 'stats'].includes(s)).length;
    rows.push(row({
      group: 'hostile',
      name: 'random sub-topics under a site\'s own prefix (fast-check, 20 runs)',
      expected: 'refused by the broker ACL (only the topic map is writable); central unaffected',
      observed: `${odd} odd topics published, ${reachedOdd} reached ingest (${validSub} happened to be real topics), ${leaked} "unknown topic" rejections`,
      sent: odd, received: reachedOdd, pass: reachedOdd <= validSub,
      ...(reachedOdd <= validSub ? {} : { owner: 'central/broker/acl.ts' }),
      seconds: (Date.now() - t1) / 1000,
    }));

    // ── 3. agent voice/command fuzz and voice end to end through central ──
    const t2 = Date.now();
    const agentDir = scratch.dir('agent');
    const voiceDir = path.join(agentDir, 'voice-out');
    const pub = path.join(dataDir, 'voice-signing.pub.pem');
    if (!existsSync(pub)) throw new Error(`central did not write its voice public key to ${pub}`);
    const conf = writeAgentConfig(agentDir, { storageDir: path.join(agentDir, 'var'), brokerUrl: url, voiceDir, centralPublicKeyFile: pub, cooldownSec: 30 });
    agent = await AgentProc.start(conf);
    const a = agent;
    await mustWait(() => a.logsMatching(/uplink connected/).length > 0, 20_000, 'the agent uplink');
    await sleep(500);
    const cc = c.internals.broker!.centralCredentials;
    const cen = await connect(url, cc.username, cc.password, `bk-central-fuzz-${Date.now()}`);
    clients.push(cen);
    const seen: Buffer[] = [];
    await cen.subscribeAsync(T.voiceCommand('site-a'), { qos: 1 });
    cen.on('message', (topic, p) => { if (topic === T.voiceCommand('site-a')) seen.push(p); });
    const validCmd = { v: 1, id: 'cmd-template', siteId: 'site-a', cameraId: null, issuedBy: 'u-insp', issuedAt: Date.now(), nonce: 'n'.repeat(24), content: { type: 'text', text: '请戴口罩' }, signature: 'AAAA' };
    const garbage = fc.sample(payloadArb(validCmd), { numRuns: runs, seed: SEED + 99 });
    const oversizedCmd = Buffer.from(JSON.stringify({ ...validCmd, id: 'cmd-big', content: { type: 'audio', mime: 'audio/wav', dataBase64: 'A'.repeat(4_100_000) } }));
    for (const g of [...garbage, oversizedCmd]) await cen.publishAsync(T.voiceCommand('site-a'), g, { qos: 1 });
    const nGarbage = garbage.length + 1;
    await waitUntil(() => a.logsMatching(/voice command rejected|voice command/).length >= nGarbage, 20_000, 100);
    const rejectedLogs = a.logsMatching(/voice command rejected/);
    const withReason = rejectedLogs.filter((l) => typeof l.reason === 'string' && (l.reason as string).length > 3).length;
    const playedAfterGarbage = existsSync(voiceDir) ? readdirSync(voiceDir).length : 0;
    // a signed command through central is played and reported
    const user = (await c.store.user('u-insp'))!;
    const rec = await c.voice.send(user, { siteId: 'site-a', cameraId: null, type: 'text', text: '请佩戴好口罩' });
    const voiceState = async () => (await c.store.voiceCommands(await c.scopeOf(user), 'site-a')).find((v) => v.id === rec.id)?.state;
    const played = await waitUntil(async () => (await voiceState()) === 'played', 20_000, 100);
    await mustWait(() => seen.length > garbage.length, 5000, 'the signed command on the wire');
    const signed = seen[seen.length - 1]!;
    // replay it, and send an unsigned and a badly signed copy under new ids
    const before = rejectedLogs.length;
    await cen.publishAsync(T.voiceCommand('site-a'), signed, { qos: 1 });
    const parsed = JSON.parse(signed.toString()) as Record<string, unknown>;
    const unsigned = { ...parsed, id: `unsigned-${Date.now()}`, nonce: 'u'.repeat(24) } as Record<string, unknown>;
    delete unsigned.signature;
    const forged = { ...parsed, id: `forged-${Date.now()}`, nonce: 'f'.repeat(24), content: { type: 'text', text: '假命令' } };
    await cen.publishAsync(T.voiceCommand('site-a'), JSON.stringify(unsigned), { qos: 1 });
    await cen.publishAsync(T.voiceCommand('site-a'), JSON.stringify(forged), { qos: 1 });
    await waitUntil(() => a.logsMatching(/voice command rejected/).length >= before + 3, 10_000, 100);
    await sleep(1000);
    const newRejections = a.logsMatching(/voice command rejected/).slice(before).map((l) => String(l.reason ?? '')).map((s) => s.slice(0, 50));
    const stateAfterReplay = await voiceState();
    const files = existsSync(voiceDir) ? readdirSync(voiceDir).length : 0;
    const agentAlive = a.alive;
    const garbagePass = agentAlive && playedAfterGarbage === 0 && rejectedLogs.length >= nGarbage - 0 && withReason === rejectedLogs.length;
    rows.push(row({
      group: 'hostile',
      name: `garbage on the agent's voice/command topic (fast-check, ${runs} runs + one 4 MB command; published with central's broker credential)`,
      expected: 'each refused with a logged reason, nothing played, agent stays up',
      observed: `${nGarbage} published, ${rejectedLogs.length} refusals logged (${withReason} with a reason), ${playedAfterGarbage} played; agent ${agentAlive ? 'alive' : 'DEAD'}`,
      sent: nGarbage, received: rejectedLogs.length, pass: garbagePass,
      ...(garbagePass ? {} : { owner: 'agent/voice/voice.ts' }),
      seconds: (Date.now() - t2) / 1000,
    }));
    const e2ePass = played && newRejections.length >= 3 && files === 1 && stateAfterReplay === 'played';
    rows.push(row({
      group: 'security',
      name: 'voice end to end through central: signed command, then the same command replayed, an unsigned and a forged one',
      expected: 'signed one played and reported "played"; replay / unsigned / forged refused and reported, never played; the played record stays "played"',
      observed: `signed: ${played ? 'played, reported played' : `NOT played (state ${await voiceState()})`}; refusals: ${newRejections.map((r) => `"${r}"`).join(', ')}; ` +
        `audio files played: ${files}; central's record of the signed command after the replay: "${stateAfterReplay}"`,
      sent: 4, received: 1 + newRejections.length, pass: e2ePass,
      ...(e2ePass ? {} : { owner: stateAfterReplay !== 'played' ? 'central/store/store.ts updateVoice (a "rejected" reply to a replayed copy overwrites the played state of the genuine command) or agent/voice/voice.ts (answer a replay of an already played id without a status)' : 'agent/voice/voice.ts, central/voice/voice.ts' }),
      seconds: (Date.now() - t2) / 1000,
    }));
    return rows;
  } finally {
    for (const cl of clients) cl.end(true);
    await agent?.stop();
    await central?.stop();
    await scratch.dispose();
  }
}

/**
 * The MQTT ACL as a matrix, on both brokers with the same org: central's embedded aedes (authenticate
 * / authorize hooks) and Mosquitto with the password + ACL files central generates
 * (`mosquittoFiles`). Judged by delivery, not by SUBACK codes: an observer with full rights records
 * what each principal's publishes deliver, and each subscription is probed with a message published
 * by the full-rights account on a concrete matching topic.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { hashPasswordMosquitto } from '../../../central/auth/password.js';
import { mosquittoFiles } from '../../../central/broker/mosquitto.js';
import type { CentralInternals } from '../../../central/central.js';
import { freePort, startMosquitto } from '../../helpers/brokers.js';
import { CENTRAL_ACCOUNT, SITE_PASSWORD, Scratch, USER_MQTT_PASSWORD, centralConfig, observe, row, sleep, startCentralAt, type Row } from '../lib/harness.js';

type Who = { name: string; username?: string; password?: string };
const SITE_A: Who = { name: 'site-a', username: 'site-a', password: SITE_PASSWORD };
const USER_A: Who = { name: 'recipient u-mgr-a', username: 'u-mgr-a', password: USER_MQTT_PASSWORD };
const USER_A_ALIAS: Who = { name: 'recipient by username mgr_a', username: 'mgr_a', password: USER_MQTT_PASSWORD };

const P = 'bk/v1';
const PUBLISHES: { who: Who; topic: string; allowed: boolean }[] = [
  ...['event', 'snapshot/ev1/annotated', 'snapshot/ev1/clean', 'clip/ev1/0', 'clip/ev1', 'status', 'camera/cam1/status', 'stats', 'voice/status'].map((t) => ({ who: SITE_A, topic: `${P}/site/site-a/${t}`, allowed: true })),
  ...[`${P}/site/site-b/event`, `${P}/site/site-b/status`, `${P}/site/site-b/clip/ev1/0`, `${P}/site/site-b/clip/ev1`, `${P}/site/site-a/voice/command`, `${P}/site/site-b/voice/command`, `${P}/user/u-mgr-a/alert`, `${P}/site/site-a/other`, `${P}/x`, 'other/topic']
    .map((topic) => ({ who: SITE_A, topic, allowed: false })),
  ...[`${P}/site/site-a/event`, `${P}/user/u-mgr-a/alert`, `${P}/site/site-a/voice/command`].map((topic) => ({ who: USER_A, topic, allowed: false })),
];
const SUBSCRIBES: { who: Who; filter: string; probe: string; allowed: boolean }[] = [
  { who: SITE_A, filter: `${P}/site/site-a/voice/command`, probe: `${P}/site/site-a/voice/command`, allowed: true },
  { who: SITE_A, filter: `${P}/site/site-b/voice/command`, probe: `${P}/site/site-b/voice/command`, allowed: false },
  { who: SITE_A, filter: `${P}/site/+/voice/command`, probe: `${P}/site/site-b/voice/command`, allowed: false },
  { who: SITE_A, filter: `${P}/site/site-b/event`, probe: `${P}/site/site-b/event`, allowed: false },
  { who: SITE_A, filter: `${P}/#`, probe: `${P}/user/u-mgr-a/alert`, allowed: false },
  { who: SITE_A, filter: '#', probe: `${P}/site/site-b/status`, allowed: false },
  { who: USER_A, filter: `${P}/user/u-mgr-a/alert`, probe: `${P}/user/u-mgr-a/alert`, allowed: true },
  { who: USER_A, filter: `${P}/user/u-mgr-a/#`, probe: `${P}/user/u-mgr-a/alert`, allowed: true },
  { who: USER_A_ALIAS, filter: `${P}/user/u-mgr-a/alert`, probe: `${P}/user/u-mgr-a/alert`, allowed: true },
  { who: USER_A, filter: `${P}/user/u-mgr-b/alert`, probe: `${P}/user/u-mgr-b/alert`, allowed: false },
  { who: USER_A, filter: `${P}/user/+/alert`, probe: `${P}/user/u-mgr-b/alert`, allowed: false },
  { who: USER_A, filter: `${P}/site/site-a/event`, probe: `${P}/site/site-a/event`, allowed: false },
  { who: USER_A, filter: '#', probe: `${P}/site/site-a/voice/command`, allowed: false },
];
const LOGINS: { who: Who; allowed: boolean }[] = [
  { who: { name: 'anonymous' }, allowed: false },
  { who: { name: 'site-a, wrong password', username: 'site-a', password: 'guess' }, allowed: false },
  { who: { name: 'unknown user', username: 'mallory', password: 'x' }, allowed: false },
  { who: { name: 'recipient with the site password', username: 'u-mgr-a', password: SITE_PASSWORD }, allowed: false },
  { who: SITE_A, allowed: true },
  { who: USER_A, allowed: true },
];

async function tryConnect(url: string, who: Who, clientId: string): Promise<MqttClient | null> {
  try {
    const c = await mqtt.connectAsync(url, { clientId, reconnectPeriod: 0, connectTimeout: 4000, protocolVersion: 4, ...(who.username ? { username: who.username, password: who.password } : {}) });
    c.on('error', () => {});
    return c;
  } catch {
    return null;
  }
}

async function matrix(brokerName: string, url: string, superuser: { username: string; password: string }): Promise<{ checks: number; wrong: string[] }> {
  const wrong: string[] = [];
  let checks = 0;
  const clients: MqttClient[] = [];
  try {
    for (const [i, l] of LOGINS.entries()) {
      checks++;
      const c = await tryConnect(url, l.who, `acl-login-${i}-${Date.now()}`);
      if (c) clients.push(c);
      if (!!c !== l.allowed) wrong.push(`${brokerName}: login ${l.who.name} ${c ? 'ACCEPTED' : 'refused'}`);
    }
    // publishes, judged by an observer with full rights
    const obs = await observe(url, { ...superuser, clientId: `bk-central-acl-obs-${Date.now()}`, filters: ['#'] });
    clients.push(obs.client);
    for (const [i, p] of PUBLISHES.entries()) {
      const c = await tryConnect(url, p.who, `acl-pub-${i}-${Date.now()}`);
      if (!c) {
        wrong.push(`${brokerName}: ${p.who.name} could not log in to publish`);
        continue;
      }
      clients.push(c);
      await Promise.race([c.publishAsync(p.topic, `marker-${i}`, { qos: 1 }).catch(() => undefined), sleep(1500)]);
    }
    await sleep(800);
    for (const [i, p] of PUBLISHES.entries()) {
      checks++;
      const delivered = obs.got.some((m) => m.topic === p.topic && m.payload.toString() === `marker-${i}`);
      if (delivered !== p.allowed) wrong.push(`${brokerName}: ${p.who.name} publish ${p.topic} ${delivered ? 'DELIVERED' : 'not delivered'}`);
    }
    // subscriptions, probed by the full-rights account
    const subs: { c: MqttClient; got: string[] }[] = [];
    for (const [i, s] of SUBSCRIBES.entries()) {
      const c = await tryConnect(url, s.who, `acl-sub-${i}-${Date.now()}`);
      const got: string[] = [];
      subs.push({ c: c!, got });
      if (!c) continue;
      clients.push(c);
      c.on('message', (topic, payload) => got.push(`${topic} ${payload.toString()}`));
      await Promise.race([c.subscribeAsync(s.filter, { qos: 1 }).catch(() => undefined), sleep(1500)]);
    }
    const pubber = await tryConnect(url, superuser as Who, `bk-central-acl-pub-${Date.now()}`);
    if (!pubber) throw new Error(`${brokerName}: the full-rights account cannot log in`);
    clients.push(pubber);
    for (const [i, s] of SUBSCRIBES.entries()) await pubber.publishAsync(s.probe, `probe-${i}`, { qos: 1 });
    await sleep(800);
    for (const [i, s] of SUBSCRIBES.entries()) {
      checks++;
      const got = subs[i]!.got.some((g) => g === `${s.probe} probe-${i}`);
      if (got !== s.allowed) wrong.push(`${brokerName}: ${s.who.name} subscribed ${s.filter} ${got ? 'RECEIVED' : 'did not receive'} ${s.probe}`);
    }
  } finally {
    for (const c of clients) c.end(true);
  }
  return { checks, wrong };
}

export async function aclScenario(): Promise<Row[]> {
  const scratch = new Scratch();
  let central: CentralInternals | null = null;
  const rows: Row[] = [];
  try {
    const t0 = Date.now();
    const port = await freePort();
    const cfg = await centralConfig({ dataDir: scratch.dir('central'), brokerPort: port });
    central = await startCentralAt(cfg);
    const a = await matrix('aedes', central.brokerUrl, central.internals.broker!.centralCredentials);
    const aPass = a.wrong.length === 0;
    rows.push(row({
      group: 'security',
      name: 'MQTT ACL matrix on the embedded aedes broker (logins, publishes, subscriptions of a site and a recipient)',
      expected: 'anonymous / wrong / unknown logins refused; a site writes only its own topics (never voice/command) and reads only its own voice/command; a recipient reads only its own topic and writes nothing',
      observed: `${a.checks} checks, ${a.wrong.length} wrong${a.wrong.length ? `: ${a.wrong.slice(0, 4).join('; ')}` : ''}`,
      sent: a.checks, received: a.checks - a.wrong.length, pass: aPass,
      ...(aPass ? {} : { owner: 'central/broker/acl.ts, central/broker/embedded.ts' }),
      seconds: (Date.now() - t0) / 1000,
    }));
    await central.stop();
    central = null;

    const t1 = Date.now();
    const mport = await freePort();
    const dir = scratch.dir('mosq');
    const files = mosquittoFiles(cfg.org, P, { username: CENTRAL_ACCOUNT.username, passwordHash: await hashPasswordMosquitto(CENTRAL_ACCOUNT.password) }, { host: '127.0.0.1', port: mport }, dir);
    writeFileSync(path.join(dir, 'passwd'), files.passwd, { mode: 0o600 });
    writeFileSync(path.join(dir, 'acl'), files.acl);
    const mosq = await startMosquitto({ port: mport, passwordFile: path.join(dir, 'passwd'), aclFile: path.join(dir, 'acl') });
    scratch.defer(() => mosq.stop());
    const m = await matrix('mosquitto', mosq.url, CENTRAL_ACCOUNT);
    const mPass = m.wrong.length === 0;
    rows.push(row({
      group: 'security',
      name: 'MQTT ACL matrix on Mosquitto with the generated password and ACL files (same org, same checks)',
      expected: 'same policy as on aedes',
      observed: `${m.checks} checks, ${m.wrong.length} wrong${m.wrong.length ? `: ${m.wrong.slice(0, 4).join('; ')}` : ''}`,
      sent: m.checks, received: m.checks - m.wrong.length, pass: mPass,
      ...(mPass ? {} : { owner: 'central/broker/mosquitto.ts (generated ACL)' }),
      seconds: (Date.now() - t1) / 1000,
    }));
    return rows;
  } finally {
    await central?.stop();
    await scratch.dispose();
  }
}

/**
 * TLS with a locally generated CA (openssl: CA + server certificate for 127.0.0.1 / localhost):
 * central's embedded broker serves mqtts (`broker.tls {cert, key, ca}`), a real agent connects with
 * `uplink.caFile` and delivers its events; clients that do not trust the CA, trust another CA, or
 * speak plain MQTT to the TLS port are refused. The dashboard/API over HTTPS (startHttp tls): login
 * works for a client trusting the CA, with a Secure cookie and HSTS; an untrusting client is refused.
 */
import https from 'node:https';
import http from 'node:http';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import mqtt from 'mqtt';
import type { CentralInternals } from '../../../central/central.js';
import { startHttp, type HttpHandle } from '../../../central/http/index.js';
import { freePort } from '../../helpers/brokers.js';
import { makePki } from '../lib/pki.js';
import {
  AgentProc, SITE_PASSWORD, Scratch, USER_MQTT_PASSWORD, centralConfig, centralEventIds, dupCount, row, startCentralAt, waitDelivered,
  waitUntil, writeAgentConfig, type Row,
} from '../lib/harness.js';

/** Try an MQTT login; resolves with "connected" or the error text (bounded by 6 s). */
async function tryMqtt(url: string, ca?: Buffer): Promise<string> {
  return new Promise((resolve) => {
    const c = mqtt.connect(url, { username: 'site-a', password: SITE_PASSWORD, reconnectPeriod: 0, connectTimeout: 4000, clientId: `tls-probe-${Math.random().toString(36).slice(2)}`, ...(ca ? { ca } : {}) });
    const done = (s: string) => {
      clearTimeout(t);
      c.end(true);
      resolve(s);
    };
    const t = setTimeout(() => done('timed out'), 6000);
    c.once('connect', () => done('connected'));
    c.once('error', (e) => done(e.message));
    c.once('close', () => setTimeout(() => done('closed without CONNACK'), 100));
  });
}

function request(url: string, opts: { method?: string; body?: string; ca?: Buffer }): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string } | { error: string }> {
  return new Promise((resolve) => {
    const u = new URL(url);
    const mod = u.protocol === 'https:' ? https : http;
    const req = mod.request(u, { method: opts.method ?? 'GET', headers: opts.body ? { 'Content-Type': 'application/json' } : {}, timeout: 5000, ...(opts.ca ? { ca: opts.ca } : {}) }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', (e) => resolve({ error: e.message }));
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.end(opts.body);
  });
}

export async function tlsScenario(): Promise<Row[]> {
  const t0 = Date.now();
  const scratch = new Scratch();
  let agent: AgentProc | null = null;
  let central: CentralInternals | null = null;
  let web: HttpHandle | null = null;
  const rows: Row[] = [];
  try {
    const pki = makePki(scratch.dir('pki'));
    const ca = readFileSync(pki.caFile);
    const dataDir = scratch.dir('central');
    const port = await freePort();
    try {
      central = await startCentralAt(await centralConfig({ dataDir, brokerPort: port, tls: { cert: pki.certFile, key: pki.keyFile, ca: pki.caFile } }));
    } catch (err) {
      rows.push(row({ group: 'security', name: 'MQTT over TLS: central embedded broker with a private CA', expected: 'central starts and serves mqtts',
        observed: `central did not start: ${(err as Error).message}`, pass: false, owner: 'central/central.ts + central/config/schema.ts (broker.tls.ca for central\'s own client)' }));
      return rows;
    }
    const url = central.brokerUrl;
    const agentDir = scratch.dir('agent');
    const storage = path.join(agentDir, 'var');
    const conf = writeAgentConfig(agentDir, { storageDir: storage, brokerUrl: url, caFile: pki.caFile, cooldownSec: 0.5 });
    agent = await AgentProc.start(conf);
    const a = agent;
    await waitUntil(() => a.eventIds().length >= 6, 30_000, 100);
    await a.stopCameras();
    const sent = a.eventIds();
    await waitDelivered(dataDir, sent, storage, 30_000);
    const stored = centralEventIds(dataDir);
    const lost = sent.filter((id) => !stored.includes(id)).length;
    const noCa = await tryMqtt(url);
    const otherCa = await tryMqtt(url, readFileSync(pki.otherCaFile));
    const plain = await tryMqtt(url.replace('mqtts://', 'mqtt://'));
    const phone = await new Promise<string>((resolve) => {
      const c = mqtt.connect(url, { username: 'u-mgr-a', password: USER_MQTT_PASSWORD, ca, reconnectPeriod: 0, connectTimeout: 4000 });
      c.once('connect', () => { c.end(true); resolve('connected'); });
      c.once('error', (e) => { c.end(true); resolve(e.message); });
    });
    const refused = (s: string) => s !== 'connected';
    const mqttPass = url.startsWith('mqtts://') && sent.length > 0 && lost === 0 && refused(noCa) && refused(otherCa) && refused(plain) && phone === 'connected';
    rows.push(row({
      group: 'security',
      name: 'MQTT over TLS (private CA): agent with uplink.caFile → central embedded broker (broker.tls)',
      expected: 'events delivered over mqtts; clients without the CA, with another CA, or plain MQTT refused',
      observed: `broker ${url.replace(/:\d+$/, ':<port>')}; agent delivered over TLS; no CA: "${noCa}"; other CA: "${otherCa}"; plain mqtt://: "${plain}"; phone app with CA: ${phone}`,
      sent: sent.length, received: sent.length - lost, lost, duplicated: dupCount(stored), pass: mqttPass,
      ...(mqttPass ? {} : { owner: 'central/broker/embedded.ts, agent/uplink/uplink.ts' }),
      seconds: (Date.now() - t0) / 1000,
    }));

    // HTTPS
    const t1 = Date.now();
    web = await startHttp(central, { port: 0, tls: { cert: pki.certFile, key: pki.keyFile } });
    const base = web.url;
    const login = await request(`${base}/api/login`, { method: 'POST', body: JSON.stringify({ username: 'insp', password: USER_MQTT_PASSWORD }), ca });
    const untrusted = await request(`${base}/api/me`, {});
    const plainHttp = await request(base.replace('https://', 'http://') + '/api/me', {});
    const ok = 'status' in login && login.status === 200;
    const cookie = ok ? String(login.headers['set-cookie'] ?? '') : '';
    const hsts = ok ? String(login.headers['strict-transport-security'] ?? '') : '';
    const httpsPass = base.startsWith('https://') && ok && /;\s*Secure/i.test(cookie) && /HttpOnly/i.test(cookie) && /max-age=\d+/.test(hsts) && 'error' in untrusted &&
      ('error' in plainHttp || plainHttp.status >= 400);
    rows.push(row({
      group: 'security',
      name: 'HTTPS dashboard/API with a private CA',
      expected: 'login over HTTPS with Secure HttpOnly cookie and HSTS; untrusting client and plain HTTP refused',
      observed: `login ${'status' in login ? login.status : login.error}; cookie ${/Secure/.test(cookie) ? 'Secure' : 'NOT Secure'}${/HttpOnly/i.test(cookie) ? ' HttpOnly' : ''}; HSTS "${hsts}"; ` +
        `no CA: "${'error' in untrusted ? untrusted.error : untrusted.status}"; plain http: "${'error' in plainHttp ? plainHttp.error : plainHttp.status}"`,
      pass: httpsPass,
      ...(httpsPass ? {} : { owner: 'central/http/server.ts' }),
      seconds: (Date.now() - t1) / 1000,
    }));
    return rows;
  } finally {
    await agent?.stop();
    await web?.close();
    await central?.stop();
    await scratch.dispose();
  }
}

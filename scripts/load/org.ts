/**
 * A generated city for the load run: districts of 100 sites, one school per site (a school canteen),
 * and the people central routes to: a canteen manager per site, a vice-principal per school, an
 * inspector per district, an admin, and the load tool's own "watcher" (a canteen manager of every
 * site, with a phone account on the broker and a dashboard login) through whom the tool sees every
 * alert. Every site has its own broker password (Mosquitto `$7$` hash, as `mosquitto_passwd` makes);
 * the dashboard passwords share one cheap scrypt hash (N=1024, as the test fixtures do).
 */
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { hashPassword, hashPasswordMosquitto } from '../../central/auth/password.js';
import { mosquittoFiles } from '../../central/broker/mosquitto.js';
import { parseCentralConfig } from '../../central/config/load.js';
import type { CentralConfigInput, OrgConfig, StoreConfig } from '../../central/config/schema.js';

export const SITES_PER_DISTRICT = 100;
export const WATCHER = { id: 'ld-watcher', username: 'ld-watcher' } as const;
/** Environment variables the tool sets for its central processes (named in their configs, never written there). */
export const CENTRAL_ENV = { user: 'BK_LOAD_CENTRAL_USER', pass: 'BK_LOAD_CENTRAL_PASS', dbPass: 'BK_LOAD_DB_PASSWORD' } as const;

export interface SiteSpec {
  id: string;
  password: string;
  cameras: string[];
}

export interface City {
  org: CentralConfigInput['org'];
  sites: SiteSpec[];
  watcher: { id: string; username: string; password: string; mqttPassword: string };
  central: { username: string; password: string };
  users: number;
  hashSeconds: number;
}

const pad = (n: number, w: number) => String(n).padStart(w, '0');

export async function makeCity(nSites: number, camerasPerSite: number): Promise<City> {
  const t0 = performance.now();
  const secret = randomBytes(9).toString('base64url');
  const w = Math.max(5, String(nSites).length);
  const nDistricts = Math.ceil(nSites / SITES_PER_DISTRICT);
  const sites: SiteSpec[] = [];
  for (let i = 1; i <= nSites; i++) {
    const id = `ld-s${pad(i, w)}`;
    sites.push({ id, password: `${secret}-${id}`, cameras: Array.from({ length: camerasPerSite }, (_, c) => `cam${c + 1}`) });
  }
  // pbkdf2 runs on libuv's thread pool: hash in batches so the pool stays busy without a 20,000-deep queue.
  const siteHashes: string[] = [];
  for (let i = 0; i < sites.length; i += 256) {
    siteHashes.push(...(await Promise.all(sites.slice(i, i + 256).map((s) => hashPasswordMosquitto(s.password)))));
  }
  const userPassword = `${secret}-user`;
  const userHash = await hashPassword(userPassword, { N: 1024 });
  const watcher = { ...WATCHER, password: userPassword, mqttPassword: `${secret}-phone` };
  const watcherMqttHash = await hashPasswordMosquitto(watcher.mqttPassword);
  const district = (i: number) => `ld-d${pad(Math.floor(i / SITES_PER_DISTRICT) + 1, 3)}`;
  const org: CentralConfigInput['org'] = {
    districts: Array.from({ length: nDistricts }, (_, d) => ({ id: `ld-d${pad(d + 1, 3)}`, name: `负载区 ${d + 1}` })),
    schools: sites.map((s, i) => ({ id: `ld-sch${s.id.slice(4)}`, name: `负载学校 ${i + 1}`, districtId: district(i) })),
    sites: sites.map((s, i) => ({
      id: s.id, name: `负载学校 ${i + 1} 食堂`, schoolId: `ld-sch${s.id.slice(4)}`, mqttPasswordHash: siteHashes[i]!,
      cameras: s.cameras.map((c, j) => ({ id: c, name: `操作间 ${j + 1}` })),
    })),
    users: [
      ...sites.map((s) => ({ id: `ld-m${s.id.slice(4)}`, username: `ld-m${s.id.slice(4)}`, name: '食堂经理', role: 'canteen_manager' as const, siteIds: [s.id], passwordHash: userHash })),
      ...sites.map((s) => ({ id: `ld-v${s.id.slice(4)}`, username: `ld-v${s.id.slice(4)}`, name: '副校长', role: 'vice_principal' as const, schoolId: `ld-sch${s.id.slice(4)}`, passwordHash: userHash })),
      ...Array.from({ length: nDistricts }, (_, d) => ({ id: `ld-i${pad(d + 1, 3)}`, username: `ld-i${pad(d + 1, 3)}`, name: '监管员', role: 'inspector' as const, districtId: `ld-d${pad(d + 1, 3)}`, passwordHash: userHash })),
      { id: 'ld-admin', username: 'ld-admin', name: '管理员', role: 'admin' as const, passwordHash: userHash },
      { id: watcher.id, username: watcher.username, name: '负载观察员', role: 'canteen_manager' as const, siteIds: sites.map((s) => s.id), passwordHash: userHash, mqttPasswordHash: watcherMqttHash },
    ],
  };
  return {
    org, sites, watcher,
    central: { username: 'bk-central', password: `${secret}-central` },
    users: org.users!.length,
    hashSeconds: (performance.now() - t0) / 1000,
  };
}

export interface InstanceFiles {
  configFile: string;
  dataDir: string;
  httpPort: number;
}

/**
 * Central's config file for instance `i` (JSON, which is YAML), checked with central's own parser first.
 * `store`: the shared PostgreSQL store, the same for every instance; without it SQLite in `dataDir`.
 * `escalateAfterSec`: tier-2 events not acknowledged reach the vice-principal after so many seconds
 * (the inspectors only after 10 hours: one escalation per event in a run), checked every second.
 */
export function writeCentralConfig(dir: string, city: City, i: number, o: { brokerUrl: string; httpPort: number; shared: boolean; store?: StoreConfig; escalateAfterSec?: number }): InstanceFiles {
  const dataDir = path.join(dir, `central-${i + 1}`);
  const cfg: CentralConfigInput = {
    dataDir,
    ...(o.store ? { store: o.store } : {}),
    http: { host: '127.0.0.1', port: o.httpPort, publicUrl: `http://127.0.0.1:${o.httpPort}` },
    broker: {
      mode: 'external', url: o.brokerUrl, usernameEnv: CENTRAL_ENV.user, passwordEnv: CENTRAL_ENV.pass,
      clientId: `bk-central-load-${i + 1}`, ...(o.shared ? { sharedGroup: 'bk-load' } : {}),
    },
    org: city.org,
    ...(o.escalateAfterSec ? {
      routing: { checkIntervalSec: 1, tier2: { mode: 'escalate', viceAfterMin: o.escalateAfterSec / 60, inspectorAfterMin: 600, rectifyWithinHours: 72, webhook: 'on_inspector' } },
    } : {}),
  };
  parseCentralConfig(cfg, `central-${i + 1}.yaml`);
  const configFile = path.join(dir, `central-${i + 1}.yaml`);
  writeFileSync(configFile, JSON.stringify(cfg));
  return { configFile, dataDir, httpPort: o.httpPort };
}

/** Mosquitto's password and ACL files, generated from the org as `npm run central -- mosquitto-config` does. */
export async function writeMosquittoAuth(dir: string, city: City, port: number): Promise<{ passwordFile: string; aclFile: string; accounts: number }> {
  const org = parseCentralConfig({ dataDir: dir, broker: { mode: 'external', url: 'mqtt://x', usernameEnv: 'X', passwordEnv: 'Y' }, org: city.org }).org as OrgConfig;
  const files = mosquittoFiles(org, 'bk/v1', { username: city.central.username, passwordHash: await hashPasswordMosquitto(city.central.password) }, { host: '127.0.0.1', port }, dir);
  // Only the watcher has a phone account among the users; every site must have its broker account.
  const missing = files.skipped.filter((x) => x.startsWith('site ') || x.startsWith(`user ${WATCHER.id}:`));
  if (missing.length) throw new Error(`mosquitto files: accounts left out: ${missing.slice(0, 3).join('; ')}`);
  const passwordFile = path.join(dir, 'passwd');
  const aclFile = path.join(dir, 'acl');
  writeFileSync(passwordFile, files.passwd, { mode: 0o600 });
  writeFileSync(aclFile, files.acl);
  return { passwordFile, aclFile, accounts: files.passwd.trim().split('\n').length };
}

import { describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { loadCentralConfig, parseCentralConfig, ConfigError } from '../../central/config/load.js';
import { hashPassword, hashPasswordMosquitto, verifyPassword } from '../../central/auth/password.js';
import { canPublish, canSubscribe } from '../../central/broker/acl.js';
import { WindowLimiter } from '../../central/notify/limiter.js';
import { dingtalkSign } from '../../central/notify/webhook.js';
import { createHmac } from 'node:crypto';

const base = () => ({
  dataDir: '/tmp/x', broker: { mode: 'embedded' },
  org: { districts: [{ id: 'd1', name: 'D' }], schools: [{ id: 's1', name: 'S', districtId: 'd1' }], sites: [{ id: 'site-a', name: 'A', schoolId: 's1' }], users: [] as unknown[] },
});

describe('central config', () => {
  it('loads the example config', () => {
    const c = loadCentralConfig('config/central.example.yaml');
    expect(c.broker.mode).toBe('embedded');
    expect(c.routing.tier1.mode).toBe('all');
    expect(c.voice.presets.map((p) => p.text)).toContain('请勿在后厨吸烟');
    expect(path.isAbsolute(c.dataDir)).toBe(true);
  });
  it('names file, path and value of a mistake', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'bk-cfg-'));
    const file = path.join(dir, 'c.yaml');
    writeFileSync(file, 'dataDir: x\nbroker: { mode: embedded, port: 99999 }\norg: {}\nroutng: {}\n');
    expect(() => loadCentralConfig(file)).toThrow(ConfigError);
    try { loadCentralConfig(file); } catch (e) {
      const m = (e as Error).message;
      expect(m).toContain(file);
      expect(m).toContain('broker.port');
      expect(m).toContain('99999');
      expect(m).toContain('routng');
    }
  });
  it('broker.clientId: optional, one per central worker, must start with "bk-central-"', () => {
    expect(parseCentralConfig(base()).broker.clientId).toBeUndefined(); // client.ts defaults it to bk-central-<hostname>-1
    const ext = { mode: 'external', url: 'mqtt://mq:1883', usernameEnv: 'U', passwordEnv: 'P' };
    expect(parseCentralConfig({ ...base(), broker: { ...ext, clientId: 'bk-central-host1-2' } }).broker.clientId).toBe('bk-central-host1-2');
    expect(() => parseCentralConfig({ ...base(), broker: { ...ext, clientId: 'central-1' } })).toThrow(/broker\.clientId/);
    expect(() => parseCentralConfig({ ...base(), broker: { mode: 'embedded', clientId: 'bk-central-a b' } })).toThrow(/broker\.clientId/);
  });
  it('checks references between org records', () => {
    const c = base();
    c.org.users = [{ id: 'u1', username: 'u1', name: 'U', role: 'canteen_manager', siteIds: ['site-zz'], passwordHash: 'scrypt$1024$8$1$AA==$AA==' },
      { id: 'u2', username: 'u2', name: 'U', role: 'inspector', passwordHash: 'scrypt$1024$8$1$AA==$AA==' }];
    expect(() => parseCentralConfig(c)).toThrow(/org\.users\[0\]\.siteIds\[0\]: no site "site-zz".*org\.users\[1\]\.districtId/);
    const d = base();
    d.org.users = [{ id: 'u1', username: 'x', name: 'U', role: 'admin', passwordHash: 'plaintext' }];
    expect(() => parseCentralConfig(d)).toThrow(/org\.users\[0\]\.passwordHash: expected a password hash/);
  });
});

describe('passwords', () => {
  it('scrypt hashes verify, wrong passwords do not, default N is 2^15', async () => {
    const h = await hashPassword('秘密 secret');
    expect(h).toMatch(/^scrypt\$32768\$8\$1\$/);
    expect(await verifyPassword('秘密 secret', h)).toBe(true);
    expect(await verifyPassword('secret', h)).toBe(false);
    expect(await verifyPassword('x', 'garbage')).toBe(false);
  });
  it('Mosquitto $7$ hashes verify (same as mosquitto_passwd writes)', async () => {
    expect(await verifyPassword('secret', '$7$101$w1Kejg+QeiD5qP7J$04vZnk5iWW+t2ZPOGO8pmxhBnc/I+rD5oJTzjwM0/tb8ukkbADoSYNmccQ4SBTnH7E4KdmfjvWs/etGWScdoGA==')).toBe(true);
    const h = await hashPasswordMosquitto('pw');
    expect(await verifyPassword('pw', h)).toBe(true);
    expect(await verifyPassword('pw2', h)).toBe(false);
  });
});

describe('ACL rules', () => {
  const site = { kind: 'site', siteId: 'a' } as const, user = { kind: 'user', userId: 'u1' } as const;
  it('site: own topics only, never voice/command', () => {
    expect(canPublish(site, 'bk/v1/site/a/event', 'bk/v1')).toBe(true);
    expect(canPublish(site, 'bk/v1/site/a/snapshot/e1/clean', 'bk/v1')).toBe(true);
    expect(canPublish(site, 'bk/v1/site/b/event', 'bk/v1')).toBe(false);
    expect(canPublish(site, 'bk/v1/site/a/voice/command', 'bk/v1')).toBe(false);
    expect(canPublish(site, 'bk/v1/site/a/whatever', 'bk/v1')).toBe(false);
    expect(canSubscribe(site, 'bk/v1/site/a/voice/command', 'bk/v1')).toBe(true);
    expect(canSubscribe(site, 'bk/v1/site/+/voice/command', 'bk/v1')).toBe(false);
    expect(canSubscribe(site, 'bk/v1/#', 'bk/v1')).toBe(false);
  });
  it('recipient: reads own user topic only, publishes nothing', () => {
    expect(canSubscribe(user, 'bk/v1/user/u1/#', 'bk/v1')).toBe(true);
    expect(canSubscribe(user, 'bk/v1/user/u10/#', 'bk/v1')).toBe(false);
    expect(canSubscribe(user, 'bk/v1/user/+/alert', 'bk/v1')).toBe(false);
    expect(canPublish(user, 'bk/v1/user/u1/alert', 'bk/v1')).toBe(false);
  });
});

describe('robot helpers', () => {
  it('window limiter: at most max per window', () => {
    const l = new WindowLimiter(20, 60_000);
    let n = 0;
    for (let t = 0; t < 60_000; t += 100) if (l.take(t)) n++;
    expect(n).toBe(20);
    expect(l.waitMs(60_000)).toBe(0);
  });
  it('DingTalk sign = urlencode(base64(HmacSHA256(secret, ts\\nsecret)))', () => {
    const s = dingtalkSign('SEC123', 1700000000000);
    expect(decodeURIComponent(s)).toBe(createHmac('sha256', 'SEC123').update('1700000000000\nSEC123').digest('base64'));
    expect(s).not.toMatch(/[+/=]/);
  });
});

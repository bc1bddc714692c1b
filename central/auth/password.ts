/**
 * Password hashing. Dashboard and MQTT passwords are stored as `scrypt$N$r$p$salt$hash` (memory-hard,
 * N=2^15, r=8, p=1 → 32 MiB per hash). Mosquitto's own `$7$iterations$salt$hash` (PBKDF2-SHA512, what
 * `mosquitto_passwd` writes) is also accepted, so one hash can serve both brokers.
 */
import { pbkdf2, randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto';

const N = 2 ** 15;
const R = 8;
const P = 1;
const KEYLEN = 32;

function scryptAsync(password: string, salt: Buffer, keylen: number, opts: ScryptOptions): Promise<Buffer> {
  return new Promise((resolve, reject) => scrypt(password, salt, keylen, opts, (err, key) => (err ? reject(err) : resolve(key))));
}
function pbkdf2Async(password: string, salt: Buffer, iterations: number, keylen: number): Promise<Buffer> {
  return new Promise((resolve, reject) => pbkdf2(password, salt, iterations, keylen, 'sha512', (err, key) => (err ? reject(err) : resolve(key))));
}
const maxmem = (n: number, r: number) => 128 * n * r * 2 + 1024 * 1024;

export async function hashPassword(password: string, opts: { N?: number; r?: number; p?: number } = {}): Promise<string> {
  const n = opts.N ?? N, r = opts.r ?? R, p = opts.p ?? P;
  const salt = randomBytes(16);
  const key = await scryptAsync(password, salt, KEYLEN, { N: n, r, p, maxmem: maxmem(n, r) });
  return `scrypt$${n}$${r}$${p}$${salt.toString('base64')}$${key.toString('base64')}`;
}

/** Mosquitto 2 format (`mosquitto_passwd`): PBKDF2-SHA512, 101 iterations, 12-byte salt. */
export async function hashPasswordMosquitto(password: string, iterations = 101): Promise<string> {
  const salt = randomBytes(12);
  const key = await pbkdf2Async(password, salt, iterations, 64);
  return `$7$${iterations}$${salt.toString('base64')}$${key.toString('base64')}`;
}

/** Constant-time check; false (never throws) for a malformed hash. */
export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  try {
    if (stored.startsWith('scrypt$')) {
      const [, n, r, p, salt, hash] = stored.split('$');
      const expected = Buffer.from(hash ?? '', 'base64');
      const N2 = Number(n), r2 = Number(r), p2 = Number(p);
      if (!expected.length || !Number.isInteger(N2) || N2 < 2 || N2 > 2 ** 20 || !(r2 >= 1 && r2 <= 32) || !(p2 >= 1 && p2 <= 16)) return false;
      const key = await scryptAsync(password, Buffer.from(salt ?? '', 'base64'), expected.length, { N: N2, r: r2, p: p2, maxmem: maxmem(N2, r2) });
      return timingSafeEqual(key, expected);
    }
    if (stored.startsWith('$7$')) {
      const [, , it, salt, hash] = stored.split('$');
      const expected = Buffer.from(hash ?? '', 'base64');
      const iterations = Number(it);
      if (!expected.length || !Number.isInteger(iterations) || iterations < 1 || iterations > 1e7) return false;
      const key = await pbkdf2Async(password, Buffer.from(salt ?? '', 'base64'), iterations, expected.length);
      return timingSafeEqual(key, expected);
    }
    return false;
  } catch {
    return false;
  }
}

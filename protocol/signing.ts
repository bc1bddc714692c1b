/**
 * Voice commands are signed by central with Ed25519 and verified by the agent. The signed bytes are
 * the canonical JSON (sorted keys, no spaces) of the command without its `signature` field, so both
 * sides compute them identically whatever order the fields travelled in.
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto';

export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
}

export function generateSigningKeys(): { privateKeyPem: string; publicKeyPem: string } {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  return {
    privateKeyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
  };
}

export function signObject<T extends Record<string, unknown>>(unsigned: T, privateKeyPem: string | KeyObject): T & { signature: string } {
  const key = typeof privateKeyPem === 'string' ? createPrivateKey(privateKeyPem) : privateKeyPem;
  const signature = sign(null, Buffer.from(canonicalJson(unsigned)), key).toString('base64');
  return { ...unsigned, signature };
}

export function verifyObject(signed: Record<string, unknown> & { signature: string }, publicKeyPem: string | KeyObject): boolean {
  const { signature, ...rest } = signed;
  const key = typeof publicKeyPem === 'string' ? createPublicKey(publicKeyPem) : publicKeyPem;
  try {
    return verify(null, Buffer.from(canonicalJson(rest)), key, Buffer.from(signature, 'base64'));
  } catch {
    return false;
  }
}

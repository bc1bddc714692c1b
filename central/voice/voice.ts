/**
 * Voice commands to a site's speakers: authorise, build (id, nonce, issuedAt), sign with central's
 * Ed25519 key, publish QoS 1 to `<prefix>/site/<siteId>/voice/command`, record and audit-log.
 * The key pair is made on first start in `dataDir/voice-signing.key.pem` (+ `.pub.pem`, which the
 * agents' config points to).
 */
import { randomBytes, createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { childLog } from '../../common/log.js';
import { VoiceCommand } from '../../protocol/messages.js';
import { generateSigningKeys, signObject } from '../../protocol/signing.js';
import { topics } from '../../protocol/topics.js';
import type { Bus } from '../bus.js';
import type { CentralConfig } from '../config/schema.js';
import type { Store } from '../store/store.js';
import { CoreError, type UserRecord, type VoiceRecord } from '../store/types.js';
import type { VoiceRequest } from './types.js';

export type { VoiceRequest };
const log = childLog({ mod: 'central.voice' });

export function loadOrCreateKeys(dataDir: string): { privateKey: KeyObject; publicKeyPem: string; publicKeyFile: string } {
  const keyFile = path.join(dataDir, 'voice-signing.key.pem');
  const pubFile = path.join(dataDir, 'voice-signing.pub.pem');
  mkdirSync(dataDir, { recursive: true });
  if (!existsSync(keyFile)) {
    const k = generateSigningKeys();
    writeFileSync(keyFile, k.privateKeyPem, { mode: 0o600, flag: 'wx' });
    writeFileSync(pubFile, k.publicKeyPem);
    log.info({ keyFile, pubFile }, 'voice signing keys created');
  }
  const privateKey = createPrivateKey(readFileSync(keyFile));
  const publicKeyPem = createPublicKey(privateKey).export({ type: 'spki', format: 'pem' }).toString();
  if (!existsSync(pubFile) || readFileSync(pubFile, 'utf8') !== publicKeyPem) writeFileSync(pubFile, publicKeyPem);
  return { privateKey, publicKeyPem, publicKeyFile: pubFile };
}

export class VoiceService {
  readonly publicKeyPem: string;
  readonly publicKeyFile: string;
  private readonly privateKey: KeyObject;

  constructor(private readonly d: { store: Store; bus: Bus; config: CentralConfig; publish(topic: string, payload: string): Promise<void> }) {
    const k = loadOrCreateKeys(d.config.dataDir);
    this.privateKey = k.privateKey;
    this.publicKeyPem = k.publicKeyPem;
    this.publicKeyFile = k.publicKeyFile;
  }

  presets(): { id: string; text: string }[] {
    return this.d.config.voice.presets.map((p) => ({ ...p }));
  }

  /** Inspector/admin of the site's district, or the site's manager. Throws CoreError. */
  async send(user: UserRecord, req: VoiceRequest, meta: { ip?: string } = {}): Promise<VoiceRecord> {
    const { store } = this.d;
    if (!req || typeof req.siteId !== 'string') throw new CoreError('invalid', 'siteId is required', 'siteId');
    const scope = await store.scopeOf(user);
    if (!(await store.siteInScope(scope, req.siteId))) throw new CoreError('not_found', `no site "${req.siteId}"`, 'siteId');
    if (!(user.role === 'admin' || user.role === 'inspector' || user.role === 'canteen_manager')) {
      throw new CoreError('forbidden', 'voice commands are for inspectors, admins and the site\'s canteen manager');
    }
    return this.issue(user.id, req, meta.ip);
  }

  /** Without the user check: central's own reminders (autoReminder). */
  async issue(issuedBy: string, req: VoiceRequest, ip?: string): Promise<VoiceRecord> {
    const { store, bus } = this.d;
    const cameraId = req.cameraId ?? null;
    if (cameraId !== null && !(await store.cameraExists(req.siteId, cameraId))) throw new CoreError('invalid', `site "${req.siteId}" has no camera "${cameraId}"`, 'cameraId');
    let content: VoiceCommand['content'];
    let text: string | null = null;
    if (req.type === 'text') {
      text = (req.text ?? '').trim();
      if (!text || text.length > 500) throw new CoreError('invalid', 'text: 1 to 500 characters', 'text');
      content = { type: 'text', text };
    } else if (req.type === 'preset') {
      const p = this.d.config.voice.presets.find((x) => x.id === req.presetId);
      if (!p) throw new CoreError('invalid', `no voice preset "${req.presetId}" (have: ${this.d.config.voice.presets.map((x) => x.id).join(', ')})`, 'presetId');
      text = p.text;
      content = { type: 'preset', presetId: p.id, text: p.text };
    } else if (req.type === 'audio') {
      const mime = req.mime;
      if (mime !== 'audio/wav' && mime !== 'audio/webm' && mime !== 'audio/ogg') throw new CoreError('invalid', 'mime: audio/wav, audio/webm or audio/ogg', 'mime');
      const b64 = req.audioBase64 ?? '';
      if (!b64 || b64.length > 4_000_000 || !/^[A-Za-z0-9+/]+={0,2}$/.test(b64)) throw new CoreError('invalid', 'audioBase64: base64 audio of at most ~3 MB', 'audioBase64');
      content = { type: 'audio', mime, dataBase64: b64 };
    } else {
      throw new CoreError('invalid', `type must be "text", "preset" or "audio" (got ${JSON.stringify((req as { type?: unknown }).type)})`, 'type');
    }
    const issuedAt = Date.now();
    const unsigned = {
      v: 1 as const,
      id: `vc-${issuedAt.toString(36)}-${randomBytes(8).toString('hex')}`,
      siteId: req.siteId,
      cameraId,
      issuedBy,
      issuedAt,
      nonce: randomBytes(18).toString('base64url'),
      content,
    };
    const cmd = VoiceCommand.parse(signObject(unsigned, this.privateKey));
    const rec: VoiceRecord = { id: cmd.id, siteId: cmd.siteId, cameraId, type: content.type, text, issuedBy, issuedAt, state: 'sent', stateAt: issuedAt, error: null };
    // recorded before it is published: the site's status may come back before an insert after it
    await store.insertVoice(rec);
    try {
      await this.d.publish(topics(this.d.config.topicPrefix).voiceCommand(req.siteId), JSON.stringify(cmd));
    } catch (err) {
      const why = `broker did not accept it (${(err as Error).message})`;
      await store.updateVoice(cmd.id, cmd.siteId, 'failed', Date.now(), why)
        .catch((e: Error) => log.error({ id: cmd.id, err: e.message }, 'voice command not marked failed'));
      throw new Error(`voice command to site "${req.siteId}" not sent: ${why}`);
    }
    await store.audit({ userId: issuedBy, action: 'voice.send', target: cmd.id, detail: `${content.type}${text ? `: ${text}` : ''}${cameraId ? ` @ ${cameraId}` : ''}`, ip, siteId: req.siteId });
    bus.emit('voice', rec);
    log.info({ id: cmd.id, siteId: cmd.siteId, issuedBy }, 'voice command sent');
    return rec;
  }
}

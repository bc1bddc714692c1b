/**
 * Voice on the agent: plays commands that central signed, and the box's own automatic reminders.
 *
 * A command is played only when ALL of these hold (checked in this order, first failure = reason):
 *  1. it parses as a VoiceCommand;  2. its siteId is ours;  3. its Ed25519 signature verifies with
 *  central's public key;  4. issuedAt is within ±maxAgeSec of our clock;  5. its nonce was never
 *  seen (nonces persisted in voice.sqlite until they could no longer pass check 4).
 * A rejected command is never played; the reply is VoiceStatus `rejected` with the reason when the
 * command id is readable. Playback is serialised (one at a time) with a bounded queue.
 *
 * Automatic reminders are rate-limited per SITE, not per camera: a kitchen has one set of speakers
 * (a command's cameraId null = every speaker), and two cameras seeing the same worker must not make
 * the box nag twice.
 */
import { createPublicKey, type KeyObject } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { childLog } from '../../common/log.js';
import { VoiceCommand, formatIssues, type VoiceStatus } from '../../protocol/messages.js';
import { verifyObject } from '../../protocol/signing.js';
import type { ViolationKind } from '../../protocol/violations.js';
import type { SiteConfig } from '../config/schema.js';
import { decodeAudio, synthesizeSpeech } from './audio.js';
import { NonceStore } from './nonces.js';
import { createSink, type Sink, type SinkConfig } from './sink.js';

export class VoiceConfigError extends Error {
  override name = 'VoiceConfigError';
}

export interface AutoReminderOptions {
  enabled: boolean;
  text: string;
  minIntervalSec: number;
  kinds: readonly ViolationKind[];
}

export interface VoiceOptions {
  siteId: string;
  /** Central's Ed25519 public key (PEM text or KeyObject). */
  centralPublicKey: string | KeyObject;
  sink: SinkConfig | Sink;
  /** Replay window: accept issuedAt within ±maxAgeSec of now. */
  maxAgeSec: number;
  /** Directory for voice.sqlite (seen nonces): the site's storage.dir. */
  stateDir: string;
  autoReminder?: AutoReminderOptions;
  /** Commands waiting to play beyond the one playing; more are answered `failed`. Default 8. */
  queueLimit?: number;
  /** espeak-ng voice; default Mandarin `cmn-latn-pinyin`. */
  espeakVoice?: string;
  now?: () => number;
}

export type ReminderResult =
  | { played: true; at: number; target: string }
  | { played: false; reason: 'disabled' | 'kind_not_listed' | 'rate_limited' | 'queue_full' | 'failed' | 'closed'; error?: string };

/** Verification outcome of a raw payload (exported for tests and central-side tooling). */
export type Verdict = { ok: true; command: VoiceCommand } | { ok: false; commandId: string | null; reason: string };

export class VoiceAgent {
  private readonly log;
  private readonly key: KeyObject;
  private readonly sink: Sink;
  private readonly nonces: NonceStore;
  private readonly workDir: string;
  private readonly now: () => number;
  private readonly queueLimit: number;
  private chain: Promise<unknown> = Promise.resolve();
  private queued = 0;
  private lastReminderAt = -Infinity;
  private reminderWav: string | null = null;
  private closed = false;
  private seq = 0;

  constructor(private readonly opts: VoiceOptions) {
    this.log = childLog({ module: 'voice', siteId: opts.siteId });
    this.key = typeof opts.centralPublicKey === 'string' ? parsePublicKey(opts.centralPublicKey, 'centralPublicKey') : opts.centralPublicKey;
    if (this.key.asymmetricKeyType !== 'ed25519') throw new VoiceConfigError(`centralPublicKey: expected an Ed25519 public key, got ${this.key.asymmetricKeyType}`);
    this.sink = 'play' in opts.sink ? opts.sink : createSink(opts.sink);
    this.nonces = new NonceStore(opts.stateDir);
    this.workDir = mkdtempSync(path.join(tmpdir(), 'bk-voice-'));
    this.now = opts.now ?? Date.now;
    this.queueLimit = opts.queueLimit ?? 8;
  }

  /** Check a raw command payload without playing it (the nonce is consumed when it passes). */
  verify(payload: Buffer | string): Verdict {
    const text = payload.toString();
    const parsed = parseLoose(text, 4_200_000);
    const rawId = typeof parsed?.id === 'string' && /^[A-Za-z0-9_-]{1,64}$/.test(parsed.id) ? parsed.id : null;
    if (text.length > 4_200_000) return { ok: false, commandId: rawId, reason: `command too large (${text.length} bytes)` };
    if (!parsed) return { ok: false, commandId: null, reason: 'command is not a JSON object' };
    const r = VoiceCommand.safeParse(parsed);
    if (!r.success) return { ok: false, commandId: rawId, reason: `invalid command: ${formatIssues(r.error.issues)}` };
    const cmd = r.data;
    if (cmd.siteId !== this.opts.siteId) return { ok: false, commandId: cmd.id, reason: `command is for site "${cmd.siteId}", this is site "${this.opts.siteId}"` };
    if (!verifyObject(parsed as Record<string, unknown> & { signature: string }, this.key)) {
      return { ok: false, commandId: cmd.id, reason: "signature does not verify with central's public key (tampered, or signed with another key)" };
    }
    const now = this.now();
    const skewSec = (now - cmd.issuedAt) / 1000;
    if (Math.abs(skewSec) > this.opts.maxAgeSec) {
      return {
        ok: false,
        commandId: cmd.id,
        reason: skewSec > 0
          ? `command is stale: issuedAt is ${skewSec.toFixed(0)} s ago (max ${this.opts.maxAgeSec} s)`
          : `command is from the future: issuedAt is ${(-skewSec).toFixed(0)} s ahead of this box's clock (max ${this.opts.maxAgeSec} s)`,
      };
    }
    const expiresAt = cmd.issuedAt + this.opts.maxAgeSec * 1000 + 60_000;
    if (!this.nonces.claim(cmd.nonce, cmd.id, expiresAt, now)) {
      const first = this.nonces.seenCommandId(cmd.nonce);
      return { ok: false, commandId: cmd.id, reason: `nonce already used${first ? ` by command "${first}"` : ''}: replay (or a duplicate delivery) refused` };
    }
    return { ok: true, command: cmd };
  }

  /**
   * Handle one raw voice/command payload: verify, then play. Resolves with the VoiceStatus to send
   * back (null only when the command id is unreadable). Never throws.
   */
  async handleCommand(payload: Buffer | string): Promise<VoiceStatus | null> {
    if (this.closed) return null;
    const v = this.verify(payload);
    if (!v.ok) {
      this.log.warn({ commandId: v.commandId, reason: v.reason }, 'voice command rejected');
      return v.commandId ? this.status(v.commandId, 'rejected', v.reason) : null;
    }
    const cmd = v.command;
    this.log.info({ commandId: cmd.id, issuedBy: cmd.issuedBy, cameraId: cmd.cameraId, type: cmd.content.type }, 'voice command accepted');
    if (this.queued > this.queueLimit) {
      return this.status(cmd.id, 'failed', `playback queue full (${this.queueLimit} waiting)`);
    }
    try {
      const target = await this.enqueue(async () => {
        const jobDir = path.join(this.workDir, `${cmd.id}-${++this.seq}`);
        await mkdir(jobDir);
        try {
          const wav = path.join(jobDir, 'out.wav');
          const c = cmd.content;
          if (c.type === 'audio') await decodeAudio(c.mime, c.dataBase64, wav, path.join(jobDir, 'input'));
          else await synthesizeSpeech(c.text, wav, { voice: this.opts.espeakVoice });
          return await this.sink.play(wav, cmd.id);
        } finally {
          await rm(jobDir, { recursive: true, force: true });
        }
      });
      this.log.info({ commandId: cmd.id, target }, 'voice command played');
      return this.status(cmd.id, 'played', null);
    } catch (err) {
      const msg = (err as Error).message;
      this.log.error({ commandId: cmd.id, err: msg, sink: this.sink.description }, 'voice command failed');
      return this.status(cmd.id, 'failed', msg);
    }
  }

  /**
   * The pipeline calls this when it raises a violation. Plays `autoReminder.text` when reminders are
   * enabled, the kind is listed, and no reminder played on this site within minIntervalSec.
   * The rate-limit decision is synchronous (concurrent calls cannot both pass).
   */
  remind(kind: ViolationKind, cameraId?: string): Promise<ReminderResult> {
    const ar = this.opts.autoReminder;
    if (this.closed) return Promise.resolve({ played: false, reason: 'closed' });
    if (!ar?.enabled) return Promise.resolve({ played: false, reason: 'disabled' });
    if (!ar.kinds.includes(kind)) return Promise.resolve({ played: false, reason: 'kind_not_listed' });
    const now = this.now();
    if (now - this.lastReminderAt < ar.minIntervalSec * 1000) return Promise.resolve({ played: false, reason: 'rate_limited' });
    if (this.queued > this.queueLimit) return Promise.resolve({ played: false, reason: 'queue_full' });
    this.lastReminderAt = now;
    return this.enqueue(async () => {
      if (!this.reminderWav) {
        const wav = path.join(this.workDir, 'reminder.wav');
        await synthesizeSpeech(ar.text, wav, { voice: this.opts.espeakVoice });
        this.reminderWav = wav;
      }
      return this.sink.play(this.reminderWav, `reminder-${kind}`);
    }).then(
      (target): ReminderResult => {
        this.log.info({ kind, cameraId, target }, 'automatic reminder played');
        return { played: true, at: this.now(), target };
      },
      (err: Error): ReminderResult => {
        this.reminderWav = null;
        this.log.error({ kind, cameraId, err: err.message, sink: this.sink.description }, 'automatic reminder failed');
        return { played: false, reason: 'failed', error: err.message };
      },
    );
  }

  /** Wait for queued playback, then release the nonce store and temp files. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.chain.catch(() => {});
    this.nonces.close();
    rmSync(this.workDir, { recursive: true, force: true });
  }

  private enqueue<T>(job: () => Promise<T>): Promise<T> {
    this.queued++;
    const p = this.chain.then(job);
    this.chain = p.catch(() => {}).finally(() => this.queued--);
    return p;
  }

  /** Commands by outcome since start (for /metrics). */
  readonly outcomes: Record<VoiceStatus['state'], number> = { played: 0, rejected: 0, failed: 0 };

  private status(commandId: string, state: VoiceStatus['state'], error: string | null): VoiceStatus {
    this.outcomes[state]++;
    return { v: 1, commandId, siteId: this.opts.siteId, state, at: this.now(), error: error === null ? null : error.slice(0, 500) };
  }
}

/** Build the voice agent from the site config; null when voice is disabled. Errors name the config field. */
export function voiceFromConfig(cfg: SiteConfig, opts: { now?: () => number } = {}): VoiceAgent | null {
  const v = cfg.voice;
  if (!v.enabled) return null;
  if (!v.centralPublicKeyFile) throw new VoiceConfigError('voice.centralPublicKeyFile: required when voice.enabled is true (PEM file with central\'s Ed25519 public key)');
  let pem: string;
  try {
    pem = readFileSync(v.centralPublicKeyFile, 'utf8');
  } catch (err) {
    throw new VoiceConfigError(`voice.centralPublicKeyFile: cannot read ${v.centralPublicKeyFile}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  const key = parsePublicKey(pem, `voice.centralPublicKeyFile (${v.centralPublicKeyFile})`);
  return new VoiceAgent({
    siteId: cfg.site.id,
    centralPublicKey: key,
    sink: v.sink,
    maxAgeSec: v.maxAgeSec,
    stateDir: cfg.storage.dir,
    autoReminder: v.autoReminder,
    ...(opts.now ? { now: opts.now } : {}),
  });
}

function parsePublicKey(pem: string, field: string): KeyObject {
  let key: KeyObject;
  try {
    key = createPublicKey(pem);
  } catch (err) {
    throw new VoiceConfigError(`${field}: not a PEM public key: ${(err as Error).message}`);
  }
  if (key.asymmetricKeyType !== 'ed25519') throw new VoiceConfigError(`${field}: expected an Ed25519 public key, got ${key.asymmetricKeyType}`);
  return key;
}

function parseLoose(text: string, max: number): Record<string, unknown> | null {
  if (text.length > max) {
    const m = /"id"\s*:\s*"([A-Za-z0-9_-]{1,64})"/.exec(text.slice(0, 2000));
    return m ? { id: m[1] } : null;
  }
  try {
    const v: unknown = JSON.parse(text);
    return v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { VoiceAgent, VoiceConfigError, voiceFromConfig } from '../../agent/voice/voice.js';
import { parseWav } from '../../agent/voice/wav.js';
import { SiteConfigSchema } from '../../agent/config/schema.js';
import { generateSigningKeys, signObject } from '../../protocol/signing.js';
import type { VoiceCommand } from '../../protocol/messages.js';

const central = generateSigningKeys();
const intruder = generateSigningKeys();
let dir: string;
let sinkDir: string;
const agents: VoiceAgent[] = [];

beforeEach(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'voice-test-'));
  sinkDir = path.join(dir, 'played');
});
afterEach(async () => {
  for (const a of agents.splice(0)) await a.close();
  rmSync(dir, { recursive: true, force: true });
});

function agent(extra: Partial<ConstructorParameters<typeof VoiceAgent>[0]> = {}): VoiceAgent {
  const a = new VoiceAgent({ siteId: 'site1', centralPublicKey: central.publicKeyPem, sink: { type: 'file', dir: sinkDir }, maxAgeSec: 120, stateDir: dir, ...extra });
  agents.push(a);
  return a;
}

function command(over: Partial<Omit<VoiceCommand, 'signature'>> = {}, key = central.privateKeyPem): VoiceCommand {
  const unsigned: Omit<VoiceCommand, 'signature'> = {
    v: 1,
    id: `cmd-${randomBytes(4).toString('hex')}`,
    siteId: 'site1',
    cameraId: null,
    issuedBy: 'inspector-li',
    issuedAt: Date.now(),
    nonce: randomBytes(16).toString('base64url'),
    content: { type: 'text', text: '请戴好口罩和帽子' },
    ...over,
  };
  return signObject(unsigned, key);
}

function playedFiles(): string[] {
  try {
    return readdirSync(sinkDir);
  } catch {
    return [];
  }
}

function soxDuration(file: string): number {
  return Number(execFileSync('soxi', ['-D', file], { encoding: 'utf8' }).trim());
}

describe('VoiceAgent commands', () => {
  it('plays a validly signed Chinese text command through espeak-ng into the file sink', async () => {
    const a = agent();
    const cmd = command();
    const status = await a.handleCommand(Buffer.from(JSON.stringify(cmd)));
    expect(status).toMatchObject({ v: 1, commandId: cmd.id, siteId: 'site1', state: 'played', error: null });
    const files = playedFiles();
    expect(files).toHaveLength(1);
    expect(files[0]).toMatch(new RegExp(`^\\d+-${cmd.id}\\.wav$`));
    const file = path.join(sinkDir, files[0]!);
    const buf = readFileSync(file);
    expect(buf.toString('ascii', 0, 4)).toBe('RIFF');
    const info = parseWav(buf);
    expect(info.format).toBe(1);
    expect(info.durationSec).toBeGreaterThan(0.3);
    expect(soxDuration(file)).toBeCloseTo(info.durationSec, 1); // sox agrees with our header reader
  });

  it('a preset is spoken from its text', async () => {
    const a = agent();
    const status = await a.handleCommand(JSON.stringify(command({ content: { type: 'preset', presetId: 'wash_hands', text: '请洗手' } })));
    expect(status?.state).toBe('played');
    expect(parseWav(readFileSync(path.join(sinkDir, playedFiles()[0]!))).durationSec).toBeGreaterThan(0.3);
  });

  const rejections: [string, () => unknown, RegExp][] = [
    ['tampered content', () => ({ ...command(), content: { type: 'text', text: '全体下班' } }), /signature does not verify/],
    ['wrong key', () => command({}, intruder.privateKeyPem), /signature does not verify/],
    ['stale timestamp', () => command({ issuedAt: Date.now() - 121_000 }), /stale: issuedAt is 121 s ago \(max 120 s\)/],
    ['future timestamp', () => command({ issuedAt: Date.now() + 600_000 }), /from the future/],
    ['wrong site', () => command({ siteId: 'site2' }), /for site "site2", this is site "site1"/],
    ['tampered site id', () => ({ ...command(), siteId: 'site1', cameraId: 'cam9' }), /signature/],
    ['missing signature', () => { const { signature: _s, ...rest } = command(); return rest; }, /invalid command: signature/],
    ['bad field', () => command({ content: { type: 'text', text: '' } }), /invalid command: content\.text/],
  ];
  for (const [name, make, reason] of rejections) {
    it(`rejects ${name} and plays nothing`, async () => {
      const a = agent();
      const cmd = make() as { id: string };
      const status = await a.handleCommand(JSON.stringify(cmd));
      expect(status).toMatchObject({ commandId: cmd.id, state: 'rejected' });
      expect(status!.error).toMatch(reason);
      expect(playedFiles()).toEqual([]);
    });
  }

  it('rejects a replayed nonce, also after a restart', async () => {
    const a = agent();
    const cmd = command();
    expect((await a.handleCommand(JSON.stringify(cmd)))?.state).toBe('played');
    const again = await a.handleCommand(JSON.stringify(cmd));
    expect(again).toMatchObject({ state: 'rejected' });
    expect(again!.error).toMatch(/nonce already used by command "cmd-/);
    // a different command that reuses the nonce (signed by central, so only the nonce is the problem)
    const reuse = command({ nonce: cmd.nonce });
    expect((await a.handleCommand(JSON.stringify(reuse)))?.state).toBe('rejected');
    await a.close();
    agents.length = 0;
    const b = agent(); // same stateDir: voice.sqlite remembers
    const afterRestart = await b.handleCommand(JSON.stringify(cmd));
    expect(afterRestart).toMatchObject({ state: 'rejected' });
    expect(playedFiles()).toHaveLength(1);
  });

  it('answers nothing for garbage without an id, rejected for garbage with one', async () => {
    const a = agent();
    expect(await a.handleCommand('not json')).toBeNull();
    expect(await a.handleCommand('[1,2]')).toBeNull();
    expect(await a.handleCommand(JSON.stringify({ id: 'x1', hello: 1 }))).toMatchObject({ commandId: 'x1', state: 'rejected' });
  });

  it('plays base64 WAV audio as is and converts ogg with ffmpeg', async () => {
    const a = agent();
    const src = path.join(dir, 'src.wav');
    execFileSync('espeak-ng', ['-v', 'cmn-latn-pinyin', '-w', src, '你好']);
    const wav = readFileSync(src);
    const s1 = await a.handleCommand(JSON.stringify(command({ content: { type: 'audio', mime: 'audio/wav', dataBase64: wav.toString('base64') } })));
    expect(s1?.state).toBe('played');
    const ogg = path.join(dir, 'src.ogg');
    execFileSync('ffmpeg', ['-loglevel', 'error', '-y', '-i', src, '-c:a', 'libvorbis', ogg]);
    const s2 = await a.handleCommand(JSON.stringify(command({ content: { type: 'audio', mime: 'audio/ogg', dataBase64: readFileSync(ogg).toString('base64') } })));
    expect(s2).toMatchObject({ state: 'played', error: null });
    const durations = playedFiles().sort().map((f) => parseWav(readFileSync(path.join(sinkDir, f))).durationSec);
    expect(durations).toHaveLength(2);
    expect(durations[1]).toBeCloseTo(durations[0]!, 0);
    const bad = await a.handleCommand(JSON.stringify(command({ content: { type: 'audio', mime: 'audio/webm', dataBase64: Buffer.from('not webm at all').toString('base64') } })));
    expect(bad).toMatchObject({ state: 'failed' });
    expect(bad!.error).toMatch(/cannot convert audio\/webm audio to WAV: ffmpeg failed/);
    const badWav = await a.handleCommand(JSON.stringify(command({ content: { type: 'audio', mime: 'audio/wav', dataBase64: Buffer.from('RIFFxxxxWAVE').toString('base64') } })));
    expect(badWav!.error).toMatch(/content \(audio\/wav\): WAV file has no fmt chunk/);
  });

  it('reports a missing aplay (ALSA sink) and a failing player command as failed', async () => {
    const alsa = agent({ sink: { type: 'alsa', device: 'hw:9' } });
    const st = await alsa.handleCommand(JSON.stringify(command()));
    expect(st?.state).toBe('failed');
    // aplay is not installed on the build machine; where it is, hw:9 does not exist
    expect(st!.error).toMatch(/aplay not found \(install alsa-utils to play on ALSA device "hw:9"\)|aplay failed/);
    const bad = agent({ sink: { type: 'command', command: ['sh', '-c', 'echo "speaker unplugged" >&2; exit 3'] } });
    const st2 = await bad.handleCommand(JSON.stringify(command()));
    expect(st2).toMatchObject({ state: 'failed' });
    expect(st2!.error).toMatch(/sh failed \(exit code 3\): speaker unplugged/);
  });

  it('the command sink gets the WAV path appended', async () => {
    const copyTo = path.join(dir, 'copied.wav');
    const a = agent({ sink: { type: 'command', command: ['sh', '-c', `cp "$0" ${copyTo}`] } });
    expect((await a.handleCommand(JSON.stringify(command())))?.state).toBe('played');
    expect(parseWav(readFileSync(copyTo)).durationSec).toBeGreaterThan(0.3);
  });

  it('serialises playback and bounds the queue', async () => {
    const log = path.join(dir, 'order.log');
    writeFileSync(log, '');
    // each "playback" appends start/end markers; overlap would interleave them
    const a = agent({ queueLimit: 2, sink: { type: 'command', command: ['sh', '-c', `echo start >> ${log}; sleep 0.2; echo end >> ${log}`] } });
    const results = await Promise.all(Array.from({ length: 5 }, () => a.handleCommand(JSON.stringify(command({ content: { type: 'text', text: '好' } })))));
    const states = results.map((r) => r?.state);
    expect(states.filter((s) => s === 'played')).toHaveLength(3); // one playing + 2 waiting
    expect(results.filter((r) => r?.state === 'failed').every((r) => /playback queue full/.test(r!.error!))).toBe(true);
    expect(readFileSync(log, 'utf8').trim().split('\n')).toEqual(['start', 'end', 'start', 'end', 'start', 'end']);
  });
});

describe('automatic reminder', () => {
  it('plays the configured text for listed kinds, at most once per interval per site', async () => {
    let t = 1_000_000;
    const a = agent({ now: () => t, autoReminder: { enabled: true, text: '请佩戴好帽子和口罩', minIntervalSec: 120, kinds: ['no_hat', 'no_mask'] } });
    const r1 = await a.remind('no_mask', 'cam1');
    expect(r1).toMatchObject({ played: true });
    expect(await a.remind('no_hat', 'cam2')).toEqual({ played: false, reason: 'rate_limited' }); // per site, not per camera
    expect(await a.remind('rodent', 'cam1')).toEqual({ played: false, reason: 'kind_not_listed' });
    t += 120_000;
    expect(await a.remind('no_hat', 'cam2')).toMatchObject({ played: true });
    // Both kinds played once (names start with Date.now(): both may carry the same millisecond).
    const files = playedFiles();
    expect(files.map((f) => f.replace(/^\d+-/, '')).sort()).toEqual(['reminder-no_hat.wav', 'reminder-no_mask.wav']);
    const mask = files.find((f) => f.endsWith('-reminder-no_mask.wav'))!;
    expect(parseWav(readFileSync(path.join(sinkDir, mask))).durationSec).toBeGreaterThan(0.5);
  });

  it('is off unless enabled', async () => {
    const a = agent({ autoReminder: { enabled: false, text: 'x', minIntervalSec: 0, kinds: ['no_hat'] } });
    expect(await a.remind('no_hat')).toEqual({ played: false, reason: 'disabled' });
  });
});

describe('voiceFromConfig', () => {
  const base = { site: { id: 'site1', name: '一中食堂' }, cameras: [{ id: 'cam1', name: '后厨', url: 'rtsp://x/1' }] };
  it('is null when disabled and names the missing or bad key file', () => {
    expect(voiceFromConfig(SiteConfigSchema.parse(base))).toBeNull();
    const cfg = (voice: object) => SiteConfigSchema.parse({ ...base, storage: { dir }, voice: { enabled: true, sink: { type: 'file', dir: sinkDir }, ...voice } });
    expect(() => voiceFromConfig(cfg({}))).toThrow(/voice\.centralPublicKeyFile: required/);
    expect(() => voiceFromConfig(cfg({ centralPublicKeyFile: path.join(dir, 'nope.pem') }))).toThrow(/voice\.centralPublicKeyFile: cannot read .*nope\.pem: ENOENT/);
    const junk = path.join(dir, 'junk.pem');
    writeFileSync(junk, 'hello');
    expect(() => voiceFromConfig(cfg({ centralPublicKeyFile: junk }))).toThrow(VoiceConfigError);
    const good = path.join(dir, 'central.pub.pem');
    writeFileSync(good, central.publicKeyPem);
    const a = voiceFromConfig(cfg({ centralPublicKeyFile: good }));
    expect(a).toBeInstanceOf(VoiceAgent);
    agents.push(a!);
  });
});

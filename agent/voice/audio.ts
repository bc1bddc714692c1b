/** Turn command content into a playable WAV file: espeak-ng for text, base64 decode (+ ffmpeg) for audio. */
import { readFile, writeFile } from 'node:fs/promises';
import { runProgram } from './exec.js';
import { parseWav, type WavInfo } from './wav.js';

export const ESPEAK_MANDARIN = 'cmn-latn-pinyin';

/** Speak `text` (Mandarin by default) into `outWav` with espeak-ng; the text goes via stdin, never argv. */
export async function synthesizeSpeech(text: string, outWav: string, opts: { voice?: string; timeoutMs?: number } = {}): Promise<WavInfo> {
  if (!text.trim()) throw new Error('text to speak is empty');
  await runProgram('espeak-ng', ['-v', opts.voice ?? ESPEAK_MANDARIN, '-w', outWav, '--stdin'], {
    input: text,
    timeoutMs: opts.timeoutMs ?? 30_000,
    hint: 'install espeak-ng to speak text commands',
  });
  return checkWav(outWav, 'espeak-ng output');
}

export type AudioMime = 'audio/wav' | 'audio/webm' | 'audio/ogg';

/**
 * Decode base64 audio into `outWav`. PCM WAV is used as is; anything else (webm, ogg, a WAV codec we
 * do not read) is converted by ffmpeg to 16-bit PCM WAV. `scratch` is a path prefix for the input file.
 */
export async function decodeAudio(mime: AudioMime, dataBase64: string, outWav: string, scratch: string, opts: { timeoutMs?: number } = {}): Promise<WavInfo> {
  const compact = dataBase64.replace(/\s+/g, '');
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(compact) || compact.length % 4 === 1) throw new Error('content.dataBase64 is not valid base64');
  const bytes = Buffer.from(compact, 'base64');
  if (bytes.length === 0) throw new Error('content.dataBase64 decodes to no bytes');
  if (mime === 'audio/wav') {
    let info: WavInfo | null = null;
    try {
      info = parseWav(bytes);
    } catch (err) {
      throw new Error(`content (audio/wav): ${(err as Error).message}`);
    }
    if (info.format === 1 && info.durationSec > 0) {
      await writeFile(outWav, bytes);
      return info;
    }
  }
  const ext = mime === 'audio/wav' ? 'wav' : mime === 'audio/webm' ? 'webm' : 'ogg';
  const input = `${scratch}.in.${ext}`;
  await writeFile(input, bytes);
  try {
    await runProgram('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-nostdin', '-y', '-i', input, '-vn', '-acodec', 'pcm_s16le', '-ac', '1', '-ar', '22050', outWav], {
      timeoutMs: opts.timeoutMs ?? 30_000,
      hint: 'install ffmpeg to play webm/ogg audio',
    });
  } catch (err) {
    throw new Error(`cannot convert ${mime} audio to WAV: ${(err as Error).message}`);
  }
  return checkWav(outWav, `${mime} converted by ffmpeg`);
}

async function checkWav(file: string, what: string): Promise<WavInfo> {
  const info = parseWav(await readFile(file));
  if (!(info.durationSec > 0)) throw new Error(`${what} is empty (0 s of audio)`);
  return info;
}

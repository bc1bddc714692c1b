/** Minimal RIFF/WAVE header reader: enough to check a file is real audio and how long it is. */
export interface WavInfo {
  /** 1 = PCM, 3 = IEEE float, 0xfffe = extensible */
  format: number;
  channels: number;
  sampleRate: number;
  bitsPerSample: number;
  dataBytes: number;
  durationSec: number;
}

export class WavError extends Error {
  override name = 'WavError';
}

/** Parse a WAV buffer's header; throws WavError saying what is wrong. */
export function parseWav(buf: Buffer): WavInfo {
  if (buf.length < 12 || buf.toString('ascii', 0, 4) !== 'RIFF' || buf.toString('ascii', 8, 12) !== 'WAVE') {
    throw new WavError('not a WAV file (no RIFF/WAVE header)');
  }
  let off = 12;
  let fmt: Omit<WavInfo, 'dataBytes' | 'durationSec'> | null = null;
  while (off + 8 <= buf.length) {
    const id = buf.toString('ascii', off, off + 4);
    let size = buf.readUInt32LE(off + 4);
    const body = off + 8;
    if (id === 'fmt ') {
      if (size < 16 || body + 16 > buf.length) throw new WavError('WAV fmt chunk truncated');
      fmt = {
        format: buf.readUInt16LE(body),
        channels: buf.readUInt16LE(body + 2),
        sampleRate: buf.readUInt32LE(body + 4),
        bitsPerSample: buf.readUInt16LE(body + 14),
      };
    } else if (id === 'data') {
      if (!fmt) throw new WavError('WAV data chunk before fmt chunk');
      // streaming writers (ffmpeg to a pipe, espeak) may leave 0 / 0xffffffff: use what is there
      if (size === 0 || size === 0xffffffff || body + size > buf.length) size = buf.length - body;
      const bytesPerSec = fmt.sampleRate * fmt.channels * (fmt.bitsPerSample / 8);
      if (!bytesPerSec) throw new WavError(`WAV header has no usable rate (rate ${fmt.sampleRate}, channels ${fmt.channels}, bits ${fmt.bitsPerSample})`);
      return { ...fmt, dataBytes: size, durationSec: size / bytesPerSec };
    }
    off = body + size + (size & 1);
  }
  throw new WavError(fmt ? 'WAV file has no data chunk' : 'WAV file has no fmt chunk');
}

/** Where voice audio goes: a directory (tests, recording), an external player command, or ALSA via aplay. */
import { copyFile, mkdir, rename } from 'node:fs/promises';
import path from 'node:path';
import { runProgram } from './exec.js';

export type SinkConfig = { type: 'file'; dir: string } | { type: 'command'; command: string[] } | { type: 'alsa'; device: string };

export interface Sink {
  readonly description: string;
  /** Play (or store) a WAV file; resolves when done; rejects with a clear error. Returns where it went. */
  play(wavFile: string, label: string, timeoutMs?: number): Promise<string>;
}

export function createSink(cfg: SinkConfig): Sink {
  switch (cfg.type) {
    case 'file':
      return {
        description: `file sink ${cfg.dir}`,
        async play(wav, label) {
          await mkdir(cfg.dir, { recursive: true });
          const safe = label.replace(/[^A-Za-z0-9_-]/g, '_').slice(0, 80);
          const dest = path.join(cfg.dir, `${Date.now()}-${safe}.wav`);
          // copy under a temporary name, then rename: readers never see half a file
          await copyFile(wav, `${dest}.part`);
          await rename(`${dest}.part`, dest);
          return dest;
        },
      };
    case 'command': {
      const [cmd, ...args] = cfg.command;
      if (!cmd) throw new Error('voice.sink.command: expected at least the program to run');
      return {
        description: `command sink ${cfg.command.join(' ')}`,
        async play(wav, _label, timeoutMs = 120_000) {
          await runProgram(cmd, [...args, wav], { timeoutMs, hint: 'voice.sink.command names a program that is not installed' });
          return cmd;
        },
      };
    }
    case 'alsa':
      return {
        description: `ALSA device ${cfg.device}`,
        async play(wav, _label, timeoutMs = 120_000) {
          await runProgram('aplay', ['-q', '-D', cfg.device, wav], {
            timeoutMs,
            hint: `install alsa-utils to play on ALSA device "${cfg.device}"`,
          });
          return `alsa:${cfg.device}`;
        },
      };
  }
}

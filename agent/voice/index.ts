export { VoiceAgent, VoiceConfigError, voiceFromConfig, type AutoReminderOptions, type ReminderResult, type Verdict, type VoiceOptions } from './voice.js';
export { createSink, type Sink, type SinkConfig } from './sink.js';
export { synthesizeSpeech, decodeAudio, ESPEAK_MANDARIN, type AudioMime } from './audio.js';
export { parseWav, WavError, type WavInfo } from './wav.js';
export { NonceStore } from './nonces.js';

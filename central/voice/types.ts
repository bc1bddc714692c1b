/** What a user asks for (POST /api/voice). */
export interface VoiceRequest {
  siteId: string;
  /** Omit or null: every speaker of the site. */
  cameraId?: string | null;
  type: 'text' | 'preset' | 'audio';
  text?: string;
  presetId?: string;
  audioBase64?: string;
  mime?: 'audio/wav' | 'audio/webm' | 'audio/ogg';
}

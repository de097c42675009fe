/** Audio container formats OpenAI's speech endpoint can return. */
export const speechFormats = ['mp3', 'opus', 'aac', 'flac', 'wav', 'pcm'] as const;
export type SpeechFormat = (typeof speechFormats)[number];

/** Every voice OpenAI's speech endpoint accepts. */
export const speechVoices = [
  'alloy', 'ash', 'ballad', 'coral', 'echo', 'fable', 'nova', 'onyx', 'sage', 'shimmer', 'verse', 'marin', 'cedar',
] as const;
export type SpeechVoice = (typeof speechVoices)[number];

export const speechModels = ['tts-1', 'tts-1-hd', 'gpt-4o-mini-tts'] as const;
export type SpeechModelName = (typeof speechModels)[number];

/** `Content-Type` for each format; `pcm` is raw 24 kHz 16-bit little-endian mono. */
export const speechContentTypes: Record<SpeechFormat, string> = {
  mp3: 'audio/mpeg',
  opus: 'audio/ogg',
  aac: 'audio/aac',
  flac: 'audio/flac',
  wav: 'audio/wav',
  pcm: 'audio/pcm',
};

export interface SpeechOptions {
  text: string;
  voice: string;
  model: string;
  format: SpeechFormat;
  /** 0.25 – 4.0 */
  speed: number;
  /** Style instructions; only `gpt-4o-mini-tts` uses them. */
  instructions?: string;
  abortSignal?: AbortSignal;
}

/**
 * Text to speech. `synthesize` resolves as soon as the provider has answered
 * with headers; the audio then arrives chunk by chunk, so callers can forward
 * the first bytes before the provider has finished.
 */
export interface SpeechModel {
  synthesize(options: SpeechOptions): Promise<AsyncIterable<Uint8Array>>;
}

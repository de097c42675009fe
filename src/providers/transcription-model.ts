export interface TranscriptionOptions {
  audio: Uint8Array;
  /** File name with extension; the provider infers the format from it. */
  filename: string;
  model: string;
  /** BCP-47 or ISO-639-1 hint, e.g. `en`. */
  language?: string;
  abortSignal?: AbortSignal;
}

export interface Transcription {
  text: string;
  language?: string;
  durationSeconds?: number;
}

/** Speech to text for a finished utterance. */
export interface TranscriptionModel {
  transcribe(options: TranscriptionOptions): Promise<Transcription>;
}

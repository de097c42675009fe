import { toFile, type OpenAI } from 'openai';
import { RequestGuard } from './openai-client.js';
import { ProviderError } from './provider-error.js';
import type { Transcription, TranscriptionModel, TranscriptionOptions } from './transcription-model.js';

export interface OpenAITranscriptionModelOptions {
  client: OpenAI;
}

/** `TranscriptionModel` over OpenAI's `/audio/transcriptions` (whisper-1, gpt-4o-transcribe, …). */
export class OpenAITranscriptionModel implements TranscriptionModel {
  private readonly client: OpenAI;

  constructor(options: OpenAITranscriptionModelOptions) {
    this.client = options.client;
  }

  async transcribe(options: TranscriptionOptions): Promise<Transcription> {
    // The answer is one small JSON body, so the SDK's own timeout covers it all.
    const guard = new RequestGuard(options.abortSignal);
    let result: unknown;
    try {
      result = await this.client.audio.transcriptions.create(
        {
          file: await toFile(options.audio, options.filename),
          model: options.model,
          language: options.language,
          // Only `json` and `text` work with every transcription model.
          response_format: 'json',
        },
        { signal: guard.signal },
      );
    } catch (error) {
      throw guard.toError(error);
    }
    return toTranscription(result, options.language);
  }
}

function toTranscription(result: unknown, language: string | undefined): Transcription {
  // A non-JSON answer reaches us as a plain string from the SDK.
  const { text, usage } = (typeof result === 'object' && result !== null ? result : {}) as {
    text?: unknown;
    usage?: { type?: unknown; seconds?: unknown };
  };
  if (typeof text !== 'string') {
    throw new ProviderError('provider_bad_response', 'transcription response has no text');
  }
  // Only whisper-1 reports the audio's length; the gpt-4o models count tokens.
  const durationSeconds = usage?.type === 'duration' && typeof usage.seconds === 'number' ? usage.seconds : undefined;
  return { text: text.trim(), language, durationSeconds };
}

import { toFile, type OpenAI } from 'openai';
import { RequestGuard } from './openai-client.js';
import { isAbortError, ProviderError, toAbortError } from './provider-error.js';
import { noRetries, withRetries, type RetryPolicy } from './retry-policy.js';
import type { Transcription, TranscriptionModel, TranscriptionOptions } from './transcription-model.js';

export interface OpenAITranscriptionModelOptions {
  client: OpenAI;
  /**
   * Longest wait for one attempt's whole answer, body included: the SDK's own
   * timeout stops once headers arrive, and a body that never comes would
   * hold the caller's turn forever. None by default.
   */
  timeoutMs?: number;
  /** Retries of a failed attempt; none by default. */
  retry?: RetryPolicy;
}

/** `TranscriptionModel` over OpenAI's `/audio/transcriptions` (whisper-1, gpt-4o-transcribe, …). */
export class OpenAITranscriptionModel implements TranscriptionModel {
  private readonly client: OpenAI;
  private readonly timeoutMs?: number;
  private readonly retry: RetryPolicy;

  constructor(options: OpenAITranscriptionModelOptions) {
    this.client = options.client;
    this.timeoutMs = options.timeoutMs;
    this.retry = options.retry ?? noRetries;
  }

  async transcribe(options: TranscriptionOptions): Promise<Transcription> {
    const guard = new RequestGuard(options.abortSignal);
    try {
      const result = await withRetries(() => this.attempt(options, guard), {
        policy: this.retry,
        signal: options.abortSignal,
        toError: (error) => guard.toError(error),
      });
      return toTranscription(result, options.language);
    } finally {
      guard.release();
    }
  }

  private async attempt(options: TranscriptionOptions, guard: RequestGuard): Promise<unknown> {
    const timeout = this.timeoutMs === undefined ? undefined : AbortSignal.timeout(this.timeoutMs);
    const signals = [guard.signal, timeout].filter((signal): signal is AbortSignal => signal !== undefined);
    try {
      return await this.client.audio.transcriptions.create(
        {
          file: await toFile(options.audio, options.filename),
          model: options.model,
          language: options.language,
          // Only `json` and `text` work with every transcription model.
          response_format: 'json',
        },
        { signal: signals.length > 1 ? AbortSignal.any(signals) : signals[0] },
      );
    } catch (error) {
      if (options.abortSignal?.aborted) throw toAbortError(options.abortSignal);
      if (timeout?.aborted && (isAbortError(error) || error instanceof DOMException)) {
        throw new ProviderError('provider_timeout', `transcription did not answer within ${this.timeoutMs} ms`, { cause: error });
      }
      throw error;
    }
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

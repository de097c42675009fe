import type { OpenAI } from 'openai';
import { defaultIdleTimeoutMs, RequestGuard } from './openai-client.js';
import { ProviderError } from './provider-error.js';
import { noRetries, withRetries, type RetryPolicy } from './retry-policy.js';
import type { SpeechModel, SpeechOptions } from './speech-model.js';

export interface OpenAISpeechModelOptions {
  client: OpenAI;
  /** Longest wait for the next audio chunk once the body has started; see `RequestGuard`. */
  idleTimeoutMs?: number;
  /** Retries of a request that failed before any audio arrived; none by default. */
  retry?: RetryPolicy;
}

/** `SpeechModel` over OpenAI's `/audio/speech`, streaming the body as it arrives. */
export class OpenAISpeechModel implements SpeechModel {
  private readonly client: OpenAI;
  private readonly idleTimeoutMs: number;
  private readonly retry: RetryPolicy;

  constructor(options: OpenAISpeechModelOptions) {
    this.client = options.client;
    this.idleTimeoutMs = options.idleTimeoutMs ?? defaultIdleTimeoutMs;
    this.retry = options.retry ?? noRetries;
  }

  async synthesize(options: SpeechOptions): Promise<AsyncIterable<Uint8Array>> {
    const guard = new RequestGuard(options.abortSignal, this.idleTimeoutMs);
    try {
      const response = await this.request(options, guard);
      await rejectNonAudio(response);
      if (!response.body) throw new ProviderError('provider_bad_response', 'speech response has no body');
      return readBody(response.body, guard);
    } catch (error) {
      // Once the body is handed out, reading it to the end (or stopping) releases the guard.
      guard.release();
      throw error;
    }
  }

  private async request(options: SpeechOptions, guard: RequestGuard): Promise<Response> {
    try {
      return await withRetries(() => this.client.audio.speech.create(
        {
          model: options.model,
          voice: options.voice,
          input: options.text,
          response_format: options.format,
          speed: options.speed,
          // The tts-1 models reject style instructions rather than ignore them.
          ...(options.instructions && options.model.startsWith('gpt-4o-mini-tts')
            ? { instructions: options.instructions }
            : {}),
        },
        { signal: guard.signal },
      ), { policy: this.retry, signal: options.abortSignal, toError: (error) => guard.toError(error) });
    } catch (error) {
      throw guard.toError(error);
    }
  }
}

/**
 * A 200 with an HTML or JSON body is a proxy's or gateway's page, not audio;
 * playing it to a caller would be noise, so it fails here instead.
 */
async function rejectNonAudio(response: Response): Promise<void> {
  const contentType = response.headers.get('content-type') ?? '';
  if (!/^(text\/|application\/(json|xml|xhtml))/i.test(contentType)) return;
  // Control characters stripped: the sample ends up in logs and on the turn's row.
  const sample = (await response.text().catch(() => '')).slice(0, 120).replace(/[\u0000-\u001f\u007f]+/g, ' ');
  throw new ProviderError('provider_bad_response', `speech response is ${contentType}, not audio: ${sample}`, {
    status: response.status,
  });
}

async function* readBody(body: ReadableStream<Uint8Array>, guard: RequestGuard): AsyncGenerator<Uint8Array> {
  const reader = body.getReader();
  const chunks = {
    async *[Symbol.asyncIterator]() {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) return;
        if (value.byteLength > 0) yield value;
      }
    },
  };
  let finished = false;
  try {
    yield* guard.watch(chunks);
    finished = true;
  } catch (error) {
    throw guard.toError(error);
  } finally {
    // Stopping early (barge-in, hang-up) must close the connection, not leave
    // the provider streaming into a buffer nobody reads.
    if (!finished) await reader.cancel().catch(() => undefined);
    guard.release();
  }
}

import { OpenAI, type ClientOptions } from 'openai';
import { Agent, type Dispatcher } from 'undici';
import { ProviderError, toAbortError, toProviderError } from './provider-error.js';
import { providerFetch } from './provider-fetch.js';

export interface OpenAIClientOptions {
  apiKey: string;
  /** e.g. `https://api.openai.com/v1`, or any OpenAI-compatible server's `/v1`. */
  baseURL: string;
  /** Per attempt, until the response headers arrive (the SDK does not time bodies). */
  timeoutMs: number;
  /** Retries of connection errors, 408, 409, 429 and 5xx, with the SDK's backoff. */
  maxRetries: number;
  logger?: ClientOptions['logger'];
  logLevel?: ClientOptions['logLevel'];
  /** The connection pool requests go through (`createProviderAgent`), with `providerFetch`; Node's `fetch` and its shared pool when unset. */
  dispatcher?: Dispatcher;
}

/** How long a connection to the provider may sit idle and still be reused, when the provider does not say. */
export const providerKeepAliveMs = 60_000;

/**
 * The connection pool for provider requests. Node's `fetch` closes a
 * connection after 4 s without a request unless the server says otherwise,
 * and a caller thinks for longer than that between turns: on a quiet line
 * every turn's first request would open a new connection (TCP and TLS: one or
 * two round trips more, before the model is even asked). This one keeps them
 * for `providerKeepAliveMs`; a provider that sends `Keep-Alive: timeout=…`
 * still decides, and one that closes a connection first just gets a new one.
 * Close it at shutdown.
 */
export function createProviderAgent(): Agent {
  return new Agent({ keepAliveTimeout: providerKeepAliveMs, keepAliveMaxTimeout: 10 * providerKeepAliveMs });
}

/**
 * The one OpenAI client the process shares between calls. Every option the
 * SDK would otherwise read from `OPENAI_*` environment variables is set here,
 * because configuration comes only from `config.ts`.
 */
export function createOpenAIClient(options: OpenAIClientOptions): OpenAI {
  return new OpenAI({
    apiKey: options.apiKey,
    baseURL: options.baseURL,
    timeout: options.timeoutMs,
    maxRetries: options.maxRetries,
    organization: null,
    project: null,
    adminAPIKey: null,
    webhookSecret: null,
    logger: options.logger,
    logLevel: options.logLevel ?? 'warn',
    ...(options.dispatcher ? { fetch: providerFetch(options.dispatcher) } : {}),
  });
}

/** How long a started stream may go without delivering data before it counts as stalled. */
export const defaultIdleTimeoutMs = 15_000;

/**
 * Watches one provider request: links the caller's abort signal with an idle
 * timer and turns whatever the request threw into what callers expect (an
 * abort error, or a `ProviderError`). Call `release` once the request is over.
 *
 * The SDK's timeout stops once headers arrive, so a stream that stalls
 * mid-sentence would otherwise leave a caller listening to silence forever.
 * The timer only runs while waiting on the provider, never while the consumer
 * holds a chunk, so a consumer pacing audio in real time cannot trip it.
 */
export class RequestGuard {
  /**
   * Pass to the SDK as the request's `signal`. It is a plain controller's
   * signal, linked to the caller's by hand rather than with
   * `AbortSignal.any`: the SDK adds an abort listener to the signal it is
   * given and never removes it, and Node keeps a combined signal with abort
   * listeners in a process-wide set until they are removed or it aborts
   * (nodejs/node#55328), so every request that ended normally would stay in
   * memory for good.
   */
  readonly signal: AbortSignal;
  private readonly stop = new AbortController();
  private readonly forwardAbort = () => this.stop.abort(this.abortSignal?.reason);
  private timer: NodeJS.Timeout | undefined;
  private stalled = false;

  constructor(
    private readonly abortSignal: AbortSignal | undefined,
    private readonly idleTimeoutMs?: number,
  ) {
    this.signal = this.stop.signal;
    if (abortSignal?.aborted) this.stop.abort(abortSignal.reason);
    else abortSignal?.addEventListener('abort', this.forwardAbort, { once: true });
  }

  /** Unhooks the request from the caller's signal, which may outlive many requests (a turn's does). */
  release(): void {
    clearTimeout(this.timer);
    this.abortSignal?.removeEventListener('abort', this.forwardAbort);
  }

  /** Yields `source` and fails it when one wait for the next item outlasts the idle timeout. */
  async *watch<T>(source: AsyncIterable<T>): AsyncGenerator<T> {
    const iterator = source[Symbol.asyncIterator]();
    let finished = false;
    try {
      for (;;) {
        this.arm();
        let result: IteratorResult<T>;
        try {
          result = await iterator.next();
        } finally {
          clearTimeout(this.timer);
        }
        if (result.done) {
          finished = true;
          return;
        }
        // Data already buffered when the caller aborted must not reach them:
        // after an interruption, not one more word of the old reply.
        this.throwIfStopped();
        yield result.value;
      }
    } finally {
      // The consumer stopped early (break, or an abort upstream): release the connection.
      if (!finished) await iterator.return?.();
    }
  }

  /** What to throw for an error raised during the request. */
  toError(error: unknown): Error {
    if (this.abortSignal?.aborted) return toAbortError(this.abortSignal);
    if (this.stalled) return this.stallError(error);
    return toProviderError(error);
  }

  /**
   * The SDK ends a chat stream quietly when its signal fires, so after a
   * stream ends this tells an abort or a stall apart from a real end.
   */
  throwIfStopped(): void {
    if (this.abortSignal?.aborted) throw toAbortError(this.abortSignal);
    if (this.stalled) throw this.stallError();
  }

  private arm(): void {
    if (this.idleTimeoutMs === undefined || !Number.isFinite(this.idleTimeoutMs)) return;
    this.timer = setTimeout(() => {
      this.stalled = true;
      this.stop.abort();
    }, this.idleTimeoutMs);
  }

  private stallError(cause?: unknown): ProviderError {
    return new ProviderError('provider_timeout', `provider stream stalled for ${this.idleTimeoutMs} ms`, { cause });
  }
}

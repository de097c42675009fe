import { ProviderError, toAbortError } from './provider-error.js';

/**
 * How a provider request is tried again after a failure worth retrying.
 * Retries happen here rather than in the OpenAI SDK because the SDK sleeps
 * through any `Retry-After` the server sends, however long, and cannot be
 * woken by an abort: a caller would sit in silence past the turn's deadline.
 */
export interface RetryPolicy {
  /** Attempts after the first; 0 turns retries off. */
  maxRetries: number;
  /** Wait before the first retry, doubled for each one after (±20 % jitter). */
  baseDelayMs: number;
  /**
   * The longest wait before a retry. A provider asking for longer
   * (`Retry-After`) is not retried: the failure comes back at once, so the
   * caller hears an apology instead of silence.
   */
  maxDelayMs: number;
}

export const noRetries: RetryPolicy = { maxRetries: 0, baseDelayMs: 0, maxDelayMs: 0 };

/** One retry, soon: a caller is waiting in silence, so a second failure is apologised for rather than retried again. */
export const callRetryPolicy: RetryPolicy = { maxRetries: 1, baseDelayMs: 300, maxDelayMs: 1_500 };

/**
 * The wait before retry number `retry` (0 for the first) after `error`, or
 * undefined when it is not worth retrying.
 */
export function retryDelayMs(error: ProviderError, retry: number, policy: RetryPolicy, random: () => number = Math.random): number | undefined {
  if (!error.retryable || retry >= policy.maxRetries) return undefined;
  // A timed-out attempt already used up a whole attempt's budget; another would double the silence.
  if (error.code === 'provider_timeout') return undefined;
  if (error.retryAfterMs !== undefined) return error.retryAfterMs <= policy.maxDelayMs ? error.retryAfterMs : undefined;
  return Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** retry * (0.8 + 0.4 * random()));
}

export interface RetryOptions {
  policy: RetryPolicy;
  /** Aborts the wait between attempts as well as the attempts. */
  signal?: AbortSignal;
  /** What an attempt's failure means: a `ProviderError` may be retried, anything else (an abort) is thrown. */
  toError: (error: unknown) => Error;
}

/** Runs `attempt` until it succeeds, its failure is not worth retrying, or the policy's retries are spent. */
export async function withRetries<T>(attempt: () => Promise<T>, options: RetryOptions): Promise<T> {
  for (let retry = 0; ; retry += 1) {
    let failure: Error;
    try {
      return await attempt();
    } catch (error) {
      failure = options.toError(error);
    }
    const delay = failure instanceof ProviderError ? retryDelayMs(failure, retry, options.policy) : undefined;
    if (delay === undefined) throw failure;
    await abortableSleep(delay, options.signal);
  }
}

function abortableSleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  if (signal?.aborted) return Promise.reject(toAbortError(signal));
  return new Promise((resolve, reject) => {
    const onAbort = () => {
      clearTimeout(timer);
      reject(toAbortError(signal!));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

import {
  APIConnectionError,
  APIConnectionTimeoutError,
  APIError,
  APIUserAbortError,
  AuthenticationError,
  InternalServerError,
  PermissionDeniedError,
  RateLimitError,
} from 'openai';

/** Why a provider call failed, as far as a caller needs to know to react. */
export type ProviderErrorCode =
  | 'provider_timeout'
  | 'provider_rate_limited'
  | 'provider_unavailable'
  | 'provider_bad_response'
  | 'provider_auth';

export interface ProviderErrorOptions {
  /** Defaults by code: timeouts, rate limits and outages are worth retrying. */
  retryable?: boolean;
  /** HTTP status of the provider's answer, when there was one. */
  status?: number;
  /** How long the provider asked us to wait before trying again. */
  retryAfterMs?: number;
  cause?: unknown;
}

const retryableByDefault: Record<ProviderErrorCode, boolean> = {
  provider_timeout: true,
  provider_rate_limited: true,
  provider_unavailable: true,
  provider_bad_response: false,
  provider_auth: false,
};

/**
 * A failed call to a chat, speech or transcription provider. Every provider
 * implementation throws this (and nothing else) for failures; an abort by the
 * caller is not a failure and surfaces as an abort error instead.
 */
export class ProviderError extends Error {
  override readonly name = 'ProviderError';
  readonly code: ProviderErrorCode;
  readonly retryable: boolean;
  readonly status?: number;
  readonly retryAfterMs?: number;

  constructor(code: ProviderErrorCode, message: string, options: ProviderErrorOptions = {}) {
    super(message, { cause: options.cause });
    this.code = code;
    this.retryable = options.retryable ?? retryableByDefault[code];
    this.status = options.status;
    this.retryAfterMs = options.retryAfterMs;
  }
}

/**
 * True for an abort requested by the caller (an `AbortSignal` firing), which
 * is how interruptions and hang-ups stop provider calls: not a failure.
 */
export function isAbortError(error: unknown): boolean {
  if (error instanceof APIUserAbortError) return true;
  return typeof error === 'object' && error !== null && (error as { name?: unknown }).name === 'AbortError';
}

/**
 * The error to throw once `signal` has fired: its reason when that already is
 * an abort error, otherwise an `AbortError` carrying the reason as its cause,
 * so that `isAbortError` recognizes whatever the caller aborted with.
 */
export function toAbortError(signal: AbortSignal): Error {
  const reason: unknown = signal.reason;
  if (reason instanceof Error && isAbortError(reason)) return reason;
  const error = new Error('The operation was aborted', { cause: reason });
  error.name = 'AbortError';
  return error;
}

/** Classifies anything a provider call threw. Check `isAbortError` first. */
export function toProviderError(error: unknown): ProviderError {
  if (error instanceof ProviderError) return error;
  const message = error instanceof Error ? error.message : String(error);

  // Order matters: the timeout class extends the connection error class.
  if (error instanceof APIConnectionTimeoutError) {
    return new ProviderError('provider_timeout', 'provider did not answer in time', { cause: error });
  }
  if (error instanceof APIConnectionError) {
    return new ProviderError('provider_unavailable', `cannot reach provider: ${message}`, { cause: error });
  }
  if (error instanceof RateLimitError) {
    // An exhausted quota is a billing problem: retrying only burns time.
    const quotaExhausted = error.code === 'insufficient_quota';
    return new ProviderError('provider_rate_limited', `provider rate limit: ${message}`, {
      cause: error,
      status: error.status,
      retryable: !quotaExhausted,
      retryAfterMs: quotaExhausted ? undefined : retryAfterMs(error.headers),
    });
  }
  if (error instanceof AuthenticationError || error instanceof PermissionDeniedError) {
    return new ProviderError('provider_auth', `provider refused the credentials: ${message}`, {
      cause: error,
      status: error.status,
    });
  }
  if (error instanceof InternalServerError) {
    return new ProviderError('provider_unavailable', `provider failed: ${message}`, {
      cause: error,
      status: error.status,
      retryAfterMs: retryAfterMs(error.headers),
    });
  }
  if (error instanceof APIError) return fromOtherApiError(error);
  if (error instanceof SyntaxError) {
    return new ProviderError('provider_bad_response', `provider sent malformed data: ${message}`, { cause: error });
  }
  if (isNetworkError(error)) {
    return new ProviderError('provider_unavailable', `connection to provider lost: ${message}`, { cause: error });
  }
  return new ProviderError('provider_bad_response', `provider call failed: ${message}`, { cause: error });
}

function fromOtherApiError(error: APIError): ProviderError {
  const { status, message } = error;
  if (status === 408) {
    return new ProviderError('provider_timeout', `provider timed out: ${message}`, { cause: error, status });
  }
  if (status === 409) {
    return new ProviderError('provider_unavailable', `provider busy: ${message}`, { cause: error, status });
  }
  // Without a status the error came as an event inside a stream that had
  // started fine; OpenAI reports its own outages that way as `server_error`.
  if (status === undefined && error.type === 'server_error') {
    return new ProviderError('provider_unavailable', `provider failed mid-stream: ${message}`, { cause: error });
  }
  // 400, 404, 422…: the provider rejected what we sent (unknown model or
  // voice, bad parameters). Retrying the same request cannot help.
  return new ProviderError('provider_bad_response', `provider rejected the request: ${message}`, {
    cause: error,
    status,
  });
}

/** Reads OpenAI's `retry-after-ms`, else the standard `retry-after` (seconds or an HTTP date). */
function retryAfterMs(headers: Headers | undefined): number | undefined {
  const milliseconds = Number.parseFloat(headers?.get('retry-after-ms') ?? '');
  if (Number.isFinite(milliseconds) && milliseconds >= 0) return milliseconds;
  const value = headers?.get('retry-after');
  if (!value) return undefined;
  const seconds = Number.parseFloat(value);
  if (Number.isFinite(seconds) && seconds >= 0) return seconds * 1000;
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - Date.now());
}

const networkErrorCodes = new Set([
  'ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'ETIMEDOUT', 'EAI_AGAIN', 'ENOTFOUND',
  'UND_ERR_SOCKET', 'UND_ERR_CLOSED', 'UND_ERR_BODY_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT',
]);

/**
 * Node's fetch reports a connection dropped mid-body as `TypeError: terminated`
 * with the socket error as its cause; the SDK does not wrap errors raised
 * while a stream is being read, so they arrive here raw.
 */
function isNetworkError(error: unknown): boolean {
  for (let current = error, depth = 0; current && depth < 5; depth++) {
    if (typeof current !== 'object') return false;
    const { code, message, cause } = current as { code?: unknown; message?: unknown; cause?: unknown };
    if (typeof code === 'string' && networkErrorCodes.has(code)) return true;
    if (current instanceof TypeError && (message === 'terminated' || message === 'fetch failed')) return true;
    current = cause;
  }
  return false;
}

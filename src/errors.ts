/** The error codes callme answers with, each with its HTTP status. */
export const errorStatuses = {
  invalid_request: 400,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  /** The request is valid but the state does not allow it (a full time slot, a cancelled reservation). */
  conflict: 409,
  payload_too_large: 413,
  unsupported_media_type: 415,
  rate_limited: 429,
  internal_error: 500,
  provider_unavailable: 502,
  not_configured: 503,
  not_ready: 503,
} as const;

export type ErrorCode = keyof typeof errorStatuses;

/** Thrown by HTTP handlers; one error handler turns it into `{ error: { code, message, requestId } }`. */
export class HttpError extends Error {
  readonly status: number;
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
    this.status = errorStatuses[code];
  }
}

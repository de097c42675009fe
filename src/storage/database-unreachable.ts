/** Socket errors that mean the server could not be reached or the connection broke. */
const networkCodes = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'ENETDOWN']);

/**
 * PostgreSQL's own codes for "not now": 57P01-57P03 are an administrator's
 * shutdown or a server still starting, 53300 too many connections, and
 * class 08 the connection exceptions.
 */
const serverCodes = new Set(['57P01', '57P02', '57P03', '53300']);

/** What `pg` throws, with no code, when a connection ends under a query or cannot be made in time. */
const connectionMessages = /connection terminated|connection error|not queryable|timeout exceeded when trying to connect|connection ended/i;

/**
 * True when `error` says the database could not be reached (stopped,
 * restarting, network cut) rather than that it refused the statement. Only
 * these are worth waiting out: the same write will succeed once it is back,
 * while a constraint or syntax error never will.
 */
export function isDatabaseUnreachable(error: unknown): boolean {
  if (!error || typeof error !== 'object') return false;
  const { code, message, errors } = error as { code?: unknown; message?: unknown; errors?: unknown };
  if (typeof code === 'string' && (networkCodes.has(code) || serverCodes.has(code) || code.startsWith('08'))) return true;
  // Several addresses tried at once (localhost as ::1 and 127.0.0.1) fail together as an AggregateError.
  if (Array.isArray(errors) && errors.some(isDatabaseUnreachable)) return true;
  return typeof message === 'string' && connectionMessages.test(message);
}

import type { FastifyError, FastifyInstance } from 'fastify';
import { HttpError, type ErrorCode } from '../errors.js';

/** Fastify's own error codes that are the client's fault, and what we call them. */
const fastifyClientErrors: Record<string, ErrorCode> = {
  FST_ERR_CTP_BODY_TOO_LARGE: 'payload_too_large',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'unsupported_media_type',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'invalid_request',
  FST_ERR_CTP_INVALID_JSON_BODY: 'invalid_request',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'invalid_request',
  FST_ERR_VALIDATION: 'invalid_request',
};

function isDataException(error: unknown): boolean {
  const code = (error as { code?: unknown }).code;
  return typeof code === 'string' && /^22[0-9A-Z]{3}$/.test(code);
}

/**
 * One error shape for every JSON route: `{ error: { code, message, requestId } }`.
 * Unexpected errors are logged and answered without internals.
 */
export function registerErrorHandler(app: FastifyInstance): void {
  app.setErrorHandler((error: FastifyError | HttpError, request, reply) => {
    let status = 500;
    let code: ErrorCode = 'internal_error';
    let message = 'something went wrong on our side';
    let details: Record<string, unknown> | undefined;
    if (error instanceof HttpError) {
      ({ status, code, details } = error);
      message = error.message;
    } else if (error.code && fastifyClientErrors[error.code]) {
      code = fastifyClientErrors[error.code];
      status = error.statusCode ?? 400;
      message = error.message;
    } else if (isDataException(error)) {
      // PostgreSQL's class 22 (a date out of range, a NUL byte, a number too large): a value the client sent
      // reached a query and the database refused it. The request is wrong, not the server.
      status = 400;
      code = 'invalid_request';
      message = 'a value in the request is out of range or not valid';
      request.log.warn({ err: error }, 'the database refused a value from the request');
    } else if (error.statusCode && error.statusCode >= 400 && error.statusCode < 500) {
      status = error.statusCode;
      code = status === 429 ? 'rate_limited' : status === 404 ? 'not_found' : 'invalid_request';
      message = error.message;
    }
    if (status >= 500) request.log.error({ err: error }, 'request failed');
    reply.code(status).type('application/json').send({ error: { code, message, ...details, requestId: request.id } });
  });

  app.setNotFoundHandler((request, reply) => {
    reply.code(404).send({ error: { code: 'not_found', message: `no route for ${request.method} ${request.url.split('?')[0]}`, requestId: request.id } });
  });
}

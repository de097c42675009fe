import { timingSafeEqual } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import { HttpError } from '../errors.js';

/**
 * Guards routes that spend provider money and are not Twilio webhooks. With
 * `API_TOKEN` set they need `Authorization: Bearer <token>`; without it they
 * answer only this machine. A request relayed by a proxy or tunnel (which
 * connects from loopback too) carries forwarding headers and is not local.
 */
export function apiAccessGuard(apiToken: string | undefined) {
  return async (request: FastifyRequest): Promise<void> => {
    if (apiToken) {
      const header = request.headers.authorization ?? '';
      const match = /^Bearer\s+(.+)$/i.exec(header);
      if (!match || !safeEqual(match[1].trim(), apiToken)) {
        throw new HttpError('unauthorized', 'this endpoint needs "Authorization: Bearer <API_TOKEN>"');
      }
      return;
    }
    if (!isLocalRequest(request)) {
      throw new HttpError('forbidden', 'API_TOKEN is not set, so this endpoint only answers requests from this machine');
    }
  };
}

export function isLocalRequest(request: FastifyRequest): boolean {
  const forwarded = ['x-forwarded-for', 'forwarded', 'x-real-ip'].some((name) => request.headers[name] !== undefined);
  const address = request.socket.remoteAddress ?? '';
  const loopback = address === '::1' || address.startsWith('127.') || address.startsWith('::ffff:127.');
  return loopback && !forwarded;
}

function safeEqual(given: string, expected: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

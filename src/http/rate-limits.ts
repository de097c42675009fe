import rateLimit from '@fastify/rate-limit';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Config } from '../config.js';
import { HttpError } from '../errors.js';
import { isLocalRequest } from './api-access.js';

/** Which budget a route spends from, or none (Twilio's routes, audio, health, the dashboard's static files). */
export type RateLimitGroup = 'tts' | 'admin';

export function rateLimitGroup(route: string | undefined): RateLimitGroup | undefined {
  if (!route) return undefined;
  if (route === '/tts/stream') return 'tts';
  if (route === '/dashboard/assets/:file') return undefined;
  if (route.startsWith('/api/') || route.startsWith('/mvp/') || route === '/dashboard' || route.startsWith('/dashboard/') || route === '/metrics') return 'admin';
  return undefined;
}

/**
 * The address a budget is kept for. A request relayed by a proxy or tunnel on
 * this machine comes from loopback: the address that proxy saw (the last
 * entry it appended) is the client's. Forwarding headers from anywhere else
 * are the client's own words and are not believed.
 */
export function clientAddress(request: FastifyRequest): string {
  const peer = request.socket.remoteAddress ?? '';
  const loopback = peer === '::1' || peer.startsWith('127.') || peer.startsWith('::ffff:127.');
  if (loopback) {
    const forwarded = headerValue(request.headers['x-forwarded-for'])?.split(',').at(-1)?.trim()
      ?? headerValue(request.headers['x-real-ip'])?.trim()
      ?? /for="?\[?([^\]";,]+)/i.exec(headerValue(request.headers.forwarded)?.split(',').at(-1) ?? '')?.[1];
    if (forwarded) return forwarded.slice(0, 64);
  }
  return peer;
}

function headerValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value.at(-1) : value;
}

/**
 * Per-address request budgets for the routes anyone on the internet can
 * reach that are not Twilio's: `/tts/stream` (it spends provider money) and
 * the dashboard, its API and `/metrics` (where tokens could be guessed).
 * Twilio's webhooks come from many addresses and are limited per caller
 * number instead. Requests from this machine itself (not relayed) are the
 * operator's and are never limited, as they are trusted without a token.
 * A refused request gets the usual JSON error with `Retry-After`.
 */
export async function registerRateLimits(app: FastifyInstance, limits: Config['rateLimits']): Promise<void> {
  await app.register(rateLimit, { global: false });
  const budgets: Record<RateLimitGroup, ReturnType<FastifyInstance['createRateLimit']> | undefined> = {
    tts: limits.ttsPerMinute > 0 ? app.createRateLimit({ max: limits.ttsPerMinute, timeWindow: 60_000, keyGenerator: clientAddress }) : undefined,
    admin: limits.perMinute > 0 ? app.createRateLimit({ max: limits.perMinute, timeWindow: 60_000, keyGenerator: clientAddress }) : undefined,
  };
  app.addHook('onRequest', async (request, reply) => {
    const group = rateLimitGroup(request.routeOptions.url);
    const budget = group && budgets[group];
    if (!budget || isLocalRequest(request)) return;
    const result = await budget(request);
    if (result.isAllowed || !result.isExceeded) return;
    reply.header('Retry-After', String(Math.max(1, result.ttlInSeconds)));
    throw new HttpError('rate_limited', `too many requests from this address: at most ${result.max} a minute; try again in ${result.ttlInSeconds} s`);
  });
}

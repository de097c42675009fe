import type { FastifyRequest } from 'fastify';
import { safeEqual } from '../admin/admin-session.js';
import type { Config } from '../config.js';
import { HttpError } from '../errors.js';
import { isLocalRequest } from './api-access.js';

/**
 * Guards `/metrics`, which tells anyone who reads it how busy the line is and
 * what it costs. It accepts what the admin API accepts from a script —
 * `Authorization: Bearer $ADMIN_TOKEN`, or Basic with `ADMIN_USERNAME` and
 * `ADMIN_PASSWORD` — and also `Bearer $API_TOKEN`, so a scraper can be given
 * the token that cannot open the dashboard. Session cookies are not accepted:
 * scrapers don't have them. With none of these configured, only this machine.
 */
export function metricsAccessGuard(config: Pick<Config, 'apiToken' | 'admin'>) {
  const { apiToken, admin } = config;
  const configured = Boolean(apiToken || admin.token || (admin.username && admin.password));
  const tokens = [apiToken, admin.token].filter((token): token is string => Boolean(token));

  const accepts = (header: string): boolean => {
    const bearer = /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (bearer) return tokens.some((token) => safeEqual(bearer[1], token));
    const basic = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header);
    if (!basic || !admin.username || !admin.password) return false;
    const decoded = Buffer.from(basic[1], 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon < 0) return false;
    // Both compared, always, so the time taken says nothing about which was wrong.
    const userOk = safeEqual(decoded.slice(0, colon), admin.username);
    const passwordOk = safeEqual(decoded.slice(colon + 1), admin.password);
    return userOk && passwordOk;
  };

  return async (request: FastifyRequest): Promise<void> => {
    if (!configured) {
      if (isLocalRequest(request)) return;
      throw new HttpError('forbidden', 'no API_TOKEN or ADMIN_TOKEN is set, so /metrics only answers requests from this machine');
    }
    const header = request.headers.authorization;
    if (typeof header === 'string' && accepts(header)) return;
    throw new HttpError('unauthorized', '/metrics needs "Authorization: Bearer <API_TOKEN or ADMIN_TOKEN>"');
  };
}

import { createHash, randomBytes } from 'node:crypto';

/** How long Twilio has to open the stream after the webhook answered. */
export const streamTokenLifetimeMs = 60_000;

/**
 * A one-time token admitting one media stream for one call. It travels in the
 * stream URL's path (Twilio strips query strings from stream URLs, but keeps
 * the path), so the upgrade can be refused before any provider is contacted.
 * Only its hash is stored.
 */
export function newStreamToken(): { token: string; hash: string } {
  const token = randomBytes(24).toString('base64url');
  return { token, hash: hashStreamToken(token) };
}

export function hashStreamToken(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

/** Tokens as `newStreamToken` makes them; anything else is refused without a lookup. */
export const streamTokenPattern = /^[A-Za-z0-9_-]{32}$/;

import type { FastifyInstance } from 'fastify';

/**
 * Headers every response carries. Nothing this server sends outside the
 * dashboard is a page: JSON, TwiML, audio. So the default policy lets a
 * browser run, load or frame nothing from them; the dashboard's scope sends
 * its own, looser Content-Security-Policy for its pages (its hooks run after
 * these and replace the header).
 */
const baseHeaders: Record<string, string> = {
  'Content-Security-Policy': "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
  'X-Content-Type-Options': 'nosniff',
  'X-Frame-Options': 'DENY',
  'Referrer-Policy': 'no-referrer',
  'Cross-Origin-Opener-Policy': 'same-origin',
  // Twilio fetches audio server to server, which this does not affect; it only stops other sites embedding it.
  'Cross-Origin-Resource-Policy': 'same-origin',
  'X-Permitted-Cross-Domain-Policies': 'none',
};

/**
 * Sets the security headers on every response. Browsers honour
 * Strict-Transport-Security only over https, so it is sent only when
 * `PUBLIC_URL` is https (without includeSubDomains: the rest of the domain,
 * a tunnel provider's for instance, is not ours to pin).
 */
export function registerSecurityHeaders(app: FastifyInstance, options: { publicUrl: string }): void {
  const headers = { ...baseHeaders };
  if (options.publicUrl.startsWith('https://')) headers['Strict-Transport-Security'] = 'max-age=15552000';
  app.addHook('onSend', async (_request, reply, payload) => {
    reply.headers(headers);
    return payload;
  });
}

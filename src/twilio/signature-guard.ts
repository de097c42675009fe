import type { FastifyReply, FastifyRequest } from 'fastify';
import twilio from 'twilio';

export interface SignatureGuardOptions {
  authToken: string;
  /** The base URL Twilio was given; the signed URL is rebuilt from it, so proxies and tunnels don't break the check. */
  publicUrl: string;
  enabled: boolean;
}

/**
 * Refuses any request to a Twilio route that Twilio did not sign: the
 * `X-Twilio-Signature` header must be the HMAC-SHA1, keyed with the auth
 * token, of the full URL Twilio requested and the sorted form parameters.
 * Twilio's validator also accepts the URL with or without the default port,
 * as Twilio signs either depending on how the URL was configured.
 */
export function twilioSignatureGuard(options: SignatureGuardOptions) {
  return async (request: FastifyRequest, reply: FastifyReply): Promise<void> => {
    if (!options.enabled) return;
    const signature = request.headers['x-twilio-signature'];
    const url = options.publicUrl + request.url;
    const params = isFormObject(request.body) ? request.body : {};
    if (typeof signature === 'string' && signature.length > 0 && twilio.validateRequest(options.authToken, signature, url, params)) return;
    request.log.warn({ url, signed: typeof signature === 'string' }, 'refused a Twilio webhook with a missing or wrong signature');
    await reply
      .code(403)
      .type('application/json')
      .send({ error: { code: 'forbidden', message: 'missing or invalid X-Twilio-Signature', requestId: request.id } });
  };
}

function isFormObject(body: unknown): body is Record<string, string | string[]> {
  return typeof body === 'object' && body !== null && !Array.isArray(body) && !Buffer.isBuffer(body);
}

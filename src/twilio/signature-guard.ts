import type { FastifyReply, FastifyRequest } from 'fastify';
import twilio from 'twilio';

export interface SignatureGuardOptions {
  authToken: string;
  /** The base URL Twilio was given; the signed URL is rebuilt from it, so proxies and tunnels don't break the check. */
  publicUrl: string;
  enabled: boolean;
}

/**
 * Whether `signature` is Twilio's HMAC-SHA1, keyed with the auth token, of
 * `url` followed by the sorted form parameters. Twilio's validator also
 * accepts the URL with or without the default port (`https://host:443/…`),
 * as Twilio signs either depending on how the URL was configured. It never
 * throws: a URL it cannot parse is simply not signed.
 */
export function isTwilioSigned(authToken: string, signature: unknown, url: string, params: Record<string, string | string[]>): boolean {
  if (typeof signature !== 'string' || signature.length === 0) return false;
  try {
    return withDefaultPortVariants(url).some((candidate) => twilio.validateRequest(authToken, signature, candidate, params));
  } catch {
    return false;
  }
}

/**
 * The validator knows the default ports of http and https only; a media
 * stream is signed over its `wss://` URL, whose default port is 443 too.
 */
function withDefaultPortVariants(url: string): string[] {
  const match = /^wss:\/\/([^/:?#]+)(:443)?(?=[/?#]|$)/i.exec(url);
  if (!match) return [url];
  const rest = url.slice(match[0].length);
  return [`wss://${match[1]}${rest}`, `wss://${match[1]}:443${rest}`];
}

/**
 * Refuses any request to a Twilio route that Twilio did not sign, with a 403
 * before the handler runs, so nothing is stored. Voice webhooks are always
 * form-encoded; a body of any other type is refused too (415), so a JSON body
 * can never be read as signed parameters. (Twilio's `bodySHA256` variant
 * signs JSON bodies of other products; no route here receives one.)
 */
export function twilioSignatureGuard(options: SignatureGuardOptions) {
  return async (request: FastifyRequest, reply: FastifyReply): Promise<void> => {
    const contentType = request.headers['content-type'];
    if (request.body !== undefined && contentType !== undefined && !/^application\/x-www-form-urlencoded\b/i.test(contentType)) {
      await reply
        .code(415)
        .type('application/json')
        .send({ error: { code: 'unsupported_media_type', message: 'Twilio webhooks are form-encoded', requestId: request.id } });
      return;
    }
    const params = isFormObject(request.body) ? request.body : {};
    const signature = request.headers['x-twilio-signature'];
    if (!options.enabled || isTwilioSigned(options.authToken, signature, options.publicUrl + request.url, params)) {
      // Checked over the bytes as sent; from here on NUL is dropped: PostgreSQL text cannot hold it, and Twilio never sends it.
      if (isFormObject(request.body)) request.body = withoutNul(request.body);
      return;
    }
    request.log.warn({ url: request.url.slice(0, 200), signed: typeof signature === 'string' }, 'refused a Twilio webhook with a missing or wrong signature');
    await reply
      .code(403)
      .type('application/json')
      .send({ error: { code: 'forbidden', message: 'missing or invalid X-Twilio-Signature', requestId: request.id } });
  };
}

function withoutNul(form: Record<string, string | string[]>): Record<string, string | string[]> {
  const clean = (value: string) => (value.includes('\u0000') ? value.replaceAll('\u0000', '') : value);
  // Without a prototype, like the form parser's own objects: a field named __proto__ stays a field.
  const out: Record<string, string | string[]> = Object.create(null);
  for (const [key, value] of Object.entries(form)) out[clean(key)] = Array.isArray(value) ? value.map(clean) : clean(value);
  return out;
}

function isFormObject(body: unknown): body is Record<string, string | string[]> {
  return typeof body === 'object' && body !== null && !Array.isArray(body) && !Buffer.isBuffer(body);
}

import { pino, type DestinationStream, type Logger } from 'pino';
import { maskPhoneNumber } from '../admin/phone-mask.js';
import type { Config } from '../config.js';

/** Secrets shorter than this are placeholders (`fake`, `test`), and scrubbing them would mangle ordinary words. */
const minSecretLength = 8;

/** E.164 numbers as they appear in log lines: plain, or percent-encoded in a logged URL (`%2B1555…`). */
const phoneNumberPattern = /(\+|%2B)(\d{6,15})\b/gi;

/**
 * The server's logger: JSON lines on stdout (or `destination`), with two
 * guarantees that do not depend on every call site being careful:
 * - the configured secrets (OpenAI key, Twilio auth token, API and admin
 *   tokens, admin password) are replaced by `[redacted]` wherever they appear
 *   in a line, in an error message or a logged URL as much as in a field;
 * - with `MASK_PHONE_NUMBERS`, every phone number in a line is masked the way
 *   the dashboard masks it (`+1555****567`).
 * Known secret-bearing fields are also redacted by path, so they are dropped
 * before serialization in the usual case.
 */
export function createLogger(config: Config, destination: DestinationStream = pino.destination(1)): Logger {
  const secrets = [config.openai.apiKey, config.twilio.authToken, config.apiToken, config.admin.token, config.admin.password]
    .filter((secret): secret is string => typeof secret === 'string' && secret.length >= minSecretLength)
    // Longest first, so a secret containing another is replaced whole.
    .sort((a, b) => b.length - a.length);
  const mask = config.admin.maskPhoneNumbers;
  const scrub = (line: string): string => {
    let out = line;
    for (const secret of secrets) if (out.includes(secret)) out = out.split(secret).join('[redacted]');
    if (mask) out = out.replace(phoneNumberPattern, (_match, plus: string, digits: string) => plus + maskPhoneNumber(digits));
    return out;
  };
  const scrubbing: DestinationStream = secrets.length > 0 || mask ? { write: (line: string) => destination.write(scrub(line)) } : destination;
  return pino(
    {
      level: config.logLevel,
      redact: {
        paths: ['req.headers.authorization', 'req.headers.cookie', 'req.headers["x-twilio-signature"]', '*.apiKey', '*.authToken', '*.password', '*.token'],
        censor: '[redacted]',
      },
    },
    scrubbing,
  );
}

import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';

/** What a signed cookie can hold: a signed-in operator, or an anonymous browser (for the login form's CSRF token). */
export type SignedValue =
  | { kind: 'session'; subject: string; nonce: string; expiresAt: number }
  | { kind: 'browser'; nonce: string; expiresAt: number };

/**
 * Signs cookie values with HMAC-SHA256 and derives CSRF tokens from them.
 * Nothing is stored on the server, so any instance sharing the key accepts
 * any other's cookies.
 */
export class CookieSigner {
  constructor(private readonly key: Buffer) {}

  sign(value: SignedValue): string {
    const body = Buffer.from(JSON.stringify(value)).toString('base64url');
    return `${body}.${this.mac(`cookie|${body}`)}`;
  }

  /** The value, when the signature is right and it has not expired; `undefined` otherwise. */
  verify(cookie: string | undefined, now = Date.now()): SignedValue | undefined {
    if (!cookie) return undefined;
    const dot = cookie.indexOf('.');
    if (dot <= 0) return undefined;
    const body = cookie.slice(0, dot);
    if (!safeEqual(cookie.slice(dot + 1), this.mac(`cookie|${body}`))) return undefined;
    try {
      const value = JSON.parse(Buffer.from(body, 'base64url').toString('utf8')) as SignedValue;
      if (typeof value.expiresAt !== 'number' || value.expiresAt <= now || typeof value.nonce !== 'string') return undefined;
      return value;
    } catch {
      return undefined;
    }
  }

  /** The CSRF token bound to a session's (or browser's) nonce: a synchronizer token the server can recompute. */
  csrfToken(nonce: string): string {
    return this.mac(`csrf|${nonce}`);
  }

  checkCsrf(nonce: string, given: unknown): boolean {
    return typeof given === 'string' && safeEqual(given, this.csrfToken(nonce));
  }

  private mac(data: string): string {
    return createHmac('sha256', this.key).update(data).digest('base64url');
  }
}

export function newNonce(): string {
  return randomBytes(18).toString('base64url');
}

/**
 * The signing key. With credentials configured it is derived from them, so
 * every instance sharing the configuration accepts the same sessions and
 * changing a credential signs everyone out. Without credentials (the
 * dashboard then answers only this machine) a random key is kept in the data
 * folder.
 */
export async function cookieSigningKey(admin: { token?: string; username?: string; password?: string }, dataDir: string): Promise<Buffer> {
  if (admin.token || admin.password) {
    return createHmac('sha256', 'callme-admin-cookies-v1').update(JSON.stringify([admin.token ?? '', admin.username ?? '', admin.password ?? ''])).digest();
  }
  const file = path.join(dataDir, 'admin-cookie-key');
  const existing = await readFile(file, 'utf8').catch(() => '');
  if (/^[0-9a-f]{64}$/.test(existing.trim())) return Buffer.from(existing.trim(), 'hex');
  await mkdir(dataDir, { recursive: true });
  const key = randomBytes(32).toString('hex');
  await writeFile(file, `${key}\n`, { mode: 0o600, flag: 'wx' }).catch((error: NodeJS.ErrnoException) => {
    if (error.code !== 'EEXIST') throw error;
  });
  const kept = (await readFile(file, 'utf8')).trim();
  return Buffer.from(/^[0-9a-f]{64}$/.test(kept) ? kept : key, 'hex');
}

/** Compares in constant time, whatever the lengths (both sides are hashed first). */
export function safeEqual(given: string, expected: string): boolean {
  const a = createHmac('sha256', 'compare').update(given).digest();
  const b = createHmac('sha256', 'compare').update(expected).digest();
  return timingSafeEqual(a, b);
}

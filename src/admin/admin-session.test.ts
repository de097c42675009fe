import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { cookieSigningKey, CookieSigner, safeEqual } from './admin-session.js';

const signer = new CookieSigner(Buffer.alloc(32, 7));
const session = { kind: 'session' as const, subject: 'admin', nonce: 'n0nce', expiresAt: Date.now() + 60_000 };

describe('CookieSigner', () => {
  it('verifies what it signed', () => {
    expect(signer.verify(signer.sign(session))).toEqual(session);
  });

  it('refuses a changed value, a changed signature, another key and garbage', () => {
    const cookie = signer.sign(session);
    const [body, mac] = cookie.split('.');
    const forged = Buffer.from(JSON.stringify({ ...session, subject: 'someone-else' })).toString('base64url');
    expect(signer.verify(`${forged}.${mac}`)).toBeUndefined();
    expect(signer.verify(`${body}.${mac.slice(0, -2)}AA`)).toBeUndefined();
    expect(new CookieSigner(Buffer.alloc(32, 8)).verify(cookie)).toBeUndefined();
    for (const junk of [undefined, '', '.', 'abc', `${body}.`, '.abc']) expect(signer.verify(junk)).toBeUndefined();
  });

  it('refuses an expired value', () => {
    const cookie = signer.sign({ ...session, expiresAt: 1_000 });
    expect(signer.verify(cookie, 999)).toBeDefined();
    expect(signer.verify(cookie, 1_000)).toBeUndefined();
  });

  it('binds CSRF tokens to one nonce', () => {
    const token = signer.csrfToken('a');
    expect(signer.checkCsrf('a', token)).toBe(true);
    expect(signer.checkCsrf('b', token)).toBe(false);
    expect(signer.checkCsrf('a', undefined)).toBe(false);
    expect(signer.checkCsrf('a', [token])).toBe(false);
  });
});

describe('cookieSigningKey', () => {
  it('derives the key from the credentials, so instances sharing them share sessions', async () => {
    const a = await cookieSigningKey({ token: 'x'.repeat(16) }, '/nonexistent');
    expect(a).toEqual(await cookieSigningKey({ token: 'x'.repeat(16) }, '/elsewhere'));
    expect(a).not.toEqual(await cookieSigningKey({ token: 'y'.repeat(16) }, '/nonexistent'));
  });

  it('keeps a random key in the data folder without credentials', async () => {
    const dataDir = await mkdtemp(path.join(tmpdir(), 'callme-key-'));
    try {
      const key = await cookieSigningKey({}, dataDir);
      expect(key).toHaveLength(32);
      expect(await cookieSigningKey({}, dataDir)).toEqual(key);
      expect((await readFile(path.join(dataDir, 'admin-cookie-key'), 'utf8')).trim()).toBe(key.toString('hex'));
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});

describe('safeEqual', () => {
  it('compares whatever the lengths', () => {
    expect(safeEqual('secret', 'secret')).toBe(true);
    expect(safeEqual('secret', 'secret!')).toBe(false);
    expect(safeEqual('', 'secret')).toBe(false);
  });
});

import { request as httpRequest } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../src/config.js';
import { simulateCall } from '../src/simulator/twilio-simulator.js';
import { startTestApp, type TestApp } from '../src/testing/test-app.js';
import { availableDatabaseKinds } from '../src/testing/test-databases.js';

/** The server runs on PostgreSQL when it is there (it starts in a tenth of PGlite's time); the queries are tested on both in src/admin. */
const databaseKind = (await availableDatabaseKinds()).includes('postgres') ? 'postgres' : 'pglite';

interface RawResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** A request with full control of its headers (Host included), no redirects followed. */
function send(baseUrl: string, method: string, path: string, options: { headers?: Record<string, string>; form?: Record<string, string> } = {}): Promise<RawResponse> {
  const url = new URL(path, baseUrl);
  const body = options.form ? new URLSearchParams(options.form).toString() : undefined;
  return new Promise((resolve, reject) => {
    const request = httpRequest(
      url,
      {
        method,
        headers: {
          ...(body ? { 'content-type': 'application/x-www-form-urlencoded', 'content-length': String(Buffer.byteLength(body)) } : {}),
          ...options.headers,
        },
      },
      (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () => resolve({ status: response.statusCode ?? 0, headers: response.headers, body: Buffer.concat(chunks).toString('utf8') }));
      },
    );
    request.on('error', reject);
    request.end(body);
  });
}

const setCookies = (response: RawResponse) => (response.headers['set-cookie'] ?? []) as string[];
const cookieHeader = (response: RawResponse) => setCookies(response).map((cookie) => cookie.split(';')[0]).join('; ');
const csrfIn = (html: string) => /name="_csrf" value="([^"]+)"/.exec(html)?.[1];

const adminToken = 'security-admin-token-0123456789';
const documentedGets = ['/api/calls', '/api/calls/CA0123', '/api/analytics', '/api/live', '/api/live/events', '/api/assistants', '/api/pricing', '/api/session', '/api/openapi.json'];

describe('dashboard and admin API access, with credentials configured', () => {
  let server: TestApp;
  const origin = 'https://callme.test';
  const get = (path: string, headers: Record<string, string> = {}) => send(server.baseUrl, 'GET', path, { headers });
  const post = (path: string, form: Record<string, string>, headers: Record<string, string> = {}) => send(server.baseUrl, 'POST', path, { form, headers });

  /** Opens the login form: its browser cookie and CSRF token. */
  const openLogin = async () => {
    const page = await get('/dashboard/login');
    return { cookie: cookieHeader(page), csrf: csrfIn(page.body)!, page };
  };
  const signIn = async (fields: Record<string, string>) => {
    const login = await openLogin();
    return post('/dashboard/login', { _csrf: login.csrf, ...fields }, { cookie: login.cookie, origin });
  };

  beforeAll(async () => {
    server = await startTestApp(databaseKind, { ADMIN_TOKEN: adminToken, ADMIN_USERNAME: 'operator', ADMIN_PASSWORD: 'correct horse battery' });
  });
  afterAll(async () => {
    await server?.close();
  });

  it.each(documentedGets)('GET %s without credentials is a 401 that says how to authenticate', async (path) => {
    const response = await get(path);
    expect(response.status).toBe(401);
    expect(response.headers['www-authenticate']).toBe('Bearer realm="callme admin"');
    expect(JSON.parse(response.body).error.code).toBe('unauthorized');
  });

  it('accepts the token as a bearer header, or the username and password as Basic, and nothing else', async () => {
    expect((await get('/api/calls', { authorization: `Bearer ${adminToken}` })).status).toBe(200);
    expect((await get('/api/calls', { authorization: `Basic ${Buffer.from('operator:correct horse battery').toString('base64')}` })).status).toBe(200);
    for (const authorization of [`Bearer ${adminToken}x`, 'Bearer', `Basic ${Buffer.from('operator:wrong').toString('base64')}`, `Basic ${Buffer.from(`token:${adminToken}`).toString('base64')}`, adminToken]) {
      const response = await get('/api/calls', { authorization });
      expect(response.status, authorization).toBe(401);
    }
  });

  it('sends a browser without a session to the login page, remembering where it was going', async () => {
    const response = await get('/dashboard/calls?status=completed');
    expect(response.status).toBe(303);
    expect(response.headers.location).toBe(`/dashboard/login?next=${encodeURIComponent('/dashboard/calls?status=completed')}`);
  });

  it('signs in with the token: a signed, HttpOnly, SameSite=Strict, Secure session cookie that opens the pages and the API', async () => {
    const login = await openLogin();
    expect(setCookies(login.page)[0]).toMatch(/^__Host-callme_browser=.*; Path=\/; HttpOnly; Secure; SameSite=Strict/);
    const response = await post('/dashboard/login', { _csrf: login.csrf, token: adminToken, next: '/dashboard/analytics' }, { cookie: login.cookie, origin });
    expect(response.status).toBe(303);
    expect(response.headers.location).toBe('/dashboard/analytics');
    const session = setCookies(response).find((cookie) => cookie.startsWith('__Host-callme_session='))!;
    expect(session).toMatch(/Max-Age=43200; Path=\/; HttpOnly; Secure; SameSite=Strict/);
    const cookie = session.split(';')[0];
    expect((await get('/dashboard/analytics', { cookie })).status).toBe(200);
    expect((await get('/api/calls', { cookie })).status).toBe(200);
    expect(JSON.parse((await get('/api/session', { cookie })).body)).toMatchObject({ via: 'session', subject: 'token' });
  });

  it('signs in with the username and password; a wrong one gets the form again with a 401', async () => {
    expect((await signIn({ username: 'operator', password: 'correct horse battery' })).status).toBe(303);
    const wrong = await signIn({ username: 'operator', password: 'correct horse' });
    expect(wrong.status).toBe(401);
    expect(wrong.body).toContain('Wrong username, password or token.');
    expect(setCookies(wrong).some((cookie) => cookie.includes('callme_session'))).toBe(false);
    expect((await signIn({ username: 'someone', password: 'correct horse battery' })).status).toBe(401);
    expect((await signIn({ token: 'not-the-token' })).status).toBe(401);
  });

  it('refuses a sign-in without its CSRF token, its browser cookie, or from another site', async () => {
    const login = await openLogin();
    const attempts: Array<[string, Record<string, string>, Record<string, string>]> = [
      ['no token', { token: adminToken }, { cookie: login.cookie, origin }],
      ['a wrong token', { token: adminToken, _csrf: 'x' }, { cookie: login.cookie, origin }],
      ['no cookie', { token: adminToken, _csrf: login.csrf }, { origin }],
      ['another site', { token: adminToken, _csrf: login.csrf }, { cookie: login.cookie, origin: 'https://evil.example' }],
      ['a null origin', { token: adminToken, _csrf: login.csrf }, { cookie: login.cookie, origin: 'null' }],
      ['no origin or referer', { token: adminToken, _csrf: login.csrf }, { cookie: login.cookie }],
      ['a foreign referer', { token: adminToken, _csrf: login.csrf }, { cookie: login.cookie, referer: 'https://evil.example/page' }],
    ];
    for (const [what, form, headers] of attempts) {
      const response = await post('/dashboard/login', form, headers);
      expect(response.status, what).toBe(403);
      expect(setCookies(response).some((cookie) => cookie.includes('callme_session')), what).toBe(false);
    }
    const sameSiteReferer = await post('/dashboard/login', { token: adminToken, _csrf: login.csrf }, { cookie: login.cookie, referer: `${origin}/dashboard/login` });
    expect(sameSiteReferer.status).toBe(303);
  });

  it('never redirects away from the dashboard after signing in', async () => {
    for (const next of ['//evil.example/x', 'https://evil.example', '/dashboard/../api/calls', '/\\evil.example', 'javascript:alert(1)']) {
      const response = await signIn({ token: adminToken, next });
      expect(response.headers.location, next).toBe('/dashboard/calls');
    }
  });

  it('refuses a forged or tampered session cookie', async () => {
    const cookie = (await signIn({ token: adminToken })).headers['set-cookie']!.toString().split(';')[0];
    const [name, value] = cookie.split('=');
    const [body, mac] = value.split('.');
    const forgedBody = Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(body, 'base64url').toString()), expiresAt: Date.now() + 1e10 })).toString('base64url');
    for (const bad of [`${name}=${forgedBody}.${mac}`, `${name}=${body}.${mac}x`, `${name}=x`, `callme_session=${value}`]) {
      expect((await get('/api/calls', { cookie: bad })).status, bad).toBe(401);
      expect((await get('/dashboard/calls', { cookie: bad })).status, bad).toBe(303);
    }
  });

  it('signs out only with the CSRF token of the session, from this site', async () => {
    const cookie = cookieHeader(await signIn({ token: adminToken }));
    const page = await get('/dashboard/calls', { cookie });
    const csrf = csrfIn(page.body)!;
    expect(csrf).toBeTruthy();
    expect((await post('/dashboard/logout', {}, { cookie, origin })).status).toBe(403);
    expect((await post('/dashboard/logout', { _csrf: csrf }, { cookie, origin: 'https://evil.example' })).status).toBe(403);
    const otherSession = csrfIn((await get('/dashboard/calls', { cookie: cookieHeader(await signIn({ token: adminToken })) })).body)!;
    expect((await post('/dashboard/logout', { _csrf: otherSession }, { cookie, origin })).status).toBe(403);
    const response = await post('/dashboard/logout', { _csrf: csrf }, { cookie, origin });
    expect(response.status).toBe(303);
    expect(response.headers.location).toBe('/dashboard/login');
    expect(setCookies(response)[0]).toMatch(/^__Host-callme_session=;.*Expires=Thu, 01 Jan 1970/);
  });

  it('accepts a CSRF token in the X-CSRF-Token header, as scripts send it', async () => {
    const cookie = cookieHeader(await signIn({ token: adminToken }));
    const { csrfToken } = JSON.parse((await get('/api/session', { cookie })).body);
    expect((await send(server.baseUrl, 'POST', '/dashboard/logout', { headers: { cookie, origin, 'x-csrf-token': csrfToken } })).status).toBe(303);
  });

  it('sends security headers: a self-only Content-Security-Policy, no framing, no caching', async () => {
    const cookie = cookieHeader(await signIn({ token: adminToken }));
    for (const path of ['/dashboard/calls', '/dashboard/login', '/api/calls']) {
      const response = await get(path, { cookie });
      expect(response.headers['content-security-policy'], path).toMatch(/default-src 'self'; script-src 'self'; style-src 'self'.*frame-ancestors 'none'; form-action 'self'/);
      expect(response.headers['x-frame-options']).toBe('DENY');
      expect(response.headers['cache-control']).toBe('no-store');
      expect(response.headers['referrer-policy']).toBe('same-origin');
      expect(response.headers['x-content-type-options']).toBe('nosniff');
    }
  });

  it("escapes what callers say: a caller's words never become markup", async () => {
    const result = await simulateCall({
      baseUrl: server.baseUrl,
      publicUrl: server.publicUrl,
      authToken: server.authToken,
      from: '+15550001111',
      caller: async (prompt) => (prompt.turn === 1 ? '<script>alert("x")</script><img src=x onerror=alert(1)>' : null),
    });
    const cookie = cookieHeader(await signIn({ token: adminToken }));
    const page = await get(`/dashboard/calls/${result.callSid}`, { cookie });
    expect(page.status).toBe(200);
    expect(page.body).toContain('&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;');
    expect(page.body).not.toContain('<script>alert');
    expect(page.body).not.toContain('<img src=x');
    const list = await get('/dashboard/calls?q=%3Cscript%3E', { cookie });
    expect(list.body).toContain('value="&lt;script&gt;"');
  });

  it('slows down guessing: after ten failed sign-ins, even the right token waits', async () => {
    const login = await openLogin();
    const attempt = (token: string) => post('/dashboard/login', { _csrf: login.csrf, token }, { cookie: login.cookie, origin });
    // Earlier tests already failed a few times from this address; at most ten failures are allowed in all.
    const statuses: number[] = [];
    while (statuses.at(-1) !== 429 && statuses.length <= 10) statuses.push((await attempt(`guess-${statuses.length}`)).status);
    expect(statuses.at(-1)).toBe(429);
    expect(statuses.slice(0, -1).every((status) => status === 401)).toBe(true);
    const limited = await attempt(adminToken);
    expect(limited.status).toBe(429);
    expect(Number(limited.headers['retry-after'])).toBeGreaterThan(500);
    expect(setCookies(limited).some((cookie) => cookie.includes('callme_session'))).toBe(false);
  });
});

describe('dashboard and admin API access, without credentials', () => {
  let server: TestApp;
  beforeAll(async () => {
    server = await startTestApp(databaseKind, {});
  });
  afterAll(async () => {
    await server?.close();
  });

  it('answers this machine', async () => {
    expect((await send(server.baseUrl, 'GET', '/api/calls')).status).toBe(200);
    expect((await send(server.baseUrl, 'GET', '/dashboard/calls')).status).toBe(200);
    expect((await send(server.baseUrl, 'GET', '/dashboard/calls', { headers: { host: 'localhost:8000' } })).status).toBe(200);
  });

  it('refuses requests relayed by a proxy or tunnel', async () => {
    for (const header of ['x-forwarded-for', 'forwarded', 'x-real-ip']) {
      const api = await send(server.baseUrl, 'GET', '/api/calls', { headers: { [header]: '203.0.113.9' } });
      expect(api.status, header).toBe(403);
      expect(JSON.parse(api.body).error.message).toMatch(/ADMIN_TOKEN/);
      const page = await send(server.baseUrl, 'GET', '/dashboard/calls', { headers: { [header]: '203.0.113.9' } });
      expect(page.status, header).toBe(403);
      expect(page.headers['content-type']).toMatch(/text\/html/);
    }
  });

  it('refuses a page whose own name was rebound to this machine (DNS rebinding)', async () => {
    const response = await send(server.baseUrl, 'GET', '/api/calls', { headers: { host: 'evil.example:8000' } });
    expect(response.status).toBe(403);
  });

  it('has nothing to sign in with, and says so', async () => {
    const page = await send(server.baseUrl, 'GET', '/dashboard/login', { headers: { 'x-forwarded-for': '203.0.113.9' } });
    expect(page.status).toBe(403);
    expect(page.body).toContain('No ADMIN_TOKEN');
    expect((await send(server.baseUrl, 'GET', '/dashboard/login')).status).toBe(303);
  });

  it('closes open event streams when the server shuts down, instead of waiting for them', async () => {
    const other = await startTestApp(databaseKind, {});
    try {
      const response = await fetch(`${other.baseUrl}/api/live/events`);
      const reader = response.body!.getReader();
      await reader.read();
      const started = Date.now();
      await other.app.close();
      expect(Date.now() - started).toBeLessThan(3_000);
      for (let chunk = await reader.read(); !chunk.done; chunk = await reader.read());
    } finally {
      await other.close();
    }
  });

  it('still checks the origin of state-changing requests from this machine', async () => {
    const response = await send(server.baseUrl, 'POST', '/dashboard/logout', { form: {}, headers: { origin: 'https://evil.example' } });
    expect(response.status).toBe(403);
  });
});

describe('admin configuration', () => {
  it('wants a username and a password together', () => {
    expect(() => loadConfig({ ADMIN_USERNAME: 'operator' })).toThrow(ConfigError);
    expect(() => loadConfig({ ADMIN_USERNAME: 'operator' })).toThrow(/ADMIN_PASSWORD: ADMIN_USERNAME and ADMIN_PASSWORD are set together/);
    expect(() => loadConfig({ ADMIN_PASSWORD: 'long enough password' })).toThrow(/ADMIN_USERNAME/);
  });

  it('refuses a short token or password without echoing it', () => {
    let error: unknown;
    try {
      loadConfig({ ADMIN_TOKEN: 'short' });
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect(String(error)).toMatch(/ADMIN_TOKEN: expected at least 16 characters/);
    expect(String(error)).not.toContain('short"');
    expect(() => loadConfig({ ADMIN_USERNAME: 'operator', ADMIN_PASSWORD: 'short' })).toThrow(/ADMIN_PASSWORD: expected at least 10/);
  });

  it('masks nothing unless asked', () => {
    expect(loadConfig({}).admin).toEqual({ token: undefined, username: undefined, password: undefined, maskPhoneNumbers: false, pricingFile: undefined });
    expect(loadConfig({ MASK_PHONE_NUMBERS: 'true', PRICING: 'prices.json' }).admin).toMatchObject({ maskPhoneNumbers: true, pricingFile: 'prices.json' });
  });
});

import { cp, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import twilio from 'twilio';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { loadConfig } from '../../src/config.js';
import { createLogger } from '../../src/observability/create-logger.js';
import { simulateCall } from '../../src/simulator/twilio-simulator.js';
import { startFakeOpenAI, type FakeOpenAI } from '../../src/testing/fake-openai-server.js';
import { postSignedWebhook, startTestApp, testAuthToken, type TestApp } from '../../src/testing/test-app.js';
import { availableDatabaseKinds } from '../../src/testing/test-databases.js';
import { recordFigure } from './figures.js';
import { sendRaw, type RawAnswer } from './raw-http.js';

/** PostgreSQL starts in a tenth of PGlite's time; the fuzzing runs on PGlite. */
const databaseKind = (await availableDatabaseKinds()).includes('postgres') ? 'postgres' : 'pglite';

const secrets = {
  openaiKey: 'sk-security-openai-key-0123456789abcdef',
  apiToken: 'security-api-token-0123456789abcdef',
  adminToken: 'security-admin-token-0123456789abcdef',
  adminPassword: 'security admin password 0123',
};
const streamNumber = '+15550008888';
const sid = (prefix: string, n: number) => `${prefix}${'0'.repeat(32 - String(n).length)}${n}`;

let openai: FakeOpenAI;
let server: TestApp;
let logLines: string[] = [];
let refused = 0;
let refusalsExpected = 0;

/** Every line the server's own logger writes, kept for the checks below. */
const logCapture = new Writable({
  write(chunk: Buffer, _encoding, callback) {
    logLines.push(...chunk.toString('utf8').split('\n').filter(Boolean));
    callback();
  },
});

beforeAll(async () => {
  openai = await startFakeOpenAI();
  const profiles = await mkdtemp(path.join(tmpdir(), 'callme-security-profiles-'));
  await cp('profiles', profiles, { recursive: true });
  const restaurant = JSON.parse(await readFile('profiles/restaurant.json', 'utf8'));
  await writeFile(
    path.join(profiles, 'restaurant-stream.json'),
    JSON.stringify({ ...restaurant, id: 'restaurant-stream', mode: 'stream', phoneNumbers: [streamNumber], stream: { endOfSpeechMs: 500, minSpeechMs: 600, silenceRepromptMs: 30000, maxCallSeconds: 120 } }),
  );
  server = await startTestApp(
    databaseKind,
    {
      OPENAI_API_KEY: secrets.openaiKey,
      OPENAI_BASE_URL: openai.url,
      PROFILES_DIR: profiles,
      API_TOKEN: secrets.apiToken,
      ADMIN_TOKEN: secrets.adminToken,
      ADMIN_USERNAME: 'operator',
      ADMIN_PASSWORD: secrets.adminPassword,
      MASK_PHONE_NUMBERS: 'true',
      MAX_CALLS_PER_NUMBER_PER_HOUR: '3',
      RATE_LIMIT_PER_MINUTE: '6',
      TTS_RATE_LIMIT_PER_MINUTE: '4',
      LOG_LEVEL: 'debug',
    },
    { logDestination: logCapture },
  );
}, 60_000);

afterAll(async () => {
  recordFigure({ section: 'security', name: 'forged, replayed or unsigned Twilio requests refused', value: `${refused}/${refusalsExpected}`, expected: 'all' });
  await server?.close();
  await openai?.close();
});

const send = (method: string, target: string, options: { headers?: Record<string, string>; body?: string } = {}) =>
  sendRaw(server.baseUrl, { method, path: target, headers: options.headers, body: options.body });
const form = (params: Record<string, string>) => new URLSearchParams(params).toString();
const sign = (url: string, params: Record<string, string>, token = server.authToken) => twilio.getExpectedTwilioSignature(token, url, params);
const postForm = (target: string, params: Record<string, string>, signature?: string, extra: Record<string, string> = {}) =>
  send('POST', target, {
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...(signature === undefined ? {} : { 'x-twilio-signature': signature }), ...extra },
    body: form(params),
  });
const errorCode = (answer: RawAnswer) => (JSON.parse(answer.body.toString('utf8')) as { error: { code: string } }).error.code;

async function rowsFor(callSid: string): Promise<number> {
  let total = 0;
  for (const table of ['calls', 'turns', 'call_events']) {
    const result = await server.db.query<{ n: string | number }>(`SELECT count(*) AS n FROM ${table} WHERE call_id = $1`, [callSid]);
    total += Number(result.rows[0]?.n ?? 0);
  }
  return total;
}

describe('Twilio signatures on every webhook', () => {
  const routes = ['/twilio/incoming', '/twilio/voice?turn=1', '/twilio/continue?turn=1&from=0', '/twilio/status', '/twilio/stream-ended', '/voice', '/voice/continue?turn=1&from=0', '/voice/stream-ended', '/status'];
  let next = 100;
  const paramsFor = (callSid: string) => ({ CallSid: callSid, AccountSid: sid('AC', 1), From: '+15551112222', To: '+15553334444', CallStatus: 'ringing', SpeechResult: 'a table for two', Confidence: '0.9' });

  it.each(routes)('%s: forged, replayed elsewhere, altered and unsigned requests get a 403 and store nothing', async (route) => {
    const callSid = sid('CA', (next += 1));
    const params = paramsFor(callSid);
    const url = `${server.publicUrl}${route}`;
    const other = routes.find((candidate) => candidate !== route)!;
    const attempts: Array<[string, Promise<RawAnswer>]> = [
      ['unsigned', postForm(route, params)],
      ['an empty signature', postForm(route, params, '')],
      ['signed with another auth token', postForm(route, params, sign(url, params, 'not-the-auth-token'))],
      ['a signature made for another route', postForm(route, params, sign(`${server.publicUrl}${other}`, params))],
      ['a signature made for another host', postForm(route, params, sign(`https://evil.example${route}`, params))],
      ['a changed parameter', postForm(route, { ...params, From: '+15559999999' }, sign(url, params))],
      ['an added parameter', postForm(route, { ...params, Digits: '1' }, sign(url, params))],
      ['a removed parameter', postForm(route, { ...params, SpeechResult: '' }, sign(url, params))],
      ['a changed query', postForm(route.includes('?') ? route.replace(/=1/, '=2') : `${route}?turn=2`, params, sign(url, params))],
      ['random bytes as the signature', postForm(route, params, 'bm90IGEgc2lnbmF0dXJlIGF0IGFsbA==')],
    ];
    for (const [what, pending] of attempts) {
      const answer = await pending;
      refusalsExpected += 1;
      if (answer.status === 403) refused += 1;
      expect(answer.status, `${route} with ${what}`).toBe(403);
      expect(errorCode(answer)).toBe('forbidden');
    }
    expect(await rowsFor(callSid)).toBe(0);
  });

  it('accepts the URL signed with or without the default port, as Twilio signs either', async () => {
    for (const [index, signedUrl] of [`${server.publicUrl}/twilio/incoming`, `${server.publicUrl}:443/twilio/incoming`].entries()) {
      const callSid = sid('CA', 900 + index);
      const params = paramsFor(callSid);
      const answer = await postForm('/twilio/incoming', params, sign(signedUrl, params));
      expect(answer.status, signedUrl).toBe(200);
      expect(answer.body.toString()).toContain('<Response>');
      expect(await rowsFor(callSid)).toBeGreaterThan(0);
    }
    // The port of another scheme is not the default one: refused.
    const params = paramsFor(sid('CA', 902));
    expect((await postForm('/twilio/incoming', params, sign(`${server.publicUrl}:80/twilio/incoming`, params))).status).toBe(403);
  });

  it("refuses non-form bodies, Twilio's JSON bodySHA256 variant included: no voice webhook is JSON", async () => {
    const callSid = sid('CA', 950);
    const json = JSON.stringify(paramsFor(callSid));
    const hash = twilio.getExpectedBodyHash(json);
    const target = `/twilio/incoming?bodySHA256=${hash}`;
    const answer = await send('POST', target, {
      headers: { 'content-type': 'application/json', 'x-twilio-signature': sign(`${server.publicUrl}${target}`, {}) },
      body: json,
    });
    expect(answer.status).toBe(415);
    // The same parameters as a signed JSON object (as if they were the form) are refused too.
    const asJson = await send('POST', '/twilio/incoming', {
      headers: { 'content-type': 'application/json', 'x-twilio-signature': sign(`${server.publicUrl}/twilio/incoming`, paramsFor(callSid)) },
      body: json,
    });
    expect(asJson.status).toBe(415);
    expect(await rowsFor(callSid)).toBe(0);
    recordFigure({ section: 'security', name: 'rows stored by refused Twilio requests', value: await storedByRefused(), expected: '0' });
  });

  /** Calls 101…(next) were only ever sent refused requests. */
  async function storedByRefused(): Promise<number> {
    let total = 0;
    for (let n = 101; n <= next; n += 1) total += await rowsFor(sid('CA', n));
    return total;
  }
});

describe('the media stream upgrade', () => {
  let counter = 0;
  const wsBase = () => server.baseUrl.replace(/^http/, 'ws');

  async function placeStreamCall(): Promise<{ callSid: string; streamUrl: string }> {
    counter += 1;
    const callSid = sid('CA', 5000 + counter);
    const twiml = await (await postSignedWebhook(server, '/twilio/incoming', { CallSid: callSid, From: `+1555700${String(counter).padStart(4, '0')}`, To: streamNumber, CallStatus: 'ringing' })).text();
    const streamUrl = /<Stream url="([^"]+)"/.exec(twiml)?.[1];
    expect(streamUrl, twiml).toMatch(/^wss:\/\/callme\.test\/twilio\/media\//);
    return { callSid, streamUrl: streamUrl! };
  }

  /** Opens the socket at the stream's path with the given signature: the HTTP status of the upgrade (101 when accepted). */
  function upgrade(streamUrl: string, signature: string | undefined, pathOverride?: string): Promise<number> {
    const target = pathOverride ?? new URL(streamUrl).pathname;
    const socket = new WebSocket(`${wsBase()}${target}`, { headers: signature === undefined ? {} : { 'X-Twilio-Signature': signature } });
    socket.on('error', () => {});
    return new Promise((resolve) => {
      socket.once('unexpected-response', (request, response) => {
        resolve(response.statusCode ?? 0);
        request.destroy();
      });
      socket.once('open', () => {
        resolve(101);
        socket.close(1000);
      });
    });
  }

  it('refuses unsigned, forged and replayed upgrades without using up the token, then admits Twilio once', async () => {
    const { callSid, streamUrl } = await placeStreamCall();
    const other = await placeStreamCall();
    const turnsBefore = await server.db.query<{ n: string | number }>('SELECT count(*) AS n FROM turns WHERE call_id = $1', [callSid]);
    const attempts: Array<[string, Promise<number>]> = [
      ['unsigned', upgrade(streamUrl, undefined)],
      ['an empty signature', upgrade(streamUrl, '')],
      ['signed with another auth token', upgrade(streamUrl, sign(streamUrl, {}, 'not-the-auth-token'))],
      ["another call's signature", upgrade(streamUrl, sign(other.streamUrl, {}))],
      ['signed as https instead of wss', upgrade(streamUrl, sign(streamUrl.replace('wss://', 'https://'), {}))],
      ['a signature carried to another token', upgrade(streamUrl, sign(streamUrl, {}), new URL(other.streamUrl).pathname)],
      ['signed with form parameters', upgrade(streamUrl, sign(streamUrl, { CallSid: callSid }))],
    ];
    for (const [what, pending] of attempts) {
      refusalsExpected += 1;
      const status = await pending;
      if (status === 403) refused += 1;
      expect(status, what).toBe(403);
    }
    const turnsAfter = await server.db.query<{ n: string | number }>('SELECT count(*) AS n FROM turns WHERE call_id = $1', [callSid]);
    expect(Number(turnsAfter.rows[0].n)).toBe(Number(turnsBefore.rows[0].n));
    // The refusals did not use the token: Twilio's own upgrade still gets in, once.
    expect(await upgrade(streamUrl, sign(streamUrl, {}))).toBe(101);
    refusalsExpected += 1;
    const replay = await upgrade(streamUrl, sign(streamUrl, {}));
    if (replay === 403) refused += 1;
    expect(replay, 'the same upgrade replayed').toBe(403);
  });

  it('accepts the stream URL signed with the default port', async () => {
    const { streamUrl } = await placeStreamCall();
    expect(await upgrade(streamUrl, sign(streamUrl.replace('wss://callme.test/', 'wss://callme.test:443/'), {}))).toBe(101);
  });
});

describe('rate limits', () => {
  const from = (address: string) => ({ 'x-forwarded-for': `198.51.100.1, ${address}` });

  it('limits /tts/stream per client address, with the JSON error shape and Retry-After', async () => {
    const statuses: number[] = [];
    let limited: RawAnswer | undefined;
    for (let i = 0; i < 6; i += 1) {
      const answer = await send('POST', '/tts/stream', { headers: { ...from('203.0.113.10'), 'content-type': 'application/json' }, body: '{}' });
      statuses.push(answer.status);
      if (answer.status === 429) limited ??= answer;
    }
    expect(statuses).toEqual([401, 401, 401, 401, 429, 429]);
    expect(JSON.parse(limited!.body.toString())).toMatchObject({ error: { code: 'rate_limited', requestId: expect.any(String) } });
    expect(Number(limited!.headers['retry-after'])).toBeGreaterThan(0);
    // Another address has its own budget; this machine (no proxy in between) is the operator's and has none.
    expect((await send('POST', '/tts/stream', { headers: { ...from('203.0.113.11'), 'content-type': 'application/json' }, body: '{}' })).status).toBe(401);
    for (let i = 0; i < 8; i += 1) {
      expect((await send('POST', '/tts/stream', { headers: { 'content-type': 'application/json', authorization: `Bearer ${secrets.apiToken}` }, body: '{}' })).status).toBe(400);
    }
    recordFigure({ section: 'security', name: '/tts/stream requests past the per-address limit refused', value: `${statuses.filter((s) => s === 429).length}/2`, expected: 'all' });
  });

  it('limits the API, the dashboard (sign-in included) and /metrics per client address, from one budget', async () => {
    const address = from('203.0.113.20');
    const answers = [
      await send('GET', '/api/calls', { headers: address }),
      await send('GET', '/dashboard/calls', { headers: address }),
      await send('GET', '/metrics', { headers: address }),
      await send('POST', '/dashboard/login', { headers: { ...address, 'content-type': 'application/x-www-form-urlencoded' }, body: 'token=guess' }),
      await send('GET', '/api/session', { headers: address }),
      await send('GET', '/api/calls', { headers: { ...address, authorization: `Bearer ${secrets.adminToken}` } }),
      await send('GET', '/api/calls', { headers: { ...address, authorization: `Bearer ${secrets.adminToken}` } }),
      await send('POST', '/dashboard/login', { headers: { ...address, 'content-type': 'application/x-www-form-urlencoded' }, body: 'token=guess' }),
    ];
    expect(answers.map((answer) => answer.status)).toEqual([401, 303, 401, 403, 401, 200, 429, 429]);
    expect(errorCode(answers[6])).toBe('rate_limited');
    // The dashboard's static files are not counted: a page needs several.
    expect((await send('GET', '/dashboard/assets/dashboard.css', { headers: address })).status).toBe(200);
  });

  it("never limits Twilio's webhooks per address (Twilio shares its addresses among all its customers)", async () => {
    const statuses = new Set<number>();
    for (let i = 0; i < 12; i += 1) {
      const params = { CallSid: sid('CA', 7000 + i), CallStatus: 'completed', From: '+15550101010', To: '+15553334444' };
      const answer = await postForm('/twilio/status', params, sign(`${server.publicUrl}/twilio/status`, params), from('203.0.113.30'));
      statuses.add(answer.status);
    }
    expect([...statuses]).toEqual([200]);
  });

  it('limits calls per caller number (MAX_CALLS_PER_NUMBER_PER_HOUR): the caller hears why, and the call is not stored', async () => {
    const caller = '+15550202020';
    const answers: string[] = [];
    for (let i = 0; i < 5; i += 1) {
      const response = await postSignedWebhook(server, '/twilio/incoming', { CallSid: sid('CA', 8000 + i), From: caller, To: '+15553334444', CallStatus: 'ringing' });
      expect(response.status).toBe(200);
      answers.push(await response.text());
    }
    const profile = server.app.services.profiles.defaultProfile;
    for (const [index, twiml] of answers.slice(0, 3).entries()) {
      expect(twiml).not.toContain(profile.phrases.tooManyCalls.slice(0, 20));
      expect(await rowsFor(sid('CA', 8000 + index))).toBeGreaterThan(0);
    }
    for (const twiml of answers.slice(3)) {
      expect(twiml).toContain(profile.phrases.tooManyCalls.slice(0, 20));
      expect(twiml).toContain('<Hangup/>');
    }
    expect(await rowsFor(sid('CA', 8003))).toBe(0);
    expect(await rowsFor(sid('CA', 8004))).toBe(0);
    // Another number is not affected.
    const other = await postSignedWebhook(server, '/twilio/incoming', { CallSid: sid('CA', 8010), From: '+15550303030', To: '+15553334444', CallStatus: 'ringing' });
    expect(await other.text()).not.toContain(profile.phrases.tooManyCalls.slice(0, 20));
    recordFigure({ section: 'security', name: 'calls past the per-number limit refused (and not stored)', value: '2/2', expected: 'all' });
  });
});

describe('body size limits', () => {
  it('refuses bodies past the limits with a 413 (or by closing the connection), never a 5xx', async () => {
    const params = { CallSid: sid('CA', 9100), Extra: 'a'.repeat(70 * 1024) };
    const form70 = await postForm('/twilio/incoming', params, sign(`${server.publicUrl}/twilio/incoming`, params));
    expect(form70.status).toBe(413);
    const tts = await send('POST', '/tts/stream', { headers: { 'content-type': 'application/json', authorization: `Bearer ${secrets.apiToken}` }, body: JSON.stringify({ text: 'a'.repeat(70 * 1024) }) });
    expect(tts.status).toBe(413);
    const huge = await send('POST', '/dashboard/login', { headers: { 'content-type': 'application/json' }, body: JSON.stringify({ token: 'a'.repeat(300 * 1024) }) });
    expect(huge.reset ? 413 : huge.status).toBe(413);
    expect(await rowsFor(sid('CA', 9100))).toBe(0);
  });
});

describe('security headers', () => {
  const expectBase = (answer: RawAnswer, what: string) => {
    expect(answer.headers['x-content-type-options'], what).toBe('nosniff');
    expect(answer.headers['x-frame-options'], what).toBe('DENY');
    expect(answer.headers['strict-transport-security'], what).toBe('max-age=15552000');
    expect(answer.headers['cross-origin-opener-policy'], what).toBe('same-origin');
    expect(answer.headers['content-security-policy'], what).toMatch(/frame-ancestors 'none'/);
  };

  it("every kind of answer carries them: JSON, TwiML, audio, errors; nothing but the dashboard's pages may run anything", async () => {
    const twimlParams = { CallSid: sid('CA', 9200), From: '+15550404040', To: '+15553334444', CallStatus: 'ringing' };
    const twiml = await postForm('/twilio/incoming', twimlParams, sign(`${server.publicUrl}/twilio/incoming`, twimlParams));
    const audioUrl = /<Play>https:\/\/callme\.test(\/audio\/[^<]+)<\/Play>/.exec(twiml.body.toString())?.[1];
    expect(audioUrl).toBeTruthy();
    const answers: Array<[string, RawAnswer]> = [
      ['healthz', await send('GET', '/healthz')],
      ['TwiML', twiml],
      ['audio', await send('GET', audioUrl!)],
      ['a 404', await send('GET', '/nothing-here')],
      ['a refused webhook', await postForm('/twilio/voice', {})],
      ['the API', await send('GET', '/api/openapi.json', { headers: { authorization: `Bearer ${secrets.adminToken}` } })],
      ['a tts error', await send('POST', '/tts/stream', { headers: { 'content-type': 'application/json', authorization: `Bearer ${secrets.apiToken}` }, body: '{}' })],
    ];
    for (const [what, answer] of answers) {
      expectBase(answer, what);
      if (what !== 'the API') expect(answer.headers['content-security-policy'], what).toBe("default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'");
    }
  });

  it("the dashboard keeps its own policy, which its pages fit: no inline scripts or styles", async () => {
    const page = await send('GET', '/dashboard/calls', { headers: { authorization: `Bearer ${secrets.adminToken}` } });
    expect(page.status).toBe(200);
    expectBase(page, 'dashboard');
    expect(page.headers['content-security-policy']).toMatch(/^default-src 'self'; script-src 'self'; style-src 'self'/);
    const html = page.body.toString();
    const inlineScripts = [...html.matchAll(/<script(?![^>]*\bsrc=)(?![^>]*type="application\/json")[^>]*>/g)];
    expect(inlineScripts).toEqual([]);
    expect(html).not.toMatch(/<style|\sstyle="|\son\w+="/);
  });
});

describe('/metrics', () => {
  it('is guarded like the admin API: the admin token or credentials, or API_TOKEN; nothing else', async () => {
    const basic = `Basic ${Buffer.from(`operator:${secrets.adminPassword}`).toString('base64')}`;
    for (const authorization of [`Bearer ${secrets.adminToken}`, `Bearer ${secrets.apiToken}`, basic]) {
      const answer = await send('GET', '/metrics', { headers: { authorization } });
      expect(answer.status, authorization.slice(0, 12)).toBe(200);
      expect(answer.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
    }
    for (const authorization of [undefined, 'Bearer wrong', `Bearer ${secrets.adminToken}x`, `Basic ${Buffer.from('operator:wrong').toString('base64')}`, secrets.adminToken]) {
      const answer = await send('GET', '/metrics', { headers: authorization ? { authorization } : {} });
      expect(answer.status, String(authorization)).toBe(401);
    }
  });

  it('without any token configured, answers only this machine', async () => {
    const open = await startTestApp(databaseKind, {});
    try {
      expect((await sendRaw(open.baseUrl, { method: 'GET', path: '/metrics' })).status).toBe(200);
      expect((await sendRaw(open.baseUrl, { method: 'GET', path: '/metrics', headers: { 'x-forwarded-for': '203.0.113.9' } })).status).toBe(403);
    } finally {
      await open.close();
    }
  });
});

describe('logs', () => {
  const caller = '+15551234567';
  let callSid = '';
  let callLines: string[] = [];

  beforeAll(async () => {
    // A whole call with a model failure in it (so errors are logged), then the operator's and a script's requests.
    openai.failNext('chat', { status: 400, message: 'the model refused the request' }, 1);
    const mark = logLines.length;
    const result = await simulateCall({
      baseUrl: server.baseUrl,
      publicUrl: server.publicUrl,
      authToken: server.authToken,
      from: caller,
      to: '+15559876543',
      caller: async (prompt) => (prompt.turn === 1 ? 'a table for two at eight, my number is +15551234567' : prompt.turn === 2 ? 'thanks, bye' : null),
    });
    callSid = result.callSid;
    callLines = logLines.slice(mark);
    await send('GET', `/api/calls?number=${encodeURIComponent(caller)}`, { headers: { authorization: `Bearer ${secrets.adminToken}` } });
    await send('GET', `/api/calls/${callSid}`, { headers: { authorization: `Basic ${Buffer.from(`operator:${secrets.adminPassword}`).toString('base64')}` } });
    await send('GET', '/api/calls', { headers: { authorization: `Bearer ${secrets.adminToken.slice(0, -1)}X` } });
    await send('POST', '/tts/stream', { headers: { 'content-type': 'application/json', authorization: `Bearer ${secrets.apiToken}` }, body: JSON.stringify({ text: 'Hello' }) });
    await send('GET', '/metrics', { headers: { authorization: `Bearer ${secrets.apiToken}` } });
    await postForm('/twilio/incoming', { CallSid: callSid, From: caller }, 'forged');
    await new Promise((resolve) => setTimeout(resolve, 200));
  }, 60_000);

  it('are JSON lines', () => {
    expect(logLines.length).toBeGreaterThan(20);
    for (const line of logLines) expect(() => JSON.parse(line), line).not.toThrow();
  });

  it('never contain a secret: the OpenAI key, the Twilio auth token, the API and admin tokens, the admin password', () => {
    const all = logLines.join('\n');
    const found = Object.entries({ ...secrets, twilioAuthToken: testAuthToken }).filter(([, secret]) => all.includes(secret));
    recordFigure({ section: 'security', name: 'secrets found in the logs of a whole call', value: found.length, expected: '0' });
    expect(found.map(([name]) => name)).toEqual([]);
  });

  it('with MASK_PHONE_NUMBERS, never contain a full phone number', () => {
    const all = logLines.join('\n');
    const numbers = [caller, '+15559876543', '+15550202020', '+15550404040'].flatMap((number) => [number, encodeURIComponent(number), number.slice(1)]);
    const found = numbers.filter((number) => all.includes(number));
    recordFigure({ section: 'security', name: 'full phone numbers in the logs (masking on)', value: found.length, expected: '0' });
    expect(found).toEqual([]);
    expect(all).toMatch(/(\+|%2B)1555\*{4}567/);
  });

  it("carry the CallSid on every line about the call (its webhooks, its turns); audio fetches aside", () => {
    const parsed = callLines.map((line) => JSON.parse(line) as Record<string, unknown> & { req?: { url?: string }; reqId?: string });
    const audioRequests = new Set(parsed.filter((line) => line.req?.url?.startsWith('/audio/')).map((line) => line.reqId));
    const about = parsed.filter((line) => !audioRequests.has(line.reqId));
    expect(about.length).toBeGreaterThan(5);
    const without = about.filter((line) => line.callSid !== callSid);
    recordFigure({ section: 'security', name: "a call's log lines without its CallSid", value: `${without.length}/${about.length}`, expected: '0' });
    expect(without).toEqual([]);
  });

  it('scrub a secret even when code logs it by mistake', () => {
    const lines: string[] = [];
    const config = loadConfig({ OPENAI_API_KEY: secrets.openaiKey, ADMIN_TOKEN: secrets.adminToken, MASK_PHONE_NUMBERS: 'true' });
    const logger = createLogger(config, { write: (line: string) => void lines.push(line) });
    logger.error({ err: new Error(`request failed with key ${secrets.openaiKey}`), headers: { authorization: `Bearer ${secrets.adminToken}` }, to: '+442071234567' }, 'oops');
    expect(lines.join('')).not.toContain(secrets.openaiKey);
    expect(lines.join('')).not.toContain(secrets.adminToken);
    expect(lines.join('')).not.toContain('+442071234567');
    expect(lines.join('')).toContain('[redacted]');
  });
});

describe('/metrics content', () => {
  it('exposes active calls, turns, per-stage latency histograms, provider errors by kind, tokens and characters', async () => {
    const answer = await send('GET', '/metrics', { headers: { authorization: `Bearer ${secrets.adminToken}` } });
    const text = answer.body.toString();
    const value = (pattern: RegExp) => Number(pattern.exec(text)?.[1] ?? Number.NaN);
    expect(text).toMatch(/^# TYPE callme_active_calls gauge$/m);
    expect(value(/^callme_active_calls (\d+)/m)).toBeGreaterThanOrEqual(0);
    expect(value(/^callme_turns_total\{[^}]*status="completed"[^}]*\} (\d+)/m)).toBeGreaterThan(0);
    for (const stage of ['llm_first_token', 'first_text', 'first_audio', 'complete']) {
      expect(text, stage).toMatch(new RegExp(`^callme_turn_stage_seconds_bucket\\{le="0.5",stage="${stage}"\\} \\d+`, 'm'));
    }
    expect(value(/^callme_provider_errors_total\{code="[a-z_]+"\} (\d+)/m)).toBeGreaterThan(0);
    expect(value(/^callme_llm_tokens_total\{direction="prompt"\} (\d+)/m)).toBeGreaterThan(0);
    expect(value(/^callme_llm_tokens_total\{direction="completion"\} (\d+)/m)).toBeGreaterThan(0);
    expect(value(/^callme_tts_characters_total (\d+)/m)).toBeGreaterThan(0);
    expect(text).toMatch(/^callme_webhook_seconds_bucket\{/m);
  });
});

import { cp, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parse as parseQuery } from 'node:querystring';
import fc from 'fast-check';
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import twilio from 'twilio';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { startFakeOpenAI, type FakeOpenAI } from '../../src/testing/fake-openai-server.js';
import { postSignedWebhook, startTestApp, type TestApp } from '../../src/testing/test-app.js';
import { recordFigure } from './figures.js';
import { sendBytes, sendRaw, type RawAnswer, type RawRequest } from './raw-http.js';

// Property-based fuzzing of every route of the real server (PGlite, the fake
// OpenAI): whatever arrives, the answer is a 4xx, a success, or — on Twilio's
// routes, when Twilio signed the request — valid TwiML; never a 5xx, never a
// crash. The route list is read from the server, so a new route without a
// fuzz case fails the suite.

const streamNumber = '+15550009999';
/** A few calls the signed webhooks keep coming back to, so turns pile up on them as in a real call. */
const callSids = Array.from({ length: 6 }, (_, index) => `CA${'f'.repeat(31)}${index}`);
const xml = new XMLParser({ ignoreAttributes: false });
/** Sent by most API and dashboard inputs, so they reach the handlers (a header-authenticated request needs no CSRF token). */
const adminToken = 'fuzz-admin-token-0123456789abcdef';
const bearer = { authorization: `Bearer ${adminToken}` };

let openai: FakeOpenAI;
let server: TestApp;
const tried = new Map<string, number>();
const failures: string[] = [];
let serverErrors = 0;

/** Counts an input and remembers any 5xx with what caused it. */
function record(group: string, input: RawRequest | string, answer: { status: number; body?: Buffer }): void {
  tried.set(group, (tried.get(group) ?? 0) + 1);
  if (answer.status >= 500) {
    serverErrors += 1;
    const shown = typeof input === 'string' ? input : `${input.method} ${input.path} ${JSON.stringify(input.headers ?? {})} ${String(input.body ?? '').slice(0, 200)}`;
    failures.push(`${group}: ${answer.status} for ${shown.slice(0, 400)} → ${answer.body?.toString('utf8').slice(0, 300)}`);
  }
}

// ---- Routes, read from the server ----

interface Route {
  path: string;
  methods: string[];
}

/** Reads Fastify's route tree (`printRoutes`): children are indented under their parent's path. */
function listRoutes(tree: string): Route[] {
  const routes: Route[] = [];
  const stack: string[] = [];
  for (const line of tree.split('\n')) {
    const match = /^([│ ]*)[├└]── (\S+)(?: \(([^)]+)\))?$/.exec(line);
    if (!match) continue;
    const depth = match[1].length / 4;
    stack.length = depth;
    const full = (stack.at(-1) ?? '') + match[2];
    stack.push(full);
    if (match[3]) routes.push({ path: full, methods: match[3].split(',').map((method) => method.trim()) });
  }
  return routes;
}

/** Which fuzz group covers a route; a route no group claims fails the coverage test. */
function groupOf(route: string): string | undefined {
  if (route === '/twilio/media/:token') return 'media stream';
  if (route.startsWith('/twilio/') || route === '/voice' || route.startsWith('/voice/') || route === '/status') return 'twilio webhooks';
  if (route === '/audio/:filename') return 'audio';
  if (route === '/tts/stream') return 'tts';
  // The dashboard's JSON: its API, and the talk page's endpoints.
  if (route.startsWith('/api/') || route.startsWith('/mvp/')) return 'api';
  if (route === '/dashboard' || route.startsWith('/dashboard/')) return 'dashboard';
  if (['/healthz', '/readyz', '/metrics'].includes(route)) return 'health';
  return undefined;
}

// ---- Arbitraries ----

const nastyStrings = [
  '', ' ', '\u0000', '\u0000abc', 'a\u0000b', '%00', '%', '%zz', '%E0%A4%A', '\\', '..', '../..', '../../../../etc/passwd', '..%2f..%2fetc%2fpasswd',
  '%2e%2e%2f%2e%2e%2fetc%2fpasswd', '....//....//etc/passwd', '..\\..\\windows\\win.ini', '/etc/passwd', 'C:\\boot.ini', '\u202e\u0000', '\ufeff',
  '\ud800', '\udfff', '😀'.repeat(50), 'null', 'undefined', 'NaN', 'Infinity', '-1', '1e309', '0x1F', '[]', '{}', '{"a":', ']]>', '<Response>', "' OR 1=1 --",
  '$(reboot)', '${jndi:ldap://x}', '<script>alert(1)</script>', 'a'.repeat(5000), '\r\n\r\nX: y', '__proto__', 'constructor',
];

/** Text of every kind: control characters, NUL, lone surrogates, right-to-left marks, long runs. */
const text = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.string({ unit: 'grapheme', maxLength: 20 }),
  fc.constantFrom(...nastyStrings),
);

const contentTypes = [
  'application/x-www-form-urlencoded',
  'application/x-www-form-urlencoded; charset=utf-16',
  'application/json',
  'application/json; charset=latin1',
  'text/plain',
  'text/xml',
  'multipart/form-data; boundary=xyz',
  'application/octet-stream',
  'garbage',
  '',
];

/** Bodies that are wrong in every way a body can be: broken encodings, wrong types, huge, binary. */
const body: fc.Arbitrary<Buffer | undefined> = fc.oneof(
  { weight: 2, arbitrary: fc.constant(undefined) },
  { weight: 3, arbitrary: fc.array(fc.tuple(text, text), { maxLength: 8 }).map((pairs) => Buffer.from(new URLSearchParams(pairs.map(([k, v]) => [wellFormed(k), wellFormed(v)])).toString())) },
  { weight: 2, arbitrary: fc.array(text, { maxLength: 6 }).map((parts) => Buffer.from(wellFormed(parts.join('&')))) },
  { weight: 2, arbitrary: fc.jsonValue().map((value) => Buffer.from(JSON.stringify(value) ?? 'null')) },
  { weight: 2, arbitrary: fc.uint8Array({ maxLength: 300 }).map((bytes) => Buffer.from(bytes)) },
  { weight: 1, arbitrary: fc.constantFrom('{"text": "hi"', '{"text": 1e999}', '[1,2', '{"__proto__": {"x": 1}}', '{"constructor": {"prototype": {"x": 1}}}', 'CallSid=CA%ZZ&&&=', 'a=1&a=2&a=3&a[]=4&a[b]=5').map((value) => Buffer.from(value)) },
  // Past the form (64 KB) and server (256 KB) body limits.
  { weight: 1, arbitrary: fc.constantFrom(70 * 1024, 300 * 1024).map((size) => Buffer.alloc(size, 'a')) },
);

/** Header values an HTTP client can send (Latin-1 without control characters). */
const headerText = fc.string({ maxLength: 60 }).map((value) => value.replace(/[^\x20-\x7e]/g, '?'));
const extraHeaders = fc.dictionary(
  fc.constantFrom('x-twilio-signature', 'authorization', 'cookie', 'origin', 'referer', 'x-forwarded-for', 'accept', 'range', 'if-none-match', 'x-request-id', 'content-encoding', 'transfer-encoding-x'),
  headerText,
  { maxKeys: 4 },
);

/** A route's `:param`s filled with anything, encoded or sent as is (`..` and `/` included). */
function fillPath(route: string): fc.Arbitrary<string> {
  const params = route.match(/:\w+/g) ?? [];
  const segment = fc.oneof(
    text.map((value) => encodeURIComponent(wellFormed(value))),
    fc.constantFrom('..', '../..', '..%2f..%2fetc%2fpasswd', '%2e%2e', '.', '%00', 'a%00.wav', 'x'.repeat(300), 'CA0123456789abcdef0123456789abcdef', '%E2%80%AE'),
  );
  return fc.tuple(fc.array(segment, { minLength: params.length, maxLength: params.length }), fc.option(queryString, { nil: undefined })).map(([values, query]) => {
    let filled = route;
    for (const value of values) filled = filled.replace(/:\w+/, value);
    return query === undefined ? filled : `${filled}?${query}`;
  });
}

/** Query strings with known keys and unknown ones, repeated, empty, broken. */
const queryKeys = ['from', 'to', 'date', 'status', 'outcome', 'number', 'phone', 'name', 'q', 'profile', 'page', 'pageSize', 'turn', 'next', 'callSid', 'x'];
const queryString = fc.oneof(
  fc.array(fc.tuple(fc.oneof(fc.constantFrom(...queryKeys), text), text), { maxLength: 6 }).map((pairs) => new URLSearchParams(pairs.map(([k, v]) => [wellFormed(k), wellFormed(v)])).toString()),
  fc.constantFrom('%', '%zz', '&&&', '=', 'page=-1', 'page=1e9', 'pageSize=0', 'pageSize=100000', 'from=2025-13-45', 'to=0000-00-00', 'date=2025-02-30', 'from=2025-01-01&to=2024-01-01', 'page=1&page=2', 'turn=1&turn=x', 'from=' + 'a'.repeat(3000)),
);

/** What a client can put in a URL or form: lone surrogates become U+FFFD, as URLSearchParams would make them. */
function wellFormed(value: string): string {
  return value.replace(/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g, '\ufffd');
}

const anyMethod = fc.constantFrom('GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS');

// ---- The server under test ----

beforeAll(async () => {
  openai = await startFakeOpenAI();
  const profiles = await mkdtemp(path.join(tmpdir(), 'callme-fuzz-profiles-'));
  await cp('profiles', profiles, { recursive: true });
  const restaurant = JSON.parse(await readFile('profiles/restaurant.json', 'utf8'));
  await writeFile(
    path.join(profiles, 'restaurant-stream.json'),
    JSON.stringify({ ...restaurant, id: 'restaurant-stream', mode: 'stream', phoneNumbers: [streamNumber], stream: { endOfSpeechMs: 500, minSpeechMs: 600, silenceRepromptMs: 30000, maxCallSeconds: 120 } }),
  );
  server = await startTestApp('pglite', {
    OPENAI_API_KEY: 'sk-fuzz-test-key',
    OPENAI_BASE_URL: openai.url,
    PROFILES_DIR: profiles,
    MAX_CALLS_PER_NUMBER_PER_HOUR: '100000',
    ADMIN_TOKEN: adminToken,
    // What is fuzzed is input handling: a valid request waits out a stalled machine rather than becoming a provider timeout (a 502).
    OPENAI_TIMEOUT_MS: '60000',
  });
  await server.app.services.streams!.prepare();
  // One real call, so audio files and call pages exist to be fuzzed around.
  await postSignedWebhook(server, '/twilio/incoming', { CallSid: callSids[0], From: '+15551230000', To: '+15559870000', CallStatus: 'ringing' });
}, 60_000);

afterAll(async () => {
  const total = [...tried.values()].reduce((sum, count) => sum + count, 0);
  for (const [group, count] of [...tried.entries()].sort()) recordFigure({ section: 'fuzz', name: `inputs tried: ${group}`, value: count });
  recordFigure({ section: 'fuzz', name: 'inputs tried: total', value: total });
  recordFigure({ section: 'fuzz', name: '5xx answers', value: serverErrors, expected: '0' });
  // Fuzzed upgrades leave media-stream sockets whose peer never answers a close; the shutdown
  // cuts them after a moment (it once waited out ws's 30 s close timeout for each).
  const started = performance.now();
  const closed = await Promise.race([
    Promise.all([server?.close(), openai?.close()]).then(() => `yes, in ${Math.round(performance.now() - started)} ms`),
    new Promise<string>((resolve) => setTimeout(() => resolve('no: still closing after 30 s'), 30_000).unref()),
  ]);
  recordFigure({ section: 'fuzz', name: 'server shut down cleanly after fuzzing', value: closed, expected: 'yes' });
  expect(closed).toMatch(/^yes/);
}, 60_000);

const send = (input: RawRequest) => sendRaw(server.baseUrl, input);

/** The server still answers. */
async function expectAlive(): Promise<void> {
  const answer = await send({ method: 'GET', path: '/healthz' });
  expect(answer.status).toBe(200);
}

/** Twilio signs the URL it requested (PUBLIC_URL + path + query) and the form parameters as it sent them. */
function twilioSignature(pathAndQuery: string, form: string): string {
  const params = parseQuery(form) as Record<string, string | string[]>;
  return twilio.getExpectedTwilioSignature(server.authToken, `${server.publicUrl}${pathAndQuery}`, params);
}

function expectTwiml(answer: RawAnswer, what: string): void {
  expect(answer.headers['content-type'], what).toMatch(/^text\/xml/);
  const body = answer.body.toString('utf8');
  expect(XMLValidator.validate(body), `${what}: ${body}`).toBe(true);
  const parsed = xml.parse(body) as Record<string, unknown>;
  expect(Object.keys(parsed).filter((key) => key !== '?xml'), what).toEqual(['Response']);
}

describe('fuzzing every route', () => {
  let routes: Route[] = [];
  beforeAll(() => {
    routes = listRoutes(server.app.server.printRoutes({ commonPrefix: false }));
  });

  it('knows every route the server has, and has a fuzz case for each', () => {
    expect(routes.length).toBeGreaterThan(20);
    const uncovered = routes.filter((route) => groupOf(route.path) === undefined).map((route) => route.path);
    expect(uncovered, 'routes without a fuzz case: add one to groupOf and a property below').toEqual([]);
  });

  it('malformed requests to any route, with any method, content type, body and headers: never a 5xx', async () => {
    const request = fc.record({
      route: fc.constantFrom(...routes),
      useRouteMethod: fc.boolean(),
      method: anyMethod,
      contentType: fc.constantFrom(...contentTypes),
      body,
      headers: extraHeaders,
      authorized: fc.boolean(),
      seed: fc.nat(),
    }).chain((input) => fillPath(input.route.path).map((filled) => ({ ...input, filled })));
    await fc.assert(
      fc.asyncProperty(request, async (input) => {
        const method = input.useRouteMethod ? input.route.methods[input.seed % input.route.methods.length] : input.method;
        const raw: RawRequest = {
          method,
          path: input.filled,
          headers: { ...input.headers, ...(input.authorized ? bearer : {}), ...(input.contentType ? { 'content-type': input.contentType } : {}) },
          body: method === 'HEAD' ? undefined : input.body,
          headersOnly: input.route.path === '/api/live/events',
        };
        const answer = await send(raw);
        record(groupOf(input.route.path) ?? 'other', raw, answer);
        expect(answer.status, JSON.stringify(raw).slice(0, 300)).toBeLessThan(500);
        // A connection is only ever cut for a body past the limits (the server stops reading it).
        if (answer.reset) expect(input.body?.length ?? 0).toBeGreaterThan(60 * 1024);
        // Twilio's routes answer nothing unsigned.
        if (groupOf(input.route.path) === 'twilio webhooks' && method === 'POST') expect(answer.status).toBeGreaterThanOrEqual(400);
      }),
      { numRuns: 1500 },
    );
    await expectAlive();
  }, 120_000);

  it("Twilio webhooks that Twilio signed, with random parameters: valid TwiML or a 4xx, and TwiML whenever the CallSid is one", async () => {
    const twilioRoutes = routes.filter((route) => groupOf(route.path) === 'twilio webhooks' && route.methods.includes('POST')).map((route) => route.path);
    const phone = fc.oneof(fc.constantFrom('+15551230000', '+15559870000', streamNumber, 'anonymous', 'client:alice', '+'), fc.integer({ min: 1_000_000, max: 999_999_999_999 }).map((n) => `+${n}`), text);
    const params = fc.record(
      {
        CallSid: fc.oneof({ weight: 5, arbitrary: fc.constantFrom(...callSids) }, { weight: 1, arbitrary: text }),
        AccountSid: fc.oneof(fc.constant(`AC${'0'.repeat(32)}`), text),
        From: phone,
        To: phone,
        CallStatus: fc.oneof(fc.constantFrom('ringing', 'in-progress', 'completed', 'busy', 'failed', 'no-answer', 'canceled'), text),
        SpeechResult: text,
        Confidence: fc.oneof(fc.double().map(String), text),
        Digits: fc.oneof(fc.constantFrom('1', '#', '123*'), text),
        CallDuration: fc.oneof(fc.nat().map(String), text),
        SequenceNumber: fc.oneof(fc.nat().map(String), text),
        Direction: text,
        Extra: text,
      },
      { requiredKeys: ['CallSid'] },
    );
    const query = fc.oneof(
      fc.constant(''),
      fc.nat({ max: 30 }).map((turn) => `?turn=${turn}`),
      fc.tuple(fc.nat({ max: 40 }), fc.nat({ max: 5 })).map(([turn, from]) => `?turn=${turn}&from=${from}`),
      text.map((value) => `?turn=${encodeURIComponent(wellFormed(value))}&from=${encodeURIComponent(wellFormed(value))}`),
    );
    const repeated = fc.option(fc.tuple(fc.constantFrom('CallSid', 'SpeechResult', 'From', 'Digits'), text), { nil: undefined });
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...twilioRoutes), params, query, repeated, async (route, values, search, repeat) => {
        const form = new URLSearchParams(Object.entries(values).map(([k, v]) => [k, wellFormed(String(v))]));
        if (repeat) form.append(repeat[0], wellFormed(repeat[1]));
        const encoded = form.toString();
        const pathAndQuery = route + search;
        const raw: RawRequest = {
          method: 'POST',
          path: pathAndQuery,
          headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-twilio-signature': twilioSignature(pathAndQuery, encoded) },
          body: encoded,
        };
        const answer = await send(raw);
        record('twilio webhooks', raw, answer);
        const what = `${pathAndQuery} ${encoded.slice(0, 300)} → ${answer.status} ${answer.body.toString('utf8').slice(0, 300)}`;
        expect(answer.status, what).toBeLessThan(500);
        expect(answer.status, what).not.toBe(403);
        if (answer.status === 200) expectTwiml(answer, what);
        const validSid = typeof values.CallSid === 'string' && callSids.includes(values.CallSid) && form.getAll('CallSid').length === 1;
        // The call's own webhooks always answer a real CallSid with TwiML (other Twilio callbacks may want fields of their own).
        const isStatus = route === '/twilio/status' || route === '/status';
        const isCallWebhook = ['/twilio/incoming', '/twilio/voice', '/twilio/stream-ended', '/voice', '/voice/stream-ended'].includes(route);
        const knownStatus = ['ringing', 'in-progress', 'completed', 'busy', 'failed', 'no-answer', 'canceled'].includes(String(values.CallStatus));
        if (validSid && (isCallWebhook || (isStatus && knownStatus))) expect(answer.status, what).toBe(200);
      }),
      { numRuns: 500 },
    );
    await expectAlive();
  }, 180_000);

  it('/audio: traversal, odd and random names are a 404; real files are served; nothing outside the store leaks', async () => {
    const stored = (await server.db.query<{ filename: string }>('SELECT filename FROM audio_files WHERE deleted_at IS NULL LIMIT 5')).rows.map((row) => row.filename);
    expect(stored.length).toBeGreaterThan(0);
    const name = fc.oneof(
      fc.constantFrom(...stored),
      fc.constantFrom(
        '../../../../etc/passwd', '..%2f..%2f..%2fetc%2fpasswd', '%2e%2e%2f%2e%2e%2fpackage.json', '..', '.', '%2e%2e', '....//package.json', '..\\..\\package.json',
        '%5c..%5c..%5cpackage.json', 'db', '..%00.wav', 'x.wav%00', 'x.wav/..', `${stored[0]}/..`, `${stored[0]}%00`, `${stored[0]}?x=1`, `../${stored[0]}`,
        '%252e%252e%252fpackage.json', '/etc/passwd', '//etc/passwd', 'package.json', 'dev-twilio-auth-token', '..;/package.json',
      ),
      fc.stringMatching(/^[A-Za-z0-9_-]{8,40}\.(wav|mp3|opus)$/),
      text.map((value) => encodeURIComponent(wellFormed(value))),
      text.map((value) => value.replace(/[^\x21-\x7e]/g, '')),
    );
    await fc.assert(
      fc.asyncProperty(name, fc.constantFrom('GET', 'HEAD'), async (filename, method) => {
        const raw: RawRequest = { method, path: `/audio/${filename}` };
        const answer = await send(raw);
        record('audio', raw, answer);
        expect(answer.status, filename).toBeLessThan(500);
        // A query string is not part of the name.
        if (stored.includes(filename.split('?')[0])) expect(answer.status).toBe(200);
        // 414: a name longer than any route parameter may be.
        else expect([400, 404, 414], filename).toContain(answer.status);
        const body = answer.body.toString('latin1');
        expect(body).not.toMatch(/root:|"name": "callme"|test-auth-token/);
      }),
      { numRuns: 300 },
    );
    await expectAlive();
  }, 120_000);

  it('/tts/stream: oversized, invalid and wrongly typed JSON is a 4xx; valid requests are audio', async () => {
    const field = fc.oneof(text, fc.double(), fc.integer(), fc.boolean(), fc.constant(null), fc.array(text, { maxLength: 3 }), fc.object({ maxDepth: 1 }));
    const ttsBody = fc.oneof(
      fc.record(
        {
          text: fc.oneof({ weight: 3, arbitrary: fc.string({ minLength: 1, maxLength: 60 }) }, { weight: 2, arbitrary: field }, { weight: 1, arbitrary: fc.constantFrom(4096, 4097, 20_000).map((n) => 'a'.repeat(n)) }),
          voice: fc.oneof(fc.constantFrom('alloy', 'nova', 'ash'), field),
          model: fc.oneof(fc.constantFrom('tts-1', 'tts-1-hd', 'gpt-4o-mini-tts'), field),
          response_format: fc.oneof(fc.constantFrom('mp3', 'wav', 'pcm', 'opus'), field),
          speed: fc.oneof(fc.double({ min: 0.25, max: 4, noNaN: true }), field),
          instructions: fc.oneof(text, field, fc.constant('x'.repeat(5000))),
        },
        { requiredKeys: [] },
      ).map((value) => JSON.stringify(value)),
      fc.jsonValue().map((value) => JSON.stringify(value) ?? 'null'),
      fc.constantFrom('{"text": "hi"', '{"text": "hi", "text": 5}', '{"text": "\\u0000"}', '{"text": "\\ud800"}', '', ' ', 'null', '"text"', '{"text": "' + 'a'.repeat(70_000) + '"}'),
    );
    await fc.assert(
      fc.asyncProperty(ttsBody, fc.constantFrom('application/json', 'application/json; charset=utf-8', 'text/plain', 'application/x-www-form-urlencoded'), async (json, contentType) => {
        const raw: RawRequest = { method: 'POST', path: '/tts/stream', headers: { 'content-type': contentType }, body: json };
        const answer = await send(raw);
        record('tts', raw, answer);
        expect(answer.status, `${contentType} ${json.slice(0, 200)} → ${answer.body.toString('utf8').slice(0, 200)}`).toBeLessThan(500);
        if (answer.status === 200) expect(answer.headers['content-type']).toMatch(/^audio\//);
        else expect(answer.headers['content-type']).toMatch(/^application\/json/);
      }),
      { numRuns: 400 },
    );
    await expectAlive();
  }, 120_000);

  it('/api/* and the dashboard with bad queries, ids and forms: never a 5xx', async () => {
    const getRoutes = routes.filter((route) => (groupOf(route.path) === 'api' || groupOf(route.path) === 'dashboard') && route.methods.includes('GET'));
    const id = fc.oneof(fc.constantFrom(...callSids, 'CA', 'ca' + 'f'.repeat(32), 'CA' + 'g'.repeat(32)), text.map((value) => encodeURIComponent(wellFormed(value))), fc.constantFrom('..', '%00', 'x'.repeat(2000)));
    const authorization = fc.oneof({ weight: 4, arbitrary: fc.constant(bearer) }, { weight: 1, arbitrary: fc.constant({}) });
    const getCase = fc.tuple(fc.constantFrom(...getRoutes), id, queryString, authorization).map(([route, value, query, headers]) => ({
      method: 'GET',
      path: `${route.path.replace(/:\w+/, value)}?${query}`,
      headers,
      headersOnly: route.path === '/api/live/events',
    }));
    // The API's writes (and the talk page's), with JSON of every shape and fields of every type.
    const writes = routes.flatMap((route) => (groupOf(route.path) === 'api' ? route.methods.filter((method) => !['GET', 'HEAD'].includes(method)).map((method) => ({ method, path: route.path })) : []));
    const jsonField = fc.oneof(text, fc.integer(), fc.double(), fc.boolean(), fc.constant(null), fc.constantFrom('2025-02-30', '2099-01-01', '19:30', '25:99', '+15551230000', 'cancelled', 'confirmed'));
    const writeBody = fc.oneof(
      fc.dictionary(fc.constantFrom('name', 'date', 'time', 'partySize', 'phone', 'notes', 'profile', 'override', 'status', 'text', 'message', 'sessionId', 'x'), jsonField, { maxKeys: 8 }).map((value) => JSON.stringify(value)),
      fc.jsonValue().map((value) => JSON.stringify(value) ?? 'null'),
      fc.constantFrom('{', '[]', '""', 'null', '{"name": "\u0000"}'),
    );
    const writeCase = writes.length === 0 ? getCase : fc.tuple(fc.constantFrom(...writes), id, writeBody, authorization, fc.constantFrom('application/json', 'text/plain', 'multipart/form-data; boundary=x')).map(([route, value, json, headers, contentType]) => ({
      method: route.method,
      path: route.path.replace(/:\w+/, value),
      headers: { ...headers, 'content-type': contentType },
      body: json,
    }));
    const postCase = fc.tuple(fc.constantFrom('/dashboard/login', '/dashboard/logout'), fc.array(fc.tuple(fc.constantFrom('token', 'username', 'password', 'next', '_csrf', 'x'), text), { maxLength: 5 }), extraHeaders).map(([route, pairs, headers]) => ({
      method: 'POST',
      path: route,
      headers: { ...headers, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams(pairs.map(([k, v]) => [k, wellFormed(v)])).toString(),
    }));
    await fc.assert(
      fc.asyncProperty(fc.oneof({ weight: 4, arbitrary: getCase }, { weight: 2, arbitrary: writeCase }, { weight: 1, arbitrary: postCase }), async (raw: RawRequest) => {
        const answer = await send(raw);
        record(raw.path.startsWith('/dashboard') ? 'dashboard' : 'api', raw, answer);
        expect(answer.status, `${raw.method} ${raw.path.slice(0, 200)} → ${answer.body.toString('utf8').slice(0, 300)}`).toBeLessThan(500);
      }),
      { numRuns: 800 },
    );
    await expectAlive();
  }, 120_000);

  it('health, metrics and unknown paths: never a 5xx', async () => {
    const pathArbitrary = fc.oneof(
      fc.constantFrom('/healthz', '/readyz', '/metrics').chain((route) => queryString.map((query) => `${route}?${query}`)),
      fc.array(text.map((value) => encodeURIComponent(wellFormed(value))), { minLength: 1, maxLength: 4 }).map((parts) => `/${parts.join('/')}`),
      fc.constantFrom('//', '/./', '/../', '/%2e%2e/', '/twilio', '/twilio/', '/twilio/media', '/twilio/media/', '/audio', '/audio/', '/api', '/api/', '/api/calls/', '/dashboard//calls', '*', '/?', '/#x'),
    );
    await fc.assert(
      fc.asyncProperty(pathArbitrary, anyMethod, extraHeaders, async (target, method, headers) => {
        const raw: RawRequest = { method, path: target, headers };
        const answer = await send(raw);
        record('health and unknown paths', raw, answer);
        expect(answer.status, `${method} ${target}`).toBeLessThan(500);
      }),
      { numRuns: 200 },
    );
    await expectAlive();
  }, 60_000);

  it('bytes no HTTP client would send: NUL and control characters, bad framing, huge headers', async () => {
    const request = fc.oneof(
      fc.tuple(fc.constantFrom('GET', 'POST', 'G\u0000T', ''), fc.string({ unit: 'binary', maxLength: 40 }), fc.constantFrom('HTTP/1.1', 'HTTP/1.0', 'HTTP/9.9', 'HTTP/1.1\u0000', '')).map(([method, target, version]) =>
        Buffer.from(`${method} /audio/${target} ${version}\r\nHost: x\r\n\r\n`, 'utf8'),
      ),
      fc.constantFrom(
        'POST /twilio/incoming HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
        'POST /tts/stream HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Type: application/json\r\n\r\nzz\r\n{}\r\n0\r\n\r\n',
        'POST /tts/stream HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n',
        'GET /healthz HTTP/1.1\r\nHost: x\r\nX-Bad: a\u0000b\r\n\r\n',
        `GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`,
        'GET /../../etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n',
        'GET http://evil.example/twilio/incoming HTTP/1.1\r\nHost: x\r\n\r\n',
        'POST http://evil.example/twilio/incoming HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 3\r\n\r\na=b',
        'GET /api/calls?%00=%00 HTTP/1.1\r\nHost: x\r\n\r\n',
        'GET /twilio/media/abc HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: bad\r\n\r\n',
      ).map((value) => Buffer.from(value, 'latin1')),
    );
    await fc.assert(
      fc.asyncProperty(request, async (bytes) => {
        const status = await sendBytes(server.baseUrl, bytes);
        record('raw bytes', bytes.toString('latin1').slice(0, 200), { status });
        expect(status, bytes.toString('latin1').slice(0, 200)).toBeLessThan(500);
      }),
      { numRuns: 100 },
    );
    await expectAlive();
  }, 60_000);

  describe('the media WebSocket', () => {
    let callCounter = 0;

    /** Places a call to the stream profile and opens its stream, signed as Twilio signs it. */
    async function openStream(): Promise<{ socket: WebSocket; callSid: string; streamSid: string; closed: Promise<number>; sent: string[] }> {
      callCounter += 1;
      const callSid = `CA${'e'.repeat(26)}${String(callCounter).padStart(6, '0')}`;
      const twiml = await (await postSignedWebhook(server, '/twilio/incoming', { CallSid: callSid, From: '+15551110000', To: streamNumber, CallStatus: 'ringing' })).text();
      const streamUrl = /<Stream url="([^"]+)"/.exec(twiml)?.[1];
      expect(streamUrl, twiml).toBeTruthy();
      const socket = new WebSocket(streamUrl!.replace(server.publicUrl.replace(/^http/, 'ws'), server.baseUrl.replace(/^http/, 'ws')), {
        headers: { 'X-Twilio-Signature': twilio.getExpectedTwilioSignature(server.authToken, streamUrl!, {}) },
      });
      socket.on('error', () => {});
      const closed = new Promise<number>((resolve) => socket.on('close', (code) => resolve(code)));
      await new Promise<void>((resolve, reject) => {
        socket.once('open', () => resolve());
        socket.once('unexpected-response', (_request, response) => reject(new Error(`upgrade refused: ${response.statusCode}`)));
      });
      return { socket, callSid, streamSid: `MZ${'0'.repeat(26)}${String(callCounter).padStart(6, '0')}`, closed, sent: [] as string[] };
    }

    it('refuses upgrades with random tokens and signatures, with a 4xx', async () => {
      const token = fc.oneof(fc.stringMatching(/^[A-Za-z0-9_-]{32}$/), text.map((value) => encodeURIComponent(wellFormed(value))));
      await fc.assert(
        fc.asyncProperty(token, headerText, async (value, signature) => {
          const socket = new WebSocket(`${server.baseUrl.replace(/^http/, 'ws')}/twilio/media/${value}`, { headers: { 'X-Twilio-Signature': signature } });
          socket.on('error', () => {});
          const status = await new Promise<number>((resolve) => {
            socket.once('unexpected-response', (request, response) => {
              resolve(response.statusCode ?? 0);
              request.destroy();
            });
            socket.once('open', () => {
              resolve(101);
              socket.close();
            });
            socket.once('error', () => resolve(0));
          });
          record('media stream', `upgrade /twilio/media/${value}`, { status });
          expect([400, 403, 404, 414]).toContain(status);
        }),
        { numRuns: 100 },
      );
    }, 60_000);

    it('malformed messages after a valid upgrade are ignored or end the stream cleanly; the server carries on', async () => {
      let stream = await openStream();
      const start = (callSid: string, streamSid: string) => JSON.stringify({
        event: 'start', sequenceNumber: '1', streamSid,
        start: { streamSid, accountSid: `AC${'0'.repeat(32)}`, callSid, tracks: ['inbound'], customParameters: {}, mediaFormat: { encoding: 'audio/x-mulaw', sampleRate: 8000, channels: 1 } },
      });
      const message = fc.oneof(
        { weight: 2, arbitrary: text },
        { weight: 2, arbitrary: fc.jsonValue().map((value) => JSON.stringify(value) ?? 'null') },
        {
          weight: 4,
          arbitrary: fc.record({
            event: fc.oneof(fc.constantFrom('connected', 'start', 'media', 'dtmf', 'mark', 'stop'), text),
            streamSid: fc.oneof(fc.constant('current'), text),
            sequenceNumber: fc.oneof(fc.nat().map(String), fc.nat(), text, fc.double()),
            media: fc.record({ track: text, chunk: fc.oneof(fc.nat().map(String), text), timestamp: fc.oneof(fc.nat().map(String), fc.double()), payload: fc.oneof(fc.uint8Array({ maxLength: 400 }).map((b) => Buffer.from(b).toString('base64')), text) }, { requiredKeys: [] }),
            dtmf: fc.record({ digit: fc.oneof(fc.constantFrom('1', '#', 'A'), text) }, { requiredKeys: [] }),
            mark: fc.record({ name: fc.oneof(text, fc.constant('x'.repeat(300))) }, { requiredKeys: [] }),
            start: fc.record({ callSid: fc.oneof(fc.constant('current'), text), tracks: fc.anything({ maxDepth: 1 }) }, { requiredKeys: [] }),
          }, { requiredKeys: ['event'] }).map((value) => value),
        },
        { weight: 1, arbitrary: fc.constant('start-valid') },
        { weight: 1, arbitrary: fc.uint8Array({ maxLength: 200 }).map((bytes) => Buffer.from(bytes)) },
        { weight: 1, arbitrary: fc.constant('x'.repeat(70 * 1024)) },
      );
      let closes = 0;
      await fc.assert(
        fc.asyncProperty(fc.array(message, { minLength: 1, maxLength: 8 }), async (messages) => {
          for (const item of messages) {
            if (stream.socket.readyState !== WebSocket.OPEN) break;
            let payload: string | Buffer;
            if (item === 'start-valid') payload = start(stream.callSid, stream.streamSid);
            else if (typeof item === 'string' || Buffer.isBuffer(item)) payload = item;
            else {
              const value = structuredClone(item) as Record<string, unknown> & { start?: Record<string, unknown> };
              if (value.streamSid === 'current') value.streamSid = stream.streamSid;
              if (value.start?.callSid === 'current') value.start.callSid = stream.callSid;
              payload = JSON.stringify(value);
            }
            stream.socket.send(payload);
            stream.sent.push(typeof payload === 'string' ? payload.slice(0, 300) : `binary ${payload.length} bytes`);
            record('media stream', typeof payload === 'string' ? payload.slice(0, 200) : `binary ${payload.length} bytes`, { status: 0 });
            await new Promise((resolve) => setTimeout(resolve, 2));
          }
          await new Promise((resolve) => setTimeout(resolve, 10));
          if (stream.socket.readyState !== WebSocket.OPEN) {
            const code = await stream.closed;
            closes += 1;
            // 1000 normal, 1008 policy (a stream naming another call), 1009 message too big, 1005 no code given.
            // Never 1006 (the connection cut without a close frame) nor 1011 (a server error).
            expect([1000, 1005, 1008, 1009], `closed with ${code} after ${JSON.stringify(stream.sent)}`).toContain(code);
            stream = await openStream();
          }
        }),
        { numRuns: 120 },
      );
      stream.socket.close();
      recordFigure({ section: 'fuzz', name: 'media streams closed cleanly by bad messages', value: closes });
      await expectAlive();
    }, 120_000);
  });

  it('answers after all of it, with no 5xx recorded', async () => {
    await expectAlive();
    expect(failures).toEqual([]);
    expect(serverErrors).toBe(0);
  });
});

import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Fastify, { type FastifyInstance } from 'fastify';
import twilio from 'twilio';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseTwiml, TwimlParseError } from './twiml.js';
import { audioDurationMs, signTwilioRequest, simulateCall, type CallerReply, type SimulateCallOptions } from './twilio-simulator.js';
import { freePort } from '../testing/free-port.js';

const authToken = 'test-auth-token-0123456789abcdef';
// The server believes Twilio reaches it through a tunnel; requests really go to 127.0.0.1.
const publicUrl = 'https://callme.example.test';

interface ReceivedRequest {
  method: string;
  url: string;
  params: Record<string, string>;
  headers: Record<string, string | string[] | undefined>;
  signatureValid: boolean;
}

const twiml = (body: string) => `<?xml version="1.0" encoding="UTF-8"?><Response>${body}</Response>`;

/** One second of 8 kHz 16-bit mono silence. */
function wav(dataBytes = 16000): Buffer {
  const header = Buffer.alloc(44);
  header.write('RIFF', 0, 'latin1');
  header.writeUInt32LE(36 + dataBytes, 4);
  header.write('WAVE', 8, 'latin1');
  header.write('fmt ', 12, 'latin1');
  header.writeUInt32LE(16, 16);
  header.writeUInt16LE(1, 20);
  header.writeUInt16LE(1, 22);
  header.writeUInt32LE(8000, 24);
  header.writeUInt32LE(16000, 28);
  header.writeUInt16LE(2, 32);
  header.writeUInt16LE(16, 34);
  header.write('data', 36, 'latin1');
  header.writeUInt32LE(dataBytes, 40);
  return Buffer.concat([header, Buffer.alloc(dataBytes)]);
}

/** A small stand-in for callme's Twilio routes that checks every signature the way a real server must. */
async function startTwilioApp(): Promise<{ app: FastifyInstance; baseUrl: string; requests: ReceivedRequest[] }> {
  const requests: ReceivedRequest[] = [];
  let counter = 0;
  const app = Fastify();
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (_request, body, done) => {
    done(null, Object.fromEntries(new URLSearchParams(body as string)));
  });
  app.addHook('preHandler', async (request, reply) => {
    const params = request.method === 'POST' ? ((request.body ?? {}) as Record<string, string>) : {};
    const signature = String(request.headers['x-twilio-signature'] ?? '');
    const signatureValid = twilio.validateRequest(authToken, signature, publicUrl + request.url, params);
    requests.push({ method: request.method, url: request.url, params, headers: request.headers, signatureValid });
    if (!signatureValid) return reply.code(403).send('bad signature');
  });
  const xml = (body: string) => (_request: unknown, reply: { type: (value: string) => { send: (value: string) => void } }) =>
    reply.type('text/xml').send(twiml(body));
  const listen = '<Gather input="speech" action="/twilio/turn" actionOnEmptyResult="true" speechTimeout="auto" language="en-US">';

  app.post('/twilio/incoming', xml(`<Say voice="Polly.Joanna">Hello, thanks for calling.</Say>${listen}<Say>How can I help?</Say></Gather>`));
  app.post('/twilio/turn', async (request, reply) => {
    const speech = (request.body as Record<string, string>).SpeechResult;
    reply.type('text/xml');
    if (speech === undefined) return twiml(`${listen}<Say>Are you still there?</Say></Gather>`);
    if (speech === 'play something') {
      // One absolute URL on the public host, one relative to this document.
      return twiml(`<Play>${publicUrl}/audio/beep.wav</Play><Play>../audio/beep.wav</Play>${listen}</Gather>`);
    }
    if (speech === 'redirect me') return twiml('<Pause length="2"/><Redirect>next</Redirect><Say>never reached</Say>');
    if (speech === 'transfer me') return twiml('<Dial action="dial-done" timeout="10"><Number>+15551234567</Number></Dial><Say>never reached</Say>');
    if (speech === 'crash') return reply.code(500).type('application/json').send('{"error":"boom"}');
    if (speech === 'bad xml') return '<Response><Say>oops</Response>';
    return twiml(`<Say>You said ${speech}.</Say>${listen}</Gather>`);
  });
  app.post('/twilio/next', xml(`<Say>Redirected.</Say>${listen}</Gather>`));
  app.post('/twilio/dial-done', xml('<Say>Nobody answered.</Say><Hangup/><Say>never reached</Say>'));
  app.post('/twilio/status', async (_request, reply) => reply.code(204).send());
  app.get('/audio/beep.wav', async (_request, reply) => reply.type('audio/wav').send(wav()));
  app.post('/fallthrough', xml('<Gather input="speech"><Say>Say something.</Say></Gather><Say>We did not hear you.</Say>'));
  app.post('/digits', xml('<Gather input="dtmf" numDigits="4" action="/digits-done"><Say>Enter your code.</Say></Gather>'));
  app.post('/digits-done', xml('<Say>Thanks.</Say>'));
  app.post('/broken', async (_request, reply) => reply.code(500).send('Internal Server Error'));
  app.post('/invalid-xml', async (_request, reply) => reply.type('text/xml').send('<Response><Say>unclosed</Response>'));
  app.post('/wrong-root', async (_request, reply) => reply.type('text/xml').send('<Reply><Say>hi</Say></Reply>'));
  app.post('/loop', xml('<Redirect>/loop</Redirect>'));
  app.post('/reject', xml('<Reject reason="busy"/>'));
  app.post('/counter', async (_request, reply) => reply.type('text/xml').send(twiml(`<Say>Request ${++counter}</Say>`)));
  app.post('/missing-audio', xml('<Play>/audio/missing.wav</Play><Say>Still here.</Say>'));

  await app.listen({ host: '127.0.0.1', port: 0 });
  const address = app.server.address();
  if (address === null || typeof address === 'string') throw new Error('no port');
  return { app, baseUrl: `http://127.0.0.1:${address.port}`, requests };
}

function script(replies: CallerReply[]): SimulateCallOptions['caller'] {
  const queue = [...replies];
  return async () => (queue.length > 0 ? (queue.shift() as CallerReply) : null);
}

describe('parseTwiml', () => {
  it('keeps verb order, attributes and Gather nesting', () => {
    const verbs = parseTwiml(
      twiml(
        '<Say voice="alice" language="en-GB" loop="2">Hi <break time="1s"/> there &amp; welcome</Say>' +
          '<Gather input="speech dtmf" action="/turn" method="get" timeout="3" speechTimeout="auto" actionOnEmptyResult="true" hints="menu, order">' +
          '<Say>First</Say><Pause length="2"/><Play loop="0">/a.wav</Play><Hangup/></Gather>' +
          '<Play digits="1w2"></Play><Pause/><Redirect method="GET">/next</Redirect>' +
          '<Dial action="/done" timeout="20" callerId="+15550001"><Number>+15551234567</Number></Dial>' +
          '<Connect><Stream url="wss://x.test/media"><Parameter name="callId" value="42"/></Stream></Connect>' +
          '<Record maxLength="30"/><say>lowercase</say><Reject reason="busy"/><Hangup/>',
      ),
    );
    expect(verbs.map((verb) => verb.kind)).toEqual([
      'say', 'gather', 'play', 'pause', 'redirect', 'dial', 'connect', 'record', 'unknown', 'reject', 'hangup',
    ]);
    expect(verbs[0]).toEqual({ kind: 'say', text: 'Hi there & welcome', voice: 'alice', language: 'en-GB', loop: 2 });
    expect(verbs[1]).toEqual({
      kind: 'gather',
      input: ['speech', 'dtmf'],
      action: '/turn',
      method: 'GET',
      timeout: 3,
      speechTimeout: 'auto',
      actionOnEmptyResult: true,
      hints: 'menu, order',
      nested: [
        { kind: 'say', text: 'First' },
        { kind: 'pause', length: 2 },
        { kind: 'play', url: '/a.wav', loop: 0 },
      ],
      ignored: ['Hangup'],
    });
    expect(verbs[2]).toEqual({ kind: 'play', url: '', digits: '1w2' });
    expect(verbs[3]).toEqual({ kind: 'pause', length: 1 });
    expect(verbs[4]).toEqual({ kind: 'redirect', url: '/next', method: 'GET' });
    expect(verbs[5]).toEqual({ kind: 'dial', number: '+15551234567', action: '/done', timeout: 20, callerId: '+15550001' });
    expect(verbs[6]).toEqual({ kind: 'connect', stream: { url: 'wss://x.test/media', parameters: { callId: '42' } } });
    expect(verbs[8]).toEqual({ kind: 'unknown', name: 'say' });
    expect(verbs[9]).toEqual({ kind: 'reject', reason: 'busy' });
  });

  it('defaults a Gather to keypad input and accepts an empty Response', () => {
    expect(parseTwiml(twiml('<Gather/>'))).toEqual([{ kind: 'gather', input: ['dtmf'], nested: [] }]);
    expect(parseTwiml('<Response/>')).toEqual([]);
  });

  it.each([
    ['<Response><Say>unclosed</Response>', 12100],
    ['not xml at all', 12100],
    ['', 12100],
    ['  <?xml version="1.0"?><Response/>', 12100],
    ['<Response>a & b</Response>', 12100],
    ['<Response/><Response/>', 12100],
    ['<Reply><Say>hi</Say></Reply>', 12102],
    ['<response/>', 12102],
  ])('rejects %j with Twilio error %i', (xml, code) => {
    expect(() => parseTwiml(xml)).toThrow(TwimlParseError);
    try {
      parseTwiml(xml);
    } catch (error) {
      expect((error as TwimlParseError).twilioErrorCode).toBe(code);
    }
  });
});

describe('signTwilioRequest', () => {
  it('produces signatures twilio.validateRequest accepts', () => {
    const params = { CallSid: 'CA1', From: '+15005550006', SpeechResult: 'a b & c' };
    const url = 'https://example.test/twilio/turn?x=1';
    expect(twilio.validateRequest(authToken, signTwilioRequest(authToken, url, params), url, params)).toBe(true);
    expect(twilio.validateRequest('other-token', signTwilioRequest(authToken, url, params), url, params)).toBe(false);
  });
});

describe('audioDurationMs', () => {
  it('reads WAV headers, constant-bit-rate MP3 frames and raw μ-law', () => {
    expect(audioDurationMs('audio/wav', wav(8000))).toBe(500);
    expect(audioDurationMs('audio/x-wav; codecs=1', wav(32000))).toBe(2000);
    // MPEG-1 layer III, 128 kbit/s: 16 000 bytes a second.
    const mp3 = Buffer.concat([Buffer.from([0xff, 0xfb, 0x90, 0x00]), Buffer.alloc(15996)]);
    expect(audioDurationMs('audio/mpeg', mp3)).toBe(1000);
    expect(audioDurationMs('audio/basic', Buffer.alloc(8000))).toBe(1000);
    expect(audioDurationMs('audio/ogg', Buffer.alloc(8000))).toBeUndefined();
  });
});

describe('simulateCall', () => {
  let server: Awaited<ReturnType<typeof startTwilioApp>>;
  const call = (options: Partial<SimulateCallOptions> & Pick<SimulateCallOptions, 'caller'>) =>
    simulateCall({ baseUrl: server.baseUrl, publicUrl, authToken, ...options });

  beforeAll(async () => {
    server = await startTwilioApp();
  });
  afterAll(async () => {
    await server.app.close();
  });

  it('plays a whole conversation the way Twilio does, every request signed over the public URL', async () => {
    const start = server.requests.length;
    const prompts: string[] = [];
    const result = await call({
      callSid: 'CA00000000000000000000000000000001',
      caller: async (prompt) => {
        prompts.push(prompt.text);
        return ['', 'play something', { speech: 'redirect me', confidence: 0.5 }, 'transfer me'][prompt.turn - 1] ?? null;
      },
    });
    const requests = server.requests.slice(start);

    expect(result.applicationErrors).toEqual([]);
    expect(result.warnings).toEqual([]);
    expect(result.endedBy).toBe('hangup');
    expect(requests.every((request) => request.signatureValid)).toBe(true);
    expect(requests.map((request) => `${request.method} ${request.url}`)).toEqual([
      'POST /twilio/incoming',
      'POST /twilio/turn',
      'POST /twilio/turn',
      'GET /audio/beep.wav',
      'GET /audio/beep.wav',
      'POST /twilio/turn',
      'POST /twilio/next',
      'POST /twilio/turn',
      'POST /twilio/dial-done',
      'POST /twilio/status',
    ]);

    const [incoming, silence, speech] = requests;
    expect(incoming.params).toMatchObject({
      CallSid: 'CA00000000000000000000000000000001',
      CallStatus: 'ringing',
      Direction: 'inbound',
      ApiVersion: '2010-04-01',
      From: '+15005550006',
      Caller: '+15005550006',
      To: '+15005550001',
      Called: '+15005550001',
      FromCountry: 'US',
    });
    expect(incoming.params.AccountSid).toMatch(/^AC[0-9a-f]{32}$/);
    expect(incoming.headers['user-agent']).toBe('TwilioProxy/1.1');
    expect(incoming.headers['content-type']).toBe('application/x-www-form-urlencoded');
    expect(incoming.headers['i-twilio-idempotency-token']).toBeTruthy();
    expect(incoming.headers['x-forwarded-host']).toBe('callme.example.test');
    expect(silence.params.CallStatus).toBe('in-progress');
    expect(silence.params).not.toHaveProperty('SpeechResult');
    expect(silence.params).not.toHaveProperty('Confidence');
    expect(speech.params).toMatchObject({ SpeechResult: 'play something', Confidence: '0.92' });
    expect(requests[5].params).toMatchObject({ SpeechResult: 'redirect me', Confidence: '0.5' });
    expect(requests[6].params).not.toHaveProperty('SpeechResult');
    expect(requests[8].params).toMatchObject({ DialCallStatus: 'no-answer', DialCallDuration: '0' });
    const tokens = new Set(requests.map((request) => request.headers['i-twilio-idempotency-token']));
    expect(tokens.size).toBe(requests.length);

    expect(prompts).toEqual(['Hello, thanks for calling. How can I help?', 'Are you still there?', '', 'Redirected.']);
    expect(result.transcript.map(({ speaker, text, audio }) => [speaker, text ?? audio?.url])).toEqual([
      ['assistant', 'Hello, thanks for calling.'],
      ['assistant', 'How can I help?'],
      ['assistant', 'Are you still there?'],
      ['caller', 'play something'],
      ['assistant', `${publicUrl}/audio/beep.wav`],
      ['assistant', `${publicUrl}/audio/beep.wav`],
      ['caller', 'redirect me'],
      ['assistant', 'Redirected.'],
      ['caller', 'transfer me'],
      ['assistant', 'Nobody answered.'],
    ]);
    expect(result.transcript[4].audio).toEqual({ url: `${publicUrl}/audio/beep.wav`, bytes: 16044, contentType: 'audio/wav', durationMs: 1000 });
    const times = result.transcript.map((entry) => entry.atMs);
    expect(times).toEqual([...times].sort((a, b) => a - b));
    expect(result.events.filter((event) => event.type === 'dial-attempted')).toMatchObject([{ number: '+15551234567' }]);
    expect(result.events.some((event) => event.type === 'say-spoken' && event.text === 'never reached')).toBe(false);
    expect(result.webhookTimings).toHaveLength(7);

    // 5 s of silence, 2 s of audio, a 2 s pause and 10 s of ringing, plus speech.
    expect(result.durationSeconds).toBeGreaterThanOrEqual(20);
    expect(result.durationSeconds).toBeLessThan(40);
    const status = requests.at(-1)!;
    expect(status.params).toMatchObject({
      CallStatus: 'completed',
      CallDuration: String(result.durationSeconds),
      Duration: '1',
      SequenceNumber: '0',
      CallbackSource: 'call-progress-events',
    });
    expect(status.params.Timestamp).toMatch(/^\w{3}, \d{2} \w{3} \d{4} \d{2}:\d{2}:\d{2} \+0000$/);
    expect(result.events.at(-1)).toMatchObject({ type: 'status-sent', status: 204, callStatus: 'completed' });
  });

  it('falls through to the next verb when a Gather hears nothing and has no actionOnEmptyResult', async () => {
    const result = await call({ entryPath: '/fallthrough', statusPath: null, caller: script(['']) });
    expect(result.transcript.map((entry) => entry.text)).toEqual(['Say something.', 'We did not hear you.']);
    expect(result.endedBy).toBe('end-of-document');
    expect(result.events.filter((event) => event.type === 'webhook-sent')).toHaveLength(1);
  });

  it('sends key presses as Digits, stopping at numDigits', async () => {
    const start = server.requests.length;
    const result = await call({ entryPath: '/digits', statusPath: null, caller: script([{ digits: '123456' }]) });
    expect(server.requests.slice(start).map((request) => request.url)).toEqual(['/digits', '/digits-done']);
    expect(server.requests.at(-1)!.params).toMatchObject({ Digits: '1234', FinishedOnKey: '' });
    expect(result.transcript.at(-1)).toMatchObject({ speaker: 'assistant', text: 'Thanks.' });
  });

  it('ignores speech when the Gather only listens for keys', async () => {
    const result = await call({ entryPath: '/digits', statusPath: null, caller: script(['hello']) });
    expect(result.warnings).toHaveLength(1);
    expect(result.endedBy).toBe('end-of-document');
  });

  it('ends the call when the caller hangs up, and still sends the status callback', async () => {
    const start = server.requests.length;
    const result = await call({ caller: script([null]) });
    expect(result.endedBy).toBe('caller-hangup');
    expect(server.requests.slice(start).map((request) => request.url)).toEqual(['/twilio/incoming', '/twilio/status']);
  });

  it.each([
    ['/broken', 11200],
    ['/invalid-xml', 12100],
    ['/wrong-root', 12102],
  ])('reports %s as an application error (%i) and still sends a signed status callback', async (entryPath, code) => {
    const start = server.requests.length;
    const result = await call({ entryPath, caller: script([]) });
    expect(result.endedBy).toBe('application-error');
    expect(result.applicationErrors).toHaveLength(1);
    expect(result.applicationErrors[0]).toMatch(new RegExp(`^${code}: `));
    expect(result.events).toContainEqual(expect.objectContaining({ type: 'application-error', code }));
    const status = server.requests.slice(start).at(-1)!;
    expect(status).toMatchObject({ url: '/twilio/status', signatureValid: true, params: expect.objectContaining({ CallStatus: 'completed' }) });
  });

  it('reports a 500 in the middle of the conversation and invalid TwiML from a turn', async () => {
    const crashed = await call({ statusPath: null, caller: script(['crash']) });
    expect(crashed.endedBy).toBe('application-error');
    expect(crashed.applicationErrors[0]).toMatch(/^11200: .*\/twilio\/turn answered HTTP 500/);
    const invalid = await call({ statusPath: null, caller: script(['bad xml']) });
    expect(invalid.applicationErrors[0]).toMatch(/^12100: /);
  });

  it('reports a server that does not answer as a connection failure', async () => {
    const port = await freePort();
    const result = await simulateCall({ baseUrl: `http://127.0.0.1:${port}`, authToken, caller: script([]) });
    expect(result.endedBy).toBe('application-error');
    expect(result.applicationErrors[0]).toMatch(/^11205: /);
    expect(result.warnings.some((warning) => warning.includes('status callback'))).toBe(true);
  });

  it('logs audio that cannot be fetched and carries on, as Twilio does', async () => {
    const result = await call({ entryPath: '/missing-audio', statusPath: null, caller: script([]) });
    expect(result.events).toContainEqual(expect.objectContaining({ type: 'audio-failed', status: 404, code: 11200 }));
    expect(result.transcript).toEqual([expect.objectContaining({ text: 'Still here.' })]);
    expect(result.applicationErrors).toEqual([]);
  });

  it('stops a redirect loop at maxRequests', async () => {
    const result = await call({ entryPath: '/loop', statusPath: null, maxRequests: 5, caller: script([]) });
    expect(result.endedBy).toBe('max-requests');
    expect(result.webhookTimings).toHaveLength(5);
  });

  it('treats <Reject> as the first verb as an unanswered call', async () => {
    const result = await call({ entryPath: '/reject', caller: script([]) });
    expect(result.endedBy).toBe('rejected');
    expect(result.durationSeconds).toBe(0);
    expect(server.requests.at(-1)!.params).toMatchObject({ CallStatus: 'busy', CallDuration: '0' });
  });

  it('sends duplicate webhooks with the same idempotency token and compares the answers', async () => {
    const start = server.requests.length;
    const result = await call({ duplicateWebhooks: true, statusPath: null, caller: script(['hello']) });
    const requests = server.requests.slice(start);
    expect(requests).toHaveLength(4);
    for (let index = 0; index < requests.length; index += 2) {
      expect(requests[index].headers['i-twilio-idempotency-token']).toBe(requests[index + 1].headers['i-twilio-idempotency-token']);
      expect(requests[index].params).toEqual(requests[index + 1].params);
    }
    const duplicated = result.events.filter((event) => event.type === 'webhook-duplicated');
    expect(duplicated).toHaveLength(2);
    expect(duplicated.every((event) => event.type === 'webhook-duplicated' && event.identical)).toBe(true);

    const counted = await call({ entryPath: '/counter', duplicateWebhooks: true, statusPath: null, caller: script([]) });
    expect(counted.events).toContainEqual(expect.objectContaining({ type: 'webhook-duplicated', identical: false }));
  });

  it('stops when aborted, still reporting the call as ended', async () => {
    const controller = new AbortController();
    const result = await call({
      statusPath: null,
      signal: controller.signal,
      caller: () => {
        controller.abort();
        return new Promise(() => {});
      },
    });
    expect(result.endedBy).toBe('aborted');
    expect(result.events.at(-1)).toMatchObject({ type: 'call-ended', endedBy: 'aborted' });
  });
});

describe('npm run call', () => {
  let server: Awaited<ReturnType<typeof startTwilioApp>>;
  let dataDir: string;

  beforeAll(async () => {
    server = await startTwilioApp();
    dataDir = await mkdtemp(path.join(tmpdir(), 'callme-cli-'));
  });
  afterAll(async () => {
    await server.app.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  function runCli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
    const environment: NodeJS.ProcessEnv = { ...process.env, DATA_DIR: dataDir };
    for (const name of ['TWILIO_AUTH_TOKEN', 'PUBLIC_URL', 'PORT', 'TWILIO_PHONE_NUMBER']) delete environment[name];
    return new Promise((resolve, reject) => {
      const child = spawn('npx', ['tsx', 'src/simulator/cli.ts', ...args], { env: environment, stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (chunk) => (stdout += chunk));
      child.stderr.on('data', (chunk) => (stderr += chunk));
      child.on('error', reject);
      child.on('close', (code) => resolve({ code, stdout, stderr }));
    });
  }

  it('runs a scripted call and exits 0', async () => {
    const { code, stdout } = await runCli(['--url', server.baseUrl, '--public-url', publicUrl, '--token', authToken, '--say', 'hello', '--say', '']);
    expect(stdout).toContain('🤖 Assistant: Hello, thanks for calling.');
    expect(stdout).toContain('👤 You: hello');
    expect(stdout).toContain('🤖 Assistant: You said hello.');
    expect(stdout).toContain('(silence)');
    expect(stdout).toContain('🤖 Assistant: Are you still there?');
    expect(stdout).toMatch(/3 turns, ended by caller-hangup/);
    expect(code).toBe(0);
  }, 30_000);

  it('exits 1 after an application error', async () => {
    const { code, stdout } = await runCli(['--url', server.baseUrl, '--public-url', publicUrl, '--token', authToken, '--path', '/broken', '--quiet']);
    expect(stdout).toContain('Application error 11200');
    expect(code).toBe(1);
  }, 30_000);

  it('says so when no server answers', async () => {
    const port = await freePort();
    const { code, stderr } = await runCli(['--url', `http://127.0.0.1:${port}`, '--token', authToken, '--say', 'hi']);
    expect(stderr).toContain(`No callme server answers at http://127.0.0.1:${port} — start it with \`npm start\``);
    expect(code).toBe(1);
  }, 30_000);
});


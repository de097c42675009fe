import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeOpenAI, type FakeOpenAI } from '../src/testing/fake-openai-server.js';
import { postSignedWebhook, startTestApp, type TestApp } from '../src/testing/test-app.js';
import { PendingAudio } from '../src/audio/pending-audio.js';
import { SpeechRenderer, unsynthesizedAudioModel } from '../src/conversation/speech-renderer.js';

const formats = {
  mp3: 'audio/mpeg',
  opus: 'audio/ogg',
  aac: 'audio/aac',
  flac: 'audio/flac',
  wav: 'audio/wav',
  pcm: 'audio/pcm',
} as const;

describe('POST /tts/stream', () => {
  let openai: FakeOpenAI;
  let server: TestApp;
  beforeAll(async () => {
    openai = await startFakeOpenAI();
    server = await startTestApp('pglite', { OPENAI_API_KEY: 'sk-test', OPENAI_BASE_URL: openai.url });
  });
  afterAll(async () => {
    await server?.close();
    await openai?.close();
  });

  const tts = (body: unknown, headers: Record<string, string> = {}) =>
    fetch(`${server.baseUrl}/tts/stream`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: typeof body === 'string' ? body : JSON.stringify(body),
    });

  it('answers the seed\'s curl example with MP3 audio', async () => {
    const response = await tts({ text: 'Hello from VoiceHunte!', voice: 'nova' });
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('audio/mpeg');
    const bytes = Buffer.from(await response.arrayBuffer());
    expect(bytes.length).toBeGreaterThan(1000);
    // An MP3 starts with an ID3 tag or a frame sync.
    expect(bytes.subarray(0, 3).toString() === 'ID3' || (bytes[0] === 0xff && (bytes[1] & 0xe0) === 0xe0)).toBe(true);
    const sent = openai.requests.filter((request) => request.endpoint === 'speech').at(-1);
    expect(sent?.body).toMatchObject({ input: 'Hello from VoiceHunte!', voice: 'nova', model: 'tts-1', response_format: 'mp3', speed: 1 });
  });

  it.each(Object.entries(formats))('returns %s with Content-Type %s', async (format, contentType) => {
    const response = await tts({ text: 'Testing TTS', voice: 'alloy', response_format: format, model: 'tts-1-hd', speed: 1.5 });
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe(contentType);
    const bytes = Buffer.from(await response.arrayBuffer());
    expect(bytes.length).toBeGreaterThan(100);
    const magic: Record<string, (b: Buffer) => boolean> = {
      flac: (b) => b.subarray(0, 4).toString() === 'fLaC',
      wav: (b) => b.subarray(0, 4).toString() === 'RIFF',
      opus: (b) => b.subarray(0, 4).toString() === 'OggS',
      aac: (b) => b[0] === 0xff && (b[1] & 0xf0) === 0xf0,
      pcm: (b) => b.length % 2 === 0,
      mp3: () => true,
    };
    expect(magic[format](bytes)).toBe(true);
  });

  it('accepts gpt-4o-mini-tts with instructions', async () => {
    const response = await tts({ text: 'Welcome!', model: 'gpt-4o-mini-tts', voice: 'coral', instructions: 'Speak warmly.' });
    expect(response.status).toBe(200);
    const sent = openai.requests.filter((request) => request.endpoint === 'speech').at(-1);
    expect(sent?.body).toMatchObject({ model: 'gpt-4o-mini-tts', instructions: 'Speak warmly.' });
  });

  it('streams: the first bytes reach the client before the provider has finished', async () => {
    openai.setProfile({ chatFirstTokenMs: 0, chatTokensPerSecond: Infinity, ttsFirstByteMs: 50, ttsRealtimeFactor: 4, jitter: 0 });
    try {
      const response = await tts({ text: 'This sentence is long enough to take a good while to synthesize at four times real time.', response_format: 'pcm' });
      const reader = response.body!.getReader();
      const first = await reader.read();
      expect(first.done).toBe(false);
      const speech = openai.requests.filter((request) => request.endpoint === 'speech').at(-1);
      expect(speech?.finishedAt).toBeUndefined();
      let total = first.value!.length;
      for (let chunk = await reader.read(); !chunk.done; chunk = await reader.read()) total += chunk.value.length;
      expect(total).toBeGreaterThan(100_000);
    } finally {
      openai.setProfile({ chatFirstTokenMs: 0, chatTokensPerSecond: Infinity, ttsFirstByteMs: 0, ttsRealtimeFactor: Infinity, jitter: 0 });
    }
  });

  it.each([
    [{}, 'text'],
    [{ text: '' }, 'text'],
    [{ text: 42 }, 'text'],
    [{ text: 'x'.repeat(4097) }, 'text'],
    [{ text: 'hi', voice: 'robot' }, 'voice'],
    [{ text: 'hi', model: 'tts-2' }, 'model'],
    [{ text: 'hi', response_format: 'ogg' }, 'response_format'],
    [{ text: 'hi', speed: 5 }, 'speed'],
    [{ text: 'hi', speed: 0.1 }, 'speed'],
    [{ text: 'hi', speed: 'fast' }, 'speed'],
    [[1, 2], 'body'],
  ])('refuses %j with a 400 naming %s', async (body, field) => {
    const response = await tts(body);
    expect(response.status).toBe(400);
    expect(await response.json()).toMatchObject({ error: { code: 'invalid_request', field } });
  });

  it('refuses bodies that are not JSON', async () => {
    const broken = await tts('{"text": ');
    expect(broken.status).toBe(400);
    const form = await fetch(`${server.baseUrl}/tts/stream`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'hi' });
    expect(form.status).toBe(415);
    const huge = await tts({ text: 'x'.repeat(70_000) });
    expect(huge.status).toBe(413);
  });

  it('answers a provider failure with a 502 JSON error', async () => {
    openai.failNext('speech', { status: 500 }, 2);
    const response = await tts({ text: 'hello' });
    expect(response.status).toBe(502);
    expect(await response.json()).toMatchObject({ error: { code: 'provider_unavailable' } });
  });

  it('does not answer a request relayed by a proxy when API_TOKEN is unset', async () => {
    const response = await tts({ text: 'hello' }, { 'x-forwarded-for': '203.0.113.9' });
    expect(response.status).toBe(403);
    expect(await response.json()).toMatchObject({ error: { code: 'forbidden' } });
  });
});

describe('POST /tts/stream with API_TOKEN', () => {
  let openai: FakeOpenAI;
  let server: TestApp;
  beforeAll(async () => {
    openai = await startFakeOpenAI();
    server = await startTestApp('pglite', { OPENAI_API_KEY: 'sk-test', OPENAI_BASE_URL: openai.url, API_TOKEN: 'secret-api-token' });
  });
  afterAll(async () => {
    await server?.close();
    await openai?.close();
  });

  it('needs the bearer token', async () => {
    const post = (headers: Record<string, string>) =>
      fetch(`${server.baseUrl}/tts/stream`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: '{"text":"hi"}' });
    expect((await post({})).status).toBe(401);
    expect((await post({ authorization: 'Bearer wrong' })).status).toBe(401);
    const ok = await post({ authorization: 'Bearer secret-api-token' });
    expect(ok.status).toBe(200);
    expect(openai.requests.filter((request) => request.endpoint === 'speech')).toHaveLength(1);
    expect((await fetch(`${server.baseUrl}/metrics`)).status).toBe(401);
    const metrics = await fetch(`${server.baseUrl}/metrics`, { headers: { authorization: 'Bearer secret-api-token' } });
    expect(await metrics.text()).toContain('callme_turns_total');
  });
});

describe('without OPENAI_API_KEY', () => {
  let server: TestApp;
  beforeAll(async () => {
    server = await startTestApp('pglite', { OPENAI_API_KEY: '' });
  });
  afterAll(async () => server?.close());

  it('/tts/stream says it is not configured', async () => {
    const response = await fetch(`${server.baseUrl}/tts/stream`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"text":"hi"}' });
    expect(response.status).toBe(503);
    expect(await response.json()).toMatchObject({ error: { code: 'not_configured' } });
  });

  it('unknown routes get a JSON 404', async () => {
    const response = await fetch(`${server.baseUrl}/nope`);
    expect(response.status).toBe(404);
    expect(await response.json()).toMatchObject({ error: { code: 'not_found' } });
  });
});

describe('GET /audio/{filename}', () => {
  let openai: FakeOpenAI;
  let server: TestApp;
  beforeAll(async () => {
    openai = await startFakeOpenAI();
    server = await startTestApp('pglite', { OPENAI_API_KEY: 'sk-test', OPENAI_BASE_URL: openai.url });
  });
  afterAll(async () => {
    await server?.close();
    await openai?.close();
  });

  it('serves a cached phrase as 8 kHz μ-law WAV with an ETag and a long cache lifetime, and answers 304 to a revalidation', async () => {
    const profile = server.app.services.profiles.defaultProfile;
    const rendered = await server.app.services.renderer.renderPhrase(profile.greeting, profile);
    expect(rendered.kind).toBe('audio');
    const filename = rendered.kind === 'audio' ? rendered.filename : '';
    expect(filename).toMatch(/^[A-Za-z0-9_-]{22}\.wav$/);
    const response = await fetch(`${server.baseUrl}/audio/${filename}`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('audio/wav');
    expect(response.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
    const etag = response.headers.get('etag')!;
    const bytes = Buffer.from(await response.arrayBuffer());
    expect(Number(response.headers.get('content-length'))).toBe(bytes.length);
    expect(bytes.subarray(0, 4).toString()).toBe('RIFF');
    expect(bytes.readUInt16LE(20)).toBe(7); // WAVE_FORMAT_MULAW
    expect(bytes.readUInt32LE(24)).toBe(8000);
    const again = await fetch(`${server.baseUrl}/audio/${filename}`, { headers: { 'if-none-match': etag } });
    expect(again.status).toBe(304);
    // The same phrase is never synthesized twice.
    const before = openai.requests.filter((request) => request.endpoint === 'speech').length;
    const second = await server.app.services.renderer.renderPhrase(profile.greeting, profile);
    expect(second).toEqual(rendered);
    expect(openai.requests.filter((request) => request.endpoint === 'speech').length).toBe(before);
  });

  it('a reply piece named by another instance whose synthesis fails there is answered with silence at once, not a 404 after the wait', async () => {
    const { services } = server.app;
    const callSid = 'CA' + 'e'.repeat(32);
    expect((await postSignedWebhook(server, '/twilio/incoming', { CallSid: callSid, From: '+15551230077', To: '+15559870000', CallStatus: 'ringing' })).status).toBe(200);
    const [turn] = await services.repository.listTurns(callSid);
    // The other instance: its own names in flight, the same database and audio store, a provider that fails.
    const elsewhere = new SpeechRenderer({
      speechModel: { synthesize: async () => Promise.reject(new Error('speech provider is down')) },
      audioStore: services.audioStore,
      repository: services.repository,
      pendingAudio: new PendingAudio(),
    });
    const profile = services.profiles.defaultProfile;
    const reserved = elsewhere.reserveReply(profile)!;
    // Twilio asks this instance for the piece while the other one is still synthesizing it.
    const download = fetch(`${server.baseUrl}/audio/${reserved.filename}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
    await expect(elsewhere.renderReply('Your table is booked.', profile, { callId: callSid, turnId: turn.turn_id }, undefined, reserved)).rejects.toThrow('speech provider is down');
    const response = await download;
    expect(response.status).toBe(200);
    expect(response.headers.get('cache-control')).toBe('no-store');
    const bytes = Buffer.from(await response.arrayBuffer());
    expect(bytes.subarray(0, 4).toString()).toBe('RIFF');
    expect(bytes.readUInt16LE(20)).toBe(7);
    const data = bytes.indexOf('data') + 8;
    expect(bytes.length - data).toBe(800);
    expect(bytes.subarray(data).every((byte) => byte === 0xff)).toBe(true);
    // The marker row has no file, and the call's audio says so.
    const marker = await services.repository.getAudioByFilename(reserved.filename);
    expect(marker).toMatchObject({ model: unsynthesizedAudioModel, size_bytes: 0, call_id: callSid, text: 'Your table is booked.' });
    expect(await services.audioStore.has(reserved.filename)).toBe(false);
    // Asked again later (a retry, another instance): the same silence, no wait.
    expect((await fetch(`${server.baseUrl}/audio/${reserved.filename}`)).status).toBe(200);
  });

  it.each(['..%2F..%2Fetc%2Fpasswd', '..%2Fdb', '%2E%2E', 'x.wav', 'aaaaaaaaaaaaaaaaaaaaaa.exe', 'AAAAAAAAAAAAAAAAAAAAAA.wav', '%00.wav'])(
    'answers %s with a 404',
    async (name) => {
      const response = await fetch(`${server.baseUrl}/audio/${name}`);
      expect(response.status).toBe(404);
    },
  );
});

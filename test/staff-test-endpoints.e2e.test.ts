import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeWav } from '../src/audio/wav.js';
import { browserSkipReason, launchBrowser, signInWithToken, watchPageErrors } from '../src/dashboard/testing/headless-browser.js';
import { startFakeOpenAI, type FakeOpenAI } from '../src/testing/fake-openai-server.js';
import { startTestApp, type TestApp } from '../src/testing/test-app.js';
import { availableDatabaseKinds } from '../src/testing/test-databases.js';

const databaseKind = (await availableDatabaseKinds()).includes('postgres') ? 'postgres' : 'pglite';
const adminToken = 'staff-admin-token-0123456789';
const skipBrowser = browserSkipReason();

/** Half a second of 8 kHz silence: what the fake transcriber is given (it answers with a scripted text). */
const wav = Buffer.from(encodeWav({ sampleRate: 8000, channels: 1, bitsPerSample: 16, format: 'pcm', data: new Uint8Array(8000) }));

describe('the staff test endpoints /mvp/text and /mvp/audio', { timeout: 30_000 }, () => {
  let openai: FakeOpenAI;
  let server: TestApp;
  beforeAll(async () => {
    openai = await startFakeOpenAI();
    server = await startTestApp(databaseKind, { OPENAI_API_KEY: 'sk-test', OPENAI_BASE_URL: openai.url, ADMIN_TOKEN: adminToken, AUDIO_RETENTION: 'forever' });
  }, 60_000);
  afterAll(async () => {
    await server?.close();
    await openai?.close();
  });

  const post = (route: string, body: unknown, headers: Record<string, string> = { authorization: `Bearer ${adminToken}` }) =>
    fetch(`${server.baseUrl}${route}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
  const callRow = async (callSid: string) =>
    (await server.db.query<Record<string, unknown>>('SELECT * FROM calls WHERE call_id = $1', [callSid])).rows[0];

  it('refuses anyone without the admin credentials, and a cross-site browser post', async () => {
    const anonymous = await post('/mvp/text', { text: 'hello' }, {});
    expect(anonymous.status).toBe(401);
    expect((await anonymous.json()).error.code).toBe('unauthorized');
    const wrong = await post('/mvp/text', { text: 'hello' }, { authorization: 'Bearer not-the-token-at-all' });
    expect(wrong.status).toBe(401);
    const audio = await fetch(`${server.baseUrl}/mvp/audio`, { method: 'POST', headers: { 'content-type': 'audio/wav' }, body: wav });
    expect(audio.status).toBe(401);
    const { rows } = await server.db.query("SELECT 1 FROM calls WHERE direction = 'staff-test'");
    expect(rows).toEqual([]);
  });

  it('holds a text conversation stored as a call: greeting, replies from the knowledge, audio, language, end', async () => {
    openai.queueChatReplies({ text: 'Yes, we have tagliatelle with black truffle and a truffle pizza.' });
    const first = await post('/mvp/text', { profile: 'restaurant', text: 'Do you have anything with truffles?' });
    expect(first.status).toBe(200);
    const answer = await first.json();
    expect(answer).toMatchObject({
      sessionId: expect.stringMatching(/^ST[0-9a-f]{32}$/),
      profile: 'restaurant',
      language: 'en-US',
      greeting: expect.stringContaining('Bella Vista'),
      reply: 'Yes, we have tagliatelle with black truffle and a truffle pizza.',
      audioUrl: expect.stringMatching(/^\/audio\/[\w-]+\.wav$/),
      ended: false,
    });
    const audio = await fetch(`${server.baseUrl}${answer.audioUrl}`);
    expect(audio.headers.get('content-type')).toBe('audio/wav');
    expect((await audio.arrayBuffer()).byteLength).toBeGreaterThan(1000);
    // The model answered from the retrieved menu.
    const system = ((openai.requests.filter((request) => request.endpoint === 'chat').at(-1)?.body?.messages ?? []) as Array<{ content: string }>)[0].content;
    expect(system).toContain('Tagliatelle al tartufo nero');

    openai.queueChatReplies({ text: 'Конечно, говорим по-русски. Чем могу помочь?' });
    const second = await (await post('/mvp/text', { sessionId: answer.sessionId, text: 'Здравствуйте, можно по-русски?' })).json();
    expect(second).toMatchObject({ sessionId: answer.sessionId, language: 'ru-RU', reply: 'Конечно, говорим по-русски. Чем могу помочь?', ended: false });
    expect(second.greeting).toBeUndefined();

    const ended = await post('/mvp/text', { sessionId: answer.sessionId, end: true });
    expect(await ended.json()).toEqual({ sessionId: answer.sessionId, ended: true });
    expect(await callRow(answer.sessionId)).toMatchObject({ direction: 'staff-test', profile_id: 'restaurant', language: 'ru-RU', status: 'completed', from_number: 'staff:token' });
    const { rows: turns } = await server.db.query<{ seq: number; kind: string; user_text: string | null; assistant_text: string }>(
      'SELECT seq, kind, user_text, assistant_text FROM turns WHERE call_id = $1 ORDER BY seq', [answer.sessionId]);
    expect(turns.map((turn) => [turn.seq, turn.kind, turn.user_text])).toEqual([
      [0, 'greeting', null],
      [1, 'speech', 'Do you have anything with truffles?'],
      [2, 'speech', 'Здравствуйте, можно по-русски?'],
    ]);
    // Listed with the other calls in the admin API.
    const listed = await (await fetch(`${server.baseUrl}/api/calls/${answer.sessionId}`, { headers: { authorization: `Bearer ${adminToken}` } })).json();
    expect(listed.call ?? listed).toMatchObject({ direction: 'staff-test' });
    const again = await post('/mvp/text', { sessionId: answer.sessionId, text: 'still there?' });
    expect(again.status).toBe(400);
  });

  it('transcribes an uploaded recording (multipart or a raw audio body) and answers it', async () => {
    openai.setTranscribe(() => 'Is there parking?');
    openai.queueChatReplies({ text: 'Yes, a free car park behind the restaurant.' }, { text: 'We open for lunch at noon.' });
    const form = new FormData();
    form.append('profile', 'restaurant');
    form.append('file', new Blob([wav], { type: 'audio/wav' }), '../../question.wav');
    const multipart = await fetch(`${server.baseUrl}/mvp/audio`, { method: 'POST', headers: { authorization: `Bearer ${adminToken}` }, body: form });
    expect(multipart.status).toBe(200);
    const answer = await multipart.json();
    expect(answer).toMatchObject({ transcript: 'Is there parking?', reply: 'Yes, a free car park behind the restaurant.', greeting: expect.any(String) });
    const transcription = openai.requests.filter((request) => request.endpoint === 'transcription').at(-1)!;
    expect(transcription.file).toMatchObject({ filename: 'upload.wav', size: wav.length });
    expect(transcription.fields?.model).toBe('gpt-4o-mini-transcribe');

    openai.setTranscribe(() => 'When do you open?');
    const raw = await fetch(`${server.baseUrl}/mvp/audio?sessionId=${answer.sessionId}`, {
      method: 'POST', headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'audio/wav' }, body: wav,
    });
    expect(await raw.json()).toMatchObject({ sessionId: answer.sessionId, transcript: 'When do you open?', reply: 'We open for lunch at noon.' });
    openai.setTranscribe(undefined);
  });

  it('answers bad requests with the one error shape', async () => {
    const cases: Array<[unknown, number, string]> = [
      [{ profile: 'no-such-profile', text: 'hi' }, 404, 'not_found'],
      [{ sessionId: `ST${'0'.repeat(32)}`, text: 'hi' }, 404, 'not_found'],
      [{ sessionId: 'CA123', text: 'hi' }, 400, 'invalid_request'],
      [{ text: 'x'.repeat(2001) }, 400, 'invalid_request'],
    ];
    for (const [body, status, code] of cases) {
      const response = await post('/mvp/text', body);
      expect(response.status, JSON.stringify(body)).toBe(status);
      expect((await response.json()).error.code).toBe(code);
    }
    const empty = await fetch(`${server.baseUrl}/mvp/audio`, { method: 'POST', headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' }, body: '{}' });
    expect(empty.status).toBe(415);
  });

  describe.skipIf(skipBrowser)('the dashboard’s Talk page', () => {
    let browser: Browser;
    let page: Page;
    let problems: string[];
    let audioDir: string;
    beforeAll(async () => {
      browser = await launchBrowser();
      page = await browser.newPage();
      problems = watchPageErrors(page);
      audioDir = await mkdtemp(path.join(tmpdir(), 'callme-talk-'));
    });
    afterAll(async () => {
      await browser?.close();
      await rm(audioDir, { recursive: true, force: true });
    });

    it('talks by text and by an uploaded recording, then links to the stored conversation', async () => {
      await signInWithToken(page, server.baseUrl, adminToken);
      await page.goto(`${server.baseUrl}/dashboard/assistants`);
      await Promise.all([page.waitForURL(/\/dashboard\/talk\?profile=restaurant/), page.getByTestId('talk-to-restaurant').click()]);
      await expect(page.locator('nav a.active').textContent()).resolves.toBe('Talk');
      await expect(page.getByTestId('talk-profile').inputValue()).resolves.toBe('restaurant');

      openai.queueChatReplies({ text: 'Yes: the truffle pizza and the tagliatelle with black truffle.' });
      await page.getByTestId('talk-input').fill('Do you have anything with truffles?');
      await page.getByRole('button', { name: 'Send', exact: true }).click();
      const lines = page.getByTestId('talk-lines').locator('li');
      await page.getByText('Yes: the truffle pizza and the tagliatelle with black truffle.').waitFor();
      await expect(lines.allTextContents()).resolves.toEqual([
        expect.stringContaining('Hello, thank you for calling Bella Vista!'),
        expect.stringContaining('Do you have anything with truffles?'),
        expect.stringContaining('Yes: the truffle pizza and the tagliatelle with black truffle.'),
      ]);
      await expect(lines.nth(2).locator('audio').count()).resolves.toBe(1);

      openai.setTranscribe(() => 'Can I bring my dog?');
      openai.queueChatReplies({ text: 'Dogs are welcome on the terrace.' });
      const file = path.join(audioDir, 'question.wav');
      await writeFile(file, wav);
      await page.getByTestId('talk-file').setInputFiles(file);
      await page.getByRole('button', { name: 'Send recording' }).click();
      await page.getByText('Dogs are welcome on the terrace.').waitFor();
      await expect(lines.nth(3).textContent()).resolves.toContain('Can I bring my dog?');
      openai.setTranscribe(undefined);

      await page.getByRole('button', { name: 'End conversation' }).click();
      await page.getByText('Conversation ended; it is stored with the calls.').waitFor();
      const href = await page.getByTestId('talk-call').getAttribute('href');
      expect(href).toMatch(/^\/dashboard\/calls\/ST[0-9a-f]{32}$/);
      await page.goto(`${server.baseUrl}${href}`);
      await expect(page.locator('main').textContent()).resolves.toContain('Dogs are welcome on the terrace.');
      expect(problems).toEqual([]);
    });
  });
});

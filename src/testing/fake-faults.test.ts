import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { refusedBaseUrl } from './fake-faults.js';
import { latencyProfiles, startFakeOpenAI, type FakeOpenAI } from './fake-openai-server.js';

let fake: FakeOpenAI;

beforeEach(async () => {
  fake = await startFakeOpenAI();
});

afterEach(async () => {
  await fake.close();
});

const headers = { authorization: 'Bearer k', 'content-type': 'application/json' };
const chat = (signal?: AbortSignal) =>
  fetch(`${fake.url}/chat/completions`, {
    method: 'POST',
    headers,
    body: JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'hi' }], stream: true }),
    signal,
  });
const speech = (signal?: AbortSignal) =>
  fetch(`${fake.url}/audio/speech`, {
    method: 'POST',
    headers,
    body: JSON.stringify({ model: 'tts-1', voice: 'alloy', input: 'A sentence long enough for many chunks.', response_format: 'pcm' }),
    signal,
  });

/** Reads a body until it ends, fails, or goes `quietMs` without data. */
async function drain(response: Response, quietMs = 150): Promise<{ text: string; chunks: number; outcome: 'ended' | 'failed' | 'stalled' }> {
  const reader = response.body!.getReader();
  const decoder = new TextDecoder();
  let text = '';
  let chunks = 0;
  for (;;) {
    let timer: NodeJS.Timeout | undefined;
    const quiet = new Promise<'quiet'>((resolve) => (timer = setTimeout(() => resolve('quiet'), quietMs)));
    try {
      const next = await Promise.race([reader.read(), quiet]);
      if (next === 'quiet') {
        await reader.cancel().catch(() => undefined);
        return { text, chunks, outcome: 'stalled' };
      }
      if (next.done) return { text, chunks, outcome: 'ended' };
      chunks += 1;
      text += decoder.decode(next.value, { stream: true });
    } catch {
      return { text, chunks, outcome: 'failed' };
    } finally {
      clearTimeout(timer);
    }
  }
}

describe('fault injection', () => {
  it('sends retry-after-ms with a 429, for the next N requests of one endpoint only', async () => {
    fake.failNext('chat', { status: 429, retryAfterMs: 1500 }, 2);
    const first = await chat();
    expect(first.status).toBe(429);
    expect(first.headers.get('retry-after-ms')).toBe('1500');
    expect((await speech()).status).toBe(200);
    expect((await chat()).status).toBe(429);
    expect((await chat()).status).toBe(200);
  });

  it('"hang" never sends headers; close() releases the request', async () => {
    fake.failNext('speech', 'hang');
    const pending = speech(AbortSignal.timeout(200));
    await expect(pending).rejects.toMatchObject({ name: 'TimeoutError' });
    expect(fake.requests[0].status).toBeUndefined();
  });

  it('"garbage-sse" answers 200 event-stream whose events are not JSON', async () => {
    fake.failNext('chat', 'garbage-sse');
    const response = await chat();
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const body = await response.text();
    expect(() => JSON.parse(body.split('\n')[0].slice(6))).toThrow();
  });

  it('cutAfterChunks delivers that many chunks, then drops the connection', async () => {
    fake.failNext('chat', { cutAfterChunks: 3 });
    const result = await drain(await chat());
    expect(result.outcome).toBe('failed');
    expect(result.text).toContain('chat.completion.chunk');
    expect(result.text).not.toContain('[DONE]');

    fake.setProfile({ ...latencyProfiles.zero, ttsRealtimeFactor: 50 });
    fake.failNext('speech', { cutAfterChunks: 2 });
    const audio = await drain(await speech());
    expect(audio.outcome).toBe('failed');
    expect(audio.chunks).toBeGreaterThan(0);
  });

  it('cutAfterChunks 0 sends the headers and nothing else, even for a one-piece JSON body', async () => {
    fake.failNext('transcription', { cutAfterChunks: 0 });
    const form = new FormData();
    form.set('model', 'whisper-1');
    form.set('file', new Blob([new Uint8Array(10)]), 'a.wav');
    const response = await fetch(`${fake.url}/audio/transcriptions`, { method: 'POST', headers: { authorization: 'Bearer k' }, body: form });
    expect(response.status).toBe(200);
    await expect(response.text()).rejects.toThrow();
  });

  it('stallAfterChunks delivers that many chunks, then goes silent with the connection open', async () => {
    fake.failNext('chat', { stallAfterChunks: 2 });
    const result = await drain(await chat());
    expect(result.outcome).toBe('stalled');
    expect(result.text.match(/^data: /gm)).toHaveLength(2);

    fake.setProfile({ ...latencyProfiles.zero, ttsRealtimeFactor: 50 });
    fake.failNext('speech', { stallAfterChunks: 1 });
    const audio = await drain(await speech());
    expect(audio.outcome).toBe('stalled');
    expect(audio.chunks).toBe(1);
    // The next request is healthy again.
    expect((await drain(await speech())).outcome).toBe('ended');
  });

  it('refusedBaseUrl points at a port that refuses connections', async () => {
    const url = await refusedBaseUrl();
    await expect(fetch(`${url}/models`)).rejects.toMatchObject({ cause: { code: 'ECONNREFUSED' } });
  });
});

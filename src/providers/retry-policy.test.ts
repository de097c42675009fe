import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startFakeOpenAI, type FakeOpenAI } from '../testing/fake-openai-server.js';
import type { ChatOptions } from './chat-model.js';
import { OpenAIChatModel } from './openai-chat-model.js';
import { createOpenAIClient } from './openai-client.js';
import { OpenAISpeechModel } from './openai-speech-model.js';
import { OpenAITranscriptionModel } from './openai-transcription-model.js';
import { isAbortError, ProviderError } from './provider-error.js';
import { retryDelayMs, type RetryPolicy } from './retry-policy.js';

const policy: RetryPolicy = { maxRetries: 2, baseDelayMs: 100, maxDelayMs: 1_000 };

describe('retryDelayMs', () => {
  const failure = (code: ProviderError['code'], options: ConstructorParameters<typeof ProviderError>[2] = {}) => new ProviderError(code, 'x', options);

  it('backs off exponentially with jitter, up to the cap, for as many retries as the policy allows', () => {
    const outage = failure('provider_unavailable');
    expect(retryDelayMs(outage, 0, policy, () => 0.5)).toBe(100);
    expect(retryDelayMs(outage, 1, policy, () => 0.5)).toBe(200);
    expect(retryDelayMs(outage, 1, policy, () => 0)).toBe(160);
    expect(retryDelayMs(outage, 1, { ...policy, maxDelayMs: 150 }, () => 1)).toBe(150);
    expect(retryDelayMs(outage, 2, policy)).toBeUndefined();
  });

  it('honours Retry-After up to the cap and gives up at once beyond it', () => {
    expect(retryDelayMs(failure('provider_rate_limited', { retryAfterMs: 700 }), 0, policy)).toBe(700);
    expect(retryDelayMs(failure('provider_rate_limited', { retryAfterMs: 30_000 }), 0, policy)).toBeUndefined();
  });

  it('never retries what cannot help: bad responses, credentials, an exhausted quota, a timeout', () => {
    expect(retryDelayMs(failure('provider_bad_response'), 0, policy)).toBeUndefined();
    expect(retryDelayMs(failure('provider_auth'), 0, policy)).toBeUndefined();
    expect(retryDelayMs(failure('provider_rate_limited', { retryable: false }), 0, policy)).toBeUndefined();
    expect(retryDelayMs(failure('provider_timeout'), 0, policy)).toBeUndefined();
  });
});

describe('the OpenAI models with a retry policy', () => {
  let fake: FakeOpenAI;
  beforeEach(async () => {
    fake = await startFakeOpenAI();
  });
  afterEach(async () => {
    await fake.close();
  });

  const client = () => createOpenAIClient({ apiKey: 'sk-test', baseURL: fake.url, timeoutMs: 300, maxRetries: 0, logLevel: 'off' });
  const chatOptions: ChatOptions = { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] };
  const chat = (options: Partial<ChatOptions> = {}) => {
    const model = new OpenAIChatModel({ client: client(), retry: policy });
    return (async () => {
      for await (const _event of model.stream({ ...chatOptions, ...options }));
    })();
  };
  const statuses = () => fake.requests.map((request) => request.status ?? 'none');

  it('retries a 500 and a refused connection, then succeeds', async () => {
    fake.failNext('chat', { status: 500 });
    fake.failNext('chat', 'refuse');
    await chat();
    expect(statuses()).toEqual([500, 'none', 200]);
  });

  it('gives up after maxRetries, with the last failure', async () => {
    fake.failNext('chat', { status: 503 }, 5);
    await expect(chat()).rejects.toMatchObject({ code: 'provider_unavailable', status: 503 });
    expect(fake.requests).toHaveLength(3);
  });

  it('waits the retry-after-ms the provider asked for', async () => {
    fake.failNext('speech', { status: 429, retryAfterMs: 250 });
    const speech = new OpenAISpeechModel({ client: client(), retry: policy });
    await speech.synthesize({ text: 'hello', voice: 'alloy', model: 'tts-1', format: 'pcm', speed: 1 });
    const [first, second] = fake.requests;
    expect(second.receivedAt - first.receivedAt).toBeGreaterThanOrEqual(240);
  });

  it('does not wait out a Retry-After beyond the cap: the failure comes back at once', async () => {
    fake.failNext('chat', { status: 429, retryAfterSeconds: 60 });
    const started = performance.now();
    await expect(chat()).rejects.toMatchObject({ code: 'provider_rate_limited', retryAfterMs: 60_000 });
    expect(performance.now() - started).toBeLessThan(500);
    expect(fake.requests).toHaveLength(1);
  });

  it('stops waiting between attempts as soon as the caller aborts', async () => {
    fake.failNext('chat', { status: 429, retryAfterMs: 900 });
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 50);
    const started = performance.now();
    const error = await chat({ abortSignal: controller.signal }).catch((caught: unknown) => caught);
    expect(isAbortError(error)).toBe(true);
    expect(performance.now() - started).toBeLessThan(400);
    expect(fake.requests).toHaveLength(1);
  });

  it('fails a transcription whose body never comes with provider_timeout, after the whole-answer timeout', async () => {
    fake.failNext('transcription', { stallAfterChunks: 0 });
    const transcription = new OpenAITranscriptionModel({ client: client(), timeoutMs: 200, retry: policy });
    const started = performance.now();
    const error = await transcription.transcribe({ audio: new Uint8Array(100), filename: 'a.wav', model: 'whisper-1' }).catch((caught: unknown) => caught);
    expect(error).toMatchObject({ code: 'provider_timeout' });
    expect(performance.now() - started).toBeLessThan(600);
    // A timed-out attempt is not retried: it already cost a whole attempt's wait.
    expect(fake.requests).toHaveLength(1);
  });
});

import { APIError } from 'openai';
import type { Agent } from 'undici';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  latencyProfiles,
  startFakeOpenAI,
  type FakeEndpoint,
  type FakeFault,
  type FakeOpenAI,
} from '../testing/fake-openai-server.js';
import type { ChatOptions, ChatStreamEvent } from './chat-model.js';
import { OpenAIChatModel } from './openai-chat-model.js';
import { OpenAIEmbeddingModel } from './openai-embedding-model.js';
import { createOpenAIClient, createProviderAgent } from './openai-client.js';
import { OpenAISpeechModel } from './openai-speech-model.js';
import { OpenAITranscriptionModel } from './openai-transcription-model.js';
import { isAbortError, ProviderError, toProviderError, type ProviderErrorCode } from './provider-error.js';
import type { SpeechOptions } from './speech-model.js';

let fake: FakeOpenAI;
/** Set: requests go through `providerFetch` on this pool, as in the server; unset: through Node's `fetch`. */
let agent: Agent | undefined;

beforeEach(async () => {
  fake = await startFakeOpenAI();
});

afterEach(async () => {
  await fake.close();
});

function models(options: { timeoutMs?: number; maxRetries?: number; idleTimeoutMs?: number; apiKey?: string } = {}) {
  const client = createOpenAIClient({
    apiKey: options.apiKey ?? 'sk-test',
    baseURL: fake.url,
    timeoutMs: options.timeoutMs ?? 5_000,
    maxRetries: options.maxRetries ?? 0,
    logLevel: 'off',
    dispatcher: agent,
  });
  return {
    chat: new OpenAIChatModel({ client, idleTimeoutMs: options.idleTimeoutMs }),
    speech: new OpenAISpeechModel({ client, idleTimeoutMs: options.idleTimeoutMs }),
    transcription: new OpenAITranscriptionModel({ client }),
    embedding: new OpenAIEmbeddingModel({ client }),
  };
}

const chatOptions: ChatOptions = {
  model: 'gpt-4o-mini',
  messages: [{ role: 'user', content: 'Do you open on Sundays?' }],
};

const speechOptions: SpeechOptions = { text: 'Hello from callme', voice: 'alloy', model: 'tts-1', format: 'pcm', speed: 1 };

async function collect<T>(iterable: AsyncIterable<T>): Promise<T[]> {
  const items: T[] = [];
  for await (const item of iterable) items.push(item);
  return items;
}

async function caught(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected a failure');
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

// Every test runs over both ways the client can send a request.
describe.each([
  ['Node fetch', false],
  ['providerFetch on the server’s pool', true],
])('over %s', (_transport, pooled) => {
  beforeAll(() => {
    agent = pooled ? createProviderAgent() : undefined;
  });
  afterAll(async () => {
    await agent?.destroy();
    agent = undefined;
  });

  describe('OpenAIChatModel', () => {
    it('streams text deltas, then finish with the usage', async () => {
      fake.setRespond(() => ({ text: 'We open at ten on Sundays.' }));
      const events = await collect(models().chat.stream(chatOptions));

      const deltas = events.filter((event) => event.type === 'text-delta');
      expect(deltas.length).toBeGreaterThan(3);
      expect(deltas.map((event) => event.text).join('')).toBe('We open at ten on Sundays.');
      const finish = events.at(-1);
      expect(finish).toEqual({
        type: 'finish',
        reason: 'stop',
        usage: { promptTokens: expect.any(Number), completionTokens: deltas.length },
      });
      expect(events.filter((event) => event.type === 'finish')).toHaveLength(1);
    });

    it('reassembles tool calls from fragments, whole and in order, before finish', async () => {
      const booking = { name: 'Ana Pop', people: 4, when: { day: 'Sunday', time: '19:30' }, notes: 'window "seat", please' };
      fake.setRespond(() => ({
        text: 'Booking that now.',
        toolCalls: [
          { name: 'book_table', arguments: booking },
          { name: 'end_call', arguments: { message: 'See you Sunday!' } },
        ],
      }));
      const events = await collect(models().chat.stream(chatOptions));

      expect(events.map((event) => event.type)).toEqual([
        ...events.filter((event) => event.type === 'text-delta').map(() => 'text-delta'),
        'tool-call',
        'tool-call',
        'finish',
      ]);
      const toolCalls = events.flatMap((event) => (event.type === 'tool-call' ? [event.toolCall] : []));
      expect(toolCalls.map((toolCall) => toolCall.name)).toEqual(['book_table', 'end_call']);
      expect(JSON.parse(toolCalls[0].arguments)).toEqual(booking);
      expect(JSON.parse(toolCalls[1].arguments)).toEqual({ message: 'See you Sunday!' });
      expect(toolCalls[0].id).toMatch(/^call_/);
      expect(toolCalls[0].id).not.toBe(toolCalls[1].id);
      expect(events.at(-1)).toMatchObject({ type: 'finish', reason: 'tool_calls' });
    });

    it("sends the conversation in OpenAI's shape", async () => {
      await collect(models().chat.stream({
        model: 'gpt-4o-mini',
        temperature: 0.3,
        maxTokens: 200,
        messages: [
          { role: 'system', content: 'You are a receptionist.' },
          { role: 'user', content: 'Book me for Sunday, then hang up.' },
          { role: 'assistant', content: '', toolCalls: [{ id: 'call_1', name: 'book_table', arguments: '{"day":"Sunday"}' }] },
          { role: 'tool', toolCallId: 'call_1', content: '{"ok":true}' },
          { role: 'assistant', content: 'Done.' },
        ],
        tools: [{ name: 'end_call', description: 'Hang up', parameters: { type: 'object', properties: {} } }],
      }));

      expect(fake.requests[0].body).toEqual({
        model: 'gpt-4o-mini',
        temperature: 0.3,
        max_completion_tokens: 200,
        stream: true,
        stream_options: { include_usage: true },
        messages: [
          { role: 'system', content: 'You are a receptionist.' },
          { role: 'user', content: 'Book me for Sunday, then hang up.' },
          {
            role: 'assistant',
            content: null,
            tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'book_table', arguments: '{"day":"Sunday"}' } }],
          },
          { role: 'tool', tool_call_id: 'call_1', content: '{"ok":true}' },
          { role: 'assistant', content: 'Done.' },
        ],
        tools: [{ type: 'function', function: { name: 'end_call', description: 'Hang up', parameters: { type: 'object', properties: {} } } }],
      });
    });

    it('leaves tools out when there are none', async () => {
      await collect(models().chat.stream({ ...chatOptions, tools: [] }));
      expect(fake.requests[0].body).not.toHaveProperty('tools');
    });

    it('stops on abort mid-stream with an error isAbortError recognizes', async () => {
      fake.setProfile({ ...latencyProfiles.zero, chatTokensPerSecond: 20 });
      fake.setRespond(() => ({ text: 'This is a long answer that the caller interrupts halfway through.' }));
      const controller = new AbortController();
      const received: ChatStreamEvent[] = [];

      const error = await caught((async () => {
        for await (const event of models().chat.stream({ ...chatOptions, abortSignal: controller.signal })) {
          received.push(event);
          if (received.length === 2) controller.abort();
        }
      })());

      expect(isAbortError(error)).toBe(true);
      expect(error).not.toBeInstanceOf(ProviderError);
      expect(received).toHaveLength(2);
      expect(fake.requests[0].finishedAt).toBeUndefined();
    });

    it('recognizes an abort with a custom reason, and one before the request starts', async () => {
      const hangUp = new Error('caller hung up');
      const error = await caught(collect(models().chat.stream({ ...chatOptions, abortSignal: AbortSignal.abort(hangUp) })));
      expect(isAbortError(error)).toBe(true);
      expect((error as Error).cause).toBe(hangUp);
    });

    it('fails with provider_unavailable when the connection drops mid-stream', async () => {
      fake.setRespond(() => ({ cutAfterChars: 12, text: 'The kitchen closes at eleven tonight.' }));
      const received: string[] = [];
      const error = await caught((async () => {
        for await (const event of models().chat.stream(chatOptions)) if (event.type === 'text-delta') received.push(event.text);
      })());
      expect(received.join('').length).toBeGreaterThanOrEqual(12);
      expect(error).toBeInstanceOf(ProviderError);
      expect(error).toMatchObject({ code: 'provider_unavailable', retryable: true });
    });

    it('fails with provider_timeout when a started stream stalls', async () => {
      fake.setRespond(() => ({ stallAfterChars: 5, text: 'Hello there, caller.' }));
      const error = await caught(collect(models({ idleTimeoutMs: 100 }).chat.stream(chatOptions)));
      expect(error).toMatchObject({ code: 'provider_timeout', retryable: true });
    });

    it('lets the SDK retry a failed attempt when retries are configured', async () => {
      fake.failNext('chat', { status: 500, retryAfterSeconds: 0.01 });
      fake.setRespond(() => ({ text: 'Second time lucky.' }));
      const events = await collect(models({ maxRetries: 1 }).chat.stream(chatOptions));
      expect(events.at(-1)).toMatchObject({ type: 'finish', reason: 'stop' });
      expect(fake.requests.map((request) => request.status)).toEqual([500, 200]);
    });
  });

  describe('OpenAISpeechModel', () => {
    it('streams the audio: the first chunk arrives while the fake is still sending', async () => {
      // 30 characters ≈ 2 s of audio, sent at 4× real time ≈ 0.5 s.
      fake.setProfile({ ...latencyProfiles.zero, ttsRealtimeFactor: 4 });
      const started = performance.now();
      const audio = await models().speech.synthesize({ ...speechOptions, text: 'x'.repeat(30) });

      let firstChunkAt: number | undefined;
      let stillSendingAtFirstChunk = false;
      let bytes = 0;
      for await (const chunk of audio) {
        if (firstChunkAt === undefined) {
          firstChunkAt = performance.now() - started;
          stillSendingAtFirstChunk = fake.requests[0].finishedAt === undefined;
        }
        bytes += chunk.byteLength;
      }
      const finishedAt = fake.requests[0].finishedAt! - fake.requests[0].receivedAt;

      expect(stillSendingAtFirstChunk).toBe(true);
      expect(finishedAt - firstChunkAt!).toBeGreaterThan(300);
      expect(bytes).toBe(Math.round(30 * 0.065 * 24_000) * 2);
    });

    it('sends the request fields, and instructions only to gpt-4o-mini-tts', async () => {
      const speech = models().speech;
      const instructions = 'Warm and unhurried.';
      await collect(await speech.synthesize({ ...speechOptions, format: 'mp3', speed: 1.25, instructions }));
      await collect(await speech.synthesize({ ...speechOptions, model: 'gpt-4o-mini-tts', instructions }));

      expect(fake.requests[0].body).toEqual({ model: 'tts-1', voice: 'alloy', input: 'Hello from callme', response_format: 'mp3', speed: 1.25 });
      expect(fake.requests[1].body).toMatchObject({ model: 'gpt-4o-mini-tts', instructions });
    });

    it('stops on abort mid-body with an error isAbortError recognizes', async () => {
      fake.setProfile({ ...latencyProfiles.zero, ttsRealtimeFactor: 2 });
      const controller = new AbortController();
      const audio = await models().speech.synthesize({ ...speechOptions, text: 'x'.repeat(40), abortSignal: controller.signal });
      let chunks = 0;
      const error = await caught((async () => {
        for await (const _chunk of audio) if (++chunks === 1) controller.abort();
      })());
      expect(isAbortError(error)).toBe(true);
      expect(chunks).toBeLessThan(4);
    });

    it('closes the connection when the consumer stops reading early', async () => {
      fake.setProfile({ ...latencyProfiles.zero, ttsRealtimeFactor: 2 });
      const audio = await models().speech.synthesize({ ...speechOptions, text: 'x'.repeat(40) });
      for await (const _chunk of audio) break;
      await sleep(50);
      expect(fake.requests[0].finishedAt).toBeUndefined();
    });

    it('does not count the time a slow consumer holds a chunk as a stall', async () => {
      // A chunk every 5 ms, each held by the consumer for 80 ms: far longer than the idle timeout.
      fake.setProfile({ ...latencyProfiles.zero, ttsRealtimeFactor: 20 });
      const audio = await models({ idleTimeoutMs: 50 }).speech.synthesize({ ...speechOptions, text: 'x'.repeat(8) });
      let chunks = 0;
      let bytes = 0;
      for await (const chunk of audio) {
        chunks++;
        bytes += chunk.byteLength;
        await sleep(80);
      }
      expect(chunks).toBeGreaterThan(1);
      expect(bytes).toBe(Math.round(8 * 0.065 * 24_000) * 2);
    });

    it('fails with provider_timeout when the audio stops flowing', async () => {
      // 0.01× real time: one chunk, then ten seconds until the next.
      fake.setProfile({ ...latencyProfiles.zero, ttsRealtimeFactor: 0.01 });
      const audio = await models({ idleTimeoutMs: 100 }).speech.synthesize(speechOptions);
      const error = await caught(collect(audio));
      expect(error).toMatchObject({ code: 'provider_timeout' });
    });

    it('fails with provider_bad_response for a voice the provider rejects', async () => {
      const error = await caught(models().speech.synthesize({ ...speechOptions, voice: 'robot' }));
      expect(error).toMatchObject({ code: 'provider_bad_response', status: 400, retryable: false });
    });
  });

  describe('OpenAITranscriptionModel', () => {
    it('uploads the audio and returns the text, language and, from whisper-1, the duration', async () => {
      const wav = Buffer.concat(await collect(await models().speech.synthesize({ ...speechOptions, format: 'wav', text: 'x'.repeat(20) })));
      fake.setTranscribe((request) => ` ${request.filename} ${request.audio.length} `);

      const transcription = await models().transcription.transcribe({ audio: wav, filename: 'turn-3.wav', model: 'whisper-1', language: 'ro' });

      expect(transcription).toEqual({ text: `turn-3.wav ${wav.length}`, language: 'ro', durationSeconds: 2 });
      expect(fake.requests[1]).toMatchObject({
        fields: { model: 'whisper-1', language: 'ro', response_format: 'json' },
        file: { filename: 'turn-3.wav', size: wav.length },
      });
    });

    it('stops on abort with an error isAbortError recognizes', async () => {
      fake.failNext('transcription', { stallMs: 1_000 });
      const controller = new AbortController();
      setTimeout(() => controller.abort(), 30);
      const error = await caught(models().transcription.transcribe({
        audio: new Uint8Array(100), filename: 'a.wav', model: 'whisper-1', abortSignal: controller.signal,
      }));
      expect(isAbortError(error)).toBe(true);
    });
  });

  describe('provider failures', () => {
    const operations: Record<FakeEndpoint, (built: ReturnType<typeof models>) => Promise<unknown>> = {
      chat: (built) => collect(built.chat.stream(chatOptions)),
      speech: async (built) => collect(await built.speech.synthesize(speechOptions)),
      transcription: (built) => built.transcription.transcribe({ audio: new Uint8Array(100), filename: 'a.wav', model: 'whisper-1' }),
      embeddings: (built) => built.embedding.embed({ model: 'text-embedding-3-small', texts: ['opening hours'] }),
    };

    const cases: [string, FakeFault, Partial<ProviderError> & { code: ProviderErrorCode }][] = [
      ['500', { status: 500 }, { code: 'provider_unavailable', retryable: true, status: 500 }],
      ['503', { status: 503 }, { code: 'provider_unavailable', retryable: true, status: 503 }],
      ['429 with retry-after', { status: 429, retryAfterSeconds: 7 }, { code: 'provider_rate_limited', retryable: true, retryAfterMs: 7_000 }],
      ['429 for an exhausted quota', { status: 429, code: 'insufficient_quota' }, { code: 'provider_rate_limited', retryable: false }],
      ['401', { status: 401 }, { code: 'provider_auth', retryable: false, status: 401 }],
      ['400', { status: 400 }, { code: 'provider_bad_response', retryable: false, status: 400 }],
      ['a refused connection', 'refuse', { code: 'provider_unavailable', retryable: true }],
      ['a 200 with garbage', 'garbage', { code: 'provider_bad_response', retryable: false }],
      ['no answer before the timeout', { stallMs: 1_000 }, { code: 'provider_timeout', retryable: true }],
    ];

    describe.each(['chat', 'speech', 'transcription', 'embeddings'] as const)('%s', (endpoint) => {
      it.each(cases)('maps %s to a ProviderError', async (_name, fault, expected) => {
        fake.failNext(endpoint, fault);
        const error = await caught(operations[endpoint](models({ timeoutMs: 150 })));
        expect(error).toBeInstanceOf(ProviderError);
        expect(error).toMatchObject(expected);
        expect(isAbortError(error)).toBe(false);
      });
    });

    it('maps a wrong API key to provider_auth', async () => {
      await fake.close();
      fake = await startFakeOpenAI({ apiKey: 'sk-right' });
      const error = await caught(collect(models({ apiKey: 'sk-wrong' }).chat.stream(chatOptions)));
      expect(error).toMatchObject({ code: 'provider_auth', status: 401 });
    });

    it("reads OpenAI's retry-after-ms and HTTP-date retry-after", () => {
      const rateLimited = (headers: Record<string, string>) =>
        toProviderError(APIError.generate(429, { error: { message: 'slow down' } }, undefined, new Headers(headers)));
      expect(rateLimited({ 'retry-after-ms': '250' }).retryAfterMs).toBe(250);
      const later = new Date(Date.now() + 30_000).toUTCString();
      expect(rateLimited({ 'retry-after': later }).retryAfterMs).toBeGreaterThan(25_000);
      expect(rateLimited({}).retryAfterMs).toBeUndefined();
    });

    it('passes a ProviderError through and treats unknown errors as bad responses', () => {
      const original = new ProviderError('provider_timeout', 'slow');
      expect(toProviderError(original)).toBe(original);
      expect(toProviderError(new Error('weird'))).toMatchObject({ code: 'provider_bad_response', retryable: false });
    });
  });
});

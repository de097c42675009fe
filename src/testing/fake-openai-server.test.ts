import { AuthenticationError, BadRequestError, OpenAI, toFile } from 'openai';
import type { ChatCompletionChunk } from 'openai/resources/chat/completions';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { speechContentTypes, type SpeechFormat } from '../providers/speech-model.js';
import {
  latencyProfiles,
  startFakeOpenAI,
  type FakeChatRequest,
  type FakeOpenAI,
} from './fake-openai-server.js';

let fake: FakeOpenAI;
let client: OpenAI;

beforeEach(async () => {
  fake = await startFakeOpenAI();
  client = new OpenAI({ apiKey: 'sk-test', baseURL: fake.url, maxRetries: 0, timeout: 5_000 });
});

afterEach(async () => {
  await fake.close();
});

const endCallTool = {
  type: 'function' as const,
  function: {
    name: 'end_call',
    description: 'Hang up',
    parameters: { type: 'object', properties: { message: { type: 'string' } }, required: ['message'] },
  },
};

async function streamChunks(
  body: Partial<OpenAI.Chat.ChatCompletionCreateParamsStreaming> = {},
): Promise<ChatCompletionChunk[]> {
  const stream = await client.chat.completions.create({
    model: 'gpt-4o-mini',
    messages: [{ role: 'user', content: 'Do you open on Sundays?' }],
    stream: true,
    stream_options: { include_usage: true },
    ...body,
  });
  const chunks: ChatCompletionChunk[] = [];
  for await (const chunk of stream) chunks.push(chunk);
  return chunks;
}

async function speechBytes(format: SpeechFormat, input = 'Hello from callme', speed = 1): Promise<{ bytes: Buffer; contentType: string | null }> {
  const response = await client.audio.speech.create({ model: 'tts-1', voice: 'alloy', input, response_format: format, speed });
  return { bytes: Buffer.from(await response.arrayBuffer()), contentType: response.headers.get('content-type') };
}

describe('chat completions', () => {
  it('streams chat.completion.chunk objects the SDK parses, with a final usage chunk', async () => {
    fake.setRespond(() => ({ text: 'We open at ten on Sundays.' }));
    const chunks = await streamChunks();

    expect(chunks.every((chunk) => chunk.object === 'chat.completion.chunk')).toBe(true);
    expect(new Set(chunks.map((chunk) => chunk.id)).size).toBe(1);
    expect(chunks[0].choices[0].delta.role).toBe('assistant');
    const text = chunks.map((chunk) => chunk.choices[0]?.delta.content ?? '').join('');
    expect(text).toBe('We open at ten on Sundays.');
    const pieces = chunks.flatMap((chunk) => (chunk.choices[0]?.delta.content ? [chunk.choices[0].delta.content] : []));
    expect(pieces.length).toBeGreaterThan(4);
    expect(Math.max(...pieces.map((piece) => piece.trim().length))).toBeLessThanOrEqual(4);

    const finish = chunks.at(-2)!;
    expect(finish.choices[0].finish_reason).toBe('stop');
    const usageChunk = chunks.at(-1)!;
    expect(usageChunk.choices).toEqual([]);
    expect(usageChunk.usage?.completion_tokens).toBe(pieces.length);
    expect(usageChunk.usage?.prompt_tokens).toBeGreaterThan(0);
    expect(usageChunk.usage?.total_tokens).toBe(usageChunk.usage!.prompt_tokens + usageChunk.usage!.completion_tokens);
  });

  it('ends the raw stream with data: [DONE] and sends no usage without include_usage', async () => {
    const response = await fetch(`${fake.url}/chat/completions`, {
      method: 'POST',
      headers: { authorization: 'Bearer sk-test', 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'gpt-4o-mini', stream: true, messages: [{ role: 'user', content: 'hi' }] }),
    });
    expect(response.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const raw = await response.text();
    const events = raw.split('\n\n').filter(Boolean);
    expect(events.every((event) => event.startsWith('data: '))).toBe(true);
    expect(events.at(-1)).toBe('data: [DONE]');
    for (const event of events.slice(0, -1)) expect(JSON.parse(event.slice(6))).not.toHaveProperty('usage');
  });

  it('streams tool calls in fragments: id and name first, arguments in pieces', async () => {
    fake.setRespond(() => ({
      toolCalls: [
        { name: 'book_table', arguments: { name: 'Ana Pop', people: 4, time: '19:30' } },
        { name: 'end_call', arguments: { message: 'See you soon!' } },
      ],
    }));
    const chunks = await streamChunks({ tools: [endCallTool] });
    const fragments = chunks.flatMap((chunk) => chunk.choices[0]?.delta.tool_calls ?? []);

    const first = fragments.filter((fragment) => fragment.index === 0);
    expect(first[0]).toMatchObject({ id: expect.stringMatching(/^call_/), type: 'function', function: { name: 'book_table', arguments: '' } });
    expect(first.length).toBeGreaterThan(3);
    expect(first.slice(1).every((fragment) => fragment.id === undefined && fragment.function?.name === undefined)).toBe(true);
    const argumentsText = first.map((fragment) => fragment.function?.arguments ?? '').join('');
    expect(JSON.parse(argumentsText)).toEqual({ name: 'Ana Pop', people: 4, time: '19:30' });
    expect(fragments.some((fragment) => fragment.index === 1 && fragment.function?.name === 'end_call')).toBe(true);
    expect(chunks.at(-2)?.choices[0].finish_reason).toBe('tool_calls');
  });

  it('answers without streaming in the chat.completion shape', async () => {
    fake.setRespond(() => ({ text: 'Sure.', toolCalls: [{ name: 'end_call', arguments: { message: 'Bye' } }] }));
    const completion = await client.chat.completions.create({
      model: 'gpt-4o-mini',
      messages: [{ role: 'user', content: 'hi' }],
    });
    expect(completion.object).toBe('chat.completion');
    expect(completion.choices[0].message.content).toBe('Sure.');
    expect(completion.choices[0].message.tool_calls?.[0]).toMatchObject({ type: 'function', function: { name: 'end_call', arguments: '{"message":"Bye"}' } });
    expect(completion.choices[0].finish_reason).toBe('tool_calls');
    expect(completion.usage?.total_tokens).toBeGreaterThan(0);
  });

  it('by default greets, repeats the caller, and ends the call on "bye" when end_call is offered', async () => {
    const reply = async (content: string | undefined, tools?: (typeof endCallTool)[]) => {
      const chunks = await streamChunks({
        messages: [{ role: 'system', content: 'You are a receptionist.' }, ...(content ? [{ role: 'user' as const, content }] : [])],
        tools,
      });
      return {
        text: chunks.map((chunk) => chunk.choices[0]?.delta.content ?? '').join(''),
        toolCalls: chunks.flatMap((chunk) => chunk.choices[0]?.delta.tool_calls ?? []),
      };
    };

    expect((await reply(undefined)).text).toMatch(/how can I help/i);
    expect((await reply('Do you have a table for two?', [endCallTool])).text).toContain('Do you have a table for two?');
    expect((await reply('ok, bye')).toolCalls).toEqual([]);

    const goodbye = await reply('Thanks, bye!', [endCallTool]);
    expect(goodbye.text).toMatch(/goodbye/i);
    expect(goodbye.toolCalls[0].function?.name).toBe('end_call');
    const argumentsText = goodbye.toolCalls.map((fragment) => fragment.function?.arguments ?? '').join('');
    expect(JSON.parse(argumentsText)).toEqual({ message: expect.stringMatching(/goodbye/i) });

    const afterTool = await streamChunks({
      tools: [endCallTool],
      messages: [
        { role: 'user', content: 'bye' },
        { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'end_call', arguments: '{}' } }] },
        { role: 'tool', tool_call_id: 'call_1', content: 'ok' },
      ],
    });
    expect(afterTool.flatMap((chunk) => chunk.choices[0]?.delta.tool_calls ?? [])).toEqual([]);
  });

  it('hands the responder the messages and the flattened tools, and plays queued replies first', async () => {
    const seen: FakeChatRequest[] = [];
    fake.setRespond((request) => {
      seen.push(request);
      return { text: 'from responder' };
    });
    fake.queueChatReplies({ text: 'first' }, { text: 'second' });

    const texts: string[] = [];
    for (let turn = 0; turn < 3; turn++) {
      const chunks = await streamChunks({ tools: [endCallTool] });
      texts.push(chunks.map((chunk) => chunk.choices[0]?.delta.content ?? '').join(''));
    }
    expect(texts).toEqual(['first', 'second', 'from responder']);
    expect(seen).toHaveLength(1);
    expect(seen[0]).toMatchObject({
      model: 'gpt-4o-mini',
      stream: true,
      messages: [{ role: 'user', content: 'Do you open on Sundays?' }],
      tools: [{ name: 'end_call', description: 'Hang up' }],
    });
  });

  it('records every request with its body and headers', async () => {
    await streamChunks();
    expect(fake.requests).toHaveLength(1);
    expect(fake.requests[0]).toMatchObject({
      endpoint: 'chat',
      method: 'POST',
      path: '/v1/chat/completions',
      status: 200,
      body: { model: 'gpt-4o-mini', stream: true },
    });
    expect(fake.requests[0].headers.authorization).toBe('Bearer sk-test');
    expect(fake.requests[0].finishedAt).toBeGreaterThanOrEqual(fake.requests[0].receivedAt);
  });

  it('streams at the profile rate: first token after the delay, the rest spread out', async () => {
    fake.setProfile({ ...latencyProfiles.zero, chatFirstTokenMs: 120, chatTokensPerSecond: 100 });
    fake.setRespond(() => ({ text: 'one two three four five six seven eight nine ten' }));
    const started = performance.now();
    const stream = await client.chat.completions.create({
      model: 'gpt-4o-mini',
      messages: [{ role: 'user', content: 'count' }],
      stream: true,
    });
    let firstTextAt: number | undefined;
    for await (const chunk of stream) {
      if (chunk.choices[0]?.delta.content && firstTextAt === undefined) firstTextAt = performance.now() - started;
    }
    const total = performance.now() - started;
    expect(firstTextAt).toBeGreaterThanOrEqual(100);
    // 13 pieces at 100 per second after the first.
    expect(total - firstTextAt!).toBeGreaterThanOrEqual(100);
  });
});

describe('audio speech', () => {
  it.each([
    ['mp3', (bytes: Buffer) => bytes.toString('latin1', 0, 3) === 'ID3' || (bytes[0] === 0xff && (bytes[1] & 0xe0) === 0xe0)],
    ['opus', (bytes: Buffer) => bytes.toString('latin1', 0, 4) === 'OggS' && bytes.includes('OpusHead')],
    ['aac', (bytes: Buffer) => bytes[0] === 0xff && (bytes[1] & 0xf6) === 0xf0],
    ['flac', (bytes: Buffer) => bytes.toString('latin1', 0, 4) === 'fLaC'],
    ['wav', (bytes: Buffer) => bytes.toString('latin1', 0, 4) === 'RIFF' && bytes.toString('latin1', 8, 12) === 'WAVE'],
  ] as const)('returns real %s bytes with its content type', async (format, looksRight) => {
    const { bytes, contentType } = await speechBytes(format);
    expect(contentType).toBe(speechContentTypes[format]);
    expect(bytes.length).toBeGreaterThan(1000);
    expect(looksRight(bytes)).toBe(true);
  });

  it('makes pcm 24 kHz 16-bit audio whose length follows the text and the speed', async () => {
    const short = (await speechBytes('pcm', 'x'.repeat(20))).bytes;
    const long = (await speechBytes('pcm', 'x'.repeat(80))).bytes;
    const fast = (await speechBytes('pcm', 'x'.repeat(80), 2)).bytes;

    const seconds = (bytes: Buffer) => bytes.length / 2 / 24_000;
    expect(seconds(short)).toBeCloseTo(20 * 0.065, 2);
    expect(seconds(long) / seconds(short)).toBeCloseTo(4, 1);
    expect(seconds(fast) / seconds(long)).toBeCloseTo(0.5, 1);
  });

  it('makes pcm that sounds like speech: loud while talking, quiet in the pauses', async () => {
    const { bytes } = await speechBytes('pcm', 'hello there,     how are you');
    const samples = new Int16Array(bytes.buffer, bytes.byteOffset, bytes.length / 2);
    const rms = (from: number, to: number) => {
      let sum = 0;
      for (let index = from; index < to; index++) sum += samples[index] ** 2;
      return Math.sqrt(sum / (to - from));
    };
    const perCharacter = 0.065 * 24_000;
    const talking = rms(0, 5 * perCharacter);
    const pause = rms(13 * perCharacter, 16 * perCharacter);
    expect(talking).toBeGreaterThan(1500);
    expect(pause).toBeLessThan(talking / 5);
  });

  it('writes a wav header that matches the samples that follow', async () => {
    const { bytes } = await speechBytes('wav', 'Hello');
    expect(bytes.readUInt16LE(20)).toBe(1);
    expect(bytes.readUInt16LE(22)).toBe(1);
    expect(bytes.readUInt32LE(24)).toBe(24_000);
    expect(bytes.readUInt16LE(34)).toBe(16);
    expect(bytes.readUInt32LE(40)).toBe(bytes.length - 44);
  });

  it.each([
    [{ voice: 'robot' }, 'voice'],
    [{ response_format: 'ogg' }, 'response_format'],
    [{ input: '' }, 'input'],
    [{ input: 'a'.repeat(4097) }, 'input'],
    [{ speed: 5 }, 'speed'],
  ])('rejects %o with a 400 naming the parameter', async (override, param) => {
    const error = await client.audio.speech
      .create({ model: 'tts-1', voice: 'alloy', input: 'Hello', ...(override as object) })
      .catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(BadRequestError);
    expect((error as BadRequestError).param).toBe(param);
  });

  it('streams the body over time: headers and first bytes after the delay, the rest at the realtime factor', async () => {
    fake.setProfile({ ...latencyProfiles.zero, ttsFirstByteMs: 100, ttsRealtimeFactor: 4 });
    const started = performance.now();
    // 20 characters ≈ 1.3 s of audio ≈ 325 ms to send at 4× real time.
    const response = await client.audio.speech.create({ model: 'tts-1', voice: 'alloy', input: 'x'.repeat(20), response_format: 'pcm' });
    const headersAt = performance.now() - started;
    const arrivals: number[] = [];
    for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
      if (chunk.length) arrivals.push(performance.now() - started);
    }
    expect(headersAt).toBeGreaterThanOrEqual(90);
    expect(arrivals.length).toBeGreaterThan(5);
    expect(arrivals.at(-1)! - arrivals[0]).toBeGreaterThan(200);
  });
});

describe('audio transcriptions', () => {
  it('parses the multipart upload and answers with what the test says was heard', async () => {
    fake.setTranscribe((request) => `heard ${request.audio.length} bytes of ${request.filename} in ${request.language}`);
    const result = await client.audio.transcriptions.create({
      file: await toFile(new Uint8Array(1234), 'caller.wav'),
      model: 'gpt-4o-mini-transcribe',
      language: 'ro',
    });
    expect(result.text).toBe('heard 1234 bytes of caller.wav in ro');
    expect(fake.requests[0]).toMatchObject({
      endpoint: 'transcription',
      fields: { model: 'gpt-4o-mini-transcribe', language: 'ro' },
      file: { filename: 'caller.wav', size: 1234 },
    });
  });

  it('says "hello" by default and refuses a request without a file', async () => {
    const result = await client.audio.transcriptions.create({ file: await toFile(new Uint8Array(10), 'a.wav'), model: 'whisper-1' });
    expect(result.text).toBe('hello');

    const form = new FormData();
    form.set('model', 'whisper-1');
    const response = await fetch(`${fake.url}/audio/transcriptions`, { method: 'POST', headers: { authorization: 'Bearer k' }, body: form });
    expect(response.status).toBe(400);
    expect(await response.json()).toMatchObject({ error: { param: 'file', type: 'invalid_request_error' } });
  });
});

describe('authentication and faults', () => {
  it('answers 401 like OpenAI without a bearer token', async () => {
    const response = await fetch(`${fake.url}/chat/completions`, { method: 'POST', body: '{}' });
    expect(response.status).toBe(401);
    expect(await response.json()).toMatchObject({ error: { message: expect.stringContaining('API key'), type: 'invalid_request_error' } });
  });

  it('accepts only the configured key when one is set', async () => {
    const strict = await startFakeOpenAI({ apiKey: 'sk-right' });
    try {
      const wrong = new OpenAI({ apiKey: 'sk-wrong', baseURL: strict.url, maxRetries: 0 });
      await expect(wrong.models.list()).rejects.toBeInstanceOf(AuthenticationError);
      const right = new OpenAI({ apiKey: 'sk-right', baseURL: strict.url, maxRetries: 0 });
      expect((await right.models.list()).data.length).toBeGreaterThan(0);
    } finally {
      await strict.close();
    }
  });

  it('answers 404 for unknown paths', async () => {
    const response = await fetch(`${fake.url}/moderations`, { method: 'POST', headers: { authorization: 'Bearer k' } });
    expect(response.status).toBe(404);
  });

  it('injects an HTTP error with retry-after for the next requests only', async () => {
    fake.failNext('speech', { status: 429, retryAfterSeconds: 3 }, 2);
    const call = () => fetch(`${fake.url}/audio/speech`, {
      method: 'POST',
      headers: { authorization: 'Bearer k', 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'tts-1', voice: 'alloy', input: 'hi', response_format: 'pcm' }),
    });
    const first = await call();
    expect(first.status).toBe(429);
    expect(first.headers.get('retry-after')).toBe('3');
    expect(await first.json()).toMatchObject({ error: { code: 'rate_limit_exceeded' } });
    expect((await call()).status).toBe(429);
    expect((await call()).status).toBe(200);
  });

  it('drops the connection for "refuse" and sends an HTML page for "garbage"', async () => {
    const call = () => fetch(`${fake.url}/chat/completions`, {
      method: 'POST',
      headers: { authorization: 'Bearer k', 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'hi' }] }),
    });
    fake.failNext('chat', 'refuse');
    await expect(call()).rejects.toThrow();
    fake.failNext('chat', 'garbage');
    const garbage = await call();
    expect(garbage.status).toBe(200);
    expect(garbage.headers.get('content-type')).toMatch(/^text\/html/);
    await expect(garbage.clone().json()).rejects.toThrow();
  });

  it('holds the answer back for stallMs', async () => {
    fake.failNext('transcription', { stallMs: 150 });
    const started = performance.now();
    await client.audio.transcriptions.create({ file: await toFile(new Uint8Array(10), 'a.wav'), model: 'whisper-1' });
    expect(performance.now() - started).toBeGreaterThanOrEqual(140);
  });

  it('cuts a stream mid-way, and close() ends a stalled one', async () => {
    fake.setRespond(() => ({ cutAfterChars: 10, text: 'This sentence will never be finished.' }));
    let received = '';
    await expect((async () => {
      for await (const chunk of await client.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'hi' }], stream: true })) {
        received += chunk.choices[0]?.delta.content ?? '';
      }
    })()).rejects.toThrow();
    expect(received.length).toBeGreaterThanOrEqual(10);
    expect(received.length).toBeLessThan(20);

    fake.setRespond(() => ({ stallAfterChars: 5, text: 'Hello there, caller.' }));
    const stream = await client.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'hi' }], stream: true });
    const iterator = stream[Symbol.asyncIterator]();
    expect((await iterator.next()).done).toBe(false);
    const pending = (async () => {
      while (!(await iterator.next()).done);
    })();
    await new Promise((resolve) => setTimeout(resolve, 50));
    const closing = performance.now();
    await fake.close();
    await pending.catch(() => undefined);
    expect(performance.now() - closing).toBeLessThan(1_000);
  });
});

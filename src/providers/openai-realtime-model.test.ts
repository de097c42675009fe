import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { decodeMulaw, encodeMulaw } from '../audio/mulaw.js';
import type { FakeConnectionFault } from '../testing/fake-faults.js';
import { latencyProfiles, startFakeOpenAI, type FakeOpenAI } from '../testing/fake-openai-server.js';
import { createOpenAIClient } from './openai-client.js';
import { OpenAIRealtimeModel, type OpenAIRealtimeModelOptions } from './openai-realtime-model.js';
import { isAbortError, ProviderError } from './provider-error.js';
import type { RealtimeConnectOptions, RealtimeEvent, RealtimeSession } from './realtime-model.js';

let fake: FakeOpenAI;
const open: RealtimeSession[] = [];

beforeEach(async () => {
  fake = await startFakeOpenAI();
});

afterEach(async () => {
  await Promise.all(open.splice(0).map((session) => session.close()));
  await fake.close();
});

function realtimeModel(options: Partial<OpenAIRealtimeModelOptions> & { apiKey?: string; baseURL?: string } = {}) {
  const client = createOpenAIClient({
    apiKey: options.apiKey ?? 'sk-test',
    baseURL: options.baseURL ?? fake.url,
    timeoutMs: 5_000,
    maxRetries: 0,
    logLevel: 'off',
  });
  return new OpenAIRealtimeModel({ client, ...options });
}

const endCall = {
  name: 'end_call',
  description: 'Hang up once the caller is done',
  parameters: { type: 'object', properties: { message: { type: 'string' } }, required: ['message'] },
};

const connectOptions: RealtimeConnectOptions = {
  model: 'gpt-realtime',
  voice: 'marin',
  instructions: 'You are the receptionist of a small restaurant.',
  tools: [endCall],
};

/** A connected session, its server side, and a reader of its events. */
async function connect(options: Partial<RealtimeConnectOptions> = {}, modelOptions: Partial<OpenAIRealtimeModelOptions> = {}) {
  const session = await realtimeModel(modelOptions).connect({ ...connectOptions, ...options });
  open.push(session);
  const server = await fake.realtime.waitForSession(fake.realtime.sessions.length - 1);
  return { session, server, events: reader(session.events) };
}

/** Reads events in order: `until` returns everything up to and including the first event of `type`. */
function reader(events: AsyncIterable<RealtimeEvent>) {
  const iterator = events[Symbol.asyncIterator]();
  const seen: RealtimeEvent[] = [];
  return {
    seen,
    async until<T extends RealtimeEvent['type']>(type: T): Promise<RealtimeEvent[]> {
      const read: RealtimeEvent[] = [];
      for (;;) {
        const next = await iterator.next();
        if (next.done) throw new Error(`events ended before ${type}; read ${read.map((event) => event.type).join(', ')}`);
        read.push(next.value);
        seen.push(next.value);
        if (next.value.type === type) return read;
      }
    },
    /** Everything left, once the events end. */
    async rest(): Promise<RealtimeEvent[]> {
      const read: RealtimeEvent[] = [];
      for (let next = await iterator.next(); !next.done; next = await iterator.next()) read.push(next.value);
      seen.push(...read);
      return read;
    },
  };
}

function ofType<T extends RealtimeEvent['type']>(events: RealtimeEvent[], type: T): Extract<RealtimeEvent, { type: T }>[] {
  return events.filter((event): event is Extract<RealtimeEvent, { type: T }> => event.type === type);
}

/** μ-law at 8 kHz: a loud tone (a caller talking), or digital silence. */
function tone(ms: number): Uint8Array {
  const samples = new Int16Array(ms * 8).map((_, index) => Math.round(8000 * Math.sin((2 * Math.PI * 220 * index) / 8000)));
  return encodeMulaw(samples);
}

function silence(ms: number): Uint8Array {
  return new Uint8Array(ms * 8).fill(0xff);
}

async function caught(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected a failure');
}

/** Audio paced at real time, so a test can act while a reply is still streaming. */
const realTime = { ...latencyProfiles.zero, ttsRealtimeFactor: 1 };

describe('OpenAIRealtimeModel: session', () => {
  it('configures the GA session for μ-law both ways, server VAD, caller transcript and tools', async () => {
    const { server } = await connect({ language: 'ro', turnDetection: { silenceMs: 700, threshold: 0.6 } });

    expect(server.model).toBe('gpt-realtime');
    expect(server.headers.authorization).toBe('Bearer sk-test');
    // The GA API answers the beta's `OpenAI-Beta: realtime=v1` with the beta protocol.
    expect(server.headers['openai-beta']).toBeUndefined();
    expect(fake.requests.at(-1)).toMatchObject({ endpoint: 'realtime', path: '/v1/realtime', status: 101 });

    const update = server.received[0];
    expect(update.type).toBe('session.update');
    expect(update.session).toEqual({
      type: 'realtime',
      instructions: connectOptions.instructions,
      output_modalities: ['audio'],
      audio: {
        input: {
          format: { type: 'audio/pcmu' },
          transcription: { model: 'gpt-4o-mini-transcribe', language: 'ro' },
          turn_detection: { type: 'server_vad', create_response: true, interrupt_response: true, silence_duration_ms: 700, threshold: 0.6 },
        },
        output: { format: { type: 'audio/pcmu' }, voice: 'marin' },
      },
      tools: [{ type: 'function', ...endCall }],
      tool_choice: 'auto',
    });
    expect(server.config.audio?.output?.format).toEqual({ type: 'audio/pcmu' });
  });

  it('leaves the caller transcript off when its model is null, and uses the provider VAD defaults', async () => {
    const { server } = await connect({}, { transcriptionModel: null });
    const input = (server.received[0].session as { audio: { input: Record<string, unknown> } }).audio.input;
    expect(input).not.toHaveProperty('transcription');
    expect(input.turn_detection).toEqual({ type: 'server_vad', create_response: true, interrupt_response: true });
  });

  it('appends the caller audio untouched, as base64 μ-law', async () => {
    const { session, server } = await connect();
    const first = tone(40);
    const second = silence(20).subarray(5, 125);
    session.appendAudio(first);
    session.appendAudio(second);
    await server.waitFor('input_audio_buffer.append', 2);
    expect(server.inputAudio()).toEqual(new Uint8Array([...first, ...second]));
  });
});

describe('OpenAIRealtimeModel: conversation', () => {
  it('runs a caller turn: speech events, the transcript, the reply as μ-law audio and text, then usage', async () => {
    fake.setTranscribe(() => 'Do you open on Sundays?');
    fake.queueChatReplies({ text: 'Yes, from ten until four.' });
    const { session, events } = await connect();
    session.appendAudio(tone(600));
    session.appendAudio(silence(800));

    const turn = await events.until('reply-completed');
    const types = turn.map((event) => event.type);
    expect(types.slice(0, 3)).toEqual(['speech-started', 'speech-stopped', 'caller-transcript-completed']);
    expect(ofType(turn, 'caller-transcript-completed')[0].text).toBe('Do you open on Sundays?');

    const text = ofType(turn, 'reply-text-delta');
    const audio = ofType(turn, 'reply-audio-delta');
    expect(text.map((event) => event.text).join('')).toBe('Yes, from ten until four.');
    expect(audio.length).toBeGreaterThan(5);
    const itemIds = new Set([...text, ...audio].map((event) => event.itemId));
    expect(itemIds.size).toBe(1);

    // 25 characters at 65 ms each, one byte a sample at 8 kHz: speech, not silence.
    const bytes = new Uint8Array(audio.flatMap((event) => [...event.audio]));
    expect(bytes.length).toBeCloseTo(25 * 0.065 * 8000, -2);
    const samples = decodeMulaw(bytes);
    const rms = Math.sqrt(samples.reduce((sum, sample) => sum + sample * sample, 0) / samples.length);
    expect(rms).toBeGreaterThan(500);

    expect(turn.at(-1)).toEqual({
      type: 'reply-completed',
      status: 'completed',
      usage: {
        inputTokens: expect.any(Number),
        outputTokens: expect.any(Number),
        inputAudioTokens: expect.any(Number),
        outputAudioTokens: expect.any(Number),
        cachedInputTokens: 0,
      },
    });
    const usage = ofType(turn, 'reply-completed')[0].usage!;
    expect(usage.outputAudioTokens).toBeGreaterThan(0);
    expect(usage.outputTokens).toBeGreaterThan(usage.outputAudioTokens);
  });

  it('greets first and takes text as the caller: createReply, sendText', async () => {
    const { session, server, events } = await connect();
    session.createReply();
    const greeting = await events.until('reply-completed');
    expect(ofType(greeting, 'reply-text-delta').map((event) => event.text).join('')).toMatch(/how can I help/i);

    session.sendText('The caller pressed 3', { respond: true });
    const answer = await events.until('reply-completed');
    expect(ofType(answer, 'reply-text-delta').map((event) => event.text).join('')).toContain('The caller pressed 3');
    expect(server.items.find((item) => item.type === 'message' && item.role === 'user')).toMatchObject({ text: 'The caller pressed 3' });

    session.sendText('a note for later', { respond: false });
    await server.waitFor('conversation.item.create', 2);
    expect(server.received.filter((event) => event.type === 'response.create')).toHaveLength(2);
  });

  it('round-trips a tool call, asking for the follow-up only once the reply that called it is done', async () => {
    // 20 tokens a second leaves 50 ms between the call and the end of its reply.
    fake.setProfile({ ...latencyProfiles.zero, chatTokensPerSecond: 20 });
    fake.queueChatReplies(
      { text: 'One moment.', toolCalls: [{ name: 'book_table', arguments: { people: 4, time: '19:30' } }] },
      { text: 'Booked, see you at half past seven.' },
    );
    const { session, server, events } = await connect();
    session.sendText('A table for four at 19:30, please', { respond: true });

    const called = ofType(await events.until('tool-called'), 'tool-called')[0];
    expect(called).toEqual({ type: 'tool-called', callId: expect.stringMatching(/^call_/), name: 'book_table', arguments: '{"people":4,"time":"19:30"}' });
    // Answered before the reply that made the call has finished: the follow-up must wait for it.
    session.sendToolResult(called.callId, '{"booked":true}', { respond: true });
    fake.setProfile(latencyProfiles.zero);

    expect(ofType(await events.until('reply-completed'), 'reply-completed')[0].status).toBe('completed');
    const followUp = await events.until('reply-completed');
    expect(ofType(followUp, 'reply-text-delta').map((event) => event.text).join('')).toBe('Booked, see you at half past seven.');
    expect(ofType(events.seen, 'error-reported')).toEqual([]);
    expect(server.items.find((item) => item.type === 'function_call_output')).toMatchObject({ callId: called.callId, output: '{"booked":true}' });
  });

  it('queues a reply asked for while another is in progress instead of failing', async () => {
    const { session, events } = await connect();
    session.sendText('hello', { respond: true });
    session.createReply();
    await events.until('reply-completed');
    const second = await events.until('reply-completed');
    expect(ofType(second, 'reply-completed')[0].status).toBe('completed');
    expect(ofType(events.seen, 'error-reported')).toEqual([]);
  });
});

describe('OpenAIRealtimeModel: interruptions', () => {
  async function replyPlaying() {
    fake.setProfile(realTime);
    fake.queueChatReplies({ text: 'We are open every day from ten in the morning until late at night.' });
    const connected = await connect();
    connected.session.createReply();
    const audio = ofType(await connected.events.until('reply-audio-delta'), 'reply-audio-delta')[0];
    await connected.events.until('reply-audio-delta');
    return { ...connected, itemId: audio.itemId };
  }

  it('on barge-in, truncates the reply where playback stopped; the provider has cancelled it', async () => {
    const { session, server, events, itemId } = await replyPlaying();
    server.startSpeech();
    await events.until('speech-started');
    session.truncateReply(itemId, 150);
    session.cancelReply();

    expect(ofType(await events.until('reply-completed'), 'reply-completed')[0].status).toBe('cancelled');
    await server.waitFor('conversation.item.truncate');
    expect(server.truncations).toEqual([{ itemId, contentIndex: 0, audioEndMs: 150 }]);
    expect(ofType(events.seen, 'error-reported')).toEqual([]);
  });

  it('clamps a truncation to the audio received, and skips items that had none', async () => {
    const { session, server, events, itemId } = await replyPlaying();
    session.cancelReply();
    await events.until('reply-completed');
    const receivedMs = ofType(events.seen, 'reply-audio-delta').reduce((sum, event) => sum + event.audio.length, 0) / 8;
    session.truncateReply('item_never_heard', 500);
    session.truncateReply(itemId, 60_000);
    await server.waitFor('conversation.item.truncate');
    expect(server.received.filter((event) => event.type === 'conversation.item.truncate')).toHaveLength(1);
    expect(server.truncations).toEqual([{ itemId, contentIndex: 0, audioEndMs: receivedMs }]);
    expect(ofType(events.seen, 'error-reported')).toEqual([]);
  });

  it('cancels a reply in progress, and sends nothing when none is', async () => {
    const { session, server, events } = await replyPlaying();
    session.cancelReply();
    expect(ofType(await events.until('reply-completed'), 'reply-completed')[0].status).toBe('cancelled');
    expect(server.cancellations).toEqual([{ responseId: expect.any(String), active: true }]);

    fake.setProfile(latencyProfiles.zero);
    session.cancelReply();
    session.sendText('are you there?', { respond: true });
    await events.until('reply-completed');
    expect(server.cancellations).toHaveLength(1);
    expect(ofType(events.seen, 'error-reported')).toEqual([]);
  });
});

describe('OpenAIRealtimeModel: failures', () => {
  const handshakeCases: [string, FakeConnectionFault, Partial<ProviderError>][] = [
    ['503', { status: 503 }, { code: 'provider_unavailable', retryable: true, status: 503 }],
    ['429 with retry-after', { status: 429, retryAfterSeconds: 2 }, { code: 'provider_rate_limited', retryable: true, retryAfterMs: 2_000 }],
    ['403', { status: 403 }, { code: 'provider_auth', retryable: false, status: 403 }],
    ['a refused connection', 'refuse', { code: 'provider_unavailable', retryable: true }],
    ['a 200 HTML page instead of an upgrade', 'garbage', { code: 'provider_bad_response', retryable: false }],
  ];

  it.each(handshakeCases)('maps a handshake answered with %s to a ProviderError', async (_name, fault, expected) => {
    fake.realtime.failNextConnection(fault);
    const error = await caught(realtimeModel().connect(connectOptions));
    expect(error).toBeInstanceOf(ProviderError);
    expect(error).toMatchObject(expected);
  });

  it('maps a wrong API key to provider_auth', async () => {
    await fake.close();
    fake = await startFakeOpenAI({ apiKey: 'sk-right' });
    const error = await caught(realtimeModel({ apiKey: 'sk-wrong' }).connect(connectOptions));
    expect(error).toMatchObject({ code: 'provider_auth', status: 401, message: expect.stringContaining('Incorrect API key') });
  });

  it('maps a refused TCP connection to provider_unavailable', async () => {
    const gone = fake.url;
    await fake.close();
    fake = await startFakeOpenAI();
    const error = await caught(realtimeModel({ baseURL: gone }).connect(connectOptions));
    expect(error).toMatchObject({ code: 'provider_unavailable', retryable: true });
  });

  it('times out a session that is not ready in time', async () => {
    fake.realtime.failNextConnection({ stallMs: 1_000 });
    const error = await caught(realtimeModel({ connectTimeoutMs: 100 }).connect(connectOptions));
    expect(error).toMatchObject({ code: 'provider_timeout', retryable: true });
  });

  it('rejects the connect when the provider refuses the session settings', async () => {
    const error = await caught(realtimeModel().connect({ ...connectOptions, tools: [{ ...endCall, name: 'end call' }] }));
    expect(error).toMatchObject({ code: 'provider_bad_response', retryable: false, message: expect.stringContaining('session.tools[0].name') });
  });

  it('ends with session-failed when the connection drops mid-reply', async () => {
    fake.queueChatReplies({ cutAfterChars: 12, text: 'This sentence will never be finished.' });
    const { session, events } = await connect();
    session.createReply();
    const rest = await events.rest();
    const text = ofType(rest, 'reply-text-delta').map((event) => event.text).join('');
    expect(text.length).toBeGreaterThanOrEqual(12);
    expect(text.length).toBeLessThan(20);
    expect(rest.at(-1)).toMatchObject({ type: 'session-failed', error: { code: 'provider_unavailable', retryable: true } });
    expect(ofType(rest, 'session-failed')).toHaveLength(1);
  });

  it('reports how the provider closed the session, with its last error', async () => {
    const { server, events } = await connect();
    server.sendError({ type: 'invalid_request_error', code: 'session_expired', message: 'Your session hit the maximum duration of 60 minutes.' });
    server.close(1011, 'session over');
    const rest = await events.rest();
    expect(rest.map((event) => event.type)).toEqual(['error-reported', 'session-failed']);
    expect(rest[1]).toMatchObject({ error: { code: 'provider_unavailable', message: expect.stringMatching(/1011: session over.*60 minutes/) } });
  });

  it('reports a recoverable error event and carries on', async () => {
    const { session, server, events } = await connect();
    server.sendError({ type: 'server_error', code: 'server_error', message: 'The server had an error while processing your request.' });
    server.send({ type: 'response.output_audio.delta', item_id: 'item_1' });
    const reported = ofType(await events.until('error-reported'), 'error-reported');
    expect(reported[0].error).toMatchObject({ code: 'provider_unavailable', retryable: true });
    expect(ofType(await events.until('error-reported'), 'error-reported')[0].error.code).toBe('provider_bad_response');

    session.sendText('still there?', { respond: true });
    expect(ofType(await events.until('reply-completed'), 'reply-completed')[0].status).toBe('completed');
  });

  it('reports a failed reply with the reason as a ProviderError', async () => {
    fake.queueChatReplies({ error: { status: 500, message: 'The model crashed' } });
    const { session, events } = await connect();
    session.createReply();
    const completed = ofType(await events.until('reply-completed'), 'reply-completed')[0];
    expect(completed).toMatchObject({ status: 'failed', error: { code: 'provider_unavailable', message: expect.stringContaining('The model crashed') } });
  });

  it('fails a reply that stalls mid-way instead of leaving the caller in silence', async () => {
    fake.queueChatReplies({ stallAfterChars: 5, text: 'Hello there, caller.' });
    const { session, server, events } = await connect({}, { idleTimeoutMs: 100 });
    session.createReply();
    const rest = await events.rest();
    expect(rest.at(-1)).toMatchObject({ type: 'session-failed', error: { code: 'provider_timeout' } });
    expect(await server.closed).toBe(1006);
  });

  it('accepts the beta names of the reply events', async () => {
    const { server, events } = await connect();
    server.send({ type: 'response.output_item.added', item: { id: 'item_fc', type: 'function_call', name: 'end_call' } });
    server.send({ type: 'response.audio.delta', item_id: 'item_a', content_index: 0, delta: Buffer.from([1, 2, 3]).toString('base64') });
    server.send({ type: 'response.audio_transcript.delta', item_id: 'item_a', delta: 'Bye' });
    server.send({ type: 'response.function_call_arguments.done', item_id: 'item_fc', call_id: 'call_1', arguments: '{}' });
    const read = await events.until('tool-called');
    expect(read).toEqual([
      { type: 'reply-audio-delta', itemId: 'item_a', audio: new Uint8Array([1, 2, 3]) },
      { type: 'reply-text-delta', itemId: 'item_a', text: 'Bye' },
      { type: 'tool-called', callId: 'call_1', name: 'end_call', arguments: '{}' },
    ]);
  });
});

describe('OpenAIRealtimeModel: ending', () => {
  it('rejects with an abort error when aborted while connecting', async () => {
    fake.realtime.failNextConnection({ stallMs: 1_000 });
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 30);
    const error = await caught(realtimeModel().connect({ ...connectOptions, abortSignal: controller.signal }));
    expect(isAbortError(error)).toBe(true);
  });

  it('does not dial at all with an aborted signal', async () => {
    const error = await caught(realtimeModel().connect({ ...connectOptions, abortSignal: AbortSignal.abort() }));
    expect(isAbortError(error)).toBe(true);
    expect(fake.requests).toEqual([]);
  });

  it('closes quietly when aborted mid-call: the events just end', async () => {
    fake.setProfile(realTime);
    const controller = new AbortController();
    const { session, server, events } = await connect({ abortSignal: controller.signal });
    session.createReply();
    await events.until('reply-audio-delta');
    controller.abort();
    expect(ofType(await events.rest(), 'session-failed')).toEqual([]);
    expect(await server.closed).toBe(1000);
  });

  it('close() ends the events and the connection; later calls do nothing', async () => {
    const { session, server, events } = await connect();
    await session.close();
    expect(await events.rest()).toEqual([]);
    expect(await server.closed).toBe(1000);
    session.appendAudio(tone(20));
    session.createReply();
    await session.close();
    expect(server.received.map((event) => event.type)).toEqual(['session.update']);
  });

  it('leaving the event loop closes the session', async () => {
    const { session, server } = await connect();
    session.createReply();
    for await (const event of session.events) {
      if (event.type === 'reply-audio-delta') break;
    }
    expect(await server.closed).toBe(1000);
  });
});

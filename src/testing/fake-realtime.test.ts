import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { decodeMulaw, encodeMulaw } from '../audio/mulaw.js';
import { latencyProfiles, startFakeOpenAI, type FakeOpenAI, type FakeTranscriptionRequest } from './fake-openai-server.js';

let fake: FakeOpenAI;
const clients: WebSocket[] = [];

beforeEach(async () => {
  fake = await startFakeOpenAI();
});

afterEach(async () => {
  for (const socket of clients.splice(0)) socket.terminate();
  await fake.close();
});

type ServerEvent = { type: string; [key: string]: any };

/** A bare WebSocket client that keeps every server event and can wait for the next of a type. */
async function dial(options: { key?: string | null; path?: string } = {}) {
  const url = `${fake.url.replace('http:', 'ws:')}${options.path ?? '/realtime?model=gpt-realtime'}`;
  const headers: Record<string, string> = options.key === null ? {} : { authorization: `Bearer ${options.key ?? 'sk-test'}` };
  const socket = new WebSocket(url, { headers });
  clients.push(socket);
  const events: ServerEvent[] = [];
  let read = 0;
  let wake: (() => void) | undefined;
  socket.on('message', (data) => {
    events.push(JSON.parse(data.toString()) as ServerEvent);
    wake?.();
  });
  const closed = new Promise<number>((resolve) => socket.once('close', resolve));
  await new Promise<void>((resolve, reject) => {
    socket.once('open', resolve);
    socket.once('error', reject);
  });
  return {
    socket,
    events,
    closed,
    send: (event: Record<string, unknown>) => socket.send(JSON.stringify(event)),
    /** The next event of `type` after the last one returned; every event read on the way is skipped. */
    async next(type: string): Promise<ServerEvent> {
      for (;;) {
        while (read < events.length) {
          const event = events[read++];
          if (event.type === type) return event;
        }
        await new Promise<void>((resolve) => {
          wake = resolve;
        });
      }
    },
  };
}

/** The HTTP answer to an upgrade that was refused. */
async function refusal(headers: Record<string, string>, path = '/realtime?model=gpt-realtime'): Promise<{ status: number; body: string }> {
  const socket = new WebSocket(`${fake.url.replace('http:', 'ws:')}${path}`, { headers });
  return new Promise((resolve, reject) => {
    socket.on('unexpected-response', (_request, response) => {
      let body = '';
      response.on('data', (chunk) => (body += chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, body }));
    });
    socket.on('open', () => reject(new Error('upgraded')));
    socket.on('error', () => undefined);
  });
}

const gaSession = {
  type: 'realtime',
  instructions: 'You are a receptionist.',
  audio: {
    input: {
      format: { type: 'audio/pcmu' },
      transcription: { model: 'gpt-4o-mini-transcribe', language: 'en' },
      turn_detection: { type: 'server_vad', silence_duration_ms: 400 },
    },
    output: { format: { type: 'audio/pcmu' }, voice: 'marin' },
  },
  tools: [{ type: 'function', name: 'end_call', description: 'Hang up', parameters: { type: 'object', properties: { message: { type: 'string' } } } }],
};

async function configured(session: Record<string, unknown> = gaSession) {
  const client = await dial();
  client.send({ type: 'session.update', session });
  await client.next('session.updated');
  const server = await fake.realtime.waitForSession(fake.realtime.sessions.length - 1);
  return { client, server };
}

function tone(ms: number): Buffer {
  const samples = new Int16Array(ms * 8).map((_, index) => Math.round(8000 * Math.sin((2 * Math.PI * 220 * index) / 8000)));
  return Buffer.from(encodeMulaw(samples));
}

const silence = (ms: number) => Buffer.alloc(ms * 8, 0xff);
const append = (audio: Buffer) => ({ type: 'input_audio_buffer.append', audio: audio.toString('base64') });

describe('fake realtime: connecting', () => {
  it('refuses a missing or wrong key like the HTTP API, unknown paths, and a missing model', async () => {
    expect(await refusal({})).toMatchObject({ status: 401, body: expect.stringContaining("didn't provide an API key") });
    await fake.close();
    fake = await startFakeOpenAI({ apiKey: 'sk-right' });
    const wrong = await refusal({ authorization: 'Bearer sk-wrong' });
    expect(wrong.status).toBe(401);
    expect(JSON.parse(wrong.body)).toMatchObject({ error: { code: 'invalid_api_key', type: 'invalid_request_error' } });
    expect((await refusal({ authorization: 'Bearer sk-right' }, '/chat/completions')).status).toBe(404);
    expect((await refusal({ authorization: 'Bearer sk-right' }, '/realtime')).status).toBe(400);
    expect(fake.requests.map((request) => [request.endpoint, request.status])).toEqual([
      ['realtime', 401], ['unknown', 404], ['realtime', 400],
    ]);
  });

  it('says session.created, applies a GA session.update and answers with the effective config', async () => {
    const client = await dial();
    expect((await client.next('session.created')).session).toMatchObject({ type: 'realtime', model: 'gpt-realtime', object: 'realtime.session' });
    client.send({ type: 'session.update', session: gaSession });
    const updated = await client.next('session.updated');
    expect(updated.session.audio.input).toMatchObject({ format: { type: 'audio/pcmu' }, turn_detection: { type: 'server_vad', silence_duration_ms: 400 } });
    expect(updated.session.audio.output).toMatchObject({ format: { type: 'audio/pcmu' }, voice: 'marin' });
    const server = await fake.realtime.waitForSession();
    expect(server.config.instructions).toBe('You are a receptionist.');
    expect(server.headers.authorization).toBe('Bearer sk-test');
  });

  it.each([
    ['the beta flat fields', { type: 'realtime', input_audio_format: 'g711_ulaw' }, "Unknown parameter: 'session.input_audio_format'."],
    ['no session type', { instructions: 'hi' }, "Missing required parameter: 'session.type'."],
    ['the beta format name', { type: 'realtime', audio: { input: { format: { type: 'g711_ulaw' } } } }, "Invalid value: 'g711_ulaw'"],
    ['a tool name with a space', { type: 'realtime', tools: [{ type: 'function', name: 'end call' }] }, "session.tools[0].name"],
  ])('refuses %s with an error event, as the GA API does', async (_name, session, message) => {
    const client = await dial();
    client.send({ type: 'session.update', session, event_id: 'evt_1' });
    const error = await client.next('error');
    expect(error.error).toMatchObject({ type: 'invalid_request_error', message: expect.stringContaining(message), event_id: 'evt_1' });
    expect(client.events.some((event) => event.type === 'session.updated')).toBe(false);
  });

  it('fails connections on demand: an HTTP error, a dropped socket, a stall', async () => {
    fake.realtime.failNextConnection({ status: 503, retryAfterSeconds: 4 });
    expect(await refusal({ authorization: 'Bearer k' })).toMatchObject({ status: 503, body: expect.stringContaining('server_error') });
    fake.realtime.failNextConnection('refuse');
    await expect(dial()).rejects.toThrow();
    fake.realtime.failNextConnection({ stallMs: 120 });
    const started = performance.now();
    await dial();
    expect(performance.now() - started).toBeGreaterThanOrEqual(100);
  });
});

describe('fake realtime: a caller turn', () => {
  it('hears speech with its energy VAD, transcribes the turn, and answers with μ-law audio and a transcript', async () => {
    const heard: FakeTranscriptionRequest[] = [];
    fake.setTranscribe((request) => {
      heard.push(request);
      return 'Do you open on Sundays?';
    });
    const { client, server } = await configured();
    client.send(append(silence(200)));
    client.send(append(tone(600)));
    client.send(append(silence(500)));

    const started = await client.next('input_audio_buffer.speech_started');
    expect(started.audio_start_ms).toBe(200);
    const stopped = await client.next('input_audio_buffer.speech_stopped');
    expect(stopped).toMatchObject({ item_id: started.item_id });
    // Speech stops once `silence_duration_ms` (400) of silence follows it.
    expect(stopped.audio_end_ms).toBe(1200);
    expect((await client.next('input_audio_buffer.committed')).item_id).toBe(started.item_id);
    const transcript = await client.next('conversation.item.input_audio_transcription.completed');
    expect(transcript).toMatchObject({ item_id: started.item_id, transcript: 'Do you open on Sundays?' });
    expect(heard[0]).toMatchObject({ model: 'gpt-4o-mini-transcribe', language: 'en', contentType: 'audio/pcmu' });
    expect(heard[0].audio.length).toBe(1200 * 8);

    const done = await client.next('response.done');
    const reply = client.events.filter((event) => event.type === 'response.output_audio_transcript.delta').map((event) => event.delta).join('');
    // The default responder repeats what it heard.
    expect(reply).toContain('Do you open on Sundays?');
    const audio = Buffer.concat(client.events.filter((event) => event.type === 'response.output_audio.delta').map((event) => Buffer.from(event.delta, 'base64')));
    expect(audio.length / 8000).toBeCloseTo(reply.length * 0.065, 1);
    const samples = decodeMulaw(audio);
    expect(Math.sqrt(samples.reduce((sum, sample) => sum + sample * sample, 0) / samples.length)).toBeGreaterThan(500);
    expect(done.response).toMatchObject({
      status: 'completed',
      output: [{ type: 'message', role: 'assistant', status: 'completed', content: [{ type: 'output_audio', transcript: reply }] }],
      usage: { input_tokens: expect.any(Number), output_tokens: expect.any(Number), output_token_details: { audio_tokens: expect.any(Number) } },
    });
    expect(server.items.map((item) => item.type === 'message' && `${item.role}: ${item.text}`)).toEqual([
      'user: Do you open on Sundays?',
      `assistant: ${reply}`,
    ]);
  });

  it('hears nothing in silence, and can be told when the caller speaks', async () => {
    const { client, server } = await configured();
    client.send(append(silence(2000)));
    await server.waitFor('input_audio_buffer.append');
    expect(client.events.some((event) => event.type === 'input_audio_buffer.speech_started')).toBe(false);

    server.startSpeech();
    await server.stopSpeech('I would like to book a table');
    expect((await client.next('conversation.item.input_audio_transcription.completed')).transcript).toBe('I would like to book a table');
    await client.next('response.done');
    expect(client.events.map((event) => event.type)).toContain('input_audio_buffer.speech_started');
  });

  it('calls tools, then speaks about their results', async () => {
    fake.queueChatReplies({ toolCalls: [{ name: 'book_table', arguments: { people: 2 } }] });
    const { client, server } = await configured();
    client.send({ type: 'conversation.item.create', item: { type: 'message', role: 'user', content: [{ type: 'input_text', text: 'Table for two' }] } });
    client.send({ type: 'response.create' });

    const call = await client.next('response.function_call_arguments.done');
    expect(call).toMatchObject({ name: 'book_table', arguments: '{"people":2}', call_id: expect.stringMatching(/^call_/) });
    const deltas = client.events.filter((event) => event.type === 'response.function_call_arguments.delta').map((event) => event.delta);
    expect(deltas.join('')).toBe('{"people":2}');
    await client.next('response.done');

    client.send({ type: 'conversation.item.create', item: { type: 'function_call_output', call_id: 'call_unknown', output: '{}' } });
    expect((await client.next('error')).error.message).toContain('call_unknown');
    client.send({ type: 'conversation.item.create', item: { type: 'function_call_output', call_id: call.call_id, output: '{"ok":true}' } });
    client.send({ type: 'response.create' });
    await client.next('response.done');
    const after = client.events.filter((event) => event.type === 'response.output_audio_transcript.delta').map((event) => event.delta).join('');
    expect(after).toMatch(/^Done\./);
    expect(server.items.map((item) => item.type)).toEqual(['message', 'function_call', 'function_call_output', 'message']);
  });

  it('answers in text only when asked to', async () => {
    const { client } = await configured({ type: 'realtime', output_modalities: ['text'] });
    client.send({ type: 'response.create' });
    await client.next('response.done');
    expect(client.events.some((event) => event.type === 'response.output_audio.delta')).toBe(false);
    expect(client.events.filter((event) => event.type === 'response.output_text.delta').length).toBeGreaterThan(3);
  });

  it('streams a reply over time at the profile pace', async () => {
    fake.setProfile({ ...latencyProfiles.zero, chatFirstTokenMs: 100, ttsRealtimeFactor: 4 });
    const { client } = await configured();
    const started = performance.now();
    client.send({ type: 'response.create' });
    await client.next('response.output_audio.delta');
    const firstAt = performance.now() - started;
    await client.next('response.done');
    // About 3.4 s of greeting sent at four times real time.
    expect(firstAt).toBeGreaterThanOrEqual(90);
    expect(performance.now() - started - firstAt).toBeGreaterThan(600);
  });
});

describe('fake realtime: interruptions', () => {
  async function speaking() {
    fake.setProfile({ ...latencyProfiles.zero, ttsRealtimeFactor: 1 });
    const session = await configured();
    session.client.send({ type: 'response.create' });
    const first = await session.client.next('response.output_audio.delta');
    return { ...session, itemId: first.item_id as string };
  }

  it('cancels a reply the caller talks over', async () => {
    const { client } = await speaking();
    client.send(append(tone(100)));
    await client.next('input_audio_buffer.speech_started');
    const done = await client.next('response.done');
    expect(done.response).toMatchObject({ status: 'cancelled', status_details: { type: 'cancelled', reason: 'turn_detected' } });
  });

  it('honours and records response.cancel; refuses it with no reply in progress', async () => {
    const { client, server } = await speaking();
    client.send({ type: 'response.cancel' });
    const done = await client.next('response.done');
    expect(done.response).toMatchObject({ status: 'cancelled', status_details: { reason: 'client_cancelled' } });
    const deltasAtCancel = client.events.filter((event) => event.type === 'response.output_audio.delta').length;
    await new Promise((resolve) => setTimeout(resolve, 250));
    expect(client.events.filter((event) => event.type === 'response.output_audio.delta')).toHaveLength(deltasAtCancel);

    client.send({ type: 'response.cancel' });
    expect((await client.next('error')).error.code).toBe('response_cancel_not_active');
    expect(server.cancellations).toEqual([{ responseId: done.response.id, active: true }, { responseId: undefined, active: false }]);
  });

  it('refuses a second reply while one is in progress', async () => {
    const { client } = await speaking();
    client.send({ type: 'response.create' });
    expect((await client.next('error')).error.code).toBe('conversation_already_has_active_response');
  });

  it('honours and records a truncation, forgets the unheard words, and refuses one past the audio sent', async () => {
    const { client, server, itemId } = await speaking();
    client.send({ type: 'response.cancel' });
    await client.next('response.done');
    client.send({ type: 'conversation.item.truncate', item_id: itemId, content_index: 0, audio_end_ms: 60_000 });
    expect((await client.next('error')).error.message).toContain('shorter than 60000ms');
    client.send({ type: 'conversation.item.truncate', item_id: itemId, content_index: 0, audio_end_ms: 50 });
    expect(await client.next('conversation.item.truncated')).toMatchObject({ item_id: itemId, audio_end_ms: 50 });
    expect(server.truncations).toEqual([{ itemId, contentIndex: 0, audioEndMs: 50 }]);
    const assistant = server.items.find((item) => item.id === itemId);
    expect(assistant).toMatchObject({ type: 'message', role: 'assistant', audioMs: 50 });
    expect((assistant as { text: string }).text.length).toBeLessThan(5);
  });
});

describe('fake realtime: failures and records', () => {
  it('records every client event, parsed', async () => {
    const { client, server } = await configured();
    client.send(append(silence(20)));
    client.send({ type: 'input_audio_buffer.clear' });
    await client.next('input_audio_buffer.cleared');
    expect(server.received.map((event) => event.type)).toEqual(['session.update', 'input_audio_buffer.append', 'input_audio_buffer.clear']);
    expect(server.inputAudio()).toEqual(new Uint8Array(silence(20)));
    client.socket.send('not json');
    expect((await client.next('error')).error.code).toBe('invalid_json');
  });

  it('cuts the connection mid-reply, or goes silent, as the queued reply says', async () => {
    fake.queueChatReplies({ cutAfterChars: 8, text: 'This sentence is cut short.' }, { stallAfterChars: 4, text: 'Silence follows.' });
    const cut = await configured();
    cut.client.send({ type: 'response.create' });
    expect(await cut.client.closed).toBe(1006);
    const said = cut.client.events.filter((event) => event.type === 'response.output_audio_transcript.delta').map((event) => event.delta).join('');
    expect(said.length).toBeGreaterThanOrEqual(8);
    expect(said.length).toBeLessThan(16);

    const stalled = await configured();
    stalled.client.send({ type: 'response.create' });
    await stalled.client.next('response.output_audio_transcript.delta');
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(stalled.client.events.some((event) => event.type === 'response.done')).toBe(false);
  });

  it('fails a reply as the queued error says', async () => {
    fake.queueChatReplies({ error: { status: 503, message: 'Overloaded' } });
    const { client } = await configured();
    client.send({ type: 'response.create' });
    const done = await client.next('response.done');
    expect(done.response).toMatchObject({ status: 'failed', status_details: { error: { type: 'server_error', message: 'Overloaded' } } });
  });

  it('sends error events, closes with a code, or drops the connection on demand', async () => {
    const first = await configured();
    first.server.sendError({ message: 'Something broke', type: 'server_error' });
    expect((await first.client.next('error')).error).toMatchObject({ type: 'server_error', message: 'Something broke' });
    first.server.close(1011, 'bye');
    expect(await first.client.closed).toBe(1011);
    expect(await first.server.closed).toBe(1011);

    const second = await configured();
    second.server.drop();
    expect(await second.client.closed).toBe(1006);
  });

  it('drops live sessions when the fake closes', async () => {
    const { client } = await configured();
    await fake.close();
    expect(await client.closed).toBe(1006);
  });
});

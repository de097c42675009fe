import { mkdtemp, readFile, writeFile, cp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseWav } from '../src/audio/wav.js';
import { connectMediaStream, StreamRejectedError, type MediaStreamCall } from '../src/simulator/media-stream-simulator.js';
import { startFakeOpenAI, type FakeOpenAI } from '../src/testing/fake-openai-server.js';
import { postSignedWebhook, startTestApp, type TestApp } from '../src/testing/test-app.js';

const streamNumber = '+15550007777';

async function speech(name: string): Promise<Uint8Array> {
  return parseWav(await readFile(path.join('test/fixtures/speech', `${name}.wav`))).data;
}

describe('a call over a Twilio media stream (stream mode)', () => {
  let openai: FakeOpenAI;
  let server: TestApp;
  let callCounter = 0;

  beforeAll(async () => {
    openai = await startFakeOpenAI();
    const profiles = await mkdtemp(path.join(tmpdir(), 'callme-profiles-'));
    await cp('profiles/restaurant.json', path.join(profiles, 'restaurant.json'));
    const stream = JSON.parse(await readFile('profiles/restaurant.json', 'utf8'));
    await writeFile(
      path.join(profiles, 'restaurant-stream.json'),
      JSON.stringify({
        ...stream,
        id: 'restaurant-stream',
        greeting: 'Bella Vista, hello!',
        mode: 'stream',
        phoneNumbers: [streamNumber],
        stream: { endOfSpeechMs: 500, minSpeechMs: 600, silenceRepromptMs: 30000, maxCallSeconds: 120 },
      }),
    );
    server = await startTestApp('pglite', { OPENAI_API_KEY: 'sk-test', OPENAI_BASE_URL: openai.url, PROFILES_DIR: profiles });
    await server.app.services.streams!.prepare();
  }, 30_000);
  afterAll(async () => {
    await server?.close();
    await openai?.close();
  });

  const post = (route: string, params: Record<string, string>) => postSignedWebhook(server, route, params);

  /** Places a call to the stream profile: the incoming webhook, then the stream it asks for. */
  async function placeCall(): Promise<{ callSid: string; streamUrl: string; twiml: string }> {
    callCounter += 1;
    const callSid = 'CA' + String(callCounter).padStart(32, 'a');
    const response = await post('/twilio/incoming', { CallSid: callSid, From: '+15551110000', To: streamNumber, CallStatus: 'ringing' });
    const twiml = await response.text();
    const streamUrl = /<Stream url="([^"]+)"/.exec(twiml)?.[1] ?? '';
    return { callSid, streamUrl, twiml };
  }

  const open = (callSid: string, streamUrl: string) =>
    connectMediaStream({
      url: streamUrl.replace('wss://callme.test', server.baseUrl.replace('http', 'ws')),
      signatureUrl: streamUrl,
      authToken: server.authToken,
      callSid,
    });

  const turns = async (callSid: string) =>
    (await server.db.query<Record<string, unknown>>('SELECT * FROM turns WHERE call_id = $1 ORDER BY turn_id', [callSid])).rows;

  async function waitForTurns(callSid: string, count: number, done = true): Promise<Record<string, unknown>[]> {
    for (let attempt = 0; attempt < 200; attempt += 1) {
      const rows = await turns(callSid);
      if (rows.length >= count && (!done || rows.slice(0, count).every((turn) => turn.status !== 'processing'))) return rows;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    throw new Error(`call ${callSid} did not reach ${count} turns: ${JSON.stringify(await turns(callSid))}`);
  }

  it('answers with <Connect><Stream> carrying a one-time token, and converses: greeting, speech, reply', async () => {
    const { callSid, streamUrl, twiml } = await placeCall();
    expect(twiml).toContain('<Connect action="https://callme.test/twilio/stream-ended" method="POST">');
    expect(streamUrl).toMatch(/^wss:\/\/callme\.test\/twilio\/media\/[A-Za-z0-9_-]{32}$/);
    expect(twiml).toContain(`<Parameter name="callSid" value="${callSid}"/>`);

    const call = await open(callSid, streamUrl);
    // The greeting is played from the phrase cache, frame by frame, followed by its mark.
    await call.waitFor((event) => event.type === 'mark-echoed' && !event.cleared, 15_000);
    expect(call.receivedAudioMs).toBeGreaterThan(500);

    openai.setTranscribe(() => 'I would like to book a table for two people tonight');
    openai.queueChatReplies({ text: 'Of course! What name should I put it under?' });
    await call.say(await speech('book-a-table'), { realtime: false });
    const rows = await waitForTurns(callSid, 2);
    expect(rows[1]).toMatchObject({
      kind: 'speech',
      user_text: 'I would like to book a table for two people tonight',
      assistant_text: 'Of course! What name should I put it under?',
      interrupted: false,
      status: 'completed',
    });
    for (const stage of ['speech_ended_at', 'transcript_final_at', 'llm_first_token_at', 'tts_first_byte_at', 'first_frame_at', 'mark_echoed_at']) {
      expect(rows[1][stage], stage).toBeInstanceOf(Date);
    }
    // The transcription got the utterance as 16 kHz WAV.
    const transcription = openai.requests.filter((request) => request.endpoint === 'transcription').at(-1);
    expect(transcription?.fields).toMatchObject({ model: 'gpt-4o-mini-transcribe' });
    // Bella Vista allows several languages: no language hint, so the model writes what it heard and the call can follow.
    expect(transcription?.fields?.language).toBeUndefined();
    // Both replies (the greeting and the answer) timed their first frame against their speech's arrival.
    const metrics = await (await fetch(`${server.baseUrl}/metrics`)).text();
    const count = Number(/^callme_stream_speech_to_frame_seconds_count (\d+)$/m.exec(metrics)?.[1]);
    const sum = Number(/^callme_stream_speech_to_frame_seconds_sum (\S+)$/m.exec(metrics)?.[1]);
    expect(count).toBeGreaterThanOrEqual(2);
    expect(sum).toBeGreaterThan(0);
    await call.stop();
  }, 40_000);

  it('barge-in: speech over a reply sends clear, stops the reply, and keeps only what was heard', async () => {
    const { callSid, streamUrl } = await placeCall();
    const call = await open(callSid, streamUrl);
    await call.waitFor((event) => event.type === 'mark-echoed' && !event.cleared, 15_000);
    const long = 'We are open from noon until half past ten every day except Monday. The kitchen closes at ten. We have a terrace with twenty tables, heaters in winter, and a children\'s corner with toys and books. Parking is free behind the restaurant.';
    openai.setTranscribe(() => 'When are you open?');
    openai.queueChatReplies({ text: long });
    const greetingMs = call.receivedAudioMs;
    await call.say(await speech('book-a-table'), { realtime: false });
    // Let a second and a half of the reply play, then talk over it.
    for (let waited = 0; call.playedAudioMs < greetingMs + 1500 && waited < 15_000; waited += 20) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    openai.setTranscribe(() => 'Wait, actually, can I change that');
    openai.queueChatReplies({ text: 'Sure, what would you like to change?' });
    await call.say(await speech('wait-actually'), { realtime: true });
    await call.waitFor('playback-cleared', 5000);
    expect(call.clears).toBe(1);
    const rows = await waitForTurns(callSid, 3);
    expect(rows[1], JSON.stringify(rows.map((row) => [row.kind, row.assistant_text, row.error_message, row.interrupted]))).toMatchObject({ interrupted: true });
    expect(rows[1].interrupted_at_ms).toBeGreaterThan(0);
    const heard = String(rows[1].assistant_text);
    expect(heard.length).toBeGreaterThan(0);
    expect(heard.length).toBeLessThan(long.length);
    expect(long.startsWith(heard.replace(/…$/, ''))).toBe(true);
    // The next request to the model sees only the heard part of the interrupted reply.
    const chat = openai.requests.filter((request) => request.endpoint === 'chat').at(-1);
    const messages = (chat?.body?.messages ?? []) as Array<{ role: string; content: string }>;
    expect(messages.map((message) => message.content)).toContain(heard);
    expect(messages.map((message) => message.content)).not.toContain(long);
    expect(rows[2]).toMatchObject({ user_text: 'Wait, actually, can I change that', assistant_text: 'Sure, what would you like to change?' });
    await call.stop();
  }, 60_000);

  it('lets a backchannel ("mhm") pass without interrupting the reply', async () => {
    const { callSid, streamUrl } = await placeCall();
    const call = await open(callSid, streamUrl);
    await call.waitFor((event) => event.type === 'mark-echoed' && !event.cleared, 15_000);
    openai.setTranscribe(() => 'Tell me about the menu');
    openai.queueChatReplies({ text: 'We have wood-fired pizzas, fresh pasta made every morning, and tiramisu for dessert. Vegetarian and gluten-free dishes are on the menu too.' });
    const transcriptionsBefore = openai.requests.filter((request) => request.endpoint === 'transcription').length;
    await call.say(await speech('book-a-table'), { realtime: false });
    await call.waitFor('audio-received', 15_000);
    await new Promise((resolve) => setTimeout(resolve, 600));
    await call.say(await speech('mhm'), { realtime: true });
    const rows = await waitForTurns(callSid, 2);
    expect(call.clears).toBe(0);
    expect(rows[1]).toMatchObject({ interrupted: false, status: 'completed' });
    expect(rows).toHaveLength(2);
    expect(openai.requests.filter((request) => request.endpoint === 'transcription').length).toBe(transcriptionsBefore + 1);
    await call.stop();
  }, 40_000);

  it('passes keypad digits to the assistant', async () => {
    const { callSid, streamUrl } = await placeCall();
    const call = await open(callSid, streamUrl);
    await call.waitFor((event) => event.type === 'mark-echoed' && !event.cleared, 15_000);
    openai.queueChatReplies({ text: 'You pressed four two. How can I help?' });
    call.pressDigit('4');
    call.pressDigit('2');
    call.pressDigit('#');
    const rows = await waitForTurns(callSid, 2);
    expect(rows[1]).toMatchObject({ kind: 'dtmf', user_text: '42', assistant_text: 'You pressed four two. How can I help?' });
    const chat = openai.requests.filter((request) => request.endpoint === 'chat').at(-1);
    expect(JSON.stringify(chat?.body?.messages)).toContain('keyed on the phone keypad: 42');
    await call.stop();
  }, 30_000);

  it('hangs up after the goodbye has played, and the <Connect> action then hangs up the call', async () => {
    const { callSid, streamUrl } = await placeCall();
    const call = await open(callSid, streamUrl);
    await call.waitFor((event) => event.type === 'mark-echoed' && !event.cleared, 15_000);
    openai.setTranscribe(() => "No thanks, that's all. Goodbye");
    openai.queueChatReplies({ text: 'Thank you for calling. Goodbye!', toolCalls: [{ name: 'end_call', arguments: { reason: 'done' } }] });
    await call.say(await speech('no-thanks-goodbye'), { realtime: false });
    const closed = await call.closed;
    expect(closed.code).toBe(1000);
    // Every mark was played before the server closed: the goodbye was heard whole.
    const marks = call.timeline.filter((event) => event.type === 'mark-received').map((event) => ('name' in event ? event.name : ''));
    expect(call.heardMarks).toEqual(marks);
    const rows = await waitForTurns(callSid, 2);
    expect(rows[1]).toMatchObject({ action: 'hangup', assistant_text: 'Thank you for calling. Goodbye!' });
    const after = await post('/twilio/stream-ended', { CallSid: callSid, From: '+15551110000', To: streamNumber, CallStatus: 'in-progress' });
    expect(await after.text()).toContain('<Hangup/>');
  }, 30_000);

  it('answers a model failure mid-call with speech, and the call goes on', async () => {
    const { callSid, streamUrl } = await placeCall();
    const call = await open(callSid, streamUrl);
    await call.waitFor((event) => event.type === 'mark-echoed' && !event.cleared, 15_000);
    openai.setTranscribe(() => 'Do you have parking?');
    openai.failNext('chat', { status: 500 }, 2);
    const before = call.receivedAudioMs;
    await call.say(await speech('book-a-table'), { realtime: false });
    const rows = await waitForTurns(callSid, 2);
    expect(rows[1]).toMatchObject({ status: 'failed', assistant_text: "I'm sorry, I'm having a little trouble right now. Could you say that once more?" });
    expect(call.receivedAudioMs).toBeGreaterThan(before + 1000);
    openai.queueChatReplies({ text: 'Yes, free parking behind the restaurant.' });
    await call.say(await speech('book-a-table'), { realtime: false });
    const later = await waitForTurns(callSid, 3);
    expect(later[2]).toMatchObject({ status: 'completed', assistant_text: 'Yes, free parking behind the restaurant.' });
    await call.stop();
  }, 40_000);

  it('refuses unsigned, wrongly signed, unknown-token and second streams before contacting any provider', async () => {
    const { callSid, streamUrl } = await placeCall();
    const local = streamUrl.replace('wss://callme.test', server.baseUrl.replace('http', 'ws'));
    const requestsBefore = openai.requests.length;
    const refusal = async (promise: Promise<MediaStreamCall>) => {
      const error = await promise.then(() => undefined, (caught: unknown) => caught);
      expect(error).toBeInstanceOf(StreamRejectedError);
      return (error as StreamRejectedError).status;
    };
    expect(await refusal(connectMediaStream({ url: local, signatureUrl: streamUrl, authToken: 'wrong-token', callSid }))).toBe(403);
    expect(await refusal(connectMediaStream({ url: local, signatureUrl: 'wss://callme.test/twilio/media/other', authToken: server.authToken, callSid }))).toBe(403);
    const forged = 'wss://callme.test/twilio/media/' + 'x'.repeat(32);
    expect(await refusal(connectMediaStream({ url: forged.replace('wss://callme.test', server.baseUrl.replace('http', 'ws')), signatureUrl: forged, authToken: server.authToken, callSid }))).toBe(403);
    // The real token still works once, then never again: a second stream for the call is refused.
    const call = await open(callSid, streamUrl);
    expect(await refusal(open(callSid, streamUrl))).toBe(403);
    await call.stop();
    // A stream whose start names another call is closed.
    const other = await placeCall();
    const wrong = await connectMediaStream({
      url: other.streamUrl.replace('wss://callme.test', server.baseUrl.replace('http', 'ws')),
      signatureUrl: other.streamUrl,
      authToken: server.authToken,
      callSid: callSid,
    });
    expect((await wrong.closed).code).toBe(1008);
    expect(openai.requests.slice(requestsBefore).filter((request) => request.endpoint !== 'speech')).toEqual([]);
  }, 30_000);
});

import { mkdtemp, readFile, writeFile, cp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseWav } from '../src/audio/wav.js';
import { connectMediaStream } from '../src/simulator/media-stream-simulator.js';
import { startFakeOpenAI, type FakeOpenAI } from '../src/testing/fake-openai-server.js';
import { postSignedWebhook, startTestApp, type TestApp } from '../src/testing/test-app.js';

const realtimeNumber = '+15550008888';

describe('a call in realtime mode (OpenAI Realtime API, μ-law passed through)', () => {
  let openai: FakeOpenAI;
  let server: TestApp;
  let counter = 0;

  beforeAll(async () => {
    openai = await startFakeOpenAI();
    const profiles = await mkdtemp(path.join(tmpdir(), 'callme-profiles-'));
    await cp('profiles/restaurant.json', path.join(profiles, 'restaurant.json'));
    const base = JSON.parse(await readFile('profiles/restaurant.json', 'utf8'));
    await writeFile(
      path.join(profiles, 'restaurant-realtime.json'),
      JSON.stringify({ ...base, id: 'restaurant-realtime', mode: 'realtime', greeting: 'Bella Vista, hello!', phoneNumbers: [realtimeNumber] }),
    );
    server = await startTestApp('pglite', { OPENAI_API_KEY: 'sk-test', OPENAI_BASE_URL: openai.url, PROFILES_DIR: profiles });
  }, 30_000);
  afterAll(async () => {
    await server?.close();
    await openai?.close();
  });

  const post = (route: string, params: Record<string, string>) => postSignedWebhook(server, route, params);

  async function openCall() {
    counter += 1;
    const callSid = 'CA' + String(counter).padStart(32, 'b');
    const twiml = await (await post('/twilio/incoming', { CallSid: callSid, From: '+15551110000', To: realtimeNumber, CallStatus: 'ringing' })).text();
    const streamUrl = /<Stream url="([^"]+)"/.exec(twiml)?.[1] ?? '';
    const call = await connectMediaStream({
      url: streamUrl.replace('wss://callme.test', server.baseUrl.replace('http', 'ws')),
      signatureUrl: streamUrl,
      authToken: server.authToken,
      callSid,
    });
    return { callSid, call };
  }

  const turns = async (callSid: string) =>
    (await server.db.query<Record<string, unknown>>('SELECT * FROM turns WHERE call_id = $1 ORDER BY turn_id', [callSid])).rows;
  async function waitForTurns(callSid: string, count: number) {
    for (let attempt = 0; attempt < 200; attempt += 1) {
      const rows = await turns(callSid);
      if (rows.length >= count && rows.slice(0, count).every((turn) => turn.status !== 'processing')) return rows;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    throw new Error(`no ${count} turns: ${JSON.stringify(await turns(callSid))}`);
  }

  it('greets, relays μ-law both ways, stores turns, runs save_details, and is interrupted by the caller', async () => {
    const sessionsBefore = openai.realtime.sessions.length;
    openai.queueChatReplies({ text: 'Bella Vista, hello!' });
    const { callSid, call } = await openCall();
    const provider = await openai.realtime.waitForSession(sessionsBefore);
    await call.waitFor((event) => event.type === 'mark-echoed' && !event.cleared, 15_000);
    expect(provider.config.audio?.input?.format).toMatchObject({ type: 'audio/pcmu' });
    expect(provider.config.audio?.output?.format).toMatchObject({ type: 'audio/pcmu' });

    openai.setTranscribe(() => 'My name is Anna');
    openai.queueChatReplies(
      { text: '', toolCalls: [{ name: 'save_details', arguments: { name: 'Anna' } }] },
      { text: 'Thank you, Anna. For which day and time would you like the table, and for how many guests? We have a lovely terrace and a quiet room at the back.' },
    );
    // The caller's audio reaches the provider byte for byte; its own turn detection ends the turn.
    const words = parseWav(await readFile('test/fixtures/speech/my-name-is-anna.wav')).data;
    const greetingMs = call.receivedAudioMs;
    await call.say(words, { realtime: false });
    const sample = Buffer.from(words.subarray(1600, 3200));
    let relayed = false;
    for (let waited = 0; !relayed && waited < 3000; waited += 50) {
      relayed = Buffer.from(provider.inputAudio()).includes(sample);
      if (!relayed) await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect(relayed).toBe(true);
    for (let waited = 0; call.playedAudioMs < greetingMs + 1500 && waited < 15_000; waited += 20) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    // The caller talks over the reply: Twilio's buffer is cleared and the model is told how much was heard.
    await call.say(parseWav(await readFile('test/fixtures/speech/wait-actually.wav')).data, { realtime: true });
    await call.waitFor('playback-cleared', 5000).catch(async (error) => {
      console.log('RECEIVED', provider.received.map((event) => event.type).join(','));
      console.log('TURNS', JSON.stringify((await turns(callSid)).map((row) => [row.kind, row.user_text, row.assistant_text, row.status])));
      console.log('PLAYED', greetingMs, call.receivedAudioMs, call.playedAudioMs);
      throw error;
    });
    await provider.waitFor('conversation.item.truncate');
    expect(provider.truncations.at(-1)?.audioEndMs).toBeGreaterThan(0);

    const rows = await waitForTurns(callSid, 2);
    expect(rows[0]).toMatchObject({ kind: 'greeting', assistant_mode: 'realtime' });
    expect(rows[1]).toMatchObject({ kind: 'speech', user_text: 'My name is Anna', interrupted: true });
    expect(String(rows[1].assistant_text).length).toBeLessThan(100);
    expect(rows[1].tool_calls).toEqual([expect.objectContaining({ name: 'save_details' })]);
    const { rows: calls } = await server.db.query('SELECT details, mode FROM calls WHERE call_id = $1', [callSid]);
    expect(calls[0]).toMatchObject({ details: { name: 'Anna' }, mode: 'realtime' });
    await call.stop();
  }, 40_000);

  it('answers a provider failure mid-call with a spoken apology, then the call carries on over webhooks', async () => {
    const sessionsBefore = openai.realtime.sessions.length;
    openai.queueChatReplies({ text: 'Bella Vista, hello!' });
    const { callSid, call } = await openCall();
    const provider = await openai.realtime.waitForSession(sessionsBefore);
    await call.waitFor((event) => event.type === 'mark-echoed' && !event.cleared, 15_000);
    const before = call.receivedAudioMs;
    provider.drop();
    const closed = await call.closed;
    expect(closed.code).toBe(1000);
    expect(call.receivedAudioMs).toBeGreaterThan(before + 2000);
    const rows = await turns(callSid);
    expect(rows.at(-1)).toMatchObject({ status: 'failed', assistant_text: "I'm sorry, I'm having a little trouble right now. Could you say that once more?" });
    const after = await (await post('/twilio/stream-ended', { CallSid: callSid, From: '+15551110000', To: realtimeNumber })).text();
    expect(after).toContain('<Gather');
    expect(after).not.toContain('<Hangup/>');
  }, 30_000);
});

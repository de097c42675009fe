import { readdir } from 'node:fs/promises';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { simulateCall, type CallerReply, type GatherPrompt } from '../src/simulator/twilio-simulator.js';
import { latencyProfiles, startFakeOpenAI, type FakeOpenAI } from '../src/testing/fake-openai-server.js';
import { startTestApp, type TestApp } from '../src/testing/test-app.js';
import { availableDatabaseKinds } from '../src/testing/test-databases.js';

function scriptedCaller(lines: CallerReply[]) {
  const queue = [...lines];
  const heard: GatherPrompt[] = [];
  return {
    heard,
    caller: async (prompt: GatherPrompt) => {
      heard.push(prompt);
      return queue.length ? queue.shift()! : null;
    },
  };
}

describe.each(await availableDatabaseKinds())('a call with the AI assistant, on %s', (kind) => {
  let openai: FakeOpenAI;
  let server: TestApp;
  beforeAll(async () => {
    openai = await startFakeOpenAI();
    server = await startTestApp(kind, { OPENAI_API_KEY: 'sk-test', OPENAI_BASE_URL: openai.url, MAX_LLM_FAILURES: '2' });
  });
  afterAll(async () => {
    await server?.close();
    await openai?.close();
  });
  beforeEach(() => {
    openai.setRespond(undefined);
  });

  // Each call from its own number: a number seen before is greeted by name (synthesized, not the cached greeting).
  let callers = 0;
  const call = (caller: (prompt: GatherPrompt) => Promise<CallerReply>) =>
    simulateCall({ baseUrl: server.baseUrl, publicUrl: server.publicUrl, authToken: server.authToken, caller, from: `+1500555${String(++callers).padStart(4, '0')}` });

  it('greets, collects the details with save_details, says goodbye with end_call, stores everything and cleans up the audio', async () => {
    openai.queueChatReplies(
      { text: 'Of course! What name, and for how many people?' },
      {
        text: 'Lovely, Anna: a table for four on Friday at seven. Anything else?',
        toolCalls: [{ name: 'save_details', arguments: { name: 'Anna', date: 'Friday', time: '19:00', party_size: 4 } }],
      },
      { text: 'Thank you for calling Bella Vista, see you Friday. Goodbye!', toolCalls: [{ name: 'end_call', arguments: { reason: 'done' } }] },
    );
    const script = scriptedCaller(["I'd like a table on Friday at seven", 'Anna, four people', "No, that's all, bye"]);
    const result = await call(script.caller);

    expect(result.applicationErrors).toEqual([]);
    expect(result.warnings).toEqual([]);
    expect(result.endedBy).toBe('hangup');
    // Every assistant line was played from synthesized 8 kHz μ-law WAV, not read by <Say>.
    const played = result.transcript.filter((line) => line.speaker === 'assistant');
    expect(played.length).toBeGreaterThanOrEqual(4);
    for (const line of played) {
      expect(line.audio?.contentType).toBe('audio/wav');
      expect(line.audio?.bytes).toBeGreaterThan(1000);
      expect(line.audio?.durationMs).toBeGreaterThan(200);
    }
    // The goodbye is played before the hang-up.
    const last = result.events.filter((event) => event.type === 'audio-played' || event.type === 'call-ended').slice(-2);
    expect(last.map((event) => event.type)).toEqual(['audio-played', 'call-ended']);

    // The model saw the conversation so far, loaded from the database.
    const chats = openai.requests.filter((request) => request.endpoint === 'chat');
    const lastMessages = (chats.at(-1)?.body?.messages ?? []) as Array<{ role: string; content: string }>;
    expect(lastMessages[0].role).toBe('system');
    expect(lastMessages.map((message) => message.content)).toEqual(
      expect.arrayContaining([
        "I'd like a table on Friday at seven",
        'Of course! What name, and for how many people?',
        'Anna, four people',
        "No, that's all, bye",
      ]),
    );

    const { rows: calls } = await server.db.query<Record<string, unknown>>('SELECT * FROM calls WHERE call_id = $1', [result.callSid]);
    expect(calls[0]).toMatchObject({
      status: 'completed',
      outcome: 'details-collected',
      details: { name: 'Anna', date: 'Friday', time: '19:00', party_size: 4 },
      audio_retention: 'delete',
    });
    expect(calls[0].audio_deleted_at).toBeInstanceOf(Date);
    const { rows: turns } = await server.db.query<Record<string, unknown>>('SELECT * FROM turns WHERE call_id = $1 ORDER BY turn_id', [result.callSid]);
    expect(turns).toHaveLength(4);
    expect(turns[2]).toMatchObject({
      user_text: 'Anna, four people',
      assistant_text: 'Lovely, Anna: a table for four on Friday at seven. Anything else?',
      status: 'completed',
      action: 'listen',
      assistant_mode: 'llm',
    });
    expect(turns[2].tool_calls).toEqual([expect.objectContaining({ name: 'save_details' })]);
    expect(turns[2].completion_tokens).toBeGreaterThan(0);
    expect(turns[2].tts_characters).toBeGreaterThan(0);
    for (const column of ['received_at', 'llm_first_token_at', 'first_text_at', 'first_audio_at', 'completed_at']) {
      expect(turns[2][column], column).toBeInstanceOf(Date);
    }
    expect(turns[3]).toMatchObject({ action: 'hangup' });

    // AUDIO_RETENTION=delete: the call's own audio is gone from disk and marked deleted; shared phrases stay.
    const { rows: audio } = await server.db.query<Record<string, unknown>>('SELECT * FROM audio_files WHERE call_id = $1', [result.callSid]);
    expect(audio.length).toBeGreaterThan(0);
    for (const file of audio) expect(file.deleted_at).toBeInstanceOf(Date);
    const onDisk = await readdir(server.config.audioDir);
    for (const file of audio) expect(onDisk).not.toContain(file.filename);
    const response = await fetch(`${server.baseUrl}/audio/${audio[0].filename}`);
    expect(response.status).toBe(404);
  });

  it('apologises when the model fails, goes on, and hands the call to the scripted assistant after repeated failures', async () => {
    openai.failNext('chat', { status: 500, message: 'boom' }, 4); // two turns, each tried twice by the client
    const script = scriptedCaller(['a table please', 'a table please', 'Anna']);
    const result = await call(script.caller);
    expect(result.applicationErrors).toEqual([]);
    const said = (prompt: GatherPrompt) => prompt.heard.map((item) => (item.kind === 'say' ? item.text : '')).join(' ');
    // Turn 1: apology (spoken from the cached phrase audio); turn 2: the scripted assistant takes over.
    expect(script.heard[1].heard[0].kind).toBe('play');
    expect(script.heard[2].heard.length).toBeGreaterThan(0);
    const { rows: turns } = await server.db.query<Record<string, unknown>>('SELECT * FROM turns WHERE call_id = $1 ORDER BY turn_id', [result.callSid]);
    expect(turns[1]).toMatchObject({ status: 'failed', assistant_text: "I'm sorry, I'm having a little trouble right now. Could you say that once more?" });
    expect(turns[1].error_code).toMatch(/provider_unavailable/);
    expect(turns[2]).toMatchObject({ status: 'failed', assistant_text: 'What name should I put the reservation under?' });
    expect(turns[3]).toMatchObject({ assistant_mode: 'scripted', user_text: 'Anna', assistant_text: 'For which day would you like the table?' });
    const { rows: calls } = await server.db.query('SELECT assistant_mode, details FROM calls WHERE call_id = $1', [result.callSid]);
    expect(calls[0]).toMatchObject({ assistant_mode: 'scripted', details: { name: 'Anna' } });
    expect(said(script.heard[0])).toBe('');
  });

  it('keeps what was already said when the model stream breaks mid-reply, then apologises', async () => {
    openai.queueChatReplies({ cutAfterChars: 60, text: 'We are open from noon until half past ten, every day except Monday, and the kitchen closes at ten.' });
    const script = scriptedCaller(['When are you open?']);
    const result = await call(script.caller);
    expect(result.applicationErrors).toEqual([]);
    const { rows: turns } = await server.db.query<Record<string, unknown>>('SELECT * FROM turns WHERE call_id = $1 ORDER BY turn_id', [result.callSid]);
    expect(turns[1].status).toBe('failed');
    expect(String(turns[1].assistant_text)).toMatch(/^We are open from noon until half past ten, .*Could you say that once more\?$/);
  });

  it('falls back to Twilio\'s voice for a sentence whose synthesis failed', async () => {
    openai.queueChatReplies({ text: 'Yes, we have vegan pizza on request.' });
    const script = scriptedCaller(['Do you have vegan food?']);
    openai.failNext('speech', { status: 500 }, 2); // the client retries once
    const result = await call(script.caller);
    expect(result.applicationErrors).toEqual([]);
    const answer = script.heard[1].heard;
    // The piece was named before its synthesis failed: its download is a moment of silence, then the words in Twilio's voice.
    expect(answer.filter((item) => item.kind === 'say')).toEqual([{ kind: 'say', text: 'Yes, we have vegan pizza on request.' }]);
    expect(answer.filter((item) => item.kind === 'play').map((item) => (item.kind === 'play' ? item.durationMs : 0))).toEqual([100]);
    const { rows: turns } = await server.db.query<Record<string, unknown>>('SELECT * FROM turns WHERE call_id = $1 ORDER BY turn_id', [result.callSid]);
    expect(turns[1]).toMatchObject({ status: 'completed', error_code: 'tts_failed', assistant_text: 'Yes, we have vegan pizza on request.' });
    const { rows: segments } = await server.db.query('SELECT seq, text, audio_id FROM reply_segments WHERE turn_id = $1 ORDER BY seq', [turns[1].turn_id]);
    expect(segments).toEqual([
      { seq: 0, text: '', audio_id: null },
      { seq: 1, text: 'Yes, we have vegan pizza on request.', audio_id: null },
    ]);
  });

  it('hands Twilio a piece\'s URL while its speech is still being synthesized, and answers the download once the audio is whole', async () => {
    openai.setProfile({ ...latencyProfiles.zero, ttsFirstByteMs: 300 });
    try {
      openai.queueChatReplies({ text: 'We close at eleven tonight.' });
      const script = scriptedCaller(['When do you close?']);
      const before = openai.requests.length;
      const atAnswer: Array<{ finished: number }> = [];
      const result = await simulateCall({
        baseUrl: server.baseUrl,
        publicUrl: server.publicUrl,
        authToken: server.authToken,
        caller: script.caller,
        from: `+1500555${String(++callers).padStart(4, '0')}`,
        onEvent: (event) => {
          if (event.type !== 'webhook-answered' || !event.url.includes('/twilio/voice')) return;
          const speeches = openai.requests.slice(before).filter((request) => request.endpoint === 'speech' && request.body?.input === 'We close at eleven tonight.');
          atAnswer.push({ finished: speeches.filter((request) => request.finishedAt !== undefined).length });
        },
      });
      expect(result.applicationErrors).toEqual([]);
      expect(result.warnings).toEqual([]);
      // When the turn's TwiML reached Twilio, the piece's speech had not been answered yet; it was asked for once.
      expect(atAnswer).toEqual([{ finished: 0 }]);
      expect(openai.requests.slice(before).filter((request) => request.endpoint === 'speech' && request.body?.input === 'We close at eleven tonight.')).toHaveLength(1);
      const { rows: turns } = await server.db.query<{ turn_id: number }>('SELECT turn_id FROM turns WHERE call_id = $1 ORDER BY seq', [result.callSid]);
      const { rows: files } = await server.db.query<{ filename: string; size_bytes: number }>(
        'SELECT a.filename, a.size_bytes FROM reply_segments s JOIN audio_files a USING (audio_id) WHERE s.turn_id = $1',
        [turns[1].turn_id],
      );
      expect(files).toHaveLength(1);
      // The download that waited got the whole file, the same bytes as stored.
      const played = result.transcript.filter((line) => line.audio?.url.endsWith(`/audio/${files[0].filename}`));
      expect(played).toHaveLength(1);
      expect(played[0].audio?.bytes).toBe(files[0].size_bytes);
      expect(script.heard[1].heard).toEqual([{ kind: 'play', url: played[0].audio!.url, durationMs: played[0].audio!.durationMs }]);
    } finally {
      openai.setProfile(latencyProfiles.zero);
    }
  });
});

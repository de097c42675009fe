import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { simulateCall, type CallerReply, type GatherPrompt, type SimulatorEvent } from '../src/simulator/twilio-simulator.js';
import { startFakeOpenAI, type FakeOpenAI } from '../src/testing/fake-openai-server.js';
import { startTestApp, type TestApp } from '../src/testing/test-app.js';
import { availableDatabaseKinds } from '../src/testing/test-databases.js';

const databaseKind = (await availableDatabaseKinds()).includes('postgres') ? 'postgres' : 'pglite';

const phrases = {
  repeat: 'Sorry, I did not hear you.',
  unclear: 'Sorry, could you repeat that?',
  apology: 'Sorry, a little trouble here.',
  noInputGoodbye: 'I cannot hear you. Goodbye!',
  goodbye: 'Thank you for calling Harbour Bistro. Goodbye!',
  confirm: 'Booked: {details}.',
};
const systemPrompt = 'You are the receptionist of Harbour Bistro.';

/** A line spoken by Twilio's Polly voices, and one spoken by OpenAI's, both allowing the five languages. */
const profiles = {
  'polly-line': {
    id: 'polly-line', name: 'Harbour Bistro (Polly)', language: 'en-US', speech: 'polly', systemPrompt, greeting: 'Hello, Harbour Bistro here. How can I help?', phrases,
    languages: ['ru-RU', 'uk-UA', { language: 'sk-SK', pollyVoice: 'Polly.Maja' }, 'ro-RO'],
  },
  'openai-line': {
    id: 'openai-line', name: 'Harbour Bistro (OpenAI)', language: 'en-US', speech: 'openai', voice: 'nova', systemPrompt, greeting: 'Hello, Harbour Bistro here.', phrases,
    phoneNumbers: ['+15550002222'],
    languages: [{ language: 'ru-RU', voice: 'shimmer', phrases: { goodbye: 'Спасибо за звонок в Harbour Bistro. До свидания!' } }, 'uk-UA', 'sk-SK', 'ro-RO'],
  },
};

function scriptedCaller(lines: CallerReply[]) {
  const queue = [...lines];
  const prompts: GatherPrompt[] = [];
  return {
    prompts,
    caller: async (prompt: GatherPrompt) => {
      prompts.push(prompt);
      return queue.length ? queue.shift()! : null;
    },
  };
}

describe('switching language mid-call (webhooks)', () => {
  let openai: FakeOpenAI;
  let server: TestApp;
  let profilesDir: string;
  beforeAll(async () => {
    profilesDir = await mkdtemp(path.join(tmpdir(), 'callme-language-profiles-'));
    for (const [id, profile] of Object.entries(profiles)) await writeFile(path.join(profilesDir, `${id}.json`), JSON.stringify(profile));
    openai = await startFakeOpenAI();
    server = await startTestApp(databaseKind, { OPENAI_API_KEY: 'sk-test', OPENAI_BASE_URL: openai.url, PROFILES_DIR: profilesDir, ASSISTANT_PROFILE: 'polly-line' });
  }, 60_000);
  afterAll(async () => {
    await server?.close();
    await openai?.close();
    await rm(profilesDir, { recursive: true, force: true });
  });
  beforeEach(() => {
    openai.setRespond(undefined);
  });

  const languageOf = async (callSid: string) =>
    (await server.db.query<{ language: string }>('SELECT language FROM calls WHERE call_id = $1', [callSid])).rows[0]?.language;
  const systemPrompts = () =>
    openai.requests
      .filter((request) => request.endpoint === 'chat')
      .map((request) => ((request.body?.messages ?? []) as Array<{ role: string; content: string }>)[0]?.content ?? '');

  it("follows the caller's words into Russian, then Ukrainian, and the model's switch_language into Slovak: Gather language, Polly voice, reply language and phrases", async () => {
    openai.queueChatReplies(
      { text: 'Конечно! На сколько человек?' },
      { text: 'Звісно, говоримо українською. На який день?' },
      { text: 'Samozrejme, hovorme po slovensky. Na aký deň?', toolCalls: [{ name: 'switch_language', arguments: { language: 'sk-SK' } }] },
    );
    const events: SimulatorEvent[] = [];
    const script = scriptedCaller([
      'Здравствуйте, можно забронировать столик на завтра?',
      'Дякую, а можна українською?',
      'Prosim po slovensky',
      '',
      null,
    ]);
    const result = await simulateCall({
      baseUrl: server.baseUrl, publicUrl: server.publicUrl, authToken: server.authToken, caller: script.caller, onEvent: (event) => events.push(event),
    });
    expect(result.applicationErrors).toEqual([]);

    const gathers = script.prompts.map((prompt) => prompt.gather.language);
    expect(gathers).toEqual(['en-US', 'ru-RU', 'uk-UA', 'sk-SK', 'sk-SK']);
    const spoken = events.filter((event): event is Extract<SimulatorEvent, { type: 'say-spoken' }> => event.type === 'say-spoken');
    const voiceOf = (text: string) => spoken.filter((event) => event.text === text).map((event) => [event.voice, event.language]);
    expect(voiceOf('Hello, Harbour Bistro here. How can I help?')).toEqual([['Polly.Joanna', 'en-US']]);
    expect(voiceOf('На сколько человек?')).toEqual([['Polly.Tatyana', 'ru-RU']]);
    // Twilio has no Ukrainian voice: Tatyana reads it, as VoiceHunte did.
    expect(voiceOf('На який день?')).toEqual([['Polly.Tatyana', 'ru-RU']]);
    // The model's words stream before its tool call, so the words said with switch_language may still have the old voice
    // (how many were composed before the switch depends on timing); the <Gather> after them listens in Slovak, and
    // everything said from then on, like this silence reprompt, is Slovak in Maja's voice.
    expect(voiceOf('Prepáčte, nepočula som vás. Môžete to zopakovať?')).toEqual([['Polly.Maja', 'pl-PL']]);

    const prompts = systemPrompts();
    expect(prompts[0]).toContain('The caller speaks Russian: reply in Russian.');
    expect(prompts[1]).toContain('The caller speaks Ukrainian: reply in Ukrainian.');
    expect(prompts[2]).toContain('The caller speaks Ukrainian');
    expect(await languageOf(result.callSid)).toBe('sk-SK');
    const { rows: turns } = await server.db.query<{ tool_calls: Array<{ name: string }> }>('SELECT tool_calls FROM turns WHERE call_id = $1 AND seq = 3', [result.callSid]);
    expect(turns[0].tool_calls.map((call) => call.name)).toEqual(['switch_language']);
  }, 30_000);

  it('with OpenAI voices: the reply is synthesized with the language’s voice, and the goodbye is the profile’s own in that language', async () => {
    openai.queueChatReplies(
      { text: 'Добрый вечер! Чем могу помочь?' },
      { text: '', toolCalls: [{ name: 'end_call', arguments: { reason: 'caller said goodbye' } }] },
    );
    const script = scriptedCaller(['Добрый вечер, у вас есть свободный столик?', 'Нет, спасибо, до свидания']);
    const speechBefore = openai.requests.filter((request) => request.endpoint === 'speech').length;
    const result = await simulateCall({ baseUrl: server.baseUrl, publicUrl: server.publicUrl, authToken: server.authToken, to: '+15550002222', caller: script.caller });
    expect(result.applicationErrors).toEqual([]);
    expect(result.endedBy).toBe('hangup');
    expect(script.prompts.map((prompt) => prompt.gather.language)).toEqual(['en-US', 'ru-RU']);
    const voices = openai.requests
      .filter((request) => request.endpoint === 'speech')
      .slice(speechBefore)
      .map((request) => [request.body?.input, request.body?.voice]);
    expect(voices).toEqual([
      ['Hello, Harbour Bistro here.', 'nova'],
      ['Добрый вечер!', 'shimmer'],
      ['Чем могу помочь?', 'shimmer'],
      ['Спасибо за звонок в Harbour Bistro. До свидания!', 'shimmer'],
    ]);
    expect(await languageOf(result.callSid)).toBe('ru-RU');
  }, 30_000);
});

import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { simulateCall, type CallerReply, type GatherPrompt, type SimulatorEvent } from '../src/simulator/twilio-simulator.js';
import { startFakeOpenAI, type FakeOpenAI } from '../src/testing/fake-openai-server.js';
import { postSignedWebhook, startTestApp, type TestApp } from '../src/testing/test-app.js';
import { availableDatabaseKinds } from '../src/testing/test-databases.js';
import { restaurantProfileWith, writeTestProfiles } from '../src/testing/test-profiles.js';

const transfer = {
  number: '+15550100123',
  handoffLine: 'One moment, I am putting you through to the manager.',
  timeoutSeconds: 15,
  unavailableLine: 'Sorry, nobody can come to the phone. Please leave your message now.',
  messageTakenLine: 'Thank you, the manager will get your message. Goodbye!',
};
const summary = 'Anna wants to book the whole terrace for 30 guests on Saturday; needs the manager.';

describe.each(await availableDatabaseKinds())('transfer to a person, on %s', (kind) => {
  let openai: FakeOpenAI;
  let profiles: Awaited<ReturnType<typeof writeTestProfiles>>;
  let server: TestApp;

  beforeAll(async () => {
    openai = await startFakeOpenAI();
    profiles = await writeTestProfiles([await restaurantProfileWith({ transfer })]);
    server = await startTestApp(kind, { OPENAI_API_KEY: 'sk-test', OPENAI_BASE_URL: openai.url, PROFILES_DIR: profiles.directory });
  }, 30_000);
  afterAll(async () => {
    await server?.close();
    await openai?.close();
    await profiles?.cleanup();
  });
  beforeEach(() => {
    openai.queueChatReplies({ toolCalls: [{ name: 'transfer_to_human', arguments: { summary } }] });
  });

  const call = (lines: CallerReply[], dial?: Parameters<typeof simulateCall>[0]['dial']) => {
    const queue = [...lines];
    const heard: GatherPrompt[] = [];
    const events: SimulatorEvent[] = [];
    return simulateCall({
      baseUrl: server.baseUrl,
      publicUrl: server.publicUrl,
      authToken: server.authToken,
      caller: async (prompt) => {
        heard.push(prompt);
        return queue.length ? queue.shift()! : null;
      },
      dial,
      onEvent: (event) => events.push(event),
    }).then((result) => ({ result, heard, events }));
  };

  it('offers transfer_to_human, says the hand-off line, dials the profile\'s number and stores the summary; an answered dial ends the call', async () => {
    const { result, events } = await call(['Can I talk to the manager about a big party?'], () => ({ status: 'completed', durationSeconds: 42 }));
    expect(result.applicationErrors).toEqual([]);
    expect(result.warnings).toEqual([]);
    const chat = openai.requests.filter((request) => request.endpoint === 'chat').at(-1);
    expect((chat?.body?.tools as Array<{ function: { name: string } }>).map((tool) => tool.function.name)).toContain('transfer_to_human');

    const dialTwiml = events.find((event) => event.type === 'webhook-answered' && event.body.includes('<Dial'));
    expect(dialTwiml?.type === 'webhook-answered' && dialTwiml.body).toMatch(
      /<Dial action="https:\/\/callme\.test\/twilio\/transfer-ended\?turn=\d+" method="POST" timeout="15"><Number>\+15550100123<\/Number><\/Dial><\/Response>$/,
    );
    expect(events.filter((event) => event.type === 'dial-ended')).toEqual([expect.objectContaining({ number: '+15550100123', status: 'completed', durationSeconds: 42 })]);
    // The hand-off line is played before the dial (in the same answer, or the one before it when the reply was still being produced).
    const dialAt = events.findIndex((event) => event.type === 'dial-attempted');
    expect(events.slice(0, dialAt).at(-1)?.type).toMatch(/audio-played|webhook-answered|webhook-sent/);
    expect(events.slice(0, dialAt).filter((event) => event.type === 'audio-played').length).toBeGreaterThanOrEqual(2);
    expect(result.endedBy).toBe('hangup');

    const { rows: turns } = await server.db.query<Record<string, unknown>>('SELECT seq, assistant_text, action FROM turns WHERE call_id = $1 ORDER BY seq', [result.callSid]);
    expect(turns[1]).toMatchObject({ assistant_text: transfer.handoffLine, action: 'transfer' });
    const { rows: transfers } = await server.db.query<Record<string, unknown>>('SELECT * FROM transfers WHERE call_id = $1', [result.callSid]);
    expect(transfers).toEqual([expect.objectContaining({ to_number: '+15550100123', summary, status: 'completed', dial_duration_seconds: 42, message: null })]);
    expect(String(transfers[0].dial_call_sid)).toMatch(/^CA/);
    const { rows: calls } = await server.db.query<Record<string, unknown>>('SELECT outcome FROM calls WHERE call_id = $1', [result.callSid]);
    expect(calls[0].outcome).toBe('transferred');
  });

  it('takes a message when nobody answers: the unavailable line, one more <Gather>, the message stored on the transfer and in the details', async () => {
    const message = 'Please call me back about a party of thirty on Saturday, my number is the one I am calling from.';
    const { result, heard, events } = await call(['I need the manager, please', message]);
    expect(result.applicationErrors).toEqual([]);
    expect(result.warnings).toEqual([]);
    expect(events.filter((event) => event.type === 'dial-ended')).toEqual([expect.objectContaining({ status: 'no-answer', durationSeconds: 0 })]);
    // Before the caller's last turn: the hand-off line, the ringing, then the unavailable line.
    expect(heard).toHaveLength(2);
    expect(heard[1].heard.map((item) => item.kind)).toEqual(['play', 'play']);
    expect(heard[1].gather.action).toMatch(/^https:\/\/callme\.test\/twilio\/transfer-message\?transfer=\d+$/);
    expect(result.endedBy).toBe('hangup');

    const { rows: transfers } = await server.db.query<Record<string, unknown>>('SELECT * FROM transfers WHERE call_id = $1', [result.callSid]);
    expect(transfers).toEqual([expect.objectContaining({ status: 'no-answer', message, summary })]);
    const { rows: calls } = await server.db.query<{ details: Record<string, unknown>; outcome: string }>('SELECT details, outcome FROM calls WHERE call_id = $1', [result.callSid]);
    expect(calls[0].details.message).toBe(message);
    // The message is a turn of the conversation like any other, and the call ended with the assistant's goodbye.
    expect(calls[0].outcome).toBe('completed');
    const { rows: turns } = await server.db.query<Record<string, unknown>>('SELECT user_text, assistant_text, action FROM turns WHERE call_id = $1 ORDER BY seq', [result.callSid]);
    expect(turns.at(-1)).toMatchObject({ user_text: message, assistant_text: transfer.messageTakenLine, action: 'hangup' });

    const page = await (await fetch(`${server.baseUrl}/dashboard/calls/${result.callSid}`)).text();
    expect(page).toContain('data-testid="transfers"');
    expect(page).toContain('no-answer');
    expect(page).toContain('data-testid="transfer-message"');
    const detail = (await (await fetch(`${server.baseUrl}/api/calls/${result.callSid}`)).json()) as { transfers: unknown[] };
    expect(detail.transfers).toEqual([expect.objectContaining({ to: '+15550100123', status: 'no-answer', message, summary })]);
  });

  it('says goodbye when the caller leaves no message after a busy line, and answers a forged dial callback with a hang-up', async () => {
    const { result } = await call(['Put me through to someone', ''], () => ({ status: 'busy' }));
    expect(result.applicationErrors).toEqual([]);
    expect(result.endedBy).toBe('hangup');
    const { rows: transfers } = await server.db.query<Record<string, unknown>>('SELECT status, message FROM transfers WHERE call_id = $1', [result.callSid]);
    expect(transfers).toEqual([{ status: 'busy', message: null }]);
    // A dial callback naming another call's turn changes nothing.
    const { rows: turn } = await server.db.query<{ turn_id: number }>('SELECT turn_id FROM transfers WHERE call_id = $1', [result.callSid]);
    const forged = await postSignedWebhook(server, `/twilio/transfer-ended?turn=${turn[0].turn_id}`, { CallSid: `CA${'c'.repeat(32)}`, DialCallStatus: 'completed' });
    expect(forged.status).toBe(200);
    expect(await forged.text()).toContain('<Hangup/>');
    const { rows: again } = await server.db.query<Record<string, unknown>>('SELECT status FROM transfers WHERE call_id = $1', [result.callSid]);
    expect(again[0].status).toBe('busy');
  });
});

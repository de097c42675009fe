import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addDays } from '../src/reservations/opening-hours.js';
import { simulateCall, type CallerReply, type GatherPrompt, type SimulatedCall } from '../src/simulator/twilio-simulator.js';
import { startFakeOpenAI, type FakeChatMessage, type FakeOpenAI } from '../src/testing/fake-openai-server.js';
import { startTestApp, type TestApp } from '../src/testing/test-app.js';
import { availableDatabaseKinds } from '../src/testing/test-databases.js';

/**
 * Reservations made, changed and cancelled on simulated calls: simulated
 * Twilio, the fake OpenAI scripted to call the tools, the real server and
 * database. Dates are a few days from today (UTC, the profile's zone) so
 * they are always in the future; the dining room is open every day.
 */
const everyDay = Object.fromEntries(['monday', 'tuesday', 'wednesday', 'thursday', 'friday', 'saturday', 'sunday'].map((day) => [day, ['12:00-23:00']]));
const today = new Date().toISOString().slice(0, 10);
const inTwoDays = addDays(today, 2);
const inThreeDays = addDays(today, 3);
const closedDay = addDays(today, 4);
const numbers = { bistro: '+15550100001', limited: '+15550100002' };
const anna = '+14155550132';

const phrases = {
  repeat: 'Sorry, I did not hear you.',
  unclear: 'Sorry, could you repeat that?',
  apology: 'Sorry, I am having trouble.',
  noInputGoodbye: 'I cannot hear you. Goodbye!',
  goodbye: 'Thank you for calling the Bistro. Goodbye!',
  confirm: 'Thank you! I have booked {details}. Goodbye!',
  limitReached: 'We have talked for a while, so I will end the call here. Thank you for calling the Bistro. Goodbye!',
};

const bistroProfile = {
  id: 'bistro',
  name: 'The Bistro',
  language: 'en-US',
  speech: 'openai',
  systemPrompt: 'You take table reservations for the Bistro.',
  greeting: 'Hello, this is the Bistro. How can I help?',
  returningCallerGreeting: 'Welcome back to the Bistro, {name}! How can I help?',
  phoneNumbers: [numbers.bistro],
  details: [
    { name: 'name', description: 'the name', question: 'What name should I put the reservation under?' },
    { name: 'date', description: 'the day', question: 'For which day?', type: 'date' },
    { name: 'time', description: 'the time', question: 'At what time?', type: 'time' },
    { name: 'party_size', description: 'guests', question: 'For how many people?', type: 'integer' },
  ],
  phrases,
  maxTurns: 10,
  maxCallSeconds: 600,
  reservations: { timeZone: 'UTC', openingHours: everyDay, closedDates: [closedDay], slotMinutes: 30, durationMinutes: 120, lastStartBeforeCloseMinutes: 60, capacity: 10, maxPartySize: 8 },
};

type ChatBody = { messages: FakeChatMessage[]; tools?: Array<{ function: { name: string } }> };

function textOf(message: FakeChatMessage | undefined): string {
  if (!message) return '';
  return typeof message.content === 'string' ? message.content : (message.content ?? []).map((part) => part.text ?? '').join('');
}

describe.each(await availableDatabaseKinds())('reservations on simulated calls, on %s', (kind) => {
  let openai: FakeOpenAI;
  let server: TestApp;
  let profilesDir: string;

  beforeAll(async () => {
    profilesDir = await mkdtemp(path.join(tmpdir(), 'callme-reservations-'));
    await writeFile(path.join(profilesDir, 'bistro.json'), JSON.stringify(bistroProfile));
    await writeFile(
      path.join(profilesDir, 'limited.json'),
      JSON.stringify({ ...bistroProfile, id: 'limited', reservations: undefined, returningCallerGreeting: undefined, phoneNumbers: [numbers.limited], maxTurns: 2 }),
    );
    openai = await startFakeOpenAI();
    server = await startTestApp(kind, { OPENAI_API_KEY: 'sk-test', OPENAI_BASE_URL: openai.url, PROFILES_DIR: profilesDir, ASSISTANT_PROFILE: 'bistro' });
  }, 60_000);
  afterAll(async () => {
    await server?.close();
    await openai?.close();
    await rm(profilesDir, { recursive: true, force: true });
  });

  const call = (lines: CallerReply[], options: { from?: string; to?: string; beforeTurn?: (prompt: GatherPrompt) => Promise<void> } = {}) => {
    const queue = [...lines];
    return simulateCall({
      baseUrl: server.baseUrl,
      publicUrl: server.publicUrl,
      authToken: server.authToken,
      from: options.from ?? anna,
      to: options.to ?? numbers.bistro,
      caller: async (prompt) => {
        await options.beforeTurn?.(prompt);
        return queue.length ? queue.shift()! : null;
      },
    });
  };
  /** The chat requests made during `work`. */
  const chatsDuring = async (work: () => Promise<SimulatedCall>) => {
    const before = openai.requests.length;
    const result = await work();
    const chats = openai.requests.slice(before).filter((request) => request.endpoint === 'chat').map((request) => request.body as unknown as ChatBody);
    return { result, chats };
  };
  const toolResults = (chats: ChatBody[]) => [...new Set(chats.flatMap((chat) => chat.messages.filter((message) => message.role === 'tool').map(textOf)))];
  const turns = async (callSid: string) =>
    (await server.db.query<{ seq: number; assistant_text: string; action: string; tool_calls: Array<{ name: string; result: string }> }>(
      'SELECT seq, assistant_text, action, tool_calls FROM turns WHERE call_id = $1 ORDER BY seq',
      [callSid],
    )).rows;
  const reservations = async () =>
    (await server.db.query<Record<string, unknown>>(
      `SELECT reservation_id::int AS id, name, phone, to_char(reservation_date, 'YYYY-MM-DD') AS date, to_char(reservation_time, 'HH24:MI') AS time, party_size, status, source, call_id
         FROM reservations ORDER BY reservation_id`,
    )).rows;

  it('creates a reservation: the model calls create_reservation, is told it is booked, and the call keeps it', async () => {
    openai.queueChatReplies(
      { toolCalls: [{ name: 'create_reservation', arguments: { name: 'Anna', date: inTwoDays, time: '19:00', party_size: 4, notes: 'by the window' } }] },
      { text: `Booked: a table for four, under Anna, at seven. Anything else?` },
    );
    const { result, chats } = await chatsDuring(() => call([`A table for four on ${inTwoDays} at seven, under Anna, by the window`, 'No, bye']));
    expect(result.applicationErrors).toEqual([]);
    expect(result.endedBy).toBe('hangup');

    // Every model request offered the four tools, with the hours and local date in the prompt.
    const offered = chats[0].tools?.map((tool) => tool.function.name);
    expect(offered).toEqual(expect.arrayContaining(['create_reservation', 'find_reservations', 'change_reservation', 'cancel_reservation']));
    const system = textOf(chats[0].messages[0]);
    expect(system).toContain(`Local date and time now: ${today}`);
    expect(system).toContain('Monday 12:00 to 23:00');
    expect(system).toContain('This number has no upcoming reservations.');
    expect(toolResults(chats)[0]).toMatch(/^booked: reservation \d+: Anna, party of 4, \w+ \d{4}-\d{2}-\d{2} at 19:00 \(by the window\)/);

    const rows = await reservations();
    expect(rows).toEqual([
      expect.objectContaining({ name: 'Anna', phone: anna, date: inTwoDays, time: '19:00', party_size: 4, status: 'confirmed', source: 'phone', call_id: result.callSid }),
    ]);
    const { rows: calls } = await server.db.query<{ details: Record<string, unknown>; outcome: string }>('SELECT details, outcome FROM calls WHERE call_id = $1', [result.callSid]);
    expect(calls[0].details).toMatchObject({ reservation_id: rows[0].id, name: 'Anna', date: inTwoDays, time: '19:00', party_size: 4 });
    expect(calls[0].outcome).toBe('details-collected');
  });

  it('greets a returning caller by name, lists their reservations for the model, and changes the time and party size', async () => {
    const [booking] = await reservations();
    openai.queueChatReplies(
      { toolCalls: [{ name: 'find_reservations', arguments: {} }] },
      { toolCalls: [{ name: 'change_reservation', arguments: { reservation_id: booking.id, time: '20:30', party_size: 6 } }] },
      { text: 'Done: six people at half past eight.' },
    );
    const { result, chats } = await chatsDuring(() => call(['Can you move my booking to half past eight, and make it six people?', 'That is all, bye']));
    expect(result.applicationErrors).toEqual([]);

    const [greeting] = await turns(result.callSid);
    expect(greeting.assistant_text).toBe('Welcome back to the Bistro, Anna! How can I help?');
    const system = textOf(chats[0].messages[0]);
    expect(system).toContain('This caller has called before and gave the name Anna.');
    expect(system).toContain(`Their upcoming reservations (made from this number): reservation ${booking.id}: Anna, party of 4,`);

    const results = toolResults(chats);
    expect(results[0]).toMatch(new RegExp(`^found 1 upcoming for the calling number: reservation ${booking.id}: Anna, party of 4`));
    expect(results[1]).toMatch(new RegExp(`^changed: reservation ${booking.id}: Anna, party of 6, \\w+ ${inTwoDays} at 20:30 .*\\(was party of 4, ${inTwoDays} at 19:00\\)`));
    expect(await reservations()).toEqual([expect.objectContaining({ id: booking.id, time: '20:30', party_size: 6, status: 'confirmed' })]);
  });

  it('refuses to change a reservation made from another number unless the caller names it', async () => {
    const [booking] = await reservations();
    openai.queueChatReplies(
      { toolCalls: [{ name: 'change_reservation', arguments: { reservation_id: booking.id, party_size: 2 } }] },
      { text: 'Under which name is it?' },
      { toolCalls: [{ name: 'change_reservation', arguments: { reservation_id: booking.id, party_size: 2, name: 'anna' } }] },
      { text: 'Done, two people.' },
    );
    const { chats } = await chatsDuring(() => call(['Make my booking two people', 'It is under Anna', 'bye'], { from: '+447700900123' }));
    const results = toolResults(chats);
    expect(results[0]).toMatch(/^not allowed: reservation \d+ was not made from this number/);
    expect(results[1]).toMatch(/^changed: .*party of 2/);
    expect((await reservations())[0]).toMatchObject({ party_size: 2 });
  });

  it('answers a full slot and a closed day with alternatives the model is told to offer', async () => {
    // Eight guests already at 19:00 on the third day: four more do not fit.
    await server.db.query(
      `INSERT INTO reservations (profile_id, name, phone, reservation_date, reservation_time, party_size, source) VALUES ('bistro', 'Walk-in group', '+15550009999', $1::date, '19:00', 8, 'api')`,
      [inThreeDays],
    );
    openai.queueChatReplies(
      { toolCalls: [{ name: 'create_reservation', arguments: { name: 'Boris', date: inThreeDays, time: '19:00', party_size: 4 } }] },
      { text: 'Seven is full; I could offer half past four, nine or the next day. Which would you like?' },
      { toolCalls: [{ name: 'create_reservation', arguments: { name: 'Boris', date: closedDay, time: '19:00', party_size: 4 } }] },
      { text: 'We are closed that day; how about the day after?' },
      { toolCalls: [{ name: 'create_reservation', arguments: { name: 'Boris', date: inThreeDays, time: '21:00', party_size: 4 } }] },
      { text: 'Booked for nine.' },
    );
    const { result, chats } = await chatsDuring(() => call([`Four people on ${inThreeDays} at seven, name Boris`, `Then ${closedDay}?`, 'Nine on the first day then', 'bye'], { from: '+442071838750' }));
    expect(result.applicationErrors).toEqual([]);
    const [full, closed, booked] = toolResults(chats);
    expect(full).toMatch(new RegExp(`^not booked: \\w+ ${inThreeDays} at 19:00 is fully booked\\. Offer these free times instead and ask which suits the caller: `));
    // The nearest free times that day: before the group arrives, or once it has left.
    expect(full).toContain(`${inThreeDays} at 16:30`);
    expect(full).toContain(`${inThreeDays} at 21:00`);
    expect(closed).toMatch(new RegExp(`^not booked: closed on ${closedDay} \\(on \\w+ ${closedDay} bookings are taken at no time: closed\\)\\. Offer these free times instead`));
    expect(closed).toContain(`${addDays(closedDay, 1)} at 19:00`);
    expect(booked).toMatch(/^booked: .*Boris, party of 4, .* at 21:00/);
    // The model heard each refusal before speaking: the reply after a refusal follows its tool message.
    const afterFull = chats.find((chat) => chat.messages.at(-1)?.role === 'tool' && textOf(chat.messages.at(-1)) === full);
    expect(afterFull).toBeDefined();
  });

  it('asks for missing details instead of booking', async () => {
    openai.queueChatReplies(
      { toolCalls: [{ name: 'create_reservation', arguments: { name: 'Chen', party_size: 2 } }] },
      { text: 'For which day and at what time?' },
    );
    const before = (await reservations()).length;
    const { chats } = await chatsDuring(() => call(['A table for two, name Chen', 'bye'], { from: '+16175550101' }));
    expect(toolResults(chats)[0]).toBe('not booked yet: still missing the date, time. Ask the caller for them, then call the tool again with every detail.');
    expect(await reservations()).toHaveLength(before);
  });

  it('cancels a reservation', async () => {
    const booking = (await reservations()).find((row) => row.name === 'Boris')!;
    openai.queueChatReplies(
      { toolCalls: [{ name: 'find_reservations', arguments: {} }] },
      { toolCalls: [{ name: 'cancel_reservation', arguments: { reservation_id: booking.id } }] },
      { text: 'It is cancelled.' },
    );
    const { result, chats } = await chatsDuring(() => call(['Please cancel my reservation', 'bye'], { from: '+442071838750' }));
    expect(result.applicationErrors).toEqual([]);
    const results = toolResults(chats);
    expect(results[0]).toMatch(/^found 1 upcoming for the calling number: reservation \d+: Boris/);
    expect(results[1]).toMatch(new RegExp(`^cancelled: reservation ${booking.id}: Boris`));
    expect((await reservations()).find((row) => row.id === booking.id)).toMatchObject({ status: 'cancelled' });
    // Cancelled: the seats are free again and no longer listed for the caller.
    openai.queueChatReplies({ text: 'Hello again!' });
    const { chats: later } = await chatsDuring(() => call(['Hello?'], { from: '+442071838750' }));
    expect(textOf(later[0].messages[0])).toContain('This number has no upcoming reservations.');
  });

  it('answers the last turn the profile allows, then ends the call politely', async () => {
    openai.queueChatReplies({ text: 'We are open every day from noon.' }, { text: 'Yes, there is parking.' });
    const result = await call(['When are you open?', 'Is there parking?', 'And do you have vegan dishes?'], { to: numbers.limited, from: '+15550007777' });
    expect(result.applicationErrors).toEqual([]);
    expect(result.endedBy).toBe('hangup');
    const rows = await turns(result.callSid);
    expect(rows).toHaveLength(3); // the greeting and two caller turns: the third question is never asked
    expect(rows[2].assistant_text).toBe(`Yes, there is parking. ${phrases.limitReached}`);
    expect(rows[2].action).toBe('hangup');
    const { rows: calls } = await server.db.query<{ outcome: string }>('SELECT outcome FROM calls WHERE call_id = $1', [result.callSid]);
    expect(calls[0].outcome).toBe('limit-reached');
  });

  it('ends a webhook call politely once it has lasted its maximum length', async () => {
    openai.queueChatReplies({ text: 'We are open every day from noon.' });
    const result = await call(['When are you open?', 'And is there parking?'], {
      from: '+15550008888',
      // Before the second answer, the call has been going on for eleven minutes (maxCallSeconds is 600).
      beforeTurn: async (prompt) => {
        if (prompt.turn === 2) await server.db.query(`UPDATE calls SET started_at = now() - interval '11 minutes' WHERE call_id = $1`, [prompt.callSid]);
      },
    });
    expect(result.applicationErrors).toEqual([]);
    expect(result.endedBy).toBe('hangup');
    const rows = await turns(result.callSid);
    expect(rows.at(-1)).toMatchObject({ assistant_text: phrases.limitReached, action: 'hangup' });
  });
});

describe.each(await availableDatabaseKinds())('the scripted assistant takes reservations, on %s', (kind) => {
  let server: TestApp;
  let profilesDir: string;
  const tomorrow = addDays(today, 1);

  beforeAll(async () => {
    profilesDir = await mkdtemp(path.join(tmpdir(), 'callme-reservations-'));
    await writeFile(path.join(profilesDir, 'bistro.json'), JSON.stringify({ ...bistroProfile, speech: 'polly' }));
    server = await startTestApp(kind, { PROFILES_DIR: profilesDir, ASSISTANT_PROFILE: 'bistro' });
  }, 60_000);
  afterAll(async () => {
    await server?.close();
    await rm(profilesDir, { recursive: true, force: true });
  });

  it('books what it collected without any model, offering other times when the one asked for is full', async () => {
    await server.db.query(
      `INSERT INTO reservations (profile_id, name, reservation_date, reservation_time, party_size, source) VALUES ('bistro', 'Regulars', $1::date, '19:00', 9, 'api')`,
      [tomorrow],
    );
    const heard: string[] = [];
    const lines = ['I would like a table', 'Dana', 'tomorrow', '7 pm', '2', '9 pm'];
    const result = await simulateCall({
      baseUrl: server.baseUrl,
      publicUrl: server.publicUrl,
      authToken: server.authToken,
      from: '+16465550147',
      to: numbers.bistro,
      caller: async (prompt) => {
        heard.push(prompt.text);
        return lines.shift() ?? null;
      },
    });
    expect(result.applicationErrors).toEqual([]);
    expect(result.endedBy).toBe('hangup');
    // 19:00 has room for one more guest: the assistant says so, offers the nearest times, and asks for a time again.
    const refusal = heard.find((text) => text.includes('is not available'));
    expect(refusal).toMatch(/^I'm sorry, \w+, \w+ \d+, 19:00 is not available\. I could offer .*21:00.*\. At what time\?$/);
    const { rows } = await server.db.query<Record<string, unknown>>(
      `SELECT name, phone, to_char(reservation_date, 'YYYY-MM-DD') AS date, to_char(reservation_time, 'HH24:MI') AS time, party_size, source, status
         FROM reservations WHERE name = 'Dana'`,
    );
    expect(rows).toEqual([{ name: 'Dana', phone: '+16465550147', date: tomorrow, time: '21:00', party_size: 2, source: 'phone', status: 'confirmed' }]);
    const { rows: calls } = await server.db.query<{ details: Record<string, unknown> }>('SELECT details FROM calls WHERE call_id = $1', [result.callSid]);
    const spokenDay = new Intl.DateTimeFormat('en-US', { weekday: 'long', month: 'long', day: 'numeric', timeZone: 'UTC' }).format(new Date(`${tomorrow}T12:00:00Z`));
    expect(calls[0].details).toMatchObject({ name: 'Dana', date: spokenDay, time: '21:00', party_size: 2, reservation_id: expect.any(Number) });
    const said = result.transcript.filter((line) => line.speaker === 'assistant').map((line) => line.text).join(' ');
    expect(said).toContain(`Thank you! I have booked name Dana, date ${spokenDay}, time 21:00, party size 2. Goodbye!`);
  });
});

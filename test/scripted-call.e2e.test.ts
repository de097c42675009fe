import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { simulateCall, signTwilioRequest, type CallerReply, type GatherPrompt } from '../src/simulator/twilio-simulator.js';
import { availableDatabaseKinds } from '../src/testing/test-databases.js';
import { startTestApp, type TestApp } from '../src/testing/test-app.js';
import { addDays, localNow, weekdayOf } from '../src/reservations/opening-hours.js';

/** A caller who says these lines in order, then hangs up. */
function scriptedCaller(lines: CallerReply[]) {
  const queue = [...lines];
  const heard: string[] = [];
  return {
    heard,
    caller: async (prompt: GatherPrompt) => {
      heard.push(prompt.text);
      return queue.length ? queue.shift()! : null;
    },
  };
}

describe.each(await availableDatabaseKinds())('a call without OpenAI, on %s', (kind) => {
  let server: TestApp;
  beforeAll(async () => {
    server = await startTestApp(kind, { OPENAI_API_KEY: '' });
  });
  afterAll(async () => server?.close());

  const call = (caller: (prompt: GatherPrompt) => Promise<CallerReply>, extra: Record<string, unknown> = {}) =>
    simulateCall({ baseUrl: server.baseUrl, publicUrl: server.publicUrl, authToken: server.authToken, caller, ...extra });

  it('collects the details one by one, books the table, reads it back and hangs up', async () => {
    // The restaurant profile takes reservations (closed on Mondays): a weekday two or three days ahead is always bookable.
    const londonToday = localNow('Europe/London').date;
    const day = weekdayOf(addDays(londonToday, 2)) === 'monday' ? addDays(londonToday, 3) : addDays(londonToday, 2);
    const weekday = weekdayOf(day);
    const spokenDay = new Intl.DateTimeFormat('en-US', { weekday: 'long', month: 'long', day: 'numeric', timeZone: 'UTC' }).format(new Date(`${day}T12:00:00Z`));
    const script = scriptedCaller(["Hi, I'd like to book a table", 'Anna Smith', weekday[0].toUpperCase() + weekday.slice(1), 'half past seven', 'four of us']);
    const result = await call(script.caller);

    expect(result.applicationErrors).toEqual([]);
    expect(result.endedBy).toBe('hangup');
    expect(script.heard[0]).toContain('Bella Vista');
    expect(script.heard[1]).toBe('What name should I put the reservation under?');
    expect(script.heard[2]).toBe('For which day would you like the table?');
    expect(script.heard[3]).toBe('At what time?');
    expect(script.heard[4]).toBe('For how many people?');
    const lastGather = result.events.findLastIndex((event) => event.type === 'gather-started');
    const finalWords = result.events.slice(lastGather).filter((event) => event.type === 'say-spoken');
    for (const said of finalWords) expect(said).toMatchObject({ voice: 'Polly.Joanna', language: 'en-US' });
    expect(finalWords.map((said) => ('text' in said ? said.text : '')).join(' ')).toBe(
      `Thank you! I have a reservation for name Anna Smith, date ${spokenDay}, time 19:30, party size 4. We look forward to seeing you. Goodbye!`,
    );

    const { rows: calls } = await server.db.query<Record<string, unknown>>('SELECT * FROM calls WHERE call_id = $1', [result.callSid]);
    expect(calls[0]).toMatchObject({
      status: 'completed',
      outcome: 'details-collected',
      assistant_mode: 'llm',
      details: { name: 'Anna Smith', date: spokenDay, time: '19:30', party_size: 4, reservation_id: expect.any(Number) },
    });
    const { rows: booked } = await server.db.query<Record<string, unknown>>(
      `SELECT name, to_char(reservation_date, 'YYYY-MM-DD') AS date, to_char(reservation_time, 'HH24:MI') AS time, party_size, call_id FROM reservations`,
    );
    expect(booked).toEqual([{ name: 'Anna Smith', date: day, time: '19:30', party_size: 4, call_id: result.callSid }]);
    expect(calls[0].duration_seconds).toBeGreaterThan(0);
    const { rows: turns } = await server.db.query<Record<string, unknown>>(
      'SELECT * FROM turns WHERE call_id = $1 ORDER BY turn_id',
      [result.callSid],
    );
    expect(turns.map((turn) => turn.seq)).toEqual([0, 1, 2, 3, 4, 5]);
    expect(turns.map((turn) => turn.kind)).toEqual(['greeting', 'speech', 'speech', 'speech', 'speech', 'speech']);
    expect(turns[2]).toMatchObject({ user_text: 'Anna Smith', assistant_text: 'For which day would you like the table?', action: 'listen', status: 'completed' });
    expect(turns[2].confidence).toBeCloseTo(0.92, 2);
    expect(turns[5]).toMatchObject({ action: 'hangup', assistant_mode: 'scripted' });
    for (const turn of turns) {
      expect(turn.received_at).toBeInstanceOf(Date);
      expect(turn.completed_at).toBeInstanceOf(Date);
      expect(turn.first_audio_at).toBeInstanceOf(Date);
    }
  });

  it('asks again on silence and says goodbye after three silences', async () => {
    const script = scriptedCaller(['', '', '']);
    const result = await call(script.caller);
    expect(result.endedBy).toBe('hangup');
    expect(script.heard[1]).toBe("Sorry, I didn't hear anything. Could you say that again?");
    expect(script.heard[2]).toBe(script.heard[1]);
    const said = result.events.filter((event) => event.type === 'say-spoken').map((event) => ('text' in event ? event.text : ''));
    expect(said.at(-1)).toContain("I'll hang up now");
    const { rows } = await server.db.query<Record<string, unknown>>('SELECT * FROM turns WHERE call_id = $1 ORDER BY turn_id', [result.callSid]);
    expect(rows.map((turn) => turn.kind)).toEqual(['greeting', 'silence', 'silence', 'silence']);
    const { rows: calls } = await server.db.query('SELECT outcome FROM calls WHERE call_id = $1', [result.callSid]);
    expect(calls[0]).toMatchObject({ outcome: 'no-input' });
  });

  it('asks the caller to repeat speech recognised with low confidence, and keeps its text', async () => {
    const script = scriptedCaller([{ speech: 'mumble mumble', confidence: 0.05 }, 'Anna']);
    const result = await call(script.caller);
    expect(script.heard[1]).toBe("Sorry, I didn't quite catch that. Could you repeat it, please?");
    const { rows } = await server.db.query<Record<string, unknown>>('SELECT * FROM turns WHERE call_id = $1 ORDER BY turn_id', [result.callSid]);
    expect(rows[1]).toMatchObject({ kind: 'unclear', user_text: 'mumble mumble' });
    expect(rows[1].confidence).toBeCloseTo(0.05, 2);
    expect(rows[2]).toMatchObject({ kind: 'speech', user_text: 'Anna' });
  });

  it("answers CallMe's single /voice webhook: the first request greets, later ones are turns", async () => {
    const script = scriptedCaller(['a table please', 'Ion Popescu']);
    const result = await call(script.caller, { entryPath: '/voice', statusPath: '/status' });
    expect(result.applicationErrors).toEqual([]);
    expect(script.heard[0]).toContain('Bella Vista');
    expect(script.heard[2]).toBe('For which day would you like the table?');
    const sent = result.events.filter((event) => event.type === 'webhook-sent').map((event) => ('url' in event ? event.url : ''));
    const paths = new Set(sent.map((url) => new URL(url).pathname));
    expect([...paths].sort()).toEqual(['/status', '/voice', '/voice/continue'].filter((path) => paths.has(path)));
    expect(paths.has('/voice')).toBe(true);
    expect(paths.has('/status')).toBe(true);
    const { rows } = await server.db.query('SELECT status FROM calls WHERE call_id = $1', [result.callSid]);
    expect(rows[0]).toMatchObject({ status: 'completed' });
  });

  it('gives one turn and the same answer to a webhook Twilio delivers twice at once', async () => {
    const script = scriptedCaller(['book a table', 'Maria', '']);
    const result = await call(script.caller, { duplicateWebhooks: true });
    const duplicates = result.events.filter((event) => event.type === 'webhook-duplicated');
    expect(duplicates.length).toBeGreaterThanOrEqual(4);
    for (const duplicate of duplicates) expect(duplicate).toMatchObject({ identical: true });
    const { rows } = await server.db.query<{ seq: number }>('SELECT seq FROM turns WHERE call_id = $1 ORDER BY turn_id', [result.callSid]);
    expect(rows.map((row) => row.seq)).toEqual([0, 1, 2, 3]);
    const { rows: events } = await server.db.query('SELECT * FROM call_events WHERE call_id = $1', [result.callSid]);
    expect(events).toHaveLength(1);
  });

  it('refuses unsigned, forged and re-addressed webhooks with 403 and stores nothing', async () => {
    const callSid = 'CA' + 'f'.repeat(32);
    const params = { CallSid: callSid, From: '+15551230000', To: '+15550001111', CallStatus: 'ringing' };
    const post = (path: string, headers: Record<string, string>) =>
      fetch(`${server.baseUrl}${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
        body: new URLSearchParams(params),
      });
    const unsigned = await post('/twilio/incoming', {});
    const forged = await post('/twilio/incoming', { 'x-twilio-signature': signTwilioRequest('wrong-token', `${server.publicUrl}/twilio/incoming`, params) });
    const elsewhere = await post('/twilio/incoming', { 'x-twilio-signature': signTwilioRequest(server.authToken, `${server.publicUrl}/voice`, params) });
    const tampered = await fetch(`${server.baseUrl}/twilio/status`, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        'x-twilio-signature': signTwilioRequest(server.authToken, `${server.publicUrl}/twilio/status`, { ...params, CallStatus: 'ringing' }),
      },
      body: new URLSearchParams({ ...params, CallStatus: 'completed' }),
    });
    for (const response of [unsigned, forged, elsewhere, tampered]) {
      expect(response.status).toBe(403);
      expect(await response.json()).toMatchObject({ error: { code: 'forbidden' } });
    }
    const { rows } = await server.db.query('SELECT * FROM calls WHERE call_id = $1', [callSid]);
    expect(rows).toEqual([]);
  });

  it('answers a signed webhook with a malformed CallSid with a 400, not a crash', async () => {
    const params = { CallSid: '../../etc/passwd', From: '+1' };
    const response = await fetch(`${server.baseUrl}/twilio/voice`, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        'x-twilio-signature': signTwilioRequest(server.authToken, `${server.publicUrl}/twilio/voice`, params),
      },
      body: new URLSearchParams(params),
    });
    expect(response.status).toBe(400);
    expect(await response.json()).toMatchObject({ error: { code: 'invalid_request' } });
  });

  it('reports health and readiness', async () => {
    expect(await (await fetch(`${server.baseUrl}/healthz`)).json()).toEqual({ status: 'ok' });
    expect(await (await fetch(`${server.baseUrl}/readyz`)).json()).toEqual({ status: 'ready', database: kind });
  });
});

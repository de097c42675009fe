import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runOutboundCommand } from '../src/outbound/outbound-cli.js';
import { simulateCall, type GatherPrompt, type SimulatorEvent } from '../src/simulator/twilio-simulator.js';
import { startFakeOpenAI, type FakeOpenAI } from '../src/testing/fake-openai-server.js';
import { startFakeTwilioRest, type FakeRestCall, type FakeTwilioRest } from '../src/testing/fake-twilio-rest.js';
import { startTestApp, testAuthToken, type TestApp } from '../src/testing/test-app.js';
import { availableDatabaseKinds } from '../src/testing/test-databases.js';
import { restaurantProfileWith, writeTestProfiles } from '../src/testing/test-profiles.js';

const adminToken = 'outbound-test-admin-token-0123456789';
const ourNumber = '+15550009999';
const guest = '+15551234567';
const details = 'your table for 4 on Friday at 7 pm';

describe.each(await availableDatabaseKinds())('outbound calls, on %s', (kind) => {
  let openai: FakeOpenAI;
  let rest: FakeTwilioRest;
  let profiles: Awaited<ReturnType<typeof writeTestProfiles>>;
  let server: TestApp;

  beforeAll(async () => {
    openai = await startFakeOpenAI();
    rest = await startFakeTwilioRest({ authToken: testAuthToken });
    profiles = await writeTestProfiles([await restaurantProfileWith({ outbound: { business: 'Bella Vista' } })]);
    server = await startTestApp(kind, {
      OPENAI_API_KEY: 'sk-test',
      OPENAI_BASE_URL: openai.url,
      TWILIO_ACCOUNT_SID: rest.accountSid,
      TWILIO_PHONE_NUMBER: ourNumber,
      TWILIO_API_BASE_URL: rest.url,
      PROFILES_DIR: profiles.directory,
      ADMIN_TOKEN: adminToken,
    });
  }, 30_000);
  afterAll(async () => {
    await server?.close();
    await rest?.close();
    await openai?.close();
    await profiles?.cleanup();
  });

  const placeCall = (body: Record<string, unknown>, token: string | undefined = adminToken) =>
    fetch(`${server.baseUrl}/api/calls`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
      body: JSON.stringify(body),
    });

  /** Plays Twilio answering the call the fake REST API recorded, as answering-machine detection reports it. */
  const answer = (created: FakeRestCall, answeredBy: string, caller: (prompt: GatherPrompt) => Promise<string | null>) => {
    const events: SimulatorEvent[] = [];
    const url = new URL(created.params.Url);
    expect(url.origin).toBe(server.publicUrl);
    return simulateCall({
      baseUrl: server.baseUrl,
      publicUrl: server.publicUrl,
      authToken: server.authToken,
      accountSid: rest.accountSid,
      callSid: created.sid,
      from: created.params.From,
      to: created.params.To,
      direction: 'outbound-api',
      entryPath: url.pathname,
      entryParams: { AnsweredBy: answeredBy },
      caller,
      onEvent: (event) => events.push(event),
    }).then((result) => ({ result, events }));
  };

  it('places the call through the REST API with answering-machine detection, and leaves the voicemail after the beep', async () => {
    const response = await placeCall({ to: guest, purpose: 'confirmation', details });
    expect(response.status).toBe(201);
    const placed = (await response.json()) as Record<string, string>;
    expect(placed).toMatchObject({ status: 'placed', to: guest, from: ourNumber, profile: 'restaurant', purpose: 'confirmation' });
    const created = rest.calls.find((call) => call.sid === placed.callSid)!;
    expect(created.params).toMatchObject({
      To: guest,
      From: ourNumber,
      Url: `https://callme.test/twilio/outbound/${placed.outboundId}`,
      Method: 'POST',
      MachineDetection: 'DetectMessageEnd',
      MachineDetectionTimeout: '30',
      StatusCallback: 'https://callme.test/twilio/status',
    });
    // Stored before it was dialled, with the lines it will say.
    const { rows: stored } = await server.db.query<Record<string, unknown>>('SELECT * FROM outbound_calls WHERE outbound_id = $1', [placed.outboundId]);
    expect(stored[0]).toMatchObject({ call_id: placed.callSid, details, status: 'placed' });

    const { result, events } = await answer(created, 'machine_end_beep', async () => {
      throw new Error('a voicemail does not listen');
    });
    expect(result.applicationErrors).toEqual([]);
    expect(result.warnings).toEqual([]);
    expect(result.endedBy).toBe('hangup');
    expect(events.some((event) => event.type === 'gather-started')).toBe(false);
    const played = events.filter((event) => event.type === 'audio-played');
    expect(played).toHaveLength(1);

    const voicemail = `Hello, this is Bella Vista calling to confirm ${details}. If anything has changed, please call us back. Thank you, goodbye!`;
    const { rows: calls } = await server.db.query<Record<string, unknown>>('SELECT * FROM calls WHERE call_id = $1', [result.callSid]);
    expect(calls[0]).toMatchObject({ direction: 'outbound-api', profile_id: 'restaurant', outcome: 'voicemail', status: 'completed', to_number: guest });
    const { rows: turns } = await server.db.query<Record<string, unknown>>('SELECT kind, assistant_text, action FROM turns WHERE call_id = $1', [result.callSid]);
    expect(turns).toEqual([{ kind: 'greeting', assistant_text: voicemail, action: 'hangup' }]);
    const { rows: after } = await server.db.query<Record<string, unknown>>('SELECT status, answered_by FROM outbound_calls WHERE outbound_id = $1', [placed.outboundId]);
    expect(after[0]).toEqual({ status: 'machine', answered_by: 'machine_end_beep' });
    // No model was asked: the message is the purpose's, word for word.
    expect(openai.requests.filter((request) => request.endpoint === 'chat')).toHaveLength(0);
  });

  it('opens a conversation with the purpose\'s greeting when a person answers, and tells the model why it called', async () => {
    const response = await placeCall({ to: guest, purpose: 'reminder', details: 'your table for 2 tomorrow at 8 pm' });
    const placed = (await response.json()) as Record<string, string>;
    const created = rest.calls.find((call) => call.sid === placed.callSid)!;
    const heard: GatherPrompt[] = [];
    const { result } = await answer(created, 'human', async (prompt) => {
      heard.push(prompt);
      return prompt.turn === 1 ? 'Yes, that is fine, bye' : null;
    });
    expect(result.applicationErrors).toEqual([]);
    expect(result.warnings).toEqual([]);
    expect(result.endedBy).toBe('hangup');
    expect(heard).toHaveLength(1);
    const { rows: turns } = await server.db.query<Record<string, unknown>>('SELECT seq, assistant_text FROM turns WHERE call_id = $1 ORDER BY seq', [result.callSid]);
    expect(turns[0].assistant_text).toBe(
      'Hello, this is Bella Vista calling with a reminder: your table for 2 tomorrow at 8 pm. Is there anything you would like to change?',
    );
    const chat = openai.requests.filter((request) => request.endpoint === 'chat').at(-1);
    const system = String((chat?.body?.messages as Array<{ role: string; content: string }>)[0].content);
    expect(system).toContain('This is a call you placed (purpose: reminder; your table for 2 tomorrow at 8 pm)');
    const detail = (await (await fetch(`${server.baseUrl}/api/calls/${result.callSid}`, { headers: { authorization: `Bearer ${adminToken}` } })).json()) as { outbound: unknown };
    expect(detail.outbound).toMatchObject({ purpose: 'reminder', status: 'human', answeredBy: 'human' });
  });

  it('refuses bad requests by field, unauthenticated ones, and reports a call Twilio refused', async () => {
    expect((await placeCall({ to: guest, purpose: 'reminder', details }, '')).status).toBe(401);
    const badNumber = await placeCall({ to: '555-1234', purpose: 'reminder', details });
    expect(badNumber.status).toBe(400);
    expect(((await badNumber.json()) as { error: { field: string } }).error.field).toBe('to');
    const badPurpose = await placeCall({ to: guest, purpose: 'birthday', details });
    expect(((await badPurpose.json()) as { error: { field: string; message: string } }).error).toMatchObject({ field: 'purpose' });
    const noDetails = await placeCall({ to: guest, purpose: 'reminder' });
    expect(((await noDetails.json()) as { error: { field: string } }).error.field).toBe('details');

    const before = rest.calls.length;
    rest.failNext(400, 21215, 'Geo permission configuration is not permitting call');
    const refused = await placeCall({ to: '+442071234567', purpose: 'reminder', details });
    expect(refused.status).toBe(400);
    expect(((await refused.json()) as { error: { message: string } }).error.message).toMatch(/Geo permission/);
    expect(rest.calls.length).toBe(before);
    const { rows } = await server.db.query<Record<string, unknown>>(`SELECT status, error FROM outbound_calls WHERE to_number = '+442071234567'`);
    expect(rows[0]).toMatchObject({ status: 'failed' });
  });

  it('places a call from the command line through the server\'s API', async () => {
    const lines: string[] = [];
    const status = await runOutboundCommand(
      ['--to', '+15557654321', '--purpose', 'confirmation', '--details', 'your table for 6 on Sunday at noon', '--url', server.baseUrl, '--token', adminToken],
      { print: (line) => lines.push(line), config: server.config },
    );
    expect(status).toBe(0);
    expect(lines[0]).toMatch(/^Calling \+15557654321 from \+15550009999 \(confirmation, profile restaurant\): CA[0-9a-f]{32}$/);
    expect(rest.calls.at(-1)?.params.To).toBe('+15557654321');
    expect(await runOutboundCommand(['--to', '+15557654321'], { print: () => {}, config: server.config })).toBe(2);
    expect(await runOutboundCommand(['--to', '+15557654321', '--purpose', 'nope', '--url', server.baseUrl, '--token', adminToken], { print: () => {}, config: server.config })).toBe(1);
  });
});

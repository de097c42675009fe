import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { simulateCall, type SimulatorEvent } from '../src/simulator/twilio-simulator.js';
import { startFakeOpenAI, type FakeOpenAI } from '../src/testing/fake-openai-server.js';
import { startFakeTwilioRest, type FakeTwilioRest } from '../src/testing/fake-twilio-rest.js';
import { postSignedWebhook, startTestApp, testAuthToken, type TestApp } from '../src/testing/test-app.js';
import { availableDatabaseKinds } from '../src/testing/test-databases.js';
import { restaurantProfileWith, writeTestProfiles } from '../src/testing/test-profiles.js';

const disclosure = 'This call is recorded so we can get your booking right.';

describe.each(await availableDatabaseKinds())('a recorded call, on %s', (kind) => {
  let openai: FakeOpenAI;
  let rest: FakeTwilioRest;
  let profiles: Awaited<ReturnType<typeof writeTestProfiles>>;
  let server: TestApp;

  beforeAll(async () => {
    openai = await startFakeOpenAI();
    rest = await startFakeTwilioRest({ authToken: testAuthToken });
    profiles = await writeTestProfiles([await restaurantProfileWith({ recording: { enabled: true, disclosure, channels: 'dual' } })]);
    server = await startTestApp(kind, {
      OPENAI_API_KEY: 'sk-test',
      OPENAI_BASE_URL: openai.url,
      TWILIO_ACCOUNT_SID: rest.accountSid,
      TWILIO_API_BASE_URL: rest.url,
      PROFILES_DIR: profiles.directory,
      AUDIO_RETENTION: '7d',
    });
  }, 30_000);
  afterAll(async () => {
    await server?.close();
    await rest?.close();
    await openai?.close();
    await profiles?.cleanup();
  });

  it('announces the recording, starts it with <Start><Recording>, stores its callbacks and fetches the audio into the store', async () => {
    const events: SimulatorEvent[] = [];
    const result = await simulateCall({
      baseUrl: server.baseUrl,
      publicUrl: server.publicUrl,
      authToken: server.authToken,
      accountSid: rest.accountSid,
      caller: async (prompt) => (prompt.turn === 1 ? 'Nothing more, thanks, bye' : null),
      onRecordingStarted: ({ callSid }) => {
        const recording = rest.addRecording({ callSid, durationSeconds: 6, channels: 2 });
        return { recordingSid: recording.sid, recordingUrl: recording.url };
      },
      onEvent: (event) => events.push(event),
    });
    expect(result.applicationErrors).toEqual([]);
    expect(result.warnings).toEqual([]);
    expect(result.endedBy).toBe('hangup');

    // The first TwiML starts the recording before anything is played, and the disclosure is the first thing heard.
    const first = events.find((event) => event.type === 'webhook-answered');
    expect(first?.type === 'webhook-answered' && first.body).toMatch(
      /^<\?xml[^>]*\?><Response><Start><Recording recordingStatusCallback="https:\/\/callme\.test\/twilio\/recording-status" recordingStatusCallbackMethod="POST" recordingStatusCallbackEvent="in-progress completed absent" channels="dual"\/><\/Start><Play>/,
    );
    const started = events.findIndex((event) => event.type === 'recording-started');
    const firstPlay = events.findIndex((event) => event.type === 'audio-played');
    expect(started).toBeGreaterThan(-1);
    expect(started).toBeLessThan(firstPlay);
    // Only the greeting starts it: one recording per call.
    expect(events.filter((event) => event.type === 'recording-started')).toHaveLength(1);
    const { rows: turns } = await server.db.query<{ assistant_text: string }>('SELECT assistant_text FROM turns WHERE call_id = $1 ORDER BY seq', [result.callSid]);
    expect(turns[0].assistant_text.startsWith(disclosure)).toBe(true);

    // Both callbacks (in-progress, then completed) were answered; the download runs after the answer.
    const callbacks = events.filter((event) => event.type === 'recording-callback-sent');
    expect(callbacks.map((event) => event.type === 'recording-callback-sent' && [event.recordingStatus, event.status])).toEqual([
      ['in-progress', 200],
      ['completed', 200],
    ]);
    await server.app.services.recordings.settle();
    const recordingSid = rest.recordings.at(-1)!.sid;
    const { rows } = await server.db.query<Record<string, unknown>>(
      'SELECT r.*, a.filename, a.content_type, a.size_bytes FROM recordings r JOIN audio_files a ON a.audio_id = r.audio_id WHERE r.call_id = $1',
      [result.callSid],
    );
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({
      recording_sid: recordingSid,
      status: 'completed',
      channels: 2,
      source: 'StartCallRecordingTwiML',
      source_url: rest.recordings.at(-1)!.url,
      content_type: 'audio/mpeg',
      fetch_error: null,
    });
    // Reported by Twilio: from the start of the recording (after the first webhook answered) to the hang-up.
    expect(Math.abs(Number(rows[0].duration_seconds) - result.durationSeconds)).toBeLessThanOrEqual(1);
    // Fetched from the REST API with the account's credentials, as MP3.
    const fetched = rest.requests.find((request) => request.path.endsWith(`/Recordings/${recordingSid}.mp3`));
    expect(fetched).toMatchObject({ method: 'GET', status: 200, authenticated: true });
    const filename = String(rows[0].filename);
    expect(await server.app.services.audioStore.has(filename)).toBe(true);

    // Not on the public route Twilio plays from…
    expect((await fetch(`${server.baseUrl}/audio/${filename}`)).status).toBe(404);
    // …but in the call's API detail and playable behind the admin sign-in (this machine, no token configured).
    const detail = (await (await fetch(`${server.baseUrl}/api/calls/${result.callSid}`)).json()) as { recordings: Array<{ url: string; status: string }> };
    expect(detail.recordings).toEqual([expect.objectContaining({ recordingSid, status: 'completed', channels: 2, contentType: 'audio/mpeg' })]);
    const audio = await fetch(`${server.baseUrl}${detail.recordings[0].url}`);
    expect(audio.status).toBe(200);
    expect(audio.headers.get('content-type')).toBe('audio/mpeg');
    expect(Number(audio.headers.get('content-length'))).toBe(rows[0].size_bytes);
    await audio.arrayBuffer();
    const page = await (await fetch(`${server.baseUrl}/dashboard/calls/${result.callSid}`)).text();
    expect(page).toContain(`data-testid="recording-audio"`);
    expect(page).toContain(`src="${detail.recordings[0].url}"`);

    // Retention applies to the recording like to the rest of the call's audio.
    await server.app.services.statusRecorder.sweepExpiredAudio(new Date(Date.now() + 8 * 86_400_000));
    expect(await server.app.services.audioStore.has(filename)).toBe(false);
    const after = (await (await fetch(`${server.baseUrl}/api/calls/${result.callSid}`)).json()) as { recordings: Array<{ url: string | null; note: string | null }> };
    expect(after.recordings[0]).toMatchObject({ url: null, note: 'deleted under the audio retention setting' });
    expect((await fetch(`${server.baseUrl}${detail.recordings[0].url}`)).status).toBe(404);
  });

  it('keeps a completed status when a late in-progress callback arrives, and stores a recording it cannot fetch with the reason', async () => {
    const result = await simulateCall({ baseUrl: server.baseUrl, publicUrl: server.publicUrl, authToken: server.authToken, accountSid: rest.accountSid, caller: async () => null });
    const recordingSid = `RE${'a'.repeat(32)}`;
    const base = { AccountSid: rest.accountSid, CallSid: result.callSid, RecordingSid: recordingSid, RecordingUrl: `${rest.url}/2010-04-01/Accounts/${rest.accountSid}/Recordings/${recordingSid}` };
    expect((await postSignedWebhook(server, '/twilio/recording-status', { ...base, RecordingStatus: 'completed', RecordingDuration: '4', RecordingChannels: '1' })).status).toBe(200);
    expect((await postSignedWebhook(server, '/twilio/recording-status', { ...base, RecordingStatus: 'in-progress', RecordingDuration: '-1' })).status).toBe(200);
    await server.app.services.recordings.settle();
    const { rows } = await server.db.query<Record<string, unknown>>('SELECT status, duration_seconds, audio_id, fetch_error FROM recordings WHERE recording_sid = $1', [recordingSid]);
    // The fake has no such recording: Twilio's 404 is kept as the reason there is no copy.
    expect(rows[0]).toMatchObject({ status: 'completed', duration_seconds: 4, audio_id: null });
    expect(String(rows[0].fetch_error)).toMatch(/HTTP 404/);
  });

  it('refuses an unsigned recording callback, and ignores one for a call it does not know', async () => {
    const params = { AccountSid: rest.accountSid, CallSid: `CA${'b'.repeat(32)}`, RecordingSid: `RE${'b'.repeat(32)}`, RecordingStatus: 'completed' };
    const unsigned = await fetch(`${server.baseUrl}/twilio/recording-status`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams(params),
    });
    expect(unsigned.status).toBe(403);
    expect((await postSignedWebhook(server, '/twilio/recording-status', params)).status).toBe(200);
    const { rows } = await server.db.query('SELECT 1 FROM recordings WHERE recording_sid = $1', [params.RecordingSid]);
    expect(rows).toHaveLength(0);
    expect((await postSignedWebhook(server, '/twilio/recording-status', { ...params, RecordingSid: 'nope' })).status).toBe(400);
  });
});

import { readdir } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { simulateCall } from '../src/simulator/twilio-simulator.js';
import { startFakeOpenAI, type FakeOpenAI } from '../src/testing/fake-openai-server.js';
import { postSignedWebhook, startTestApp, type TestApp } from '../src/testing/test-app.js';

describe('audio retention and status callbacks', () => {
  let openai: FakeOpenAI;
  let server: TestApp;
  beforeAll(async () => {
    openai = await startFakeOpenAI();
    server = await startTestApp('pglite', { OPENAI_API_KEY: 'sk-test', OPENAI_BASE_URL: openai.url, AUDIO_RETENTION: '7d' });
  });
  afterAll(async () => {
    await server?.close();
    await openai?.close();
  });

  const postStatus = (params: Record<string, string>) => postSignedWebhook(server, '/twilio/status', params);

  it('keeps a call\'s audio for the configured days, then the sweep deletes it', async () => {
    openai.queueChatReplies({ text: 'We open at noon.' });
    const lines = ['When do you open?'];
    const result = await simulateCall({
      baseUrl: server.baseUrl,
      publicUrl: server.publicUrl,
      authToken: server.authToken,
      caller: async () => lines.shift() ?? null,
    });
    expect(result.applicationErrors).toEqual([]);
    const { rows: calls } = await server.db.query<Record<string, unknown>>('SELECT * FROM calls WHERE call_id = $1', [result.callSid]);
    expect(calls[0]).toMatchObject({ audio_retention: 'keep-7-days', audio_deleted_at: null });
    const expires = (calls[0].audio_expires_at as Date).getTime();
    expect(Math.abs(expires - (Date.now() + 7 * 86_400_000))).toBeLessThan(60_000);
    const { rows: files } = await server.db.query<{ filename: string }>('SELECT filename FROM audio_files WHERE call_id = $1', [result.callSid]);
    expect(files.length).toBeGreaterThan(0);
    expect(await readdir(server.config.audioDir)).toContain(files[0].filename);

    expect(await server.app.services.statusRecorder.sweepExpiredAudio(new Date())).toBe(0);
    expect(await server.app.services.statusRecorder.sweepExpiredAudio(new Date(Date.now() + 8 * 86_400_000))).toBe(1);
    const after = await readdir(server.config.audioDir);
    for (const file of files) expect(after).not.toContain(file.filename);
    const { rows: swept } = await server.db.query<Record<string, unknown>>('SELECT * FROM calls WHERE call_id = $1', [result.callSid]);
    expect(swept[0].audio_deleted_at).toBeInstanceOf(Date);
    expect(swept[0].audio_retention).toBe('keep-7-days');
  });

  it('applies each status callback once, and never lets an older status overwrite a newer one', async () => {
    const callSid = 'CA' + '1'.repeat(32);
    const base = { CallSid: callSid, From: '+15551230000', To: '+15550001111' };
    const completed = { ...base, CallStatus: 'completed', CallDuration: '42', SequenceNumber: '3', Timestamp: 'Sun, 22 Nov 2026 03:00:00 +0000' };
    expect((await postStatus({ ...base, CallStatus: 'ringing', SequenceNumber: '0' })).status).toBe(200);
    expect((await postStatus(completed)).status).toBe(200);
    expect((await postStatus(completed)).status).toBe(200);
    expect((await postStatus({ ...base, CallStatus: 'in-progress', SequenceNumber: '1' })).status).toBe(200);
    const { rows: calls } = await server.db.query<Record<string, unknown>>('SELECT * FROM calls WHERE call_id = $1', [callSid]);
    expect(calls[0]).toMatchObject({ status: 'completed', duration_seconds: 42, outcome: 'hung-up' });
    expect((calls[0].ended_at as Date).toISOString()).toBe('2026-11-22T03:00:00.000Z');
    const { rows: events } = await server.db.query('SELECT status FROM call_events WHERE call_id = $1 ORDER BY event_id', [callSid]);
    expect(events.map((event) => (event as { status: string }).status)).toEqual(['ringing', 'completed', 'in-progress']);
  });

  it('records a call that was never answered', async () => {
    const callSid = 'CA' + '2'.repeat(32);
    expect((await postStatus({ CallSid: callSid, CallStatus: 'no-answer', SequenceNumber: '1' })).status).toBe(200);
    const { rows } = await server.db.query('SELECT status, outcome FROM calls WHERE call_id = $1', [callSid]);
    expect(rows[0]).toEqual({ status: 'no-answer', outcome: 'missed' });
  });
});

describe('per-number call limit', () => {
  let server: TestApp;
  beforeAll(async () => {
    server = await startTestApp('pglite', { OPENAI_API_KEY: '', MAX_CALLS_PER_NUMBER_PER_HOUR: '2' });
  });
  afterAll(async () => server?.close());

  it('answers a number over its hourly limit with a short message and a hang-up, and stores no call', async () => {
    const place = async (index: number) => {
      const params = { CallSid: 'CA' + String(index).padStart(32, 'c'), From: '+15557654321', To: '+15550001111', CallStatus: 'ringing' };
      const response = await postSignedWebhook(server, '/twilio/incoming', params);
      return response.text();
    };
    expect(await place(1)).toContain('<Gather');
    expect(await place(2)).toContain('<Gather');
    const third = await place(3);
    expect(third).toContain('too many calls');
    expect(third).toContain('<Hangup/>');
    const { rows } = await server.db.query('SELECT count(*)::int AS count FROM calls WHERE from_number = $1', ['+15557654321']);
    expect(rows[0]).toEqual({ count: 2 });
    // A retry of an admitted call is still answered normally.
    expect(await place(1)).toContain('<Gather');
  });
});

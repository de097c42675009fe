import { XMLParser } from 'fast-xml-parser';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postSignedWebhook, startTestApp, type TestApp } from '../src/testing/test-app.js';

// An instance killed while producing a turn leaves the row `processing`. A
// retried webhook reaching another instance (or the restarted one) must still
// be answered, not told to come back again and again.
describe('a turn whose producer died', () => {
  let server: TestApp;
  beforeAll(async () => {
    server = await startTestApp('pglite');
  });
  afterAll(async () => {
    await server?.close();
  });

  const callSid = `CA${'d'.repeat(32)}`;
  const params = { CallSid: callSid, AccountSid: `AC${'a'.repeat(32)}`, From: '+15005550006', To: '+15005550001', CallStatus: 'in-progress' };

  it('is closed as failed once past its deadline, and the retry hears an apology and is listened to', async () => {
    const repository = server.app.services.repository;
    await repository.upsertCall({ callId: callSid, from: params.From, to: params.To, profileId: 'restaurant', language: 'en-US', status: 'in-progress' });
    const { turn } = await repository.claimTurn({ callId: callSid, seq: 1, kind: 'speech', userText: 'A table please', receivedAt: new Date(Date.now() - 10 * 60_000) });
    expect(turn.status).toBe('processing');

    const response = await postSignedWebhook(server, '/twilio/voice?turn=1', { ...params, SpeechResult: 'A table please', Confidence: '0.9' });
    expect(response.status).toBe(200);
    const twiml = new XMLParser({ ignoreAttributes: false }).parse(await response.text());
    expect(twiml.Response.Redirect).toBeUndefined();
    expect(twiml.Response.Gather['@_action']).toBe(`${server.publicUrl}/twilio/voice?turn=2`);
    expect(JSON.stringify(twiml.Response)).toContain('trouble');

    const stored = await repository.getTurn(turn.turn_id);
    expect(stored).toMatchObject({ status: 'failed', error_code: 'orphaned', action: 'listen' });
  });

  it('leaves a turn within its deadline alone', async () => {
    const repository = server.app.services.repository;
    const { turn } = await repository.claimTurn({ callId: callSid, seq: 5, kind: 'speech', userText: 'Hello', receivedAt: new Date() });
    const progress = await server.app.services.engine.readReply(turn.turn_id, 0, 50);
    expect(progress?.done).toBe(false);
    expect((await repository.getTurn(turn.turn_id))?.status).toBe('processing');
  });
});

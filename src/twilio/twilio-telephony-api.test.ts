import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseWav } from '../audio/wav.js';
import { startFakeTwilioRest, type FakeTwilioRest } from '../testing/fake-twilio-rest.js';
import { TelephonyApiError } from './telephony-api.js';
import { TwilioTelephonyApi } from './twilio-telephony-api.js';

describe('TwilioTelephonyApi against the fake REST API', () => {
  let rest: FakeTwilioRest;
  let api: TwilioTelephonyApi;
  beforeAll(async () => {
    rest = await startFakeTwilioRest();
    api = new TwilioTelephonyApi({ accountSid: rest.accountSid, authToken: rest.authToken, apiBaseUrl: rest.url });
  });
  afterAll(async () => {
    await rest?.close();
  });

  it('places a call with the twilio package: the fake records To, From, Url, machine detection and status callback', async () => {
    const placed = await api.placeCall({
      to: '+15551230001',
      from: '+15550009999',
      url: 'https://callme.test/twilio/outbound/abc',
      statusCallback: 'https://callme.test/twilio/status',
      machineDetection: 'DetectMessageEnd',
      machineDetectionTimeoutSeconds: 30,
    });
    expect(placed.callSid).toMatch(/^CA[0-9a-f]{32}$/);
    expect(placed.status).toBe('queued');
    const call = rest.calls.find((candidate) => candidate.sid === placed.callSid);
    expect(call?.params).toMatchObject({
      To: '+15551230001',
      From: '+15550009999',
      Url: 'https://callme.test/twilio/outbound/abc',
      Method: 'POST',
      StatusCallback: 'https://callme.test/twilio/status',
      StatusCallbackEvent: 'initiated ringing answered completed',
      MachineDetection: 'DetectMessageEnd',
      MachineDetectionTimeout: '30',
    });
    // The SDK's own request went to the fake, with the account's Basic credentials.
    expect(rest.requests.at(-1)).toMatchObject({ method: 'POST', path: `/2010-04-01/Accounts/${rest.accountSid}/Calls.json`, authenticated: true });
  });

  it('turns a refusal into a TelephonyApiError with Twilio\'s code', async () => {
    rest.failNext(400, 21215, 'Geo permission configuration is not permitting call');
    const error = await api
      .placeCall({ to: '+15551230002', from: '+15550009999', url: 'https://callme.test/x', statusCallback: 'https://callme.test/s' })
      .catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(TelephonyApiError);
    expect(error).toMatchObject({ status: 400, providerCode: 21215, retryable: false });
  });

  it('refuses wrong credentials like Twilio', async () => {
    const wrong = new TwilioTelephonyApi({ accountSid: rest.accountSid, authToken: 'not-the-token', apiBaseUrl: rest.url });
    await expect(
      wrong.placeCall({ to: '+15551230003', from: '+15550009999', url: 'https://callme.test/x', statusCallback: 'https://callme.test/s' }),
    ).rejects.toMatchObject({ status: 401 });
  });

  it('downloads a recording as WAV or MP3 with the credentials', async () => {
    const recording = rest.addRecording({ callSid: `CA${'0'.repeat(32)}`, durationSeconds: 3 });
    const wav = await api.fetchRecording({ accountSid: rest.accountSid, recordingSid: recording.sid, format: 'wav' });
    expect(wav.contentType).toBe('audio/x-wav');
    expect(parseWav(wav.bytes)).toMatchObject({ sampleRate: 8000, bitsPerSample: 16, durationMs: 3000 });
    const mp3 = await api.fetchRecording({ accountSid: rest.accountSid, recordingSid: recording.sid, format: 'mp3' });
    expect(mp3.contentType).toBe('audio/mpeg');
    expect([mp3.bytes[0], mp3.bytes[1]]).toEqual([0xff, 0xf3]);
    await expect(api.fetchRecording({ accountSid: rest.accountSid, recordingSid: `RE${'f'.repeat(32)}`, format: 'mp3' })).rejects.toMatchObject({ status: 404 });
  });

  it('creates a recording on a call through the Recordings resource', async () => {
    const placed = await api.placeCall({ to: '+15551230004', from: '+15550009999', url: 'https://callme.test/x', statusCallback: 'https://callme.test/s' });
    const client = (await import('twilio')).default(rest.accountSid, rest.authToken, {
      httpClient: (api as unknown as { client: { httpClient: never } }).client.httpClient,
    });
    const created = await client.calls(placed.callSid).recordings.create({ recordingChannels: 'dual', recordingStatusCallback: 'https://callme.test/twilio/recording-status' });
    expect(created.sid).toMatch(/^RE/);
    expect(rest.recordings.at(-1)?.params).toMatchObject({ RecordingChannels: 'dual', RecordingStatusCallback: 'https://callme.test/twilio/recording-status' });
    const updated = await client.calls(placed.callSid).update({ status: 'completed' });
    expect(updated.status).toBe('completed');
  });
});

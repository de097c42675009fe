import { describe, expect, it } from 'vitest';
import type { AssistantProfile, ProfileSet } from '../assistant/profile.js';
import type { TurnRow } from '../storage/call-repository.js';
import type { AnalyticsRows } from './admin-repository.js';
import { buildAnalyticsReport, daysBetween } from './analytics.js';
import { CallViews, latencyOf } from './call-views.js';
import { defaultPriceTable } from './pricing.js';

const t0 = Date.parse('2025-03-01T10:00:00Z');
const turn = (stages: Partial<Record<keyof TurnRow, number>>): TurnRow =>
  ({
    received_at: new Date(t0),
    speech_ended_at: null,
    transcript_final_at: null,
    llm_first_token_at: null,
    first_text_at: null,
    tts_first_byte_at: null,
    first_audio_at: null,
    first_frame_at: null,
    completed_at: null,
    mark_echoed_at: null,
    ...Object.fromEntries(Object.entries(stages).map(([column, ms]) => [column, new Date(t0 + (ms as number))])),
  }) as unknown as TurnRow;

describe('latencyOf', () => {
  it('cuts a webhook turn into its stages from the webhook on', () => {
    const latency = latencyOf(turn({ llm_first_token_at: 400, first_text_at: 520, first_audio_at: 900, completed_at: 1500 }));
    expect(latency.stages).toEqual([
      { name: 'model', label: 'Model: first token', startMs: 0, endMs: 400 },
      { name: 'first-sentence', label: 'First sentence written', startMs: 400, endMs: 520 },
      { name: 'first-audio', label: 'First audio playable', startMs: 520, endMs: 900 },
      { name: 'complete', label: 'Reply complete', startMs: 900, endMs: 1500 },
    ]);
    expect(latency.timeToFirstAudioMs).toBe(900);
    expect(latency.totalMs).toBe(1500);
  });

  it('starts a media-stream turn when the caller stopped speaking', () => {
    const latency = latencyOf(turn({ speech_ended_at: -200, transcript_final_at: 100, llm_first_token_at: 500, first_text_at: 550, tts_first_byte_at: 800, first_frame_at: 850 }));
    expect(latency.stages.map((stage) => [stage.name, stage.startMs, stage.endMs])).toEqual([
      ['received', 0, 200],
      ['transcription', 200, 300],
      ['model', 300, 700],
      ['first-sentence', 700, 750],
      ['synthesis', 750, 1000],
      ['first-frame', 1000, 1050],
    ]);
    expect(latency.timeToFirstAudioMs).toBe(1050);
  });

  it('has nothing to show for a turn still waiting', () => {
    expect(latencyOf(turn({}))).toEqual({ stages: [], timeToFirstAudioMs: null, totalMs: null });
  });
});

const profile = { id: 'restaurant', name: 'Bella', speech: 'openai', ttsModel: 'tts-1', details: [{ name: 'phone', type: 'phone' }], stream: { transcriptionModel: 'gpt-4o-mini-transcribe', realtimeModel: 'gpt-realtime' } } as unknown as AssistantProfile;
const profiles: ProfileSet = { defaultProfile: profile, all: [profile], forNumber: () => profile, byId: (id) => (id === profile.id ? profile : undefined) };

describe('CallViews', () => {
  it('picks the models a call used from its profile and mode', () => {
    const views = new CallViews({ profiles, defaultChatModel: 'gpt-4o-mini', prices: defaultPriceTable, maskPhoneNumbers: false });
    expect(views.models('restaurant', 'webhook')).toEqual({ chatModel: 'gpt-4o-mini', speechModel: 'tts-1', transcriptionModel: 'twilio-speech-recognition' });
    expect(views.models('restaurant', 'stream')).toMatchObject({ transcriptionModel: 'gpt-4o-mini-transcribe' });
    expect(views.models('restaurant', 'realtime')).toEqual({ chatModel: 'gpt-realtime', speechModel: undefined, transcriptionModel: undefined });
  });

  it('masks callers and phone details when asked', () => {
    const views = new CallViews({ profiles, defaultChatModel: 'gpt-4o-mini', prices: defaultPriceTable, maskPhoneNumbers: true });
    expect(views.phone('+15551234567')).toBe('+1555****567');
    expect(views.maskDetails('restaurant', { phone: '+15551234567', name: 'Anna' })).toEqual({ phone: '+1555****567', name: 'Anna' });
  });
});

describe('buildAnalyticsReport', () => {
  it('lines every series up with the days of the range, zeros (or gaps) where nothing happened', () => {
    const rows: AnalyticsRows = {
      callsPerDay: [{ day: '2025-03-02', calls: 3, ended: 3, failed: 1, duration_seconds: 300 }],
      durationBuckets: [{ bucket: 5, calls: 3 }],
      timeToFirstAudio: [{ day: '2025-03-02', turns: 4, p50_ms: 812.4, p95_ms: 1500.6 }],
      timeToFirstAudioOverall: { turns: 4, p50_ms: 812.4, p95_ms: 1500.6 },
      confidenceBuckets: [{ bucket: 9, turns: 4 }],
      usagePerDay: [{ day: '2025-03-02', profile_id: 'restaurant', mode: 'webhook', calls: 3, billed_minutes: 6, prompt_tokens: 1_000_000, completion_tokens: 0, tts_characters: 0, speech_seconds: 60 }],
      failureReasons: [],
      outcomes: [{ outcome: 'hung-up', calls: 3 }],
    };
    const views = new CallViews({ profiles, defaultChatModel: 'gpt-4o-mini', prices: defaultPriceTable, maskPhoneNumbers: false });
    const report = buildAnalyticsReport(rows, { from: '2025-03-01', to: '2025-03-03' }, views);
    expect(report.days).toEqual(['2025-03-01', '2025-03-02', '2025-03-03']);
    expect(report.callsPerDay).toEqual([0, 3, 0]);
    expect(report.failedPerDay).toEqual([0, 1, 0]);
    expect(report.timeToFirstAudio.p50Ms).toEqual([null, 812, null]);
    expect(report.durationDistribution.at(-1)).toEqual({ label: '10m+', calls: 3 });
    expect(report.confidenceDistribution[9]).toEqual({ label: '0.9–1.0', turns: 4 });
    expect(report.totals).toMatchObject({ calls: 3, averageDurationSeconds: 100, billedMinutes: 6, transcriptionSecondsByProvider: { openai: 0, twilio: 60 } });
    expect(report.totals.cost.llm).toBe(0.15);
    expect(report.costPerDay.openai).toEqual([0, 0.15, 0]);
    expect(report.costPerDay.twilio[1]).toBeCloseTo(6 * 0.0085 + 0.08, 6);
    expect(report.outcomes).toEqual([{ outcome: 'hung-up', label: 'Caller hung up', calls: 3 }]);
  });

  it('counts days across month ends', () => {
    expect(daysBetween('2024-02-28', '2024-03-01')).toEqual(['2024-02-28', '2024-02-29', '2024-03-01']);
  });
});

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../storage/database.js';
import { availableDatabaseKinds, openTestDatabase, type TestDatabase } from '../testing/test-databases.js';
import { AdminRepository } from './admin-repository.js';

const at = (iso: string, plusMs = 0) => new Date(Date.parse(iso) + plusMs);

interface TurnFixture {
  seq: number;
  kind?: string;
  user?: string;
  confidence?: number;
  assistant?: string;
  status?: string;
  error?: string;
  tokens?: [number, number];
  tts?: number;
  /** Stage → milliseconds after `received`. */
  received: Date;
  stages?: Partial<Record<'llm_first_token_at' | 'first_text_at' | 'first_audio_at' | 'completed_at' | 'speech_ended_at' | 'transcript_final_at' | 'tts_first_byte_at' | 'first_frame_at', number>>;
}

async function insertCall(
  db: Database,
  call: { id: string; from: string; startedAt: Date | string; status: string; outcome?: string; duration?: number; profile?: string; mode?: string; ended?: boolean },
  turns: TurnFixture[] = [],
): Promise<number[]> {
  const started = typeof call.startedAt === 'string' ? call.startedAt : call.startedAt.toISOString();
  await db.query(
    `INSERT INTO calls (call_id, from_number, to_number, profile_id, language, status, outcome, started_at, ended_at, duration_seconds, mode)
     VALUES ($1, $2, '+14155550100', $3, 'en-US', $4, $5, $6::timestamptz, CASE WHEN $7 THEN $6::timestamptz + make_interval(secs => COALESCE($8, 0)) END, $8, $9)`,
    [call.id, call.from, call.profile ?? 'restaurant', call.status, call.outcome ?? null, started, call.ended ?? true, call.duration ?? null, call.mode ?? 'webhook'],
  );
  const ids: number[] = [];
  for (const turn of turns) {
    const stage = (name: keyof NonNullable<TurnFixture['stages']>) => (turn.stages?.[name] === undefined ? null : at(turn.received.toISOString(), turn.stages[name]));
    const { rows } = await db.query<{ turn_id: string }>(
      `INSERT INTO turns (call_id, seq, kind, user_text, confidence, assistant_text, status, error_code, error_message, prompt_tokens, completion_tokens, tts_characters,
                          received_at, llm_first_token_at, first_text_at, first_audio_at, completed_at, speech_ended_at, transcript_final_at, tts_first_byte_at, first_frame_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21) RETURNING turn_id`,
      [
        call.id, turn.seq, turn.kind ?? (turn.seq === 0 ? 'greeting' : 'speech'), turn.user ?? null, turn.confidence ?? null, turn.assistant ?? 'ok',
        turn.status ?? 'completed', turn.error ?? null, turn.error ? `${turn.error} happened` : null, turn.tokens?.[0] ?? 0, turn.tokens?.[1] ?? 0, turn.tts ?? 0,
        turn.received, stage('llm_first_token_at'), stage('first_text_at'), stage('first_audio_at'), stage('completed_at'),
        stage('speech_ended_at'), stage('transcript_final_at'), stage('tts_first_byte_at'), stage('first_frame_at'),
      ],
    );
    ids.push(Number(rows[0].turn_id));
  }
  return ids;
}

async function insertAudio(db: Database, file: { id: string; callId: string | null; turnId: number | null; text: string; cacheKey?: string; deleted?: boolean }) {
  await db.query(
    `INSERT INTO audio_files (audio_id, filename, call_id, turn_id, cache_key, text, voice, model, format, content_type, size_bytes, duration_ms, deleted_at)
     VALUES ($1, $1 || '.wav', $2, $3, $4, $5, 'nova', 'tts-1', 'wav', 'audio/wav', 1000, 800, CASE WHEN $6 THEN now() END)`,
    [file.id, file.callId, file.turnId, file.cacheKey ?? null, file.text, file.deleted ?? false],
  );
}

describe.each(await availableDatabaseKinds())('AdminRepository on %s', (kind) => {
  let database: TestDatabase;
  let repository: AdminRepository;

  beforeAll(async () => {
    database = await openTestDatabase(kind);
    const db = database.db;
    repository = new AdminRepository(db);
    const aTurns = await insertCall(db, { id: 'CA-A', from: '+15551230001', startedAt: '2025-03-01T10:00:00Z', status: 'completed', outcome: 'details-collected', duration: 95 }, [
      { seq: 0, received: at('2025-03-01T10:00:01Z'), stages: { first_text_at: 1, first_audio_at: 5, completed_at: 6 } },
      { seq: 1, user: 'I want a TABLE for two', confidence: 0.91, tokens: [600, 20], tts: 11, received: at('2025-03-01T10:00:10Z'), stages: { llm_first_token_at: 400, first_text_at: 500, first_audio_at: 900, completed_at: 1200 } },
      { seq: 2, user: 'Tomorrow at 8% off_peak', confidence: 0.55, tokens: [800, 30], tts: 40, error: 'tts_failed', received: at('2025-03-01T10:00:40Z'), stages: { llm_first_token_at: 300, first_text_at: 350, first_audio_at: 700, completed_at: 1500 } },
    ]);
    await insertCall(db, { id: 'CA-B', from: '+15559990002', startedAt: '2025-03-01T23:30:00Z', status: 'busy', outcome: 'missed' });
    await insertCall(db, { id: 'CA-C', from: '+40721000003', startedAt: '2025-03-02T12:00:00Z', status: 'completed', outcome: 'hung-up', duration: 30, profile: 'clinica-ro', mode: 'stream' }, [
      { seq: 0, received: at('2025-03-02T12:00:01Z') },
      {
        seq: 1, user: 'Vreau o programare', confidence: 0.35, tokens: [300, 10], error: 'provider_timeout', received: at('2025-03-02T12:00:10Z'),
        stages: { speech_ended_at: -150, transcript_final_at: 50, llm_first_token_at: 450, first_text_at: 500, tts_first_byte_at: 750, first_frame_at: 800, completed_at: 1850 },
      },
    ]);
    await insertCall(db, { id: 'CA-D', from: 'anonymous', startedAt: '2025-03-03T00:00:00Z', status: 'completed', outcome: 'completed', duration: 61 });
    const minutesAgo = (minutes: number) => new Date(Date.now() - minutes * 60_000);
    await insertCall(db, { id: 'CA-E', from: '+15550000005', startedAt: minutesAgo(10), status: 'in-progress', ended: false }, [
      { seq: 0, received: minutesAgo(10) },
      { seq: 1, user: "What's on the menu?", confidence: 0.88, status: 'processing', received: minutesAgo(9) },
    ]);
    await insertCall(db, { id: 'CA-F', from: '+15550000006', startedAt: minutesAgo(2 * 24 * 60), status: 'in-progress', ended: false });

    await insertAudio(db, { id: 'greeting', callId: null, turnId: null, text: 'Hello!', cacheKey: 'greeting-key' });
    await insertAudio(db, { id: 'a1-0', callId: 'CA-A', turnId: aTurns[1], text: 'Sure,' });
    await insertAudio(db, { id: 'a1-1', callId: 'CA-A', turnId: aTurns[1], text: 'when?', deleted: true });
    await insertAudio(db, { id: 'a2-loose', callId: 'CA-A', turnId: aTurns[2], text: 'a file without a piece' });
    for (const [turnId, seq, audioId, text] of [[aTurns[0], 0, 'greeting', 'Hello!'], [aTurns[1], 0, 'a1-0', 'Sure,'], [aTurns[1], 1, 'a1-1', 'when?']] as const) {
      await db.query('INSERT INTO reply_segments (turn_id, seq, text, audio_id) VALUES ($1, $2, $3, $4)', [turnId, seq, text, audioId]);
    }
  });
  afterAll(async () => {
    await database?.cleanup();
  });

  const ids = async (filter: Parameters<AdminRepository['listCalls']>[0], page = { limit: 50, offset: 0 }) => {
    const { rows, total } = await repository.listCalls(filter, page);
    return { ids: rows.map((row) => row.call_id), total };
  };

  it('lists calls newest first, a page at a time, with the total', async () => {
    expect(await ids({})).toEqual({ ids: ['CA-E', 'CA-F', 'CA-D', 'CA-C', 'CA-B', 'CA-A'], total: 6 });
    expect(await ids({}, { limit: 2, offset: 2 })).toEqual({ ids: ['CA-D', 'CA-C'], total: 6 });
  });

  it('filters by UTC days, both ends included', async () => {
    expect((await ids({ from: '2025-03-01', to: '2025-03-02' })).ids).toEqual(['CA-C', 'CA-B', 'CA-A']);
    expect((await ids({ from: '2025-03-02', to: '2025-03-03' })).ids).toEqual(['CA-D', 'CA-C']);
    expect((await ids({ to: '2025-03-01' })).ids).toEqual(['CA-B', 'CA-A']);
  });

  it('filters by status, outcome, profile and number', async () => {
    expect((await ids({ status: 'busy' })).ids).toEqual(['CA-B']);
    expect((await ids({ outcome: 'hung-up' })).ids).toEqual(['CA-C']);
    expect((await ids({ profileId: 'clinica-ro' })).ids).toEqual(['CA-C']);
    expect((await ids({ number: '555-123' })).ids).toEqual(['CA-A']);
    expect((await ids({ number: '+40 721' })).ids).toEqual(['CA-C']);
    expect((await ids({ number: 'anonym' })).ids).toEqual(['CA-D']);
    expect((await ids({ number: '4155550100' })).total).toBe(6);
  });

  it('searches what was said, case-insensitively, taking % and _ literally', async () => {
    expect((await ids({ search: 'table' })).ids).toEqual(['CA-A']);
    expect((await ids({ search: 'MENU' })).ids).toEqual(['CA-E']);
    expect((await ids({ search: '8%' })).ids).toEqual(['CA-A']);
    expect((await ids({ search: '%' })).ids).toEqual(['CA-A']);
    expect((await ids({ search: '_' })).ids).toEqual(['CA-A']);
    expect((await ids({ search: 'nothing like this' })).total).toBe(0);
    expect((await ids({ search: 'table', status: 'busy' })).total).toBe(0);
  });

  it("sums each call's turns", async () => {
    const call = await repository.getCall('CA-A');
    expect(call).toMatchObject({ turn_count: 2, error_count: 1, prompt_tokens: 1400, completion_tokens: 50, tts_characters: 51, speech_seconds: 4 });
    expect(await repository.getCall('CA-B')).toMatchObject({ turn_count: 0, prompt_tokens: 0, speech_seconds: 0 });
    expect(await repository.getCall('CA-nope')).toBeUndefined();
  });

  it('sums usage for everything a filter matches, per profile and mode', async () => {
    const usage = await repository.usageForFilter({ from: '2025-03-01', to: '2025-03-03' });
    const byProfile = Object.fromEntries(usage.map((row) => [`${row.profile_id}/${row.mode}`, row]));
    expect(byProfile['restaurant/webhook']).toMatchObject({ calls: 3, billed_minutes: 4, prompt_tokens: 1400, completion_tokens: 50, tts_characters: 51, speech_seconds: 4 });
    expect(byProfile['clinica-ro/stream']).toMatchObject({ calls: 1, billed_minutes: 1, prompt_tokens: 300 });
  });

  it("lists a call's audio: its pieces (shared phrases too), deleted ones marked, and files not tied to a piece", async () => {
    const audio = await repository.listCallAudio('CA-A');
    expect(audio.map((row) => [row.seq, row.text, row.filename, row.shared, row.deleted_at !== null])).toEqual([
      [0, 'Hello!', 'greeting.wav', true, false],
      [0, 'Sure,', 'a1-0.wav', false, false],
      [1, 'when?', 'a1-1.wav', false, true],
      [null, 'a file without a piece', 'a2-loose.wav', false, false],
    ]);
  });

  it('lists the calls in progress with their latest turn, not ones that missed their end long ago', async () => {
    const live = await repository.listLiveCalls(4);
    expect(live).toHaveLength(1);
    expect(live[0]).toMatchObject({ call_id: 'CA-E', turn_count: 1, latest_seq: 1, latest_user_text: "What's on the menu?", latest_status: 'processing' });
  });

  it('counts recent calls per profile', async () => {
    expect(await repository.profileActivity(30)).toEqual([expect.objectContaining({ profile_id: 'restaurant', calls: 2 })]);
  });

  it('aggregates analytics per UTC day', async () => {
    const report = await repository.analytics({ from: '2025-03-01', to: '2025-03-03' });
    expect(report.callsPerDay).toEqual([
      { day: '2025-03-01', calls: 2, ended: 2, failed: 1, duration_seconds: 95 },
      { day: '2025-03-02', calls: 1, ended: 1, failed: 0, duration_seconds: 30 },
      { day: '2025-03-03', calls: 1, ended: 1, failed: 0, duration_seconds: 61 },
    ]);
    expect(report.durationBuckets).toEqual([{ bucket: 1, calls: 1 }, { bucket: 2, calls: 2 }]);
    expect(report.confidenceBuckets).toEqual([{ bucket: 3, turns: 1 }, { bucket: 5, turns: 1 }, { bucket: 9, turns: 1 }]);
    expect(report.outcomes).toEqual([
      { outcome: 'completed', calls: 1 },
      { outcome: 'details-collected', calls: 1 },
      { outcome: 'hung-up', calls: 1 },
      { outcome: 'missed', calls: 1 },
    ]);
    expect(report.failureReasons).toEqual([
      { reason: 'call busy', count: 1, example: null },
      { reason: 'provider_timeout', count: 1, example: 'provider_timeout happened' },
      { reason: 'tts_failed', count: 1, example: 'tts_failed happened' },
    ]);
    expect(report.usagePerDay.map((row) => [row.day, row.profile_id, row.mode, row.calls, row.billed_minutes, row.prompt_tokens])).toEqual([
      ['2025-03-01', 'restaurant', 'webhook', 2, 2, 1400],
      ['2025-03-02', 'clinica-ro', 'stream', 1, 1, 300],
      ['2025-03-03', 'restaurant', 'webhook', 1, 2, 0],
    ]);
  });

  it('measures time to first audio from the end of speech (streams) or the webhook (Gather), with percentiles', async () => {
    const report = await repository.analytics({ from: '2025-03-01', to: '2025-03-03' });
    expect(report.timeToFirstAudio).toEqual([
      { day: '2025-03-01', turns: 2, p50_ms: 800, p95_ms: expect.closeTo(890, 6) },
      { day: '2025-03-02', turns: 1, p50_ms: 950, p95_ms: 950 },
    ]);
    expect(report.timeToFirstAudioOverall).toEqual({ turns: 3, p50_ms: 900, p95_ms: expect.closeTo(945, 6) });
  });

  it('is empty for a range without calls', async () => {
    const report = await repository.analytics({ from: '2024-01-01', to: '2024-01-31' });
    expect(report.callsPerDay).toEqual([]);
    expect(report.timeToFirstAudioOverall).toEqual({ turns: 0, p50_ms: null, p95_ms: null });
  });
});

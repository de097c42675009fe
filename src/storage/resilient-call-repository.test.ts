import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Database, Queryable } from './database.js';
import { migrate } from './migrations.js';
import { openPgliteDatabase } from './pglite-database.js';
import { ResilientCallRepository } from './resilient-call-repository.js';
import type { NewTurn, TurnOutcome } from './call-repository.js';

const refused = () => Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' });

/**
 * A database that can be made unreachable, or made to lose the answer to
 * the next statement after running it (the connection broke as it committed).
 */
function switchable(inner: Database) {
  let down = false;
  let loseNextAnswer = false;
  const query: Queryable['query'] = async (sql, params) => {
    if (down) throw refused();
    const result = await inner.query(sql, params);
    if (loseNextAnswer) {
      loseNextAnswer = false;
      throw Object.assign(new Error('Connection terminated unexpectedly'), {});
    }
    return result as never;
  };
  const db: Database = {
    kind: inner.kind,
    query,
    transaction: async (work) => {
      if (down) throw refused();
      return inner.transaction(work);
    },
    ping: async () => {
      if (down) throw refused();
    },
    close: () => inner.close(),
  };
  return {
    db,
    setDown: (value: boolean) => (down = value),
    loseNextAnswer: () => (loseNextAnswer = true),
  };
}

let callId = '';
let newCall = { callId, from: '+15550001111', to: '+15550002222', profileId: 'restaurant', language: 'en-US', status: 'in-progress' };
const turnInput = (seq: number, text?: string): NewTurn => ({ callId, seq, kind: text ? 'speech' : 'greeting', userText: text, receivedAt: new Date() });
const outcome = (text: string): TurnOutcome => ({
  assistantText: text,
  action: 'listen',
  status: 'completed',
  toolCalls: [],
  promptTokens: 1,
  completionTokens: 2,
  ttsCharacters: text.length,
  completedAt: new Date(),
});

describe('ResilientCallRepository', () => {
  let inner: Database;
  let database: ReturnType<typeof switchable>;
  let repository: ResilientCallRepository;

  let calls = 0;

  // One embedded database for the file (opening one takes seconds); each test has calls of its own.
  beforeAll(async () => {
    inner = await openPgliteDatabase(undefined);
    await migrate(inner);
  }, 60_000);
  afterAll(() => inner?.close());
  beforeEach(() => {
    calls += 1;
    callId = `CA${String(calls).padStart(32, '0')}`;
    newCall = { ...newCall, callId };
    database = switchable(inner);
    repository = new ResilientCallRepository(database.db, { logger: pino({ level: 'silent' }) });
  });
  afterEach(() => repository.journal.close());

  it('writes several stage times in one statement, keeping any already set, also when written later from the journal', async () => {
    await repository.upsertCall(newCall);
    const { turn } = await repository.claimTurn(turnInput(0));
    const first = new Date('2026-01-02T03:04:05.000Z');
    const later = new Date('2026-01-02T03:04:09.000Z');
    await repository.markTurnTiming(turn.turn_id, 'tts_first_byte_at', first);
    await repository.markTurnTimings(turn.turn_id, { tts_first_byte_at: later, first_frame_at: later });
    const read = async () =>
      (await inner.query<{ tts_first_byte_at: Date; first_frame_at: Date; mark_echoed_at: Date | null }>(
        'SELECT tts_first_byte_at, first_frame_at, mark_echoed_at FROM turns WHERE call_id = $1',
        [callId],
      )).rows[0];
    expect(await read()).toEqual({ tts_first_byte_at: first, first_frame_at: later, mark_echoed_at: null });

    database.setDown(true);
    await repository.markTurnTimings(turn.turn_id, { mark_echoed_at: later, first_frame_at: first });
    expect(await repository.getTurn(turn.turn_id)).toMatchObject({ tts_first_byte_at: first, first_frame_at: later, mark_echoed_at: later });
    database.setDown(false);
    expect(await repository.journal.whenDrained(5_000)).toBe(true);
    expect(await read()).toEqual({ tts_first_byte_at: first, first_frame_at: later, mark_echoed_at: later });
  });

  it('answers a call in progress from memory while the database is down, and writes each turn once when it is back', async () => {
    await repository.upsertCall(newCall);
    const greeting = await repository.claimTurn(turnInput(0));
    await repository.finishTurn(greeting.turn.turn_id, outcome('Hello, Bella Vista.'));
    await repository.listTurns(callId);

    database.setDown(true);
    expect(await repository.getCall(callId)).toMatchObject({ call_id: callId });
    const claimed = await repository.claimTurn(turnInput(1, 'a table for two'));
    expect(claimed.created).toBe(true);
    // The conversation so far comes from memory, as the claim's statement would have read it.
    expect(claimed.earlier.map((turn) => [turn.seq, turn.assistant_text])).toEqual([[0, 'Hello, Bella Vista.']]);
    // Twilio's retry of the same webhook gets the same turn back.
    const retried = await repository.claimTurn(turnInput(1, 'a table for two'));
    expect(retried).toMatchObject({ created: false, turn: { turn_id: claimed.turn.turn_id } });
    const turnId = claimed.turn.turn_id;
    await repository.insertAudioFile({
      audio_id: 'reply-1', filename: 'reply-1.wav', call_id: callId, turn_id: turnId, cache_key: null, text: 'For two, of course.',
      voice: 'alloy', model: 'tts', format: 'wav', content_type: 'audio/wav', size_bytes: 100, duration_ms: 50,
    });
    expect(await repository.addSegment(turnId, 0, 'For two, of course.', 'reply-1')).toBeInstanceOf(Date);
    const finished = await repository.finishTurn(turnId, outcome('For two, of course.'));
    expect(finished).toMatchObject({ turn_id: turnId, status: 'completed', assistant_text: 'For two, of course.' });
    expect(await repository.keepResponse(turnId, 0, '<Response>first</Response>')).toBe('<Response>first</Response>');
    expect(await repository.keepResponse(turnId, 0, '<Response>second</Response>')).toBe('<Response>first</Response>');
    expect((await repository.listTurns(callId)).map((turn) => turn.assistant_text)).toEqual(['Hello, Bella Vista.', 'For two, of course.']);
    expect(await repository.listSegments(turnId)).toMatchObject([{ seq: 0, filename: 'reply-1.wav' }]);
    expect(await repository.getAudioByFilename('reply-1.wav')).toMatchObject({ audio_id: 'reply-1' });
    await repository.updateCallState(callId, { silent_prompts: 0, outcome: 'details-collected' });
    expect(await repository.mergeDetails(callId, { name: 'Anna' })).toEqual({ name: 'Anna' });
    expect(repository.journal.pending).toBeGreaterThan(0);

    database.setDown(false);
    expect(await repository.journal.whenDrained(5_000)).toBe(true);
    const { rows: turns } = await inner.query<{ turn_id: number; seq: number; assistant_text: string; status: string }>(
      'SELECT turn_id, seq, assistant_text, status FROM turns WHERE call_id = $1 ORDER BY seq',
      [callId],
    );
    expect(turns.map((turn) => [turn.seq, turn.status, turn.assistant_text])).toEqual([
      [0, 'completed', 'Hello, Bella Vista.'],
      [1, 'completed', 'For two, of course.'],
    ]);
    const realId = turns[1]!.turn_id;
    expect(realId).not.toBe(turnId);
    expect((await inner.query('SELECT seq FROM reply_segments WHERE turn_id = $1', [realId])).rows).toHaveLength(1);
    expect((await inner.query('SELECT twiml FROM webhook_responses WHERE turn_id = $1', [realId])).rows).toEqual([{ twiml: '<Response>first</Response>' }]);
    expect((await inner.query('SELECT turn_id FROM audio_files WHERE audio_id = $1', ['reply-1'])).rows).toEqual([{ turn_id: realId }]);
    expect((await inner.query('SELECT details, outcome FROM calls WHERE call_id = $1', [callId])).rows).toEqual([
      { details: { name: 'Anna' }, outcome: 'details-collected' },
    ]);
    // The provisional id still leads to the turn, for continuations already handed to Twilio.
    expect(await repository.getTurn(turnId)).toMatchObject({ turn_id: turnId, seq: 1, status: 'completed' });
  });

  it('starts a new call while the database is down and stores it once it is back', async () => {
    database.setDown(true);
    expect(await repository.getCall(callId)).toBeUndefined();
    expect(await repository.insertCallWithinLimit(newCall, new Date(Date.now() - 3_600_000), 5)).toMatchObject({ call_id: callId });
    const greeting = await repository.claimTurn(turnInput(0));
    await repository.finishTurn(greeting.turn.turn_id, outcome('Hello.'));
    database.setDown(false);
    expect(await repository.journal.whenDrained(5_000)).toBe(true);
    expect((await inner.query('SELECT seq, status FROM turns WHERE call_id = $1', [callId])).rows).toEqual([{ seq: 0, status: 'completed' }]);
  });

  it('writes once what the database committed before the connection broke', async () => {
    await repository.upsertCall(newCall);
    // The claim commits, but its answer is lost: it is queued, and the replay finds the row.
    database.loseNextAnswer();
    const claimed = await repository.claimTurn(turnInput(0));
    expect(claimed.created).toBe(true);
    await repository.finishTurn(claimed.turn.turn_id, outcome('Hello.'));
    expect(await repository.journal.whenDrained(5_000)).toBe(true);
    expect((await inner.query('SELECT seq, status FROM turns WHERE call_id = $1', [callId])).rows).toEqual([{ seq: 0, status: 'completed' }]);
  });

  it('still fails a write the database refuses for another reason', async () => {
    await expect(repository.claimTurn({ ...turnInput(0), callId: `CA${'b'.repeat(32)}` })).rejects.toThrow();
    expect(repository.journal.pending).toBe(0);
  });
});

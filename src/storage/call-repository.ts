import type { Database, Queryable } from './database.js';

/** First key of the per-number advisory lock (`pg_advisory_xact_lock(int, int)`): "call" in ASCII, the number's hash is the second. */
const CALLS_FROM_NUMBER_LOCK = 0x63616c6c;

export interface CallRow {
  call_id: string;
  account_sid: string | null;
  from_number: string | null;
  to_number: string | null;
  direction: string | null;
  profile_id: string;
  language: string;
  status: string;
  status_sequence: number;
  assistant_mode: 'llm' | 'scripted';
  llm_failures: number;
  silent_prompts: number;
  details: Record<string, unknown>;
  outcome: string | null;
  started_at: Date;
  ended_at: Date | null;
  duration_seconds: number | null;
  audio_retention: string | null;
  audio_expires_at: Date | null;
  audio_deleted_at: Date | null;
  updated_at: Date;
  mode: 'webhook' | 'stream' | 'realtime';
}

export type TurnKind = 'greeting' | 'speech' | 'silence' | 'unclear' | 'dtmf' | 'limit';
/** `transfer`: the reply is followed by a `<Dial>` to a person. */
export type TurnAction = 'listen' | 'hangup' | 'transfer';

export interface TurnRow {
  turn_id: number;
  call_id: string;
  seq: number;
  kind: TurnKind;
  user_text: string | null;
  confidence: number | null;
  assistant_text: string | null;
  action: TurnAction | null;
  status: 'processing' | 'completed' | 'failed';
  error_code: string | null;
  error_message: string | null;
  tool_calls: unknown[];
  assistant_mode: string | null;
  prompt_tokens: number;
  completion_tokens: number;
  tts_characters: number;
  received_at: Date;
  llm_first_token_at: Date | null;
  first_text_at: Date | null;
  first_audio_at: Date | null;
  completed_at: Date | null;
  interrupted: boolean;
  interrupted_at_ms: number | null;
  speech_ended_at: Date | null;
  transcript_final_at: Date | null;
  tts_first_byte_at: Date | null;
  first_frame_at: Date | null;
  mark_echoed_at: Date | null;
}

export interface SegmentRow {
  turn_id: number;
  seq: number;
  text: string;
  audio_id: string | null;
  filename: string | null;
  ready_at: Date;
}

export interface AudioFileRow {
  audio_id: string;
  filename: string;
  call_id: string | null;
  turn_id: number | null;
  cache_key: string | null;
  text: string;
  voice: string;
  model: string;
  format: string;
  content_type: string;
  size_bytes: number;
  duration_ms: number | null;
  created_at: Date;
  deleted_at: Date | null;
}

export interface NewCall {
  callId: string;
  accountSid?: string;
  from?: string;
  to?: string;
  direction?: string;
  profileId: string;
  language: string;
  status: string;
}

export interface NewTurn {
  callId: string;
  seq: number;
  kind: TurnKind;
  userText?: string;
  confidence?: number;
  assistantMode?: string;
  receivedAt: Date;
}

/** A claimed turn, whether this claim created it, and the call's other turns when it was claimed. */
export interface ClaimedTurnRow {
  turn: TurnRow;
  created: boolean;
  /** The call's other turns, in order. */
  earlier: TurnRow[];
}

export interface TurnOutcome {
  assistantText: string;
  action: TurnAction;
  status: 'completed' | 'failed';
  errorCode?: string;
  errorMessage?: string;
  toolCalls: unknown[];
  promptTokens: number;
  completionTokens: number;
  ttsCharacters: number;
  completedAt: Date;
  /** Milliseconds of the reply the caller heard before speaking over it. */
  interruptedAtMs?: number;
  /** Stage times known when the turn ends, written with it (a timestamp already set is kept). */
  timings?: Partial<Record<'llm_first_token_at' | 'first_text_at' | 'first_audio_at', Date>>;
}

/** The stage timestamp columns of `turns`; `markTurnTimings` writes only these names into its SQL. */
const turnTimingColumns = [
  'llm_first_token_at',
  'first_text_at',
  'first_audio_at',
  'speech_ended_at',
  'transcript_final_at',
  'tts_first_byte_at',
  'first_frame_at',
  'mark_echoed_at',
] as const;

export type TurnTiming = (typeof turnTimingColumns)[number];

const turnTimings = new Set<string>(turnTimingColumns);

/** Every query about calls, turns, reply segments and audio files; SQL lives here and nowhere else. */
export class CallRepository {
  constructor(private readonly db: Database) {}

  /** Creates the call once; a retried incoming webhook finds the row already there. */
  upsertCall(call: NewCall): Promise<CallRow> {
    return this.insertCallRow(call, this.db);
  }

  private async insertCallRow(call: NewCall, tx: Queryable): Promise<CallRow> {
    const { rows } = await tx.query<CallRow>(
      `INSERT INTO calls (call_id, account_sid, from_number, to_number, direction, profile_id, language, status)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
       ON CONFLICT (call_id) DO UPDATE SET updated_at = calls.updated_at
       RETURNING *`,
      [call.callId, call.accountSid ?? null, call.from ?? null, call.to ?? null, call.direction ?? null, call.profileId, call.language, call.status],
    );
    return rows[0];
  }

  /** Calls started in the last day that have not ended (older ones missed their final status callback). */
  async countActiveCalls(): Promise<number> {
    const { rows } = await this.db.query<{ count: number }>(
      `SELECT count(*)::int AS count FROM calls WHERE ended_at IS NULL AND started_at > now() - interval '1 day'`,
    );
    return rows[0]?.count ?? 0;
  }

  /** Stores a one-time media-stream token (its hash) for a call. */
  async createStreamToken(callId: string, tokenHash: string, expiresAt: Date): Promise<void> {
    await this.db.query('INSERT INTO stream_tokens (token_hash, call_id, expires_at) VALUES ($1, $2, $3)', [tokenHash, callId, expiresAt]);
  }

  /** Uses a stream token: returns its call once, while unexpired; `undefined` for any reuse. */
  async useStreamToken(tokenHash: string, now: Date): Promise<string | undefined> {
    const { rows } = await this.db.query<{ call_id: string }>(
      `UPDATE stream_tokens SET used_at = $2 WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2 RETURNING call_id`,
      [tokenHash, now],
    );
    return rows[0]?.call_id;
  }

  async setCallMode(callId: string, mode: CallRow['mode']): Promise<void> {
    await this.db.query('UPDATE calls SET mode = $2, updated_at = now() WHERE call_id = $1', [callId, mode]);
  }

  /**
   * Stores a new call unless its number already has `limit` calls since
   * `since`; `undefined` when it is over the limit. Instances sharing the
   * database take a lock per number first, so calls from one number arriving
   * at once on several instances are counted one after another, never both
   * admitted on the same count. A call already stored is returned as it is.
   */
  async insertCallWithinLimit(call: NewCall, since: Date, limit: number): Promise<CallRow | undefined> {
    return this.db.transaction(async (tx) => {
      await tx.query('SELECT pg_advisory_xact_lock($1::int, hashtext($2))', [CALLS_FROM_NUMBER_LOCK, call.from ?? '']);
      const existing = await this.getCall(call.callId, tx);
      if (existing) return existing;
      // Read after the lock: under READ COMMITTED this statement sees every call committed by whoever held it before.
      const { rows } = await tx.query<{ count: number }>(
        'SELECT count(*)::int AS count FROM calls WHERE from_number = $1 AND started_at > $2',
        [call.from ?? null, since],
      );
      if ((rows[0]?.count ?? 0) >= limit) return undefined;
      return this.insertCallRow(call, tx);
    });
  }

  /** Calls from a number since `since`, across every instance sharing the database (per-number rate limit). */
  async countCallsFrom(fromNumber: string, since: Date): Promise<number> {
    const { rows } = await this.db.query<{ count: number }>(
      'SELECT count(*)::int AS count FROM calls WHERE from_number = $1 AND started_at > $2',
      [fromNumber, since],
    );
    return rows[0]?.count ?? 0;
  }

  async getCall(callId: string, tx: Queryable = this.db): Promise<CallRow | undefined> {
    const { rows } = await tx.query<CallRow>('SELECT * FROM calls WHERE call_id = $1', [callId]);
    return rows[0];
  }

  async updateCallState(
    callId: string,
    changes: Partial<Pick<CallRow, 'assistant_mode' | 'llm_failures' | 'silent_prompts' | 'details' | 'language' | 'outcome'>>,
  ): Promise<void> {
    const entries = Object.entries(changes).filter(([, value]) => value !== undefined);
    if (entries.length === 0) return;
    const sets = entries.map(([column], index) => `${column} = $${index + 2}`);
    await this.db.query(
      `UPDATE calls SET ${sets.join(', ')}, updated_at = now() WHERE call_id = $1`,
      [callId, ...entries.map(([column, value]) => (column === 'details' ? JSON.stringify(value) : value))],
    );
  }

  /** Merges collected details into the call's (JSONB `||`), so concurrent saves never drop a key. */
  async mergeDetails(callId: string, details: Record<string, unknown>): Promise<Record<string, unknown>> {
    const { rows } = await this.db.query<{ details: Record<string, unknown> }>(
      `UPDATE calls SET details = details || $2::jsonb, updated_at = now() WHERE call_id = $1 RETURNING details`,
      [callId, JSON.stringify(details)],
    );
    return rows[0]?.details ?? details;
  }

  /**
   * Claims turn `seq` of a call. Returns `created: false` with the existing row when
   * Twilio retried the same webhook, so the retry is answered from the first attempt.
   * `earlier` is the call's other turns as they were when the claim was made, in
   * order: the conversation so far, read by the same statement (one round trip on a
   * turn's path to the model instead of two).
   */
  async claimTurn(turn: NewTurn): Promise<ClaimedTurnRow> {
    // The statement's snapshot does not see its own INSERT: `turns` below is every turn but a new one.
    const { rows } = await this.db.query<TurnRow & { claimed_now: boolean }>(
      `WITH claimed AS (
         INSERT INTO turns (call_id, seq, kind, user_text, confidence, assistant_mode, received_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (call_id, seq) DO NOTHING
         RETURNING *
       )
       SELECT true AS claimed_now, * FROM claimed
       UNION ALL
       SELECT false AS claimed_now, * FROM turns WHERE call_id = $1
       ORDER BY turn_id`,
      [turn.callId, turn.seq, turn.kind, turn.userText ?? null, turn.confidence ?? null, turn.assistantMode ?? null, turn.receivedAt],
    );
    let claimed: TurnRow | undefined;
    const earlier: TurnRow[] = [];
    for (const { claimed_now: claimedNow, ...row } of rows) {
      if (claimedNow) claimed = row;
      else earlier.push(row);
    }
    if (claimed) return { turn: claimed, created: true, earlier };
    const existing = earlier.find((row) => row.seq === turn.seq)
      // Another instance's claim of the same turn committed while this statement waited on it: read it now.
      ?? (await this.db.query<TurnRow>('SELECT * FROM turns WHERE call_id = $1 AND seq = $2', [turn.callId, turn.seq])).rows[0];
    return { turn: existing, created: false, earlier: earlier.filter((row) => row !== existing) };
  }

  /** The caller's words, once a transcription that finished after the turn began has them. */
  async setTurnUserText(turnId: number, text: string): Promise<void> {
    await this.db.query('UPDATE turns SET user_text = $2 WHERE turn_id = $1', [turnId, text]);
  }

  async getTurn(turnId: number): Promise<TurnRow | undefined> {
    const { rows } = await this.db.query<TurnRow>('SELECT * FROM turns WHERE turn_id = $1', [turnId]);
    return rows[0];
  }

  async listTurns(callId: string): Promise<TurnRow[]> {
    const { rows } = await this.db.query<TurnRow>('SELECT * FROM turns WHERE call_id = $1 ORDER BY turn_id', [callId]);
    return rows;
  }

  async nextTurnSeq(callId: string): Promise<number> {
    const { rows } = await this.db.query<{ next: number }>(
      'SELECT COALESCE(MAX(seq) + 1, 0)::int AS next FROM turns WHERE call_id = $1',
      [callId],
    );
    return rows[0]?.next ?? 0;
  }

  /** Sets a stage timestamp once; the first writer wins. */
  markTurnTiming(turnId: number, column: TurnTiming, at: Date): Promise<void> {
    return this.markTurnTimings(turnId, { [column]: at });
  }

  /** Sets several stage timestamps in one statement, each only if not set yet. */
  async markTurnTimings(turnId: number, timings: Partial<Record<TurnTiming, Date>>): Promise<void> {
    const entries = Object.entries(timings).filter((entry): entry is [TurnTiming, Date] => turnTimings.has(entry[0]) && entry[1] !== undefined);
    if (entries.length === 0) return;
    const sets = entries.map(([column], index) => `${column} = COALESCE(${column}, $${index + 2})`).join(', ');
    await this.db.query(`UPDATE turns SET ${sets} WHERE turn_id = $1`, [turnId, ...entries.map(([, at]) => at)]);
  }

  /** Stores the turn's outcome in one statement and returns the finished row. */
  async finishTurn(turnId: number, outcome: TurnOutcome): Promise<TurnRow | undefined> {
    const { rows } = await this.db.query<TurnRow>(
      `UPDATE turns SET assistant_text = $2, action = $3, status = $4, error_code = $5, error_message = $6,
         tool_calls = $7::jsonb, prompt_tokens = $8, completion_tokens = $9, tts_characters = $10, completed_at = $11,
         interrupted = $12, interrupted_at_ms = $13,
         llm_first_token_at = COALESCE(llm_first_token_at, $14), first_text_at = COALESCE(first_text_at, $15),
         first_audio_at = COALESCE(first_audio_at, $16)
       WHERE turn_id = $1
       RETURNING *`,
      [
        turnId, withoutNul(outcome.assistantText), outcome.action, outcome.status, outcome.errorCode ?? null,
        outcome.errorMessage === undefined ? null : withoutNul(outcome.errorMessage), JSON.stringify(outcome.toolCalls), outcome.promptTokens,
        outcome.completionTokens, outcome.ttsCharacters, outcome.completedAt,
        outcome.interruptedAtMs !== undefined, outcome.interruptedAtMs === undefined ? null : Math.round(outcome.interruptedAtMs),
        outcome.timings?.llm_first_token_at ?? null, outcome.timings?.first_text_at ?? null, outcome.timings?.first_audio_at ?? null,
      ],
    );
    return rows[0];
  }

  /**
   * Ends a turn left `processing` by an instance that died while producing it,
   * so a retried webhook is answered instead of told to come back forever.
   * Only a turn still processing changes; returns the row either way.
   */
  async failOrphanedTurn(turnId: number, message: string): Promise<TurnRow | undefined> {
    const { rows } = await this.db.query<TurnRow>(
      `UPDATE turns SET status = 'failed', action = 'listen', error_code = 'orphaned', error_message = $2, completed_at = now()
        WHERE turn_id = $1 AND status = 'processing'
       RETURNING *`,
      [turnId, message],
    );
    return rows[0] ?? (await this.getTurn(turnId));
  }

  /** Stores a playable piece; returns when it became ready (undefined if the piece was already there). */
  async addSegment(turnId: number, seq: number, text: string, audioId: string | null): Promise<Date | undefined> {
    const { rows } = await this.db.query<{ ready_at: Date }>(
      `INSERT INTO reply_segments (turn_id, seq, text, audio_id) VALUES ($1, $2, $3, $4)
       ON CONFLICT (turn_id, seq) DO NOTHING RETURNING ready_at`,
      [turnId, seq, text, audioId],
    );
    return rows[0]?.ready_at;
  }

  async listSegments(turnId: number, fromSeq = 0): Promise<SegmentRow[]> {
    const { rows } = await this.db.query<SegmentRow>(
      `SELECT s.turn_id, s.seq, s.text, s.audio_id, a.filename, s.ready_at
         FROM reply_segments s LEFT JOIN audio_files a ON a.audio_id = s.audio_id AND a.deleted_at IS NULL
        WHERE s.turn_id = $1 AND s.seq >= $2 ORDER BY s.seq`,
      [turnId, fromSeq],
    );
    return rows;
  }

  /**
   * Keeps the first answer given for a turn's reply from piece `fromSeq` on,
   * and returns whichever answer was kept: the same webhook always gets the same TwiML.
   */
  async keepResponse(turnId: number, fromSeq: number, twiml: string): Promise<string> {
    const inserted = await this.db.query<{ twiml: string }>(
      `INSERT INTO webhook_responses (turn_id, from_seq, twiml) VALUES ($1, $2, $3)
       ON CONFLICT (turn_id, from_seq) DO NOTHING RETURNING twiml`,
      [turnId, fromSeq, twiml],
    );
    if (inserted.rows[0]) return twiml;
    // Lost the race: read the winner in a new statement (a new snapshot that sees its commit).
    return (await this.findResponse(turnId, fromSeq)) ?? twiml;
  }

  async findResponse(turnId: number, fromSeq: number): Promise<string | undefined> {
    const { rows } = await this.db.query<{ twiml: string }>(
      'SELECT twiml FROM webhook_responses WHERE turn_id = $1 AND from_seq = $2',
      [turnId, fromSeq],
    );
    return rows[0]?.twiml;
  }

  /**
   * Stores an audio file's row. A cached phrase already stored under the same
   * key keeps its file (the first writer wins: instances synthesizing the same
   * phrase at once must not swap the file under URLs already handed out), and
   * that row is returned; only a deleted row, or the one whose file the caller
   * found missing (`replacing`), takes the new file.
   */
  async insertAudioFile(file: Omit<AudioFileRow, 'created_at' | 'deleted_at'>, options: { replacing?: string } = {}): Promise<AudioFileRow> {
    const { rows } = await this.db.query<AudioFileRow>(
      `INSERT INTO audio_files (audio_id, filename, call_id, turn_id, cache_key, text, voice, model, format, content_type, size_bytes, duration_ms)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
       ON CONFLICT (cache_key) DO UPDATE SET deleted_at = NULL, filename = EXCLUDED.filename, audio_id = audio_files.audio_id
         WHERE audio_files.deleted_at IS NOT NULL OR audio_files.filename = $13
       RETURNING *`,
      [
        file.audio_id, file.filename, file.call_id, file.turn_id, file.cache_key, file.text, file.voice, file.model,
        file.format, file.content_type, file.size_bytes, file.duration_ms, options.replacing ?? null,
      ],
    );
    if (rows[0]) return rows[0];
    const kept = await this.db.query<AudioFileRow>('SELECT * FROM audio_files WHERE cache_key = $1', [file.cache_key]);
    return kept.rows[0];
  }

  async findCachedAudio(cacheKey: string): Promise<AudioFileRow | undefined> {
    const { rows } = await this.db.query<AudioFileRow>(
      'SELECT * FROM audio_files WHERE cache_key = $1 AND deleted_at IS NULL',
      [cacheKey],
    );
    return rows[0];
  }

  async getAudioByFilename(filename: string): Promise<AudioFileRow | undefined> {
    const { rows } = await this.db.query<AudioFileRow>('SELECT * FROM audio_files WHERE filename = $1', [filename]);
    return rows[0];
  }

  async markAudioDeleted(audioIds: string[]): Promise<void> {
    if (audioIds.length === 0) return;
    await this.db.query('UPDATE audio_files SET deleted_at = now() WHERE audio_id = ANY($1::text[])', [audioIds]);
  }

  /** A call's own audio (cached phrases shared by all calls have no `call_id`). */
  async listCallAudio(callId: string): Promise<AudioFileRow[]> {
    const { rows } = await this.db.query<AudioFileRow>(
      'SELECT * FROM audio_files WHERE call_id = $1 AND deleted_at IS NULL ORDER BY created_at',
      [callId],
    );
    return rows;
  }

  /** Calls whose kept audio has passed its retention date. */
  async listExpiredAudioCalls(now: Date, limit = 100): Promise<string[]> {
    const { rows } = await this.db.query<{ call_id: string }>(
      `SELECT call_id FROM calls WHERE audio_expires_at IS NOT NULL AND audio_expires_at <= $1 AND audio_deleted_at IS NULL
       ORDER BY audio_expires_at LIMIT $2`,
      [now, limit],
    );
    return rows.map((row) => row.call_id);
  }

  async markCallAudioRetention(callId: string, retention: string | null, expiresAt: Date | null, deletedAt: Date | null): Promise<void> {
    await this.db.query(
      `UPDATE calls SET audio_retention = COALESCE($2, audio_retention), audio_expires_at = $3, audio_deleted_at = COALESCE(audio_deleted_at, $4), updated_at = now()
       WHERE call_id = $1`,
      [callId, retention, expiresAt, deletedAt],
    );
  }

  /**
   * Records one status callback. Returns false when the same callback was
   * already recorded (Twilio retried it), so its effects are applied once.
   */
  async recordStatusEvent(callId: string, status: string, sequenceNumber: number | null, payload: Record<string, string>): Promise<boolean> {
    const { rows } = await this.db.query(
      `INSERT INTO call_events (call_id, status, sequence_number, payload) VALUES ($1, $2, $3, $4::jsonb)
       ON CONFLICT (call_id, status, sequence_number) DO NOTHING RETURNING event_id`,
      [callId, status, sequenceNumber ?? -1, JSON.stringify(payload)],
    );
    return rows.length > 0;
  }

  /** Applies a status only when it is newer than the one stored (callbacks can arrive out of order). */
  async applyStatus(callId: string, status: string, sequence: number, ended: { endedAt: Date; durationSeconds: number | null; outcome: string } | null): Promise<void> {
    await this.db.query(
      `UPDATE calls SET status = CASE WHEN $3 >= status_sequence THEN $2 ELSE status END,
              status_sequence = GREATEST(status_sequence, $3),
              ended_at = COALESCE(ended_at, $4), duration_seconds = COALESCE($5, duration_seconds),
              outcome = COALESCE(outcome, $6), updated_at = now()
        WHERE call_id = $1`,
      [callId, status, sequence, ended?.endedAt ?? null, ended?.durationSeconds ?? null, ended?.outcome ?? null],
    );
  }
}

/**
 * PostgreSQL text cannot hold U+0000, and a provider's garbage answer quoted
 * in an error message (or a model's odd output) may carry one: storing the
 * turn must not fail over it.
 */
function withoutNul(text: string): string {
  return text.includes('\u0000') ? text.replaceAll('\u0000', '') : text;
}

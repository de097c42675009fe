import type { Logger } from 'pino';
import { ActiveCallCache } from './active-call-cache.js';
import {
  CallRepository,
  type AudioFileRow,
  type ClaimedTurnRow,
  type CallRow,
  type NewCall,
  type NewTurn,
  type SegmentRow,
  type TurnOutcome,
  type TurnRow,
  type TurnTiming,
} from './call-repository.js';
import type { Database, Queryable } from './database.js';
import { isDatabaseUnreachable } from './database-unreachable.js';
import { WriteJournal } from './write-journal.js';

/** Options of {@link ResilientCallRepository}. */
export interface ResilientCallRepositoryOptions {
  logger: Logger;
  /** Most writes kept waiting during an outage (see `WriteJournal`). */
  maxPendingWrites?: number;
}

/** Something remembered; `{ value: undefined }` is "known not to exist", `undefined` is "not remembered". */
type Known<T> = { value: T } | undefined;

/** A write made while the database cannot take it: what the caller gets now, and how to write it later. */
interface OfflineWrite<T> {
  value: T;
  /** Omitted when there is nothing to write (a retry of something already queued). */
  replay?: () => Promise<unknown>;
}

/** PostgreSQL's unique_violation: a replayed insert whose earlier attempt committed after all. */
const uniqueViolation = '23505';

/**
 * The call repository for a database that may become unreachable for a while
 * (PostgreSQL restarting, a network cut). While the database answers it is
 * the plain repository, and remembers the state of the calls it serves. When
 * a query fails because the database cannot be reached, the calls in
 * progress go on: reads of what is remembered are answered from memory,
 * writes are applied to memory and queued in a {@link WriteJournal}, which
 * replays them in order, idempotently, once the database is back, so every
 * turn is written exactly once. Anything else the database says (a
 * constraint, a bad statement) still fails as before.
 *
 * Only the queries a call in progress needs are covered; stream tokens, the
 * dashboard's and the retention sweep's queries fail during an outage as they
 * always did, and the webhooks answer them with a spoken apology.
 */
export class ResilientCallRepository extends CallRepository {
  readonly journal: WriteJournal;
  private readonly memory: ActiveCallCache;

  constructor(db: Database, options: ResilientCallRepositoryOptions) {
    super(db);
    this.journal = new WriteJournal({
      logger: options.logger,
      isUnreachable: isDatabaseUnreachable,
      probe: () => db.ping(),
      maxPending: options.maxPendingWrites,
    });
    this.memory = new ActiveCallCache({ canForget: () => !this.journal.degraded });
  }

  /** Waits (up to `timeoutMs`) for queued writes to be written, then stops retrying; false if some were left. */
  async flushWrites(timeoutMs: number): Promise<boolean> {
    const drained = await this.journal.whenDrained(timeoutMs);
    this.journal.close();
    return drained;
  }

  override upsertCall(call: NewCall): Promise<CallRow> {
    return this.write(
      `call ${call.callId}`,
      async () => this.rememberCall(await super.upsertCall(call)),
      () => {
        // Remembered means written or already queued.
        const remembered = this.memory.call(call.callId);
        if (remembered) return { value: remembered };
        const row = newCallRow(call);
        this.memory.putCall(row);
        return { value: row, replay: () => super.upsertCall(call) };
      },
    );
  }

  override getCall(callId: string, tx?: Queryable): Promise<CallRow | undefined> {
    if (tx) return super.getCall(callId, tx);
    return this.read(
      () => known(this.memory.call(callId)),
      async () => {
        const row = await super.getCall(callId);
        return row && this.rememberCall(row);
      },
      // Unknown here and unreachable: treated as a new call, so a caller still gets an answer.
      () => undefined,
    );
  }

  override countActiveCalls(): Promise<number> {
    return this.read(
      () => undefined,
      () => super.countActiveCalls(),
      () => this.memory.allCalls().filter((call) => !call.ended_at).length,
    );
  }

  override async insertCallWithinLimit(call: NewCall, since: Date, limit: number): Promise<CallRow | undefined> {
    if (!this.journal.degraded) {
      try {
        const row = await super.insertCallWithinLimit(call, since, limit);
        return row && this.rememberCall(row);
      } catch (error) {
        if (!isDatabaseUnreachable(error)) throw error;
        this.journal.reportUnreachable();
      }
    }
    // The database cannot count: counted from what this instance knows, and the call queued like any write.
    if (!this.memory.call(call.callId) && (await this.countCallsFrom(call.from ?? '', since)) >= limit) return undefined;
    return this.upsertCall(call);
  }

  override countCallsFrom(fromNumber: string, since: Date): Promise<number> {
    return this.read(
      () => undefined,
      () => super.countCallsFrom(fromNumber, since),
      // Counted from the calls this instance knows: the limit holds approximately until the database is back.
      () => this.memory.allCalls().filter((call) => call.from_number === fromNumber && call.started_at > since).length,
    );
  }

  override updateCallState(
    callId: string,
    changes: Partial<Pick<CallRow, 'assistant_mode' | 'llm_failures' | 'silent_prompts' | 'details' | 'language' | 'outcome'>>,
  ): Promise<void> {
    const defined = Object.fromEntries(Object.entries(changes).filter(([, value]) => value !== undefined)) as Partial<CallRow>;
    return this.write(
      `state of call ${callId}`,
      async () => {
        await super.updateCallState(callId, changes);
        this.memory.updateCall(callId, defined);
      },
      () => {
        this.memory.updateCall(callId, defined);
        return { value: undefined, replay: () => super.updateCallState(callId, changes) };
      },
    );
  }

  override mergeDetails(callId: string, details: Record<string, unknown>): Promise<Record<string, unknown>> {
    return this.write(
      `details of call ${callId}`,
      async () => {
        const merged = await super.mergeDetails(callId, details);
        this.memory.updateCall(callId, { details: merged });
        return merged;
      },
      () => {
        const merged = { ...(this.memory.call(callId)?.details ?? {}), ...details };
        this.memory.updateCall(callId, { details: merged });
        // `||` merging is idempotent: replaying it after a lost acknowledgement changes nothing.
        return { value: merged, replay: () => super.mergeDetails(callId, details) };
      },
    );
  }

  override claimTurn(turn: NewTurn): Promise<ClaimedTurnRow> {
    return this.write(
      `turn ${turn.seq} of call ${turn.callId}`,
      async () => {
        const claimed = await super.claimTurn(turn);
        for (const row of claimed.earlier) this.rememberTurn(row);
        this.rememberTurn(claimed.turn);
        return claimed;
      },
      () => {
        const earlier = (this.memory.turns(turn.callId) ?? []).filter((row) => row.seq !== turn.seq);
        // Twilio retried a webhook taken during the outage: the same turn, not a new one.
        const existing = this.memory.turnAt(turn.callId, turn.seq);
        if (existing) return { value: { turn: existing, created: false, earlier } };
        const id = this.memory.provisionalTurnId();
        const row = newTurnRow(id, turn);
        this.memory.putTurn(row);
        return {
          value: { turn: row, created: true, earlier },
          replay: async () => {
            // ON CONFLICT in the claim makes a second attempt find the first one's row.
            const claimed = await super.claimTurn(turn);
            this.memory.bindRealId(id, claimed.turn.turn_id);
          },
        };
      },
    );
  }

  override setTurnUserText(turnId: number, text: string): Promise<void> {
    return this.write(
      `caller's words of turn ${turnId}`,
      async () => {
        await super.setTurnUserText(this.memory.realId(turnId), text);
        this.memory.updateTurn(turnId, (turn) => ({ ...turn, user_text: text }));
      },
      () => {
        this.memory.updateTurn(turnId, (turn) => ({ ...turn, user_text: text }));
        return { value: undefined, replay: () => super.setTurnUserText(this.memory.realId(turnId), text) };
      },
    );
  }

  override getTurn(turnId: number): Promise<TurnRow | undefined> {
    return this.read(
      () => known(this.memory.turn(turnId)),
      async () => {
        const row = await super.getTurn(this.memory.realId(turnId));
        if (row) this.rememberTurn(row);
        return row && { ...row, turn_id: turnId };
      },
    );
  }

  override listTurns(callId: string): Promise<TurnRow[]> {
    return this.read(
      () => known(this.memory.turns(callId)),
      async () => {
        const rows = await super.listTurns(callId);
        for (const row of rows) this.rememberTurn(row);
        return rows;
      },
      () => [],
    );
  }

  override nextTurnSeq(callId: string): Promise<number> {
    return this.read(
      () => {
        const turns = this.memory.turns(callId);
        return turns && { value: turns.at(-1)!.seq + 1 };
      },
      () => super.nextTurnSeq(callId),
    );
  }

  override markTurnTimings(turnId: number, timings: Partial<Record<TurnTiming, Date>>): Promise<void> {
    const apply = (turn: TurnRow): TurnRow => {
      const next = { ...turn };
      for (const [column, at] of Object.entries(timings) as [TurnTiming, Date | undefined][]) if (at !== undefined) next[column] = turn[column] ?? at;
      return next;
    };
    return this.write(
      `${Object.keys(timings).join(', ')} of turn ${turnId}`,
      async () => {
        await super.markTurnTimings(this.memory.realId(turnId), timings);
        this.memory.updateTurn(turnId, apply);
      },
      () => {
        this.memory.updateTurn(turnId, apply);
        return { value: undefined, replay: () => super.markTurnTimings(this.memory.realId(turnId), timings) };
      },
    );
  }

  override finishTurn(turnId: number, outcome: TurnOutcome): Promise<TurnRow | undefined> {
    return this.write(
      `outcome of turn ${turnId}`,
      async () => {
        const row = await super.finishTurn(this.memory.realId(turnId), outcome);
        if (row) this.rememberTurn(row);
        return row && { ...row, turn_id: turnId };
      },
      () => ({
        value: this.memory.updateTurn(turnId, (turn) => withOutcome(turn, outcome)),
        replay: () => super.finishTurn(this.memory.realId(turnId), outcome),
      }),
    );
  }

  override addSegment(turnId: number, seq: number, text: string, audioId: string | null): Promise<Date | undefined> {
    const remember = (readyAt: Date) =>
      this.memory.addSegment({ turn_id: turnId, seq, text, audio_id: audioId, filename: null, ready_at: readyAt });
    return this.write(
      `piece ${seq} of turn ${turnId}`,
      async () => {
        const readyAt = await super.addSegment(this.memory.realId(turnId), seq, text, audioId);
        if (readyAt) remember(readyAt);
        return readyAt;
      },
      () => {
        const readyAt = new Date();
        // A piece already remembered was written or queued by the first attempt; an unknown turn's piece is still written.
        if (!remember(readyAt) && this.memory.turn(turnId)) return { value: undefined };
        return { value: readyAt, replay: () => super.addSegment(this.memory.realId(turnId), seq, text, audioId) };
      },
    );
  }

  override listSegments(turnId: number, fromSeq = 0): Promise<SegmentRow[]> {
    return this.read(
      () => known(this.memory.segments(turnId, fromSeq)),
      async () => (await super.listSegments(this.memory.realId(turnId), fromSeq)).map((segment) => ({ ...segment, turn_id: turnId })),
    );
  }

  override keepResponse(turnId: number, fromSeq: number, twiml: string): Promise<string> {
    return this.write(
      `answer ${fromSeq} of turn ${turnId}`,
      async () => {
        const kept = await super.keepResponse(this.memory.realId(turnId), fromSeq, twiml);
        this.memory.keepResponse(turnId, fromSeq, kept);
        return kept;
      },
      () => {
        const kept = this.memory.keepResponse(turnId, fromSeq, twiml);
        // Only the first answer is written; a retry is handed it from memory.
        if (kept !== twiml) return { value: kept };
        return { value: kept, replay: () => super.keepResponse(this.memory.realId(turnId), fromSeq, twiml) };
      },
    );
  }

  override findResponse(turnId: number, fromSeq: number): Promise<string | undefined> {
    return this.read(
      () => {
        const kept = this.memory.response(turnId, fromSeq);
        return kept === undefined ? undefined : { value: kept };
      },
      () => super.findResponse(this.memory.realId(turnId), fromSeq),
      () => undefined,
    );
  }

  override insertAudioFile(
    file: Omit<AudioFileRow, 'created_at' | 'deleted_at'>,
    options: { replacing?: string } = {},
  ): Promise<AudioFileRow> {
    const resolved = () => ({ ...file, turn_id: file.turn_id === null ? null : this.memory.realId(file.turn_id) });
    return this.write(
      `audio ${file.filename}`,
      async () => {
        const row = await super.insertAudioFile(resolved(), options);
        this.memory.putAudio(row);
        return row;
      },
      () => {
        const phrase = file.cache_key ? this.memory.phrase(file.cache_key) : undefined;
        // The same rule as the insert: a phrase already stored keeps its file unless deleted or being replaced.
        if (phrase && !phrase.deleted_at && phrase.filename !== options.replacing) return { value: phrase };
        const row: AudioFileRow = phrase
          ? { ...phrase, filename: file.filename, deleted_at: null }
          : { ...file, created_at: new Date(), deleted_at: null };
        this.memory.putAudio(row);
        return {
          value: row,
          replay: async () => {
            try {
              await super.insertAudioFile(resolved(), options);
            } catch (error) {
              // The row is there: an earlier attempt was committed before its connection broke.
              if ((error as { code?: string }).code !== uniqueViolation) throw error;
            }
          },
        };
      },
    );
  }

  override findCachedAudio(cacheKey: string): Promise<AudioFileRow | undefined> {
    return this.read(
      () => known(this.memory.phrase(cacheKey)),
      async () => {
        const row = await super.findCachedAudio(cacheKey);
        if (row) this.memory.putAudio(row);
        return row;
      },
      // Not known: synthesized again, which needs only the speech provider.
      () => undefined,
    );
  }

  override getAudioByFilename(filename: string): Promise<AudioFileRow | undefined> {
    return this.read(
      () => known(this.memory.audioFile(filename)),
      () => super.getAudioByFilename(filename),
      () => undefined,
    );
  }

  override listCallAudio(callId: string): Promise<AudioFileRow[]> {
    return this.read(
      () => known(this.memory.callAudio(callId)),
      () => super.listCallAudio(callId),
    );
  }

  override markAudioDeleted(audioIds: string[]): Promise<void> {
    return this.write(
      `deletion of ${audioIds.length} audio files`,
      async () => {
        await super.markAudioDeleted(audioIds);
        this.memory.markAudioDeleted(audioIds, new Date());
      },
      () => {
        this.memory.markAudioDeleted(audioIds, new Date());
        return { value: undefined, replay: () => super.markAudioDeleted(audioIds) };
      },
    );
  }

  override markCallAudioRetention(callId: string, retention: string | null, expiresAt: Date | null, deletedAt: Date | null): Promise<void> {
    const apply = () => {
      const call = this.memory.call(callId);
      if (!call) return;
      this.memory.updateCall(callId, {
        audio_retention: retention ?? call.audio_retention,
        audio_expires_at: expiresAt,
        audio_deleted_at: call.audio_deleted_at ?? deletedAt,
      });
    };
    return this.write(
      `audio retention of call ${callId}`,
      async () => {
        await super.markCallAudioRetention(callId, retention, expiresAt, deletedAt);
        apply();
      },
      () => {
        apply();
        return { value: undefined, replay: () => super.markCallAudioRetention(callId, retention, expiresAt, deletedAt) };
      },
    );
  }

  override recordStatusEvent(callId: string, status: string, sequenceNumber: number | null, payload: Record<string, string>): Promise<boolean> {
    return this.write(
      `status ${status} of call ${callId}`,
      async () => {
        const fresh = await super.recordStatusEvent(callId, status, sequenceNumber, payload);
        this.memory.recordStatusEvent(callId, status, sequenceNumber);
        return fresh;
      },
      () => {
        const fresh = this.memory.recordStatusEvent(callId, status, sequenceNumber);
        if (!fresh) return { value: false };
        return { value: true, replay: () => super.recordStatusEvent(callId, status, sequenceNumber, payload) };
      },
    );
  }

  override applyStatus(
    callId: string,
    status: string,
    sequence: number,
    ended: { endedAt: Date; durationSeconds: number | null; outcome: string } | null,
  ): Promise<void> {
    // The same rule as the UPDATE: newer statuses win, the end is set once.
    const apply = () => {
      const call = this.memory.call(callId);
      if (!call) return;
      this.memory.updateCall(callId, {
        status: sequence >= call.status_sequence ? status : call.status,
        status_sequence: Math.max(call.status_sequence, sequence),
        ended_at: call.ended_at ?? ended?.endedAt ?? null,
        duration_seconds: ended?.durationSeconds ?? call.duration_seconds,
        outcome: call.outcome ?? ended?.outcome ?? null,
      });
    };
    return this.write(
      `status ${status} of call ${callId}`,
      async () => {
        await super.applyStatus(callId, status, sequence, ended);
        apply();
      },
      () => {
        apply();
        return { value: undefined, replay: () => super.applyStatus(callId, status, sequence, ended) };
      },
    );
  }

  /**
   * A read: from the database while it is in step; from memory when writes
   * are waiting (the database is behind) or it cannot be reached. `otherwise`
   * answers what is neither remembered nor readable; without it the error stands.
   */
  private async read<T>(fromMemory: () => Known<T>, fromDatabase: () => Promise<T>, otherwise?: () => T): Promise<T> {
    if (this.journal.degraded) {
      const remembered = fromMemory();
      if (remembered) return remembered.value;
    }
    try {
      return await fromDatabase();
    } catch (error) {
      if (!isDatabaseUnreachable(error)) throw error;
      this.journal.reportUnreachable();
      const remembered = fromMemory();
      if (remembered) return remembered.value;
      if (otherwise) return otherwise();
      throw error;
    }
  }

  /**
   * A write: straight to the database while nothing waits, so it never
   * overtakes a queued write it depends on; otherwise applied to memory and
   * queued behind the others.
   */
  private async write<T>(description: string, direct: () => Promise<T>, offline: () => OfflineWrite<T>): Promise<T> {
    if (!this.journal.degraded) {
      try {
        return await direct();
      } catch (error) {
        if (!isDatabaseUnreachable(error)) throw error;
        this.journal.reportUnreachable();
      }
    }
    // Before memory changes: a write that cannot be queued must leave no trace.
    this.journal.assertRoom();
    const { value, replay } = offline();
    if (replay) {
      this.journal.enqueue({
        description,
        run: async () => {
          await replay();
        },
      });
    }
    return value;
  }

  private rememberCall(call: CallRow): CallRow {
    // A read that started before an outage must not overwrite what was changed in memory since.
    if (!(this.journal.degraded && this.memory.call(call.call_id))) this.memory.putCall(call);
    return call;
  }

  private rememberTurn(turn: TurnRow): void {
    if (!(this.journal.degraded && this.memory.turnAt(turn.call_id, turn.seq))) this.memory.putTurn(turn);
  }
}

function known<T>(value: T | undefined): Known<T> {
  return value === undefined ? undefined : { value };
}

/** A call row as the INSERT's defaults would make it. */
function newCallRow(call: NewCall): CallRow {
  const now = new Date();
  return {
    call_id: call.callId,
    account_sid: call.accountSid ?? null,
    from_number: call.from ?? null,
    to_number: call.to ?? null,
    direction: call.direction ?? null,
    profile_id: call.profileId,
    language: call.language,
    status: call.status,
    status_sequence: -1,
    assistant_mode: 'llm',
    llm_failures: 0,
    silent_prompts: 0,
    details: {},
    outcome: null,
    started_at: now,
    ended_at: null,
    duration_seconds: null,
    audio_retention: null,
    audio_expires_at: null,
    audio_deleted_at: null,
    updated_at: now,
    mode: 'webhook',
  };
}

/** A claimed turn as the INSERT's defaults would make it. */
function newTurnRow(turnId: number, turn: NewTurn): TurnRow {
  return {
    turn_id: turnId,
    call_id: turn.callId,
    seq: turn.seq,
    kind: turn.kind,
    user_text: turn.userText ?? null,
    confidence: turn.confidence ?? null,
    assistant_text: null,
    action: null,
    status: 'processing',
    error_code: null,
    error_message: null,
    tool_calls: [],
    assistant_mode: turn.assistantMode ?? null,
    prompt_tokens: 0,
    completion_tokens: 0,
    tts_characters: 0,
    received_at: turn.receivedAt,
    llm_first_token_at: null,
    first_text_at: null,
    first_audio_at: null,
    completed_at: null,
    interrupted: false,
    interrupted_at_ms: null,
    speech_ended_at: null,
    transcript_final_at: null,
    tts_first_byte_at: null,
    first_frame_at: null,
    mark_echoed_at: null,
  };
}

/** The finished turn as `finishTurn`'s UPDATE would leave it. */
function withOutcome(turn: TurnRow, outcome: TurnOutcome): TurnRow {
  return {
    ...turn,
    assistant_text: outcome.assistantText,
    action: outcome.action,
    status: outcome.status,
    error_code: outcome.errorCode ?? null,
    error_message: outcome.errorMessage ?? null,
    tool_calls: outcome.toolCalls,
    prompt_tokens: outcome.promptTokens,
    completion_tokens: outcome.completionTokens,
    tts_characters: outcome.ttsCharacters,
    completed_at: outcome.completedAt,
    interrupted: outcome.interruptedAtMs !== undefined,
    interrupted_at_ms: outcome.interruptedAtMs === undefined ? null : Math.round(outcome.interruptedAtMs),
    llm_first_token_at: turn.llm_first_token_at ?? outcome.timings?.llm_first_token_at ?? null,
    first_text_at: turn.first_text_at ?? outcome.timings?.first_text_at ?? null,
    first_audio_at: turn.first_audio_at ?? outcome.timings?.first_audio_at ?? null,
  };
}

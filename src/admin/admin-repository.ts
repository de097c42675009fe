import type { CallRow } from '../storage/call-repository.js';
import type { Queryable } from '../storage/database.js';
import { callWhere, utcDayEnd, utcDayStart, type CallFilter } from './call-filter-sql.js';

export type { CallFilter } from './call-filter-sql.js';

/**
 * Characters of caller speech per second, to estimate how much audio was
 * transcribed: turns store the words, not the length of the recording
 * (about 150 words a minute, the simulator's 70 ms a character).
 */
export const speechCharactersPerSecond = 14;

/** What the calls list needs from a call's turns, summed. */
export interface CallUsageColumns {
  turn_count: number;
  error_count: number;
  prompt_tokens: number;
  completion_tokens: number;
  tts_characters: number;
  /** Estimated seconds of caller speech (see {@link speechCharactersPerSecond}). */
  speech_seconds: number;
}

export type CallListRow = CallRow & CallUsageColumns;

export interface TurnAudioRow {
  turn_id: number;
  /** The reply piece; `null` for a call's audio file not tied to a piece. */
  seq: number | null;
  text: string;
  filename: string | null;
  content_type: string | null;
  duration_ms: number | null;
  deleted_at: Date | null;
  /** A cached phrase shared by every call (the greeting, apologies). */
  shared: boolean;
}

export interface CallEventRow {
  status: string;
  sequence_number: number | null;
  received_at: Date;
}

export interface LiveCallRow {
  call_id: string;
  from_number: string | null;
  to_number: string | null;
  profile_id: string;
  status: string;
  mode: string;
  started_at: Date;
  turn_count: number;
  details: Record<string, unknown>;
  latest_seq: number | null;
  latest_kind: string | null;
  latest_user_text: string | null;
  latest_confidence: number | null;
  latest_assistant_text: string | null;
  latest_status: string | null;
  latest_at: Date | null;
}

/** Usage summed per UTC day and the things that decide its price (profile, mode). */
export interface DailyUsageRow extends Omit<CallUsageColumns, 'turn_count' | 'error_count'> {
  day: string;
  profile_id: string;
  mode: string;
  calls: number;
  billed_minutes: number;
}

/** Raw aggregates for the analytics page, before pricing; all days are UTC `YYYY-MM-DD`. */
export interface AnalyticsRows {
  callsPerDay: Array<{ day: string; calls: number; ended: number; failed: number; duration_seconds: number }>;
  durationBuckets: Array<{ bucket: number; calls: number }>;
  timeToFirstAudio: Array<{ day: string; turns: number; p50_ms: number; p95_ms: number }>;
  /** The same over the whole range (`day` is empty; `turns` is 0 and the percentiles null when none). */
  timeToFirstAudioOverall: { turns: number; p50_ms: number | null; p95_ms: number | null };
  confidenceBuckets: Array<{ bucket: number; turns: number }>;
  usagePerDay: DailyUsageRow[];
  failureReasons: Array<{ reason: string; count: number; example: string | null }>;
  outcomes: Array<{ outcome: string; calls: number }>;
}

/** Upper bounds (seconds) of the duration histogram's buckets; the last one is open. */
export const durationBucketBounds = [30, 60, 120, 300, 600] as const;

const terminalFailures = `('busy', 'no-answer', 'failed', 'canceled')`;

/** Per-call sums of its turns, as a LATERAL subquery over `c`. */
const usageLateral = `LEFT JOIN LATERAL (
    SELECT count(*) FILTER (WHERE t.kind <> 'greeting')::int AS turn_count,
           count(*) FILTER (WHERE t.error_code IS NOT NULL)::int AS error_count,
           COALESCE(sum(t.prompt_tokens), 0)::int AS prompt_tokens,
           COALESCE(sum(t.completion_tokens), 0)::int AS completion_tokens,
           COALESCE(sum(t.tts_characters), 0)::int AS tts_characters,
           COALESCE(sum(CASE WHEN t.kind IN ('speech', 'unclear') AND t.user_text IS NOT NULL
                             THEN GREATEST(1, ceil(length(t.user_text)::numeric / ${speechCharactersPerSecond})) ELSE 0 END), 0)::int AS speech_seconds
      FROM turns t WHERE t.call_id = c.call_id
  ) u ON true`;

/** Sums of {@link usageLateral}'s columns and billed minutes over a group of calls. */
const usageSums = `count(*)::int AS calls,
  COALESCE(sum(ceil(c.duration_seconds::numeric / 60)), 0)::int AS billed_minutes,
  COALESCE(sum(u.prompt_tokens), 0)::int AS prompt_tokens, COALESCE(sum(u.completion_tokens), 0)::int AS completion_tokens,
  COALESCE(sum(u.tts_characters), 0)::int AS tts_characters, COALESCE(sum(u.speech_seconds), 0)::int AS speech_seconds`;

/**
 * The dashboard's read-only queries: lists, a call's details, the live view
 * and analytics. Written in the SQL PGlite and PostgreSQL share.
 */
export class AdminRepository {
  constructor(private readonly db: Queryable) {}

  async listCalls(filter: CallFilter, page: { limit: number; offset: number }): Promise<{ rows: CallListRow[]; total: number }> {
    const { where, params } = callWhere(filter);
    const [{ rows }, counted] = await Promise.all([
      this.db.query<CallListRow>(
        `SELECT c.*, u.* FROM calls c ${usageLateral}
          ${where} ORDER BY c.started_at DESC, c.call_id DESC LIMIT $${params.length + 1} OFFSET $${params.length + 2}`,
        [...params, page.limit, page.offset],
      ),
      this.db.query<{ total: number }>(`SELECT count(*)::int AS total FROM calls c ${where}`, params),
    ]);
    return { rows, total: counted.rows[0]?.total ?? 0 };
  }

  /** Usage of every call the filter matches, summed per profile and mode (what decides the prices). */
  async usageForFilter(filter: CallFilter): Promise<DailyUsageRow[]> {
    const { where, params } = callWhere(filter);
    return this.rows<DailyUsageRow>(
      `SELECT '' AS day, c.profile_id, c.mode, ${usageSums} FROM calls c ${usageLateral} ${where} GROUP BY c.profile_id, c.mode`,
      params,
    );
  }

  async getCall(callId: string): Promise<CallListRow | undefined> {
    const { rows } = await this.db.query<CallListRow>(`SELECT c.*, u.* FROM calls c ${usageLateral} WHERE c.call_id = $1`, [callId]);
    return rows[0];
  }

  /** Each reply piece of the call's turns with its audio file (cached phrases included), then the call's other files. */
  async listCallAudio(callId: string): Promise<TurnAudioRow[]> {
    const { rows } = await this.db.query<TurnAudioRow>(
      `SELECT s.turn_id, s.seq, s.text, a.filename, a.content_type, a.duration_ms, a.deleted_at, (a.audio_id IS NOT NULL AND a.call_id IS NULL) AS shared
         FROM reply_segments s JOIN turns t ON t.turn_id = s.turn_id LEFT JOIN audio_files a ON a.audio_id = s.audio_id
        WHERE t.call_id = $1
       UNION ALL
       SELECT a.turn_id, NULL, a.text, a.filename, a.content_type, a.duration_ms, a.deleted_at, false
         FROM audio_files a
        WHERE a.call_id = $1 AND a.turn_id IS NOT NULL AND a.model <> 'unsynthesized'
          AND NOT EXISTS (SELECT 1 FROM reply_segments s WHERE s.audio_id = a.audio_id)
        ORDER BY 1, 2 NULLS LAST`,
      [callId],
    );
    return rows;
  }

  async listCallEvents(callId: string): Promise<CallEventRow[]> {
    const { rows } = await this.db.query<CallEventRow>(
      `SELECT status, NULLIF(sequence_number, -1) AS sequence_number, received_at FROM call_events WHERE call_id = $1 ORDER BY received_at, event_id`,
      [callId],
    );
    return rows;
  }

  /**
   * Calls in progress: not ended and started within `withinHours` (older ones
   * missed their final status callback), each with its latest turn.
   */
  async listLiveCalls(withinHours: number): Promise<LiveCallRow[]> {
    const { rows } = await this.db.query<LiveCallRow>(
      `SELECT c.call_id, c.from_number, c.to_number, c.profile_id, c.status, c.mode, c.started_at, c.details,
              (SELECT count(*)::int FROM turns n WHERE n.call_id = c.call_id AND n.kind <> 'greeting') AS turn_count,
              l.seq AS latest_seq, l.kind AS latest_kind, l.user_text AS latest_user_text, l.confidence AS latest_confidence,
              l.assistant_text AS latest_assistant_text, l.status AS latest_status, l.received_at AS latest_at
         FROM calls c
         LEFT JOIN LATERAL (SELECT * FROM turns t WHERE t.call_id = c.call_id ORDER BY t.seq DESC LIMIT 1) l ON true
        WHERE c.ended_at IS NULL AND c.started_at > now() - make_interval(hours => $1::int)
        ORDER BY c.started_at DESC LIMIT 100`,
      [withinHours],
    );
    return rows;
  }

  /** Calls per profile id, and the latest, over the last `days` days. */
  async profileActivity(days: number): Promise<Array<{ profile_id: string; calls: number; last_call_at: Date | null }>> {
    const { rows } = await this.db.query<{ profile_id: string; calls: number; last_call_at: Date | null }>(
      `SELECT profile_id, count(*)::int AS calls, max(started_at) AS last_call_at FROM calls
        WHERE started_at > now() - make_interval(days => $1::int) GROUP BY profile_id`,
      [days],
    );
    return rows;
  }

  /** Everything the analytics page draws, for calls started between `from` and `to` (UTC days, both included). */
  async analytics(range: { from: string; to: string }): Promise<AnalyticsRows> {
    const params = [range.from, range.to];
    const inRange = `c.started_at >= ${utcDayStart('$1')} AND c.started_at < ${utcDayEnd('$2')}`;
    const day = (column: string) => `to_char(${column} AT TIME ZONE 'UTC', 'YYYY-MM-DD')`;
    const ttfaMs = `(EXTRACT(EPOCH FROM (COALESCE(t.first_frame_at, t.first_audio_at) - COALESCE(t.speech_ended_at, t.received_at))) * 1000)::float8`;
    const ttfaSelect = (group: string) => `SELECT ${group} count(*)::int AS turns,
                percentile_cont(0.5) WITHIN GROUP (ORDER BY ${ttfaMs})::float8 AS p50_ms,
                percentile_cont(0.95) WITHIN GROUP (ORDER BY ${ttfaMs})::float8 AS p95_ms
           FROM turns t JOIN calls c ON c.call_id = t.call_id
          WHERE ${inRange} AND t.kind = 'speech' AND COALESCE(t.first_frame_at, t.first_audio_at) IS NOT NULL`;
    const [callsPerDay, durationBuckets, timeToFirstAudio, ttfaOverall, confidenceBuckets, usagePerDay, failureReasons, outcomes] = await Promise.all([
      this.rows<AnalyticsRows['callsPerDay'][number]>(
        `SELECT ${day('c.started_at')} AS day, count(*)::int AS calls, count(c.ended_at)::int AS ended,
                count(*) FILTER (WHERE c.status IN ${terminalFailures} OR c.outcome = 'failed')::int AS failed,
                COALESCE(sum(c.duration_seconds), 0)::int AS duration_seconds
           FROM calls c WHERE ${inRange} GROUP BY 1 ORDER BY 1`,
        params,
      ),
      this.rows<AnalyticsRows['durationBuckets'][number]>(
        `SELECT CASE ${durationBucketBounds.map((bound, index) => `WHEN c.duration_seconds < ${bound} THEN ${index}`).join(' ')}
                ELSE ${durationBucketBounds.length} END AS bucket, count(*)::int AS calls
           FROM calls c WHERE ${inRange} AND c.duration_seconds IS NOT NULL GROUP BY 1 ORDER BY 1`,
        params,
      ),
      this.rows<AnalyticsRows['timeToFirstAudio'][number]>(`${ttfaSelect(`${day('t.received_at')} AS day,`)} GROUP BY 1 ORDER BY 1`, params),
      this.rows<AnalyticsRows['timeToFirstAudioOverall']>(ttfaSelect(''), params),
      this.rows<AnalyticsRows['confidenceBuckets'][number]>(
        `SELECT LEAST(width_bucket(t.confidence::float8, 0, 1, 10), 10) - 1 AS bucket, count(*)::int AS turns
           FROM turns t JOIN calls c ON c.call_id = t.call_id
          WHERE ${inRange} AND t.confidence IS NOT NULL GROUP BY 1 ORDER BY 1`,
        params,
      ),
      this.rows<DailyUsageRow>(
        `SELECT ${day('c.started_at')} AS day, c.profile_id, c.mode, ${usageSums}
           FROM calls c ${usageLateral} WHERE ${inRange} GROUP BY 1, 2, 3 ORDER BY 1, 2, 3`,
        params,
      ),
      this.rows<AnalyticsRows['failureReasons'][number]>(
        `SELECT reason, count(*)::int AS count, max(example) AS example FROM (
           SELECT t.error_code AS reason, t.error_message AS example
             FROM turns t JOIN calls c ON c.call_id = t.call_id WHERE ${inRange} AND t.error_code IS NOT NULL
           UNION ALL
           SELECT 'call ' || c.status, NULL FROM calls c WHERE ${inRange} AND c.status IN ${terminalFailures}
         ) reasons GROUP BY reason ORDER BY count DESC, reason LIMIT 10`,
        params,
      ),
      this.rows<AnalyticsRows['outcomes'][number]>(
        `SELECT COALESCE(c.outcome, CASE WHEN c.ended_at IS NULL THEN 'in-progress' ELSE 'unknown' END) AS outcome, count(*)::int AS calls
           FROM calls c WHERE ${inRange} GROUP BY 1 ORDER BY 2 DESC, 1`,
        params,
      ),
    ]);
    return {
      callsPerDay,
      durationBuckets,
      timeToFirstAudio,
      timeToFirstAudioOverall: ttfaOverall[0] ?? { turns: 0, p50_ms: null, p95_ms: null },
      confidenceBuckets,
      usagePerDay,
      failureReasons,
      outcomes,
    };
  }

  private async rows<Row>(sql: string, params: unknown[]): Promise<Row[]> {
    return (await this.db.query<Row>(sql, params)).rows;
  }
}

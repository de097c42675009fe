import type { Database } from '../storage/database.js';

export interface RecordingRow {
  recording_sid: string;
  call_id: string;
  status: string;
  source: string | null;
  channels: number | null;
  duration_seconds: number | null;
  source_url: string | null;
  audio_id: string | null;
  fetch_error: string | null;
  started_at: Date | null;
  created_at: Date;
  updated_at: Date;
}

/** A recording with its stored copy, for the dashboard and the API. */
export interface RecordingView extends RecordingRow {
  filename: string | null;
  content_type: string | null;
  size_bytes: number | null;
  /** Set when audio retention removed our copy. */
  audio_deleted_at: Date | null;
}

export interface RecordingUpdate {
  recordingSid: string;
  callId: string;
  status: string;
  source?: string;
  channels?: number;
  durationSeconds?: number;
  sourceUrl?: string;
  startedAt?: Date;
}

/** The `recordings` table: one row per Twilio recording, updated by each of its status callbacks. */
export class RecordingRepository {
  constructor(private readonly db: Database) {}

  /**
   * Stores a callback's news. Callbacks can arrive twice or out of order:
   * a later `in-progress` never overwrites `completed` or `absent`.
   */
  async upsert(update: RecordingUpdate): Promise<RecordingRow> {
    const { rows } = await this.db.query<RecordingRow>(
      `INSERT INTO recordings (recording_sid, call_id, status, source, channels, duration_seconds, source_url, started_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
       ON CONFLICT (recording_sid) DO UPDATE SET
         status = CASE WHEN recordings.status IN ('completed', 'absent', 'failed') AND EXCLUDED.status = 'in-progress'
                       THEN recordings.status ELSE EXCLUDED.status END,
         source = COALESCE(EXCLUDED.source, recordings.source),
         channels = COALESCE(EXCLUDED.channels, recordings.channels),
         duration_seconds = COALESCE(EXCLUDED.duration_seconds, recordings.duration_seconds),
         source_url = COALESCE(EXCLUDED.source_url, recordings.source_url),
         started_at = COALESCE(recordings.started_at, EXCLUDED.started_at),
         updated_at = now()
       RETURNING *`,
      [
        update.recordingSid, update.callId, update.status, update.source ?? null, update.channels ?? null,
        update.durationSeconds ?? null, update.sourceUrl ?? null, update.startedAt ?? null,
      ],
    );
    return rows[0];
  }

  async get(recordingSid: string): Promise<RecordingRow | undefined> {
    const { rows } = await this.db.query<RecordingRow>('SELECT * FROM recordings WHERE recording_sid = $1', [recordingSid]);
    return rows[0];
  }

  /** Links the stored copy; only the first copy is kept (a duplicate callback's fetch loses). */
  async attachAudio(recordingSid: string, audioId: string): Promise<boolean> {
    const { rows } = await this.db.query(
      `UPDATE recordings SET audio_id = $2, fetch_error = NULL, updated_at = now() WHERE recording_sid = $1 AND audio_id IS NULL RETURNING recording_sid`,
      [recordingSid, audioId],
    );
    return rows.length > 0;
  }

  async markFetchFailed(recordingSid: string, message: string): Promise<void> {
    await this.db.query('UPDATE recordings SET fetch_error = $2, updated_at = now() WHERE recording_sid = $1', [recordingSid, message.slice(0, 500)]);
  }

  async listForCall(callId: string): Promise<RecordingView[]> {
    const { rows } = await this.db.query<RecordingView>(
      `SELECT r.*, a.filename, a.content_type, a.size_bytes, a.deleted_at AS audio_deleted_at
         FROM recordings r LEFT JOIN audio_files a ON a.audio_id = r.audio_id
        WHERE r.call_id = $1 ORDER BY r.created_at, r.recording_sid`,
      [callId],
    );
    return rows;
  }
}

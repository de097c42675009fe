import type { Database } from '../storage/database.js';

export interface OutboundCallRow {
  outbound_id: string;
  call_id: string | null;
  to_number: string;
  from_number: string;
  profile_id: string;
  purpose: string;
  details: string | null;
  greeting: string;
  voicemail: string;
  status: string;
  answered_by: string | null;
  error: string | null;
  created_at: Date;
  updated_at: Date;
}

export type NewOutboundCall = Pick<OutboundCallRow, 'outbound_id' | 'to_number' | 'from_number' | 'profile_id' | 'purpose' | 'details' | 'greeting' | 'voicemail'>;

/** The `outbound_calls` table: calls this server places, stored before they are dialled. */
export class OutboundCallRepository {
  constructor(private readonly db: Database) {}

  async create(call: NewOutboundCall): Promise<OutboundCallRow> {
    const { rows } = await this.db.query<OutboundCallRow>(
      `INSERT INTO outbound_calls (outbound_id, to_number, from_number, profile_id, purpose, details, greeting, voicemail)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING *`,
      [call.outbound_id, call.to_number, call.from_number, call.profile_id, call.purpose, call.details, call.greeting, call.voicemail],
    );
    return rows[0];
  }

  async get(outboundId: string): Promise<OutboundCallRow | undefined> {
    const { rows } = await this.db.query<OutboundCallRow>('SELECT * FROM outbound_calls WHERE outbound_id = $1', [outboundId]);
    return rows[0];
  }

  async forCall(callId: string): Promise<OutboundCallRow | undefined> {
    const { rows } = await this.db.query<OutboundCallRow>('SELECT * FROM outbound_calls WHERE call_id = $1', [callId]);
    return rows[0];
  }

  async markPlaced(outboundId: string, callSid: string): Promise<void> {
    // The answer webhook may have linked the CallSid first; either way it is the same one.
    await this.db.query(
      `UPDATE outbound_calls SET call_id = COALESCE(call_id, $2), status = CASE WHEN status = 'placing' THEN 'placed' ELSE status END, updated_at = now()
        WHERE outbound_id = $1`,
      [outboundId, callSid],
    );
  }

  async markFailed(outboundId: string, message: string): Promise<void> {
    await this.db.query(`UPDATE outbound_calls SET status = 'failed', error = $2, updated_at = now() WHERE outbound_id = $1`, [outboundId, message.slice(0, 500)]);
  }

  /** Who answered (Twilio's `AnsweredBy`), linking the CallSid if the answer came before `markPlaced`. */
  async markAnswered(outboundId: string, callSid: string, status: 'human' | 'machine' | 'fax', answeredBy: string | undefined): Promise<void> {
    await this.db.query(
      `UPDATE outbound_calls SET call_id = COALESCE(call_id, $2), status = $3, answered_by = $4, updated_at = now() WHERE outbound_id = $1`,
      [outboundId, callSid, status, answeredBy ?? null],
    );
  }
}

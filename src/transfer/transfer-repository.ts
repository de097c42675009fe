import type { Database } from '../storage/database.js';

export interface TransferRow {
  transfer_id: number;
  call_id: string;
  turn_id: number | null;
  to_number: string;
  summary: string;
  status: string;
  dial_call_sid: string | null;
  dial_duration_seconds: number | null;
  message: string | null;
  created_at: Date;
  ended_at: Date | null;
}

/** The `transfers` table: each hand-off to a person, how it went, and the message taken when nobody answered. */
export class TransferRepository {
  constructor(private readonly db: Database) {}

  /** Records a hand-off once per turn (a retried turn finds it there). */
  async start(transfer: { callId: string; turnId: number; toNumber: string; summary: string }): Promise<TransferRow> {
    const { rows } = await this.db.query<TransferRow>(
      `INSERT INTO transfers (call_id, turn_id, to_number, summary) VALUES ($1, $2, $3, $4)
       ON CONFLICT (turn_id) DO UPDATE SET summary = transfers.summary
       RETURNING *`,
      [transfer.callId, transfer.turnId, transfer.toNumber, transfer.summary.slice(0, 2000)],
    );
    return rows[0];
  }

  async get(transferId: number): Promise<TransferRow | undefined> {
    const { rows } = await this.db.query<TransferRow>('SELECT * FROM transfers WHERE transfer_id = $1', [transferId]);
    return rows[0];
  }

  async forTurn(turnId: number): Promise<TransferRow | undefined> {
    const { rows } = await this.db.query<TransferRow>('SELECT * FROM transfers WHERE turn_id = $1', [turnId]);
    return rows[0];
  }

  /** How the `<Dial>` ended (its action callback); the first report wins. */
  async finishDial(transferId: number, result: { status: string; dialCallSid?: string; durationSeconds?: number }): Promise<TransferRow | undefined> {
    const { rows } = await this.db.query<TransferRow>(
      `UPDATE transfers SET status = CASE WHEN status = 'dialing' THEN $2 ELSE status END,
              dial_call_sid = COALESCE(dial_call_sid, $3), dial_duration_seconds = COALESCE(dial_duration_seconds, $4),
              ended_at = COALESCE(ended_at, now())
        WHERE transfer_id = $1 RETURNING *`,
      [transferId, result.status, result.dialCallSid ?? null, result.durationSeconds ?? null],
    );
    return rows[0];
  }

  /** Keeps the caller's message; a retried callback does not replace it. */
  async takeMessage(transferId: number, message: string): Promise<void> {
    await this.db.query('UPDATE transfers SET message = COALESCE(message, $2) WHERE transfer_id = $1', [transferId, message.slice(0, 4000)]);
  }

  async listForCall(callId: string): Promise<TransferRow[]> {
    const { rows } = await this.db.query<TransferRow>('SELECT * FROM transfers WHERE call_id = $1 ORDER BY transfer_id', [callId]);
    return rows;
  }
}

import type { CallRow, SegmentRow, TurnRow } from '../storage/call-repository.js';

/** A turn this instance is producing (or produced moments ago), as stored. */
export interface LiveReply {
  call: CallRow;
  /** The row as claimed, then as finished. */
  turn: TurnRow;
  /** Pieces playable so far (stored, or being synthesized under a name already given out), in spoken order. */
  segments: SegmentRow[];
  /** The reply's last piece is stored: the turn is about to complete. */
  lastStored: boolean;
  done: boolean;
  /** The TwiML this instance answered the turn's request with (its first answer, from piece 0). */
  firstAnswer: string | undefined;
}

/** How long a finished reply stays in memory: Twilio's retries and continuations come within seconds. */
const keepFinishedMs = 60_000;

/**
 * What this instance has written about the turns it produces, kept in memory
 * so the webhook requests waiting on them need not read it back. Entries are
 * added only after the database write succeeded, except a reply piece named
 * while its audio is synthesized: its URL is served by this instance until the
 * audio is stored. A request served by another instance reads the database.
 */
export class LiveReplies {
  private readonly replies = new Map<number, LiveReply>();

  started(call: CallRow, turn: TurnRow): void {
    this.replies.set(turn.turn_id, { call, turn, segments: [], lastStored: false, done: false, firstAnswer: undefined });
  }

  segmentStored(segment: SegmentRow, last = false): void {
    const reply = this.replies.get(segment.turn_id);
    if (!reply) return;
    // A piece named before its audio was synthesized is told again once stored.
    const index = reply.segments.findIndex((known) => known.seq >= segment.seq);
    if (index < 0) reply.segments.push(segment);
    else reply.segments.splice(index, reply.segments[index].seq === segment.seq ? 1 : 0, segment);
    if (last) reply.lastStored = true;
  }

  finished(turn: TurnRow): void {
    const reply = this.replies.get(turn.turn_id);
    if (!reply) return;
    reply.turn = turn;
    reply.done = true;
    setTimeout(() => this.replies.delete(turn.turn_id), keepFinishedMs).unref();
  }

  /**
   * The first answer (from piece 0) this instance gave for a turn it
   * produces; the first time, `twiml` is recorded as that answer and
   * `undefined` returned. Also `undefined` for a turn this instance does not have.
   */
  firstAnswerGiven(turnId: number, twiml: string): string | undefined {
    const reply = this.replies.get(turnId);
    if (!reply) return undefined;
    const given = reply.firstAnswer;
    reply.firstAnswer ??= twiml;
    return given;
  }

  /** Forgets a turn whose outcome could not be stored: readers go to the database. */
  abandoned(turnId: number): void {
    this.replies.delete(turnId);
  }

  get(turnId: number): LiveReply | undefined {
    return this.replies.get(turnId);
  }

  get size(): number {
    return this.replies.size;
  }
}

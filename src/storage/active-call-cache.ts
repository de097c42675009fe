import type { AudioFileRow, CallRow, SegmentRow, TurnRow } from './call-repository.js';

/** What one instance remembers of a call it serves. */
interface CallMemory {
  call?: CallRow;
  /** Turns by `seq`. */
  turns: Map<number, TurnRow>;
  /** Reply pieces by `seq` of their turn. */
  segments: Map<number, SegmentRow[]>;
  /** Kept webhook answers by `${turn seq}/${from}`. */
  responses: Map<string, string>;
  /** The call's own audio by filename. */
  audio: Map<string, AudioFileRow>;
  /** Status callbacks recorded, by `${status}/${sequence}`. */
  statusEvents: Set<string>;
  /** Every id its turns are known by, to forget them with the call. */
  turnIds: Set<number>;
  touchedAt: number;
}

/** Calls untouched this long are forgotten (a call waits at most a few minutes between webhooks). */
const idleMs = 10 * 60_000;
/** An ended call is kept this long for late retries and status callbacks, then forgotten. */
const endedKeepMs = 60_000;
/** Far more calls than one instance can serve at once; bounds memory at a few hundred MB. */
const maxCalls = 2_000;
const maxPhrases = 5_000;
const sweepIntervalMs = 60_000;

/**
 * The state of the calls this instance serves, as last read from or written
 * to the database: call rows, turns, reply pieces, kept answers and audio
 * rows. It is only read while the database is unreachable or behind (writes
 * queued), so that calls in progress can go on; otherwise the database is
 * the truth and this is just kept up to date.
 *
 * Turns created while the database was unreachable get a provisional id
 * (counting down from 2^53, far above any id PostgreSQL hands out) until
 * their insert is replayed; both ids lead to the same turn.
 */
export class ActiveCallCache {
  private readonly calls = new Map<string, CallMemory>();
  /** Turn id (real or provisional) → where the turn lives. */
  private readonly turnIds = new Map<number, { callId: string; seq: number }>();
  private readonly realIds = new Map<number, number>();
  private readonly audioOwners = new Map<string, string>();
  private readonly phrases = new Map<string, AudioFileRow>();
  private readonly phraseFiles = new Map<string, AudioFileRow>();
  private nextProvisionalId = Number.MAX_SAFE_INTEGER;
  private lastSweepAt = Date.now();

  constructor(private readonly options: { canForget: () => boolean }) {}

  call(callId: string): CallRow | undefined {
    return this.calls.get(callId)?.call;
  }

  putCall(call: CallRow): void {
    this.memory(call.call_id).call = { ...call };
  }

  /** Applies `changes` to a remembered call; returns the updated row. */
  updateCall(callId: string, changes: Partial<CallRow>): CallRow | undefined {
    const memory = this.calls.get(callId);
    if (!memory?.call) return undefined;
    memory.call = { ...memory.call, ...changes, updated_at: new Date() };
    memory.touchedAt = Date.now();
    return memory.call;
  }

  /** Calls remembered, for counts while the database cannot answer. */
  allCalls(): CallRow[] {
    return [...this.calls.values()].flatMap((memory) => (memory.call ? [memory.call] : []));
  }

  provisionalTurnId(): number {
    return this.nextProvisionalId--;
  }

  /** The database's id for a turn first known by a provisional id (the id itself otherwise). */
  realId(turnId: number): number {
    return this.realIds.get(turnId) ?? turnId;
  }

  bindRealId(provisionalId: number, realId: number): void {
    this.realIds.set(provisionalId, realId);
    const place = this.turnIds.get(provisionalId);
    if (!place) return;
    this.turnIds.set(realId, place);
    this.calls.get(place.callId)?.turnIds.add(realId);
  }

  putTurn(turn: TurnRow): void {
    const memory = this.memory(turn.call_id);
    memory.turns.set(turn.seq, { ...turn });
    memory.turnIds.add(turn.turn_id);
    this.turnIds.set(turn.turn_id, { callId: turn.call_id, seq: turn.seq });
  }

  /** Remembers every turn of a call as read from the database. */
  putTurns(callId: string, turns: TurnRow[]): void {
    for (const turn of turns) if (turn.call_id === callId) this.putTurn(turn);
  }

  /** The turn, carrying the id it was asked by. */
  turn(turnId: number): TurnRow | undefined {
    const place = this.turnIds.get(turnId);
    const turn = place && this.calls.get(place.callId)?.turns.get(place.seq);
    return turn && { ...turn, turn_id: turnId };
  }

  turnAt(callId: string, seq: number): TurnRow | undefined {
    return this.calls.get(callId)?.turns.get(seq);
  }

  /** The call's remembered turns in order; undefined when none are. */
  turns(callId: string): TurnRow[] | undefined {
    const turns = this.calls.get(callId)?.turns;
    if (!turns || turns.size === 0) return undefined;
    return [...turns.values()].sort((a, b) => a.seq - b.seq);
  }

  updateTurn(turnId: number, update: (turn: TurnRow) => TurnRow): TurnRow | undefined {
    const found = this.turnPlace(turnId);
    const turn = found?.memory.turns.get(found.seq);
    if (!found || !turn) return undefined;
    const updated = update(turn);
    found.memory.turns.set(found.seq, updated);
    found.memory.touchedAt = Date.now();
    return { ...updated, turn_id: turnId };
  }

  /** Remembers a reply piece; false when the piece was already there (first writer wins, as in the table). */
  addSegment(segment: SegmentRow): boolean {
    const found = this.turnPlace(segment.turn_id);
    if (!found) return false;
    const list = found.memory.segments.get(found.seq) ?? [];
    if (list.some((known) => known.seq === segment.seq)) return false;
    list.push({ ...segment });
    list.sort((a, b) => a.seq - b.seq);
    found.memory.segments.set(found.seq, list);
    return true;
  }

  /** The turn's remembered pieces from `fromSeq` on; undefined when the turn is not remembered. */
  segments(turnId: number, fromSeq: number): SegmentRow[] | undefined {
    const found = this.turnPlace(turnId);
    if (!found) return undefined;
    return (found.memory.segments.get(found.seq) ?? [])
      .filter((segment) => segment.seq >= fromSeq)
      .map((segment) => ({ ...segment, turn_id: turnId, filename: segment.audio_id ? (this.audioById(found.memory, segment.audio_id) ?? segment.filename) : null }));
  }

  response(turnId: number, fromSeq: number): string | undefined {
    const found = this.turnPlace(turnId);
    return found?.memory.responses.get(`${found.seq}/${fromSeq}`);
  }

  /** Keeps the first answer for a turn's piece (first writer wins); returns the one kept. */
  keepResponse(turnId: number, fromSeq: number, twiml: string): string {
    const found = this.turnPlace(turnId);
    if (!found) return twiml;
    const key = `${found.seq}/${fromSeq}`;
    const kept = found.memory.responses.get(key);
    if (kept !== undefined) return kept;
    found.memory.responses.set(key, twiml);
    return twiml;
  }

  putAudio(file: AudioFileRow): void {
    if (file.cache_key) {
      if (this.phrases.size >= maxPhrases) this.forgetOldestPhrase();
      this.phrases.set(file.cache_key, file);
      this.phraseFiles.set(file.filename, file);
    } else if (file.call_id) {
      this.memory(file.call_id).audio.set(file.filename, file);
      this.audioOwners.set(file.filename, file.call_id);
    }
  }

  phrase(cacheKey: string): AudioFileRow | undefined {
    return this.phrases.get(cacheKey);
  }

  audioFile(filename: string): AudioFileRow | undefined {
    const phrase = this.phraseFiles.get(filename);
    if (phrase) return phrase;
    const owner = this.audioOwners.get(filename);
    return owner ? this.calls.get(owner)?.audio.get(filename) : undefined;
  }

  /** The call's remembered audio that is not deleted. */
  callAudio(callId: string): AudioFileRow[] | undefined {
    const audio = this.calls.get(callId)?.audio;
    return audio && [...audio.values()].filter((file) => !file.deleted_at);
  }

  markAudioDeleted(audioIds: string[], at: Date): void {
    const ids = new Set(audioIds);
    for (const memory of this.calls.values()) {
      for (const file of memory.audio.values()) if (ids.has(file.audio_id)) file.deleted_at = at;
    }
  }

  /** Remembers a status callback; false when it was already remembered. */
  recordStatusEvent(callId: string, status: string, sequence: number | null): boolean {
    const events = this.memory(callId).statusEvents;
    const key = `${status}/${sequence ?? -1}`;
    if (events.has(key)) return false;
    events.add(key);
    return true;
  }

  private turnPlace(turnId: number): { memory: CallMemory; seq: number } | undefined {
    const place = this.turnIds.get(turnId);
    const memory = place && this.calls.get(place.callId);
    return memory && place ? { memory, seq: place.seq } : undefined;
  }

  private audioById(memory: CallMemory, audioId: string): string | undefined {
    for (const file of memory.audio.values()) if (file.audio_id === audioId) return file.filename;
    for (const file of this.phrases.values()) if (file.audio_id === audioId) return file.filename;
    return undefined;
  }

  private memory(callId: string): CallMemory {
    let memory = this.calls.get(callId);
    if (!memory) {
      this.sweep();
      memory = { turns: new Map(), segments: new Map(), responses: new Map(), audio: new Map(), statusEvents: new Set(), turnIds: new Set(), touchedAt: Date.now() };
      this.calls.set(callId, memory);
    }
    memory.touchedAt = Date.now();
    return memory;
  }

  /** Forgets idle calls, at most once a minute, and never while queued writes may still need their ids. */
  private sweep(): void {
    const now = Date.now();
    if (now - this.lastSweepAt < sweepIntervalMs && this.calls.size < maxCalls) return;
    if (!this.options.canForget()) return;
    this.lastSweepAt = now;
    const byAge = [...this.calls.entries()].sort(([, a], [, b]) => a.touchedAt - b.touchedAt);
    let excess = this.calls.size - maxCalls + 1;
    for (const [callId, memory] of byAge) {
      const keepMs = memory.call?.ended_at ? endedKeepMs : idleMs;
      if (now - memory.touchedAt < keepMs && excess <= 0) continue;
      excess -= 1;
      this.forget(callId, memory);
    }
  }

  private forget(callId: string, memory: CallMemory): void {
    this.calls.delete(callId);
    for (const filename of memory.audio.keys()) this.audioOwners.delete(filename);
    for (const turnId of memory.turnIds) {
      this.turnIds.delete(turnId);
      this.realIds.delete(turnId);
    }
  }

  private forgetOldestPhrase(): void {
    const oldest = this.phrases.entries().next().value;
    if (!oldest) return;
    this.phrases.delete(oldest[0]);
    this.phraseFiles.delete(oldest[1].filename);
  }
}

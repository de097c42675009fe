import { SpeechChunker } from '../src/conversation/speech-chunker.js';
import type { TurnSample } from './bench-caller.js';
import type { FakeRequestSummary } from './fake-openai-process.js';

/**
 * The floor of a turn: the earliest its first audio could have been playable
 * given the delays the fake injected into that turn's own requests, with a
 * server that costs nothing. Per path:
 *
 * - pipelined: when the chat token completing the first speakable piece was
 *   due (found by running the server's own `SpeechChunker` over the streamed
 *   pieces), plus that piece's speech request until its last byte was due;
 * - sequential: when the chat stream's last chunk was due, plus the speech
 *   request of the whole reply until its last byte was due.
 *
 * Speech "until its last byte" is first byte + (chunks − 1) × chunk interval,
 * i.e. the audio's duration ÷ the realtime factor, less the last chunk's
 * share (the fake sends ~100 ms of audio a chunk).
 */
export interface TurnFloor {
  floorMs: number;
  /** The first text the server synthesizes: the first piece, or the whole reply. */
  firstText: string;
  chatMs: number;
  speechMs: number;
  audioSeconds: number;
  /** The speech request of `firstText`. */
  speech: FakeRequestSummary;
  /** How late the fake itself was against its schedule (its own overhead, not the server's). */
  chatLatenessMs?: number;
  speechLatenessMs?: number;
}

export interface FloorMatch {
  floors: Map<TurnSample, TurnFloor>;
  chatMissing: number;
  speechMissing: number;
  /** Turns for which more than one speech request of the same text was a candidate (the earliest was taken). */
  ambiguous: number;
}

export function matchFloors(turns: readonly TurnSample[], requests: readonly FakeRequestSummary[], pipelined: boolean): FloorMatch {
  const chats = new Map<string, FakeRequestSummary>();
  const speeches = new Map<string, FakeRequestSummary[]>();
  for (const request of requests) {
    if (request.endpoint === 'chat' && request.injected?.endpoint === 'chat' && request.callerNumber) {
      const key = `${request.callerNumber}#${request.turn}`;
      if (!chats.has(key)) chats.set(key, request);
    } else if (request.endpoint === 'speech' && request.injected?.endpoint === 'speech' && request.input !== undefined) {
      const list = speeches.get(request.input) ?? [];
      list.push(request);
      speeches.set(request.input, list);
    }
  }
  for (const list of speeches.values()) list.sort((a, b) => a.receivedAt - b.receivedAt);

  const used = new Set<FakeRequestSummary>();
  const result: FloorMatch = { floors: new Map(), chatMissing: 0, speechMissing: 0, ambiguous: 0 };
  for (const turn of [...turns].sort((a, b) => a.t0 - b.t0)) {
    const chat = chats.get(`${turn.callerNumber}#${turn.turn}`);
    if (!chat || chat.injected?.endpoint !== 'chat') {
      result.chatMissing += 1;
      continue;
    }
    const { textPieces, chunkDueMs } = chat.injected;
    const first = pipelined ? firstPiece(textPieces, chunkDueMs) : { text: normalize(textPieces.join('')), dueMs: chunkDueMs.at(-1) ?? 0 };
    const until = turn.t0 + (turn.firstAudioMs ?? turn.completeMs) + 1;
    // The piece cannot be asked for before its text was due: an earlier request of the same
    // words ("Let me check that for you.") belongs to another call.
    const earliest = chat.receivedAt + first.dueMs - 1;
    const candidates = (speeches.get(first.text) ?? []).filter(
      (speech) => !used.has(speech) && speech.receivedAt >= earliest && speech.receivedAt <= until,
    );
    const speech = candidates[0];
    if (!speech || speech.injected?.endpoint !== 'speech') {
      result.speechMissing += 1;
      continue;
    }
    if (candidates.length > 1) result.ambiguous += 1;
    used.add(speech);
    const spoken = speech.injected;
    result.floors.set(turn, {
      floorMs: first.dueMs + spoken.lastByteMs,
      firstText: first.text,
      chatMs: first.dueMs,
      speechMs: spoken.lastByteMs,
      audioSeconds: spoken.audioSeconds,
      speech,
      chatLatenessMs: chat.finishedAt === undefined ? undefined : chat.finishedAt - chat.receivedAt - (chunkDueMs.at(-1) ?? 0),
      speechLatenessMs: speech.finishedAt === undefined ? undefined : speech.finishedAt - speech.receivedAt - spoken.lastByteMs,
    });
  }
  return result;
}

/** The first piece the pipelined writer synthesizes, and when the chunk that completed it was due. */
function firstPiece(textPieces: readonly string[], chunkDueMs: readonly number[]): { text: string; dueMs: number } {
  const chunker = new SpeechChunker();
  for (const [index, piece] of textPieces.entries()) {
    const out = chunker.push(piece);
    // chunkDueMs[0] is the opening role chunk; text piece i is chunk i + 1.
    if (out.length > 0) return { text: out[0], dueMs: chunkDueMs[index + 1] };
  }
  // Nothing complete until the stream ended (tool-call fragments included): the rest is flushed then.
  return { text: chunker.flush()[0] ?? '', dueMs: chunkDueMs.at(-1) ?? 0 };
}

function normalize(text: string): string {
  return text.replace(/\s+/g, ' ').trim();
}

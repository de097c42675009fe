import { SpeechChunker } from '../../src/conversation/speech-chunker.js';
import { summarize, type Summary } from '../stats.js';
import { frameMs, type FixtureAnalysis } from './speech-fixtures.js';
import type { StreamFakeRequest } from './stream-fake-process.js';
import type { TurnSample } from './stream-call.js';

/**
 * Turns the callers' observations and the fake's log into the stream
 * figures. Every time here is epoch milliseconds from one of three processes
 * (callers, fake, bench), which share the machine's clock to well under a
 * millisecond.
 *
 * A turn is matched to its requests: the chat request from its caller
 * (number in the system prompt) that arrived between the caller's last voiced
 * frame and the reply's first frame; the transcription whose text is that
 * chat's last user message (the fake tags each transcript with a number);
 * and the speech request for the reply's first piece (the server's own
 * `SpeechChunker` run over the chat's streamed pieces), the one whose arrival
 * is nearest the moment that piece's last chunk was due.
 */

export interface StreamTiming {
  endOfSpeechMs: number;
  minSpeechMs: number;
}

/** One turn with everything known about it; ms unless said otherwise. */
export interface TurnFigures {
  sample: TurnSample;
  /** Caller's last voiced frame sent → reply's first frame received. */
  measuredMs: number;
  /** When the server's detector could call the turn over, after the last voiced frame (offline, same audio and phase). */
  detectorMs: number;
  transcriptionMs: number;
  /** Chat request → the chunk that completes the first piece, as injected. */
  chatFirstPieceMs: number;
  speechFirstByteMs: number;
  /** endOfSpeechMs + the three injected delays: the floor as the profile states it. */
  floorMs: number;
  /** detectorMs + the injected delays: the floor given when the detector really calls the turn. */
  detectorFloorMs: number;
  /** What the server, loopback and the fake's own lateness added to that. */
  addedMs: number;
  /** `addedMs` less the fake's measured lateness (transcription and speech first byte; the chat's is not measurable and stays in). */
  serverAddedMs: number;
  /** Where `addedMs` went, stage by stage (they sum to it). */
  stages: StageTimes;
  /** Speech's first bytes written by the fake → the first frame received by the caller. */
  ttsToFrameMs: number;
}

export interface StageTimes {
  /** Turn detected → transcription request at the fake (WAV encoding, multipart, HTTP). */
  detectedToTranscription: number;
  /** The fake's own time on the transcription beyond its injected delay. */
  transcriptionOverhead: number;
  /** Transcript returned → chat request at the fake (turn bookkeeping, prompt, HTTP). */
  transcriptToChat: number;
  /** First piece's last chunk due → its speech request at the fake (the fake's chunk lateness, SSE parsing, chunking, HTTP). */
  pieceToSpeech: number;
  /** Speech request → first bytes written, beyond the injected delay (the fake's timer lateness). */
  speechOverhead: number;
  /** Speech first bytes → first frame at the caller (loopback ×2, undici, the SDK, conversion, pacing, WebSocket). */
  firstByteToFrame: number;
}

export interface MatchReport {
  turns: TurnFigures[];
  unmatched: number;
  /** Why turns were not matched: no chat request in the window, no transcription for it, no speech request for its first piece. */
  unmatchedWhy: { chat: number; transcription: number; speech: number };
  /** Turns for which two speech requests of the same first piece were within 20 ms of the expected moment. */
  ambiguous: number;
}

export function matchTurns(
  samples: readonly TurnSample[],
  requests: readonly StreamFakeRequest[],
  fixtures: Record<string, FixtureAnalysis>,
  timing: StreamTiming,
): MatchReport {
  const chatsByCaller = new Map<string, StreamFakeRequest[]>();
  const transcriptions = new Map<string, StreamFakeRequest>();
  const speeches = new Map<string, StreamFakeRequest[]>();
  for (const request of requests) {
    if (request.endpoint === 'chat' && request.callerNumber) {
      const list = chatsByCaller.get(request.callerNumber) ?? [];
      list.push(request);
      chatsByCaller.set(request.callerNumber, list);
    } else if (request.endpoint === 'transcription' && request.text) {
      transcriptions.set(request.text, request);
    } else if (request.endpoint === 'speech' && request.input !== undefined) {
      const list = speeches.get(request.input) ?? [];
      list.push(request);
      speeches.set(request.input, list);
    }
  }
  for (const list of chatsByCaller.values()) list.sort((a, b) => a.receivedAt - b.receivedAt);

  const report: MatchReport = { turns: [], unmatched: 0, unmatchedWhy: { chat: 0, transcription: 0, speech: 0 }, ambiguous: 0 };
  const used = new Set<StreamFakeRequest>();
  for (const sample of samples) {
    if (sample.firstFrameAt === undefined) continue;
    const firstFrameAt = sample.firstFrameAt;
    const chat = chatsByCaller.get(sample.callerNumber)?.find((request) => request.receivedAt > sample.lastVoicedAt && request.receivedAt < firstFrameAt);
    const transcription = chat?.lastUserText === undefined ? undefined : transcriptions.get(chat.lastUserText);
    const first = chat?.textPieces && chat.chunkDueMs ? firstPiece(chat.textPieces, chat.chunkDueMs) : undefined;
    if (!chat || !transcription || !first) {
      report.unmatched++;
      report.unmatchedWhy[!chat ? 'chat' : 'transcription']++;
      continue;
    }
    const expectedAt = chat.receivedAt + first.dueMs;
    const candidates = (speeches.get(first.text) ?? [])
      .filter((request) => !used.has(request) && request.receivedAt >= chat.receivedAt && request.receivedAt < firstFrameAt && request.firstByteAt !== undefined)
      .sort((a, b) => Math.abs(a.receivedAt - expectedAt) - Math.abs(b.receivedAt - expectedAt));
    const speech = candidates[0];
    if (!speech || speech.firstByteAt === undefined || speech.firstByteMs === undefined) {
      report.unmatched++;
      report.unmatchedWhy.speech++;
      continue;
    }
    if (candidates.length > 1 && Math.abs(candidates[1].receivedAt - expectedAt) < 20) report.ambiguous++;
    used.add(speech);

    const analysis = fixtures[sample.fixture];
    const reaction = (sample.bargeIn ? analysis.talking : analysis.listening)[sample.phase];
    const detectorMs = ((reaction.endedFrame ?? Number.NaN) - analysis.fixture.lastVoicedFrame) * frameMs;
    const transcriptionMs = transcription.delayMs ?? 0;
    const providersMs = transcriptionMs + first.dueMs + speech.firstByteMs;
    const measuredMs = firstFrameAt - sample.lastVoicedAt;
    const detectedAt = sample.lastVoicedAt + detectorMs;
    const transcriptionOverhead = (transcription.finishedAt ?? transcription.receivedAt) - transcription.receivedAt - transcriptionMs;
    const speechOverhead = speech.firstByteAt - speech.receivedAt - speech.firstByteMs;
    report.turns.push({
      sample,
      measuredMs,
      detectorMs,
      transcriptionMs,
      chatFirstPieceMs: first.dueMs,
      speechFirstByteMs: speech.firstByteMs,
      floorMs: timing.endOfSpeechMs + providersMs,
      detectorFloorMs: detectorMs + providersMs,
      addedMs: measuredMs - detectorMs - providersMs,
      serverAddedMs: measuredMs - detectorMs - providersMs - transcriptionOverhead - speechOverhead,
      stages: {
        detectedToTranscription: transcription.receivedAt - detectedAt,
        transcriptionOverhead,
        transcriptToChat: chat.receivedAt - (transcription.finishedAt ?? transcription.receivedAt),
        pieceToSpeech: speech.receivedAt - expectedAt,
        speechOverhead,
        firstByteToFrame: firstFrameAt - speech.firstByteAt,
      },
      ttsToFrameMs: firstFrameAt - speech.firstByteAt,
    });
  }
  return report;
}

/** The first piece the server synthesizes, and when the chunk completing it was due (the server's own chunker). */
function firstPiece(textPieces: readonly string[], chunkDueMs: readonly number[]): { text: string; dueMs: number } {
  const chunker = new SpeechChunker();
  for (const [index, piece] of textPieces.entries()) {
    const out = chunker.push(piece);
    // chunkDueMs[0] is the opening role chunk; text piece i is chunk i + 1.
    if (out.length > 0) return { text: out[0], dueMs: chunkDueMs[index + 1] };
  }
  return { text: chunker.flush()[0] ?? '', dueMs: chunkDueMs.at(-1) ?? 0 };
}

/** One barge-in: speech over a reply until the server's `clear`. */
export interface BargeInFigures {
  fixture: string;
  phase: number;
  /** Frame completing `minSpeechMs` of voice sent → `clear` received. */
  totalMs: number;
  /** Of that, what the detector needs by design: from that frame to the frame on whose arrival it fires (offline). */
  detectorMs: number;
  /** Frame on which the detector fires sent → `clear` received: the server's (and loopback's) part. */
  serverMs: number;
}

export interface BargeInReport {
  bargeIns: BargeInFigures[];
  /** Turns spoken over a reply that got no `clear`. */
  missed: number;
}

export function bargeInFigures(samples: readonly TurnSample[], fixtures: Record<string, FixtureAnalysis>, timing: StreamTiming): BargeInReport {
  const crossFrame = Math.ceil(timing.minSpeechMs / frameMs) - 1;
  const report: BargeInReport = { bargeIns: [], missed: 0 };
  for (const sample of samples) {
    if (!sample.bargeIn) continue;
    if (sample.clearAt === undefined || sample.crossAt === undefined) {
      report.missed++;
      continue;
    }
    const reaction = fixtures[sample.fixture].talking[sample.phase];
    const detectorMs = ((reaction.startedFrame ?? Number.NaN) - crossFrame) * frameMs;
    const totalMs = sample.clearAt - sample.crossAt;
    report.bargeIns.push({ fixture: sample.fixture, phase: sample.phase, totalMs, detectorMs, serverMs: totalMs - detectorMs });
  }
  return report;
}

export function summarizeBy<T>(items: readonly T[], value: (item: T) => number): Summary {
  return summarize(items.map(value));
}

/** The turn rows' own stamps, `first_frame_at − tts_first_byte_at`, from the dashboard API (millisecond timestamps). */
export function storedFirstByteToFrame(detail: unknown): number[] {
  const conversation = (detail as { conversation?: Array<{ kind: string; latency?: { stages?: Array<{ name: string; endMs: number }> } }> }).conversation ?? [];
  const out: number[] = [];
  for (const turn of conversation) {
    if (turn.kind !== 'speech') continue;
    const stages = new Map((turn.latency?.stages ?? []).map((stage) => [stage.name, stage.endMs]));
    const synthesis = stages.get('synthesis');
    const frame = stages.get('first-frame');
    if (synthesis !== undefined && frame !== undefined) out.push(frame - synthesis);
  }
  return out;
}

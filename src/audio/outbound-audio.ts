import { mulawFrameBytes } from '../twilio/media-stream-messages.js';
import { createPcm24kToMulaw8k, type AudioConverter } from './wav.js';

// Speech reaches callme faster than real time (a sentence of TTS arrives in
// a fraction of its length), but Twilio plays a Media Stream's audio at
// 8 kHz from a buffer whose contents a `clear` throws away. Sending
// everything at once would make the local estimate of what the caller heard
// guesswork and leave seconds of audio for Twilio to drop; dribbling it frame
// by frame at exactly real time would turn every network hiccup into a gap.
// So audio goes out a little ahead of playback (`leadMs`), one timer per
// call paces the rest, and what was sent, played and dropped is counted.

/** Where paced audio goes: the three messages a server sends on a Media Stream. */
export interface OutboundAudioSink {
  /** One 20 ms frame of 8 kHz μ-law, 160 bytes. */
  sendAudio(frame: Uint8Array): void;
  /** A mark after the audio sent so far; Twilio echoes it when that audio has played. */
  sendMark(name: string): void;
  /** Twilio should drop everything it has not played yet. */
  sendClear(): void;
}

/** The clock and timer the pacing runs on; tests pass a fake one. */
export interface PacingClock {
  /** Milliseconds, monotonic. */
  now(): number;
  setTimeout(callback: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export interface OutboundAudioOptions {
  sink: OutboundAudioSink;
  /**
   * How far ahead of the caller's playback audio is sent; defaults to 200 ms.
   * More rides out worse network jitter; less leaves less audio in Twilio's
   * buffer, which a barge-in must clear and the estimate of what was heard
   * must guess about.
   */
  leadMs?: number;
  clock?: PacingClock;
}

/** How far one piece of speech (a sentence, say) has got. */
export interface PieceProgress {
  /** The name given to `endPiece`; `undefined` while audio is still being pushed. */
  name: string | undefined;
  /** Audio of the piece so far, in whole frames. */
  queuedMs: number;
  /** Of that, sent to Twilio. */
  sentMs: number;
  /** Of that, played to the caller by now, estimated from the time it was sent and corrected by mark echoes. */
  heardMs: number;
}

/** What a barge-in threw away. */
export interface ClearResult {
  /** Audio still queued here, never sent. */
  droppedMs: number;
  /** Audio sent but, by the estimate, not yet played: the `clear` drops it at Twilio. */
  unplayedMs: number;
  /** Every piece not yet fully heard, with how much of it the caller did hear. */
  pieces: PieceProgress[];
}

/** What a mark echo from Twilio means. */
export type MarkOutcome = 'played' | 'cleared' | 'unknown';

const frameMs = 20;
/** 50 ms of 24 kHz 16-bit PCM. */
const conversionSliceBytes = 2400;
/** μ-law for 0: pads the last frame of a piece. */
const mulawSilence = 0xff;
/** Marks awaiting an echo are remembered up to this many, so a caller that never passes echoes on cannot grow memory. */
const maxPendingMarks = 256;

const systemClock: PacingClock = {
  now: () => performance.now(),
  setTimeout: (callback, ms) => setTimeout(callback, ms),
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};

interface Piece {
  name: string | undefined;
  queuedFrames: number;
  sentFrames: number;
  /** Position on the playback timeline of the piece's first sent frame. */
  startMs: number | undefined;
  /** When (clock time) its first frame was sent. */
  firstSentAt: number | undefined;
}

type Entry = Uint8Array | { mark: string };

/**
 * Paces one call's speech to Twilio: 24 kHz 16-bit PCM in, whole 20 ms μ-law
 * frames out. The first frames of a piece leave inside `push`, as soon as
 * they are converted; after that one timer keeps `leadMs` of audio ahead of
 * the caller. State per call: the queued audio (8 KB a second of it) and a
 * few counters.
 */
export class OutboundAudio {
  private readonly sink: OutboundAudioSink;
  private readonly leadMs: number;
  private readonly clock: PacingClock;
  private converter: AudioConverter = createPcm24kToMulaw8k();
  /** The frame being filled from converter output. */
  private partial = new Uint8Array(mulawFrameBytes);
  private partialFill = 0;
  private queue: Entry[] = [];
  private head = 0;
  private queuedFrames = 0;
  /** Pieces not yet known to be fully played, oldest first; the last may still be open. */
  private pieces: Piece[] = [];
  /** Index in `pieces` of the piece whose frames are being sent. */
  private sending = 0;
  private open: Piece | undefined;
  /** Playback timeline position of each mark sent and not yet echoed. */
  private readonly pendingMarks = new Map<string, number>();
  private readonly clearedMarks = new Set<string>();
  private sentFrames = 0;
  /** Sent audio a `clear` dropped at Twilio, by the estimate. */
  private clearedMs = 0;
  /** When Twilio will have played everything sent, by the estimate. */
  private playEndAt = Number.NEGATIVE_INFINITY;
  private timer: unknown;
  private closed = false;
  /** A producer waiting for the queue to fall below `ms`. */
  private lowWater: { ms: number; resolve: () => void } | undefined;

  constructor(options: OutboundAudioOptions) {
    this.sink = options.sink;
    this.leadMs = options.leadMs ?? 200;
    this.clock = options.clock ?? systemClock;
  }

  /** Audio sent to Twilio since the start, including any a `clear` later dropped. */
  get sentMs(): number {
    return this.sentFrames * frameMs;
  }

  /** Audio waiting here to be sent. */
  get queuedMs(): number {
    return this.queuedFrames * frameMs;
  }

  /** Audio the caller has heard so far, by the estimate. */
  get playedMs(): number {
    return this.timelineMs() - this.unplayedMs();
  }

  /** Nothing queued here and, by the estimate, nothing left playing. */
  get idle(): boolean {
    return this.queuedFrames === 0 && this.partialFill === 0 && this.unplayedMs() === 0;
  }

  /**
   * Resolves once less than `ms` of audio is queued here (at once if it is
   * already), or the queue is cleared or closed. A producer with speech far
   * ahead of playback pushes it as the queue drains, so the conversion is
   * spread over the playback instead of done in one go when a large chunk
   * arrives (which would stall every other call on the process).
   */
  whenQueuedBelow(ms: number): Promise<void> {
    if (this.closed || this.queuedMs < ms) return Promise.resolve();
    this.lowWater?.resolve();
    return new Promise((resolve) => {
      this.lowWater = { ms, resolve };
    });
  }

  /** Adds streamed speech (24 kHz s16le mono, any chunk size, even odd) to the current piece. */
  push(pcm24k: Uint8Array): void {
    if (this.closed) return;
    this.openPiece();
    // Converting costs about 5 µs per ms of audio: a whole network chunk of
    // a second would hold the first frame back for 5 ms. Slices let the
    // first frames leave after the first slice.
    for (let offset = 0; offset < pcm24k.length; offset += conversionSliceBytes) {
      this.enqueueMulaw(this.converter.push(pcm24k.subarray(offset, offset + conversionSliceBytes)));
      this.pump();
    }
  }

  /**
   * Adds speech that is already 8 kHz μ-law (a realtime model's `g711_ulaw`
   * output, cached audio) to the current piece. A piece should be one or the
   * other: the resampler's last few milliseconds of `push` audio only come
   * out at `endPiece`, after any μ-law pushed in between.
   */
  /**
   * When (on the pacing clock) the first frame of the piece being pushed was
   * sent; `undefined` while none has (none pushed yet, or all waiting behind
   * audio still ahead of the caller).
   */
  get openPieceFirstSentAt(): number | undefined {
    return this.open?.firstSentAt;
  }

  pushMulaw(mulaw: Uint8Array): void {
    if (this.closed) return;
    this.openPiece();
    // Copied: queued frames are views, and the caller may reuse its buffer.
    this.enqueueMulaw(mulaw.slice());
    this.pump();
  }

  /**
   * Ends the current piece: its last partial frame is padded with silence
   * and a mark named `name` follows it, so the echo of `name` says the
   * caller has heard the whole piece. Names must be unique within the call:
   * echoes are matched by name.
   */
  endPiece(name: string): void {
    if (this.closed) return;
    const piece = this.openPiece();
    this.enqueueMulaw(this.converter.flush());
    if (this.partialFill > 0) {
      this.partial.fill(mulawSilence, this.partialFill);
      this.enqueueFrame(this.partial);
      this.partial = new Uint8Array(mulawFrameBytes);
      this.partialFill = 0;
    }
    piece.name = name;
    this.queue.push({ mark: name });
    this.open = undefined;
    this.pump();
  }

  /**
   * Passes on Twilio's echo of a mark. `played` also corrects the playback
   * estimate: the caller has heard exactly up to that mark. `cleared` means
   * the echo came because of a `clear`, not because the audio played.
   */
  markEchoed(name: string): MarkOutcome {
    if (this.clearedMarks.delete(name)) return 'cleared';
    const position = this.pendingMarks.get(name);
    if (position === undefined) return 'unknown';
    this.pendingMarks.delete(name);
    this.playEndAt = this.clock.now() + (this.timelineMs() - position);
    this.forgetHeardPieces();
    return 'played';
  }

  /** The pieces not yet fully heard, with their progress. */
  progress(): PieceProgress[] {
    this.forgetHeardPieces();
    const played = this.playedMs;
    return this.pieces.map((piece) => ({
      name: piece.name,
      queuedMs: piece.queuedFrames * frameMs,
      sentMs: piece.sentFrames * frameMs,
      heardMs: piece.startMs === undefined ? 0 : Math.min(piece.sentFrames * frameMs, Math.max(0, played - piece.startMs)),
    }));
  }

  /**
   * Barge-in: drops every queued frame and mark, tells Twilio to drop what
   * it has buffered, and reports what the caller did and did not hear.
   * Twilio echoes the marks it was holding; {@link markEchoed} knows them as
   * `cleared`.
   */
  clear(): ClearResult {
    const result: ClearResult = { droppedMs: this.queuedMs, unplayedMs: this.unplayedMs(), pieces: this.progress() };
    if (this.sentFrames > 0 || this.pendingMarks.size > 0) this.sink.sendClear();
    for (const name of this.pendingMarks.keys()) this.clearedMarks.add(name);
    this.pendingMarks.clear();
    this.clearedMs += result.unplayedMs;
    this.playEndAt = Math.min(this.playEndAt, this.clock.now());
    this.dropQueue();
    this.releaseLowWater();
    return result;
  }

  /** Stops the timer and forgets the queue; for the end of the call. */
  close(): void {
    this.closed = true;
    this.dropQueue();
    this.releaseLowWater();
  }

  private releaseLowWater(): void {
    const waiting = this.lowWater;
    this.lowWater = undefined;
    waiting?.resolve();
  }

  private timelineMs(): number {
    return this.sentFrames * frameMs - this.clearedMs;
  }

  private unplayedMs(): number {
    return Math.max(0, this.playEndAt - this.clock.now());
  }

  private openPiece(): Piece {
    if (!this.open) {
      this.open = { name: undefined, queuedFrames: 0, sentFrames: 0, startMs: undefined, firstSentAt: undefined };
      this.pieces.push(this.open);
    }
    return this.open;
  }

  /** Cuts converter output into frames; full frames are views, not copies. */
  private enqueueMulaw(bytes: Uint8Array): void {
    let offset = 0;
    if (this.partialFill > 0) {
      const take = Math.min(bytes.length, mulawFrameBytes - this.partialFill);
      this.partial.set(bytes.subarray(0, take), this.partialFill);
      this.partialFill += take;
      offset = take;
      if (this.partialFill < mulawFrameBytes) return;
      this.enqueueFrame(this.partial);
      this.partial = new Uint8Array(mulawFrameBytes);
      this.partialFill = 0;
    }
    for (; offset + mulawFrameBytes <= bytes.length; offset += mulawFrameBytes) {
      this.enqueueFrame(bytes.subarray(offset, offset + mulawFrameBytes));
    }
    this.partial.set(bytes.subarray(offset));
    this.partialFill = bytes.length - offset;
  }

  private enqueueFrame(frame: Uint8Array): void {
    this.queue.push(frame);
    this.queuedFrames++;
    this.openPiece().queuedFrames++;
  }

  /** Sends what is due: marks at once, frames while less than `leadMs` is ahead of the caller. */
  private pump(): void {
    while (this.head < this.queue.length) {
      const entry = this.queue[this.head];
      if (!(entry instanceof Uint8Array)) {
        this.head++;
        this.sendMark(entry.mark);
        continue;
      }
      const now = this.clock.now();
      if (this.playEndAt - now >= this.leadMs) break;
      this.head++;
      this.queuedFrames--;
      const piece = this.pieces[this.sending];
      piece.startMs ??= this.timelineMs();
      piece.firstSentAt ??= now;
      piece.sentFrames++;
      this.sentFrames++;
      this.playEndAt = Math.max(this.playEndAt, now) + frameMs;
      this.sink.sendAudio(entry);
    }
    this.compactQueue();
    if (this.lowWater && this.queuedMs < this.lowWater.ms) this.releaseLowWater();
    if (this.head < this.queue.length && this.timer === undefined) {
      // Whole milliseconds: Node keeps one timer list per distinct delay, so fractional delays
      // (every call's differs) would make a list, and a heap entry, per frame.
      const delay = Math.max(1, Math.round(this.playEndAt - this.leadMs - this.clock.now()));
      this.timer = this.clock.setTimeout(() => {
        this.timer = undefined;
        this.pump();
      }, delay);
    }
  }

  private sendMark(name: string): void {
    this.pendingMarks.set(name, this.timelineMs());
    if (this.pendingMarks.size > maxPendingMarks) this.pendingMarks.delete(this.pendingMarks.keys().next().value as string);
    this.sending++;
    this.sink.sendMark(name);
  }

  /** Drops pieces whose mark has been sent and which, by the estimate, have fully played. */
  private forgetHeardPieces(): void {
    const played = this.playedMs;
    let done = 0;
    while (done < this.sending) {
      const piece = this.pieces[done];
      if (piece.startMs !== undefined && played < piece.startMs + piece.sentFrames * frameMs) break;
      done++;
    }
    if (done === 0) return;
    this.pieces.splice(0, done);
    this.sending -= done;
  }

  private compactQueue(): void {
    if (this.head === this.queue.length) {
      this.queue = [];
      this.head = 0;
    } else if (this.head >= 512 && this.head * 2 >= this.queue.length) {
      this.queue = this.queue.slice(this.head);
      this.head = 0;
    }
  }

  private dropQueue(): void {
    if (this.timer !== undefined) this.clock.clearTimeout(this.timer);
    this.timer = undefined;
    this.queue = [];
    this.head = 0;
    this.queuedFrames = 0;
    this.pieces = [];
    this.sending = 0;
    this.open = undefined;
    this.partialFill = 0;
    this.converter = createPcm24kToMulaw8k();
  }
}

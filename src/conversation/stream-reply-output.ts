import type { AudioStore } from '../audio/audio-store.js';
import type { ClearResult, OutboundAudio } from '../audio/outbound-audio.js';
import { parseWav } from '../audio/wav.js';
import type { AssistantProfile } from '../assistant/profile.js';
import { isAbortError } from '../providers/provider-error.js';
import type { SpeechModel } from '../providers/speech-model.js';
import type { ReplyOutcome, ReplyOutput, ReplyOutputContext } from './reply-output.js';
import { SpeechChunker } from './speech-chunker.js';
import type { SpeechRenderer } from './speech-renderer.js';

/** Pieces synthesized ahead of the one playing: enough that the next is ready when the current ends. */
const synthesisAhead = 2;
/** After the last frame is sent, how long to wait for its mark beyond the audio still to play. */
const markGraceMs = 3_000;

export interface StreamReplyOutputDeps {
  outbound: OutboundAudio;
  speechModel: SpeechModel;
  renderer: SpeechRenderer;
  audioStore: AudioStore;
  profile: AssistantProfile;
  context: ReplyOutputContext;
  /** Stage timestamps for the turn row. */
  onTiming: (stage: 'tts_first_byte_at' | 'first_frame_at' | 'mark_echoed_at', at: Date) => void;
  /** The first frame went out this many (monotonic) milliseconds after the first piece's first audio came in. */
  onFirstFrame?: (sinceSpeechMs: number) => void;
}

interface Piece {
  index: number;
  text: string;
  /** Fixed phrases come from the phrase cache as 8 kHz μ-law; replies stream as 24 kHz PCM. */
  encoding: 'pcm24k' | 'mulaw';
  chunks: Uint8Array[];
  done: boolean;
  failed: boolean;
  /** Audio handed to the outbound queue, in ms. */
  pushedMs: number;
  mark: string;
  started: boolean;
  /** Its last frame and mark are queued. */
  ended: boolean;
}

/**
 * A turn's reply spoken straight into a media stream: each piece is
 * synthesized as soon as its text is complete (a couple ahead of the one
 * playing), streamed to the caller as the audio arrives, and followed by a
 * mark whose echo says the caller heard it. On barge-in it works out which
 * words the caller actually heard.
 */
export class StreamReplyOutput implements ReplyOutput {
  private readonly chunker = new SpeechChunker();
  private readonly pieces: Piece[] = [];
  /** When (monotonic ms) the first piece's first audio came in. */
  private speechArrivedAt: number | undefined;
  private wake: (() => void) | undefined;
  private consumer: Promise<void> | undefined;
  private clearResult: ClearResult | undefined;
  private lastMarkPlayed: (() => void) | undefined;
  private readonly playedMarks = new Set<string>();
  private ttsCharacters = 0;
  firstTextAt?: Date;
  firstAudioAt?: Date;

  constructor(private readonly deps: StreamReplyOutputDeps) {
    deps.context.abortSignal.addEventListener(
      'abort',
      () => {
        this.poke();
        this.lastMarkPlayed?.();
      },
      { once: true },
    );
  }

  get hasSpoken(): boolean {
    return this.pieces.length > 0;
  }

  append(text: string): void {
    for (const piece of this.chunker.push(text)) this.enqueue(piece, 'pcm24k');
  }

  say(text: string): void {
    this.flushText();
    this.enqueue(text, 'mulaw');
  }

  flushText(): void {
    for (const piece of this.chunker.flush()) this.enqueue(piece, 'pcm24k');
  }

  /** The caller spoke over the reply: the outbound queue was cleared with this result. */
  interrupted(result: ClearResult): void {
    this.clearResult ??= result;
    this.lastMarkPlayed?.();
    this.poke();
  }

  /** Twilio echoed a mark of this reply after playing up to it. */
  markPlayed(name: string): void {
    if (!this.owns(name)) return;
    // The stage is the first echo (the first piece heard whole); later ones would only cost a write each.
    if (this.playedMarks.size === 0) this.deps.onTiming('mark_echoed_at', new Date());
    this.playedMarks.add(name);
    this.lastMarkPlayed?.();
  }

  owns(markName: string): boolean {
    return this.pieces.some((piece) => piece.mark === markName);
  }

  async finish(): Promise<ReplyOutcome> {
    this.flushText();
    this.finishing = true;
    this.poke();
    await this.consumer;
    const last = this.pieces.filter((piece) => piece.ended).at(-1);
    if (last && !this.clearResult && !this.stop.aborted && !this.playedMarks.has(last.mark)) {
      // end_call depends on this: the goodbye is heard before the hang-up.
      const remaining = this.deps.outbound.queuedMs + Math.max(0, this.deps.outbound.sentMs - this.deps.outbound.playedMs);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, remaining + markGraceMs);
        this.lastMarkPlayed = () => {
          if (!this.playedMarks.has(last.mark) && !this.clearResult && !this.stop.aborted) return;
          clearTimeout(timer);
          resolve();
        };
      });
    }
    return this.outcome();
  }

  private outcome(): ReplyOutcome {
    const spoken = this.pieces.filter((piece) => piece.pushedMs > 0 && !piece.failed);
    if (!this.clearResult) {
      return { spokenText: spoken.map((piece) => piece.text).join(' '), ttsCharacters: this.ttsCharacters };
    }
    const progress = new Map(this.clearResult.pieces.map((piece) => [piece.name, piece]));
    const heard: string[] = [];
    let heardMs = 0;
    for (const piece of spoken) {
      const open = progress.get(piece.mark) ?? (piece.mark === this.openMark() ? progress.get(undefined) : undefined);
      if (!open) {
        // Not among the pieces still playing: played in full before the interruption.
        heard.push(piece.text);
        heardMs += piece.pushedMs;
        continue;
      }
      if (open.heardMs > 0 && open.queuedMs > 0) {
        const words = piece.text.split(/\s+/);
        const count = Math.round((words.length * Math.min(open.heardMs, open.queuedMs)) / open.queuedMs);
        if (count > 0) heard.push(`${words.slice(0, count).join(' ')}…`);
        heardMs += open.heardMs;
      }
      break;
    }
    return { spokenText: heard.join(' '), ttsCharacters: this.ttsCharacters, interruptedAtMs: heardMs };
  }

  private openMark(): string | undefined {
    return this.pieces.find((piece) => piece.pushedMs > 0 && !piece.ended)?.mark;
  }

  private enqueue(text: string, encoding: Piece['encoding']): void {
    if (this.stop.aborted || this.clearResult) return;
    if (!this.firstTextAt) this.firstTextAt = new Date();
    const index = this.pieces.length;
    const piece: Piece = {
      index, text, encoding, chunks: [], done: false, failed: false, pushedMs: 0,
      mark: `${this.deps.context.turnId}.${index}`, started: false, ended: false,
    };
    this.pieces.push(piece);
    this.startAhead();
    this.consumer ??= this.consume();
    this.poke();
  }

  /** Plays pieces in order, streaming each as its audio arrives, while the next ones are synthesized. */
  private async consume(): Promise<void> {
    const { outbound } = this.deps;
    const signal = this.stop;
    for (let index = 0; ; index += 1) {
      this.playing = index;
      this.startAhead();
      while (index >= this.pieces.length) {
        if (this.stopped()) return;
        if (this.textComplete) return;
        await this.sleep();
      }
      const piece = this.pieces[index];
      this.start(piece);
      for (;;) {
        if (this.stopped()) return;
        // Speech arrives far faster than it plays: it is handed over in slices as the queue drains,
        // so converting a large chunk never holds the event loop (and every other call) at once.
        if (outbound.queuedMs >= queueAheadMs) {
          await outbound.whenQueuedBelow(queueAheadMs);
          continue;
        }
        const chunk = nextSlice(piece.chunks, piece.encoding === 'mulaw' ? mulawSliceBytes : pcmSliceBytes);
        if (chunk) {
          if (piece.encoding === 'mulaw') outbound.pushMulaw(chunk);
          else outbound.push(chunk);
          piece.pushedMs += piece.encoding === 'mulaw' ? chunk.length / 8 : chunk.length / 48;
          if (!this.firstAudioAt) {
            this.firstAudioAt = new Date();
            // Stamped by the pacing when the frame left, not now: `push` goes on converting the rest of the chunk after it.
            const sentAt = outbound.openPieceFirstSentAt;
            if (index === 0 && this.speechArrivedAt !== undefined && sentAt !== undefined) this.deps.onFirstFrame?.(sentAt - this.speechArrivedAt);
            this.deps.onTiming('first_frame_at', this.firstAudioAt);
          }
          continue;
        }
        if (piece.done) break;
        await this.sleep();
      }
      if (!piece.failed && piece.pushedMs > 0) {
        outbound.endPiece(piece.mark);
        piece.ended = true;
      }
      if (signal.aborted) return;
      if (this.textComplete && index === this.pieces.length - 1) return;
    }
  }

  /** The first piece's first audio is here. */
  private speechArrived(): void {
    this.speechArrivedAt = performance.now();
    this.deps.onTiming('tts_first_byte_at', new Date());
  }

  /** True once `finish` has been called and no more text can come. */
  private get textComplete(): boolean {
    return this.finishing;
  }

  private finishing = false;
  /** The piece being played. */
  private playing = 0;

  /** Synthesis runs for the piece playing and the next few, no further. */
  private startAhead(): void {
    const end = Math.min(this.pieces.length, this.playing + 1 + synthesisAhead);
    for (let index = this.playing; index < end; index += 1) this.start(this.pieces[index]);
  }

  private stopped(): boolean {
    return this.stop.aborted || this.clearResult !== undefined;
  }

  /** Aborted when nothing more may be said; the turn's deadline alone stops synthesis, not the apology after it. */
  private get stop(): AbortSignal {
    return this.deps.context.stopSignal ?? this.deps.context.abortSignal;
  }

  private start(piece: Piece): void {
    if (piece.started) return;
    piece.started = true;
    void this.fetch(piece).finally(() => {
      piece.done = true;
      this.poke();
    });
  }

  private async fetch(piece: Piece): Promise<void> {
    const { context, profile } = this.deps;
    try {
      if (piece.encoding === 'mulaw') {
        piece.chunks.push(await this.phraseAudio(piece.text));
        if (piece.index === 0) this.speechArrived();
        return;
      }
      this.ttsCharacters += piece.text.length;
      const audio = await this.deps.speechModel.synthesize({
        text: piece.text,
        voice: profile.voice,
        model: profile.ttsModel,
        speed: profile.speed,
        format: 'pcm',
        abortSignal: context.abortSignal,
      });
      let first = true;
      for await (const chunk of audio) {
        if (first && piece.index === 0) this.speechArrived();
        first = false;
        piece.chunks.push(chunk);
        this.poke();
      }
    } catch (error) {
      if (isAbortError(error) || context.abortSignal.aborted) return;
      piece.chunks.length = 0;
      context.onRenderError(error, piece.text);
      if (piece.encoding === 'pcm24k' && !this.apologised && (await this.apologiseInstead(piece))) return;
      piece.failed = true;
    }
  }

  /**
   * A stream has no `<Say>` to fall back on: words that cannot be synthesized
   * cannot be heard. The apology, from the phrase cache, takes their place
   * (once a reply), so the caller is not left in silence; the turn keeps
   * what was heard of the piece before it broke.
   */
  private async apologiseInstead(piece: Piece): Promise<boolean> {
    const apology = this.deps.profile.phrases.apology;
    try {
      const audio = await this.phraseAudio(apology);
      this.apologised = true;
      piece.encoding = 'mulaw';
      piece.text = piece.pushedMs > 0 ? `${piece.text}… ${apology}` : apology;
      piece.chunks.push(audio);
      return true;
    } catch {
      return false;
    }
  }

  private apologised = false;

  /** A fixed phrase's 8 kHz μ-law, from the phrase cache (synthesized once when missing). */
  private async phraseAudio(text: string): Promise<Uint8Array> {
    const rendered = await this.deps.renderer.renderPhrase(text, this.deps.profile, this.deps.context.abortSignal);
    if (rendered.kind !== 'audio') throw new Error('phrase audio is not available');
    const file = await this.deps.audioStore.get(rendered.filename);
    if (!file) throw new Error(`phrase audio ${rendered.filename} is missing`);
    const bytes: Buffer[] = [];
    for await (const chunk of file.body) bytes.push(chunk as Buffer);
    return parseWav(Buffer.concat(bytes)).data;
  }

  private poke(): void {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }

  private sleep(): Promise<void> {
    return new Promise((resolve) => {
      this.wake = resolve;
    });
  }
}

/** Audio queued for the caller beyond which the rest of a reply waits unconverted. */
const queueAheadMs = 1_000;
/** Half a second of 24 kHz 16-bit PCM, and of 8 kHz μ-law: what is handed over at a time. */
const pcmSliceBytes = 24_000;
const mulawSliceBytes = 4_000;

/** Takes up to `bytes` from the front of `chunks` (even, so PCM samples stay whole), or `undefined` when there is nothing. */
function nextSlice(chunks: Uint8Array[], bytes: number): Uint8Array | undefined {
  const first = chunks[0];
  if (!first) return undefined;
  if (first.length <= bytes) return chunks.shift();
  chunks[0] = first.subarray(bytes);
  return first.subarray(0, bytes);
}

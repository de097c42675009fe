import type { AssistantProfile } from '../assistant/profile.js';
import type { CallRepository, SegmentRow } from '../storage/call-repository.js';
import type { PendingReply } from '../audio/pending-audio.js';
import { SpeechChunker } from './speech-chunker.js';
import { AudioNotStoredError, type RenderedSpeech, type SpeechRenderer } from './speech-renderer.js';
import type { TurnProgress } from './turn-progress.js';
import type { ReplyOutcome, ReplyOutput } from './reply-output.js';

/** Pieces synthesized at once per turn: enough to stay ahead of playback, few enough to be polite to the provider. */
const synthesisConcurrency = 3;

export interface ReplyWriterDeps {
  repository: CallRepository;
  renderer: SpeechRenderer;
  progress: TurnProgress;
  onRenderError: (error: unknown, text: string) => void;
  /** `false`: hold the whole reply and synthesize it in one piece at the end. */
  pipelined: boolean;
  /**
   * Told of each piece once it is playable (stored, or named while its audio is
   * synthesized; then told again once stored), before waiting requests are
   * woken; `last` when it is stored, the reply's text was complete and no
   * piece follows it.
   */
  onSegmentStored?: (segment: SegmentRow, last: boolean) => void;
}

/**
 * Collects one turn's reply as it is produced and publishes it piece by piece:
 * each piece is synthesized as soon as its text is complete (a few at once),
 * and stored as a reply segment in spoken order the moment it is playable.
 * Webhook requests waiting on the turn read those segments.
 */
export class ReplyWriter implements ReplyOutput {
  private readonly chunker = new SpeechChunker();
  /** What the caller hears, by piece number. */
  private readonly spoken: Array<{ seq: number; text: string }> = [];
  /** Pieces enqueued, and the next segment number (a failed piece named early takes two). */
  private segmentCount = 0;
  private nextSeq = 0;
  /** Every piece stored, in spoken order. */
  private written: Promise<void> = Promise.resolve();
  /** Every piece given a number and made playable (a piece named early is, before it is stored). */
  private published: Promise<void> = Promise.resolve();
  private running = 0;
  private readonly queue: Array<() => void> = [];
  private charactersSynthesized = 0;
  private held = '';
  /** `finish` was called: the reply's text is complete. */
  private textComplete = false;
  /** When the first piece's text was complete, and when its audio was playable. */
  firstTextAt?: Date;
  firstAudioAt?: Date;

  constructor(
    private readonly deps: ReplyWriterDeps,
    private readonly turn: { callId: string; turnId: number },
    private readonly profile: AssistantProfile,
    private readonly abortSignal: AbortSignal,
  ) {}

  /** Streamed reply text from the assistant. */
  append(text: string): void {
    if (!this.deps.pipelined) {
      this.held += text;
      return;
    }
    for (const piece of this.chunker.push(text)) this.enqueue(piece, false);
  }

  /** A fixed phrase, spoken whole and served from the phrase cache. */
  say(text: string): void {
    this.flushText();
    this.enqueue(text, true);
  }

  /** Ends the streamed text so far (before a fixed phrase, or at the end). */
  flushText(): void {
    const whole = this.held.replace(/\s+/g, ' ').trim();
    this.held = '';
    if (whole) this.enqueue(whole, false);
    for (const piece of this.chunker.flush()) this.enqueue(piece, false);
  }

  /** Waits until every piece is stored; returns what the caller will hear. */
  async finish(): Promise<ReplyOutcome> {
    this.textComplete = true;
    this.flushText();
    await this.written;
    const spokenText = this.spoken.sort((a, b) => a.seq - b.seq).map((piece) => piece.text).join(' ');
    return { spokenText, ttsCharacters: this.charactersSynthesized };
  }

  get hasSpoken(): boolean {
    return this.segmentCount > 0;
  }

  private enqueue(text: string, cached: boolean): void {
    const index = this.segmentCount++;
    // Stage times are stored with the finished turn, not one statement each.
    this.firstTextAt ??= new Date();
    const last = () => this.textComplete && index === this.segmentCount - 1;
    // A piece synthesized here is named before its audio exists: the webhook can hand Twilio
    // its URL at once, and Twilio's download is answered the moment the audio is whole.
    const reserved = !cached && this.deps.pipelined ? this.deps.renderer.reserveReply(this.profile) : undefined;
    const rendered = this.withSlot(() => this.render(text, cached, reserved));
    if (!reserved) {
      // Playable once stored, after every piece before it.
      this.written = Promise.all([this.written, this.published]).then(async () => {
        const speech = await rendered;
        await this.store(this.nextSeq++, text, speech.kind === 'audio' ? speech : undefined, last());
      });
      // A store that failed fails the reply through `written`; giving out goes on.
      this.published = this.written.catch(() => undefined);
      return;
    }
    const seq = this.published.then(() => {
      const given = this.nextSeq++;
      const { filename } = reserved;
      this.publish({ turn_id: this.turn.turnId, seq: given, text, audio_id: filename.slice(0, -4), filename, ready_at: new Date() }, false);
      return given;
    });
    this.published = seq.then(
      () => undefined,
      () => undefined,
    );
    this.written = Promise.all([this.written, seq]).then(async ([, given]) => {
      const speech = await rendered;
      if (speech.kind === 'audio' || speech.served) {
        if (given === 0) this.firstAudioAt = new Date();
        await this.store(given, text, speech.kind === 'audio' ? speech : undefined, last());
        return;
      }
      // Synthesis failed after the name was given out: that download gets a moment of
      // silence, stored as nothing heard, and the words follow in Twilio's own voice as
      // the next piece not yet given out.
      await this.store(given, '', undefined, false);
      await this.store(this.nextSeq++, text, undefined, last());
    });
  }

  /** Stores piece `seq` and tells the waiting requests. */
  private async store(seq: number, text: string, audio: { audioId: string; filename: string } | undefined, last: boolean): Promise<void> {
    const readyAt = await this.deps.repository.addSegment(this.turn.turnId, seq, text, audio?.audioId ?? null);
    if (seq === 0) this.firstAudioAt ??= new Date();
    if (text) this.spoken.push({ seq, text });
    this.publish({ turn_id: this.turn.turnId, seq, text, audio_id: audio?.audioId ?? null, filename: audio?.filename ?? null, ready_at: readyAt ?? new Date() }, last);
  }

  private publish(segment: SegmentRow, last: boolean): void {
    this.deps.onSegmentStored?.(segment, last);
    this.deps.progress.notify(this.turn.turnId);
  }

  private async render(text: string, cached: boolean, reserved: PendingReply | undefined): Promise<RenderedSpeech> {
    if (this.deps.renderer.synthesizes(this.profile) && !cached) this.charactersSynthesized += text.length;
    try {
      return cached
        ? await this.deps.renderer.renderPhrase(text, this.profile, this.abortSignal)
        : await this.deps.renderer.renderReply(text, this.profile, this.turn, this.abortSignal, reserved);
    } catch (error) {
      this.deps.onRenderError(error, text);
      // Made and served, only not stored: heard all the same.
      if (error instanceof AudioNotStoredError) return { kind: 'say', served: true };
      // The caller still hears the words, in Twilio's own voice.
      return { kind: 'say' };
    }
  }

  private async withSlot<T>(work: () => Promise<T>): Promise<T> {
    if (this.running >= synthesisConcurrency) await new Promise<void>((resolve) => this.queue.push(resolve));
    this.running += 1;
    try {
      return await work();
    } finally {
      this.running -= 1;
      this.queue.shift()?.();
    }
  }
}

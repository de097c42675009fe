import type { AssistantProfile } from '../assistant/profile.js';
import type { CallRepository, SegmentRow } from '../storage/call-repository.js';
import { SpeechChunker } from './speech-chunker.js';
import type { RenderedSpeech, SpeechRenderer } from './speech-renderer.js';
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
   * Told of each piece once it is stored, before waiting requests are woken;
   * `last` when the reply's text was complete and no piece follows it.
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
  private readonly spoken: string[] = [];
  private segmentCount = 0;
  private written: Promise<void> = Promise.resolve();
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
    return { spokenText: this.spoken.join(' '), ttsCharacters: this.charactersSynthesized };
  }

  get hasSpoken(): boolean {
    return this.segmentCount > 0;
  }

  private enqueue(text: string, cached: boolean): void {
    const seq = this.segmentCount++;
    // Stage times are stored with the finished turn, not one statement each.
    this.firstTextAt ??= new Date();
    const rendered = this.withSlot(() => this.render(text, cached));
    this.written = this.written.then(async () => {
      const speech = await rendered;
      const audioId = speech.kind === 'audio' ? speech.audioId : null;
      const readyAt = await this.deps.repository.addSegment(this.turn.turnId, seq, text, audioId);
      if (seq === 0) this.firstAudioAt = new Date();
      const filename = speech.kind === 'audio' ? speech.filename : null;
      const last = this.textComplete && seq === this.segmentCount - 1;
      this.deps.onSegmentStored?.({ turn_id: this.turn.turnId, seq, text, audio_id: audioId, filename, ready_at: readyAt ?? new Date() }, last);
      this.spoken.push(text);
      this.deps.progress.notify(this.turn.turnId);
    });
  }

  private async render(text: string, cached: boolean): Promise<RenderedSpeech> {
    if (this.deps.renderer.synthesizes(this.profile) && !cached) this.charactersSynthesized += text.length;
    try {
      return cached
        ? await this.deps.renderer.renderPhrase(text, this.profile, this.abortSignal)
        : await this.deps.renderer.renderReply(text, this.profile, this.turn, this.abortSignal);
    } catch (error) {
      // The caller still hears the words, in Twilio's own voice.
      this.deps.onRenderError(error, text);
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

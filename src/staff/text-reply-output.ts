import type { ReplyOutcome, ReplyOutput } from '../conversation/reply-output.js';

/**
 * A reply that goes back as text (the staff test endpoints): it is collected
 * whole, spoken nowhere; the endpoint synthesizes it afterwards if asked.
 */
export class TextReplyOutput implements ReplyOutput {
  private readonly pieces: string[] = [];
  private pending = '';
  firstTextAt?: Date;
  readonly firstAudioAt = undefined;

  append(text: string): void {
    this.pending += text;
  }

  say(text: string): void {
    this.flushText();
    this.add(text);
  }

  flushText(): void {
    const text = this.pending.replace(/\s+/g, ' ').trim();
    this.pending = '';
    if (text) this.add(text);
  }

  get hasSpoken(): boolean {
    return this.pieces.length > 0;
  }

  async finish(): Promise<ReplyOutcome> {
    this.flushText();
    return { spokenText: this.pieces.join(' '), ttsCharacters: 0 };
  }

  private add(text: string): void {
    this.firstTextAt ??= new Date();
    this.pieces.push(text);
  }
}

/**
 * Where a turn's reply goes as the assistant produces it. The webhook
 * transport stores it as playable pieces for Twilio to fetch; a media stream
 * speaks it straight into the call. The engine only appends text.
 */
export interface ReplyOutput {
  /** Streamed reply text. */
  append(text: string): void;
  /** A fixed phrase (greeting, reprompt, apology, goodbye), spoken whole. */
  say(text: string): void;
  /** Ends the streamed text so far (before a fixed phrase, or at the end). */
  flushText(): void;
  /** Whether any piece has been queued to be spoken. */
  readonly hasSpoken: boolean;
  /** When the first piece's text was complete. */
  readonly firstTextAt?: Date;
  /** When the first piece was playable (webhooks) or its first frame was sent (streams). */
  readonly firstAudioAt?: Date;
  /**
   * Waits until everything queued is delivered (or dropped by an interruption)
   * and returns what the caller heard.
   */
  finish(): Promise<ReplyOutcome>;
}

export interface ReplyOutcome {
  /** The words the caller heard: the whole reply, or its heard part when interrupted. */
  spokenText: string;
  ttsCharacters: number;
  /** Set when the caller spoke over the reply, with how far into it (ms of audio played). */
  interruptedAtMs?: number;
}

/** What the engine hands an output when it creates one for a turn. */
export interface ReplyOutputContext {
  callId: string;
  turnId: number;
  /** Stops the reply's production: the model and synthesis in flight (an interruption, a hang-up, or the turn's deadline). */
  abortSignal: AbortSignal;
  /**
   * Stops the reply's delivery: nothing more may be said (an interruption or a
   * hang-up). After the deadline alone a fixed phrase, the apology, is still said.
   */
  stopSignal?: AbortSignal;
  /** Reports a piece whose synthesis failed (the output decides how it is still heard). */
  onRenderError: (error: unknown, text: string) => void;
}

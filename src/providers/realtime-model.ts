import type { ToolDefinition } from './chat-model.js';
import type { ProviderError } from './provider-error.js';

/** When the caller's turn ends, as the provider's voice-activity detection decides it. */
export interface RealtimeTurnDetection {
  /** Silence, in ms, after which the caller's turn counts as over. Shorter answers faster but cuts in on pauses. */
  silenceMs?: number;
  /** 0–1: how loud audio must be to count as speech; raise it for noisy lines. */
  threshold?: number;
}

export interface RealtimeConnectOptions {
  /** e.g. `gpt-realtime`. */
  model: string;
  voice: string;
  /** The system prompt: who the assistant is and how it talks. */
  instructions: string;
  tools?: ToolDefinition[];
  /** ISO-639-1 code of the caller's language (`en`, `ro`): makes the caller transcript faster and more accurate. */
  language?: string;
  /** Defaults to the provider's own settings. */
  turnDetection?: RealtimeTurnDetection;
  /** Aborting while connecting rejects with an abort error; aborting later closes the session quietly. */
  abortSignal?: AbortSignal;
}

/** Tokens one reply was billed for; audio tokens are part of the totals and cost more than text. */
export interface RealtimeUsage {
  inputTokens: number;
  outputTokens: number;
  inputAudioTokens: number;
  outputAudioTokens: number;
  cachedInputTokens: number;
}

/**
 * What a realtime session reports, in the order it happens. All audio is
 * 8 kHz G.711 μ-law, one byte a sample, so it passes to and from Twilio
 * Media Streams without conversion.
 */
export type RealtimeEvent =
  /** The caller started talking. While a reply is playing this is a barge-in: stop playback, then `truncateReply`. */
  | { type: 'speech-started' }
  /** The caller stopped talking; with turn detection on, a reply follows by itself. */
  | { type: 'speech-stopped' }
  /** What the caller said in one turn. Transcribed on the side, it may arrive after the reply has begun. */
  | { type: 'caller-transcript-completed'; itemId: string; text: string }
  /** The next piece of the reply's audio; `itemId` names the reply for `truncateReply`. */
  | { type: 'reply-audio-delta'; itemId: string; audio: Uint8Array }
  /** The next piece of the text of what the reply says. */
  | { type: 'reply-text-delta'; itemId: string; text: string }
  /**
   * The model wants a tool run. Answer with `sendToolResult`; the model is
   * silent about the call until asked to reply.
   */
  | { type: 'tool-called'; callId: string; name: string; arguments: string }
  /**
   * A reply ended: `completed`, `cancelled` (by `cancelReply` or the caller
   * talking over it), `incomplete` (cut by a token limit or content filter) or
   * `failed` (with the provider's reason in `error`).
   */
  | { type: 'reply-completed'; status: RealtimeReplyStatus; usage?: RealtimeUsage; error?: ProviderError }
  /**
   * The provider refused one request (e.g. a reply asked for while another is
   * in progress) or reported a problem it recovered from. The session stays
   * open: worth logging, not worth ending the call over.
   */
  | { type: 'error-reported'; error: ProviderError }
  /** The session is over: the connection dropped or the provider closed it. Always the last event. */
  | { type: 'session-failed'; error: ProviderError };

export type RealtimeReplyStatus = 'completed' | 'cancelled' | 'incomplete' | 'failed';

/**
 * One live speech-to-speech conversation. Methods only queue requests to the
 * provider and never throw; what becomes of them shows in `events`. After the
 * session has ended they do nothing.
 */
export interface RealtimeSession {
  /**
   * Everything the session reports, for one consumer. It ends after
   * `session-failed`, or quietly after `close()` or an abort; leaving the loop
   * early closes the session.
   */
  readonly events: AsyncIterable<RealtimeEvent>;
  /** The caller's next audio, 8 kHz μ-law as Twilio sends it. */
  appendAudio(mulaw: Uint8Array): void;
  /**
   * After a barge-in: tells the provider the caller heard only the first
   * `audioEndMs` of the reply, so the model's memory of the conversation
   * matches what was actually played.
   */
  truncateReply(itemId: string, audioEndMs: number): void;
  /** Stops the reply being generated, if any. */
  cancelReply(): void;
  /** Asks for a reply now (to greet first, or after a tool result); waits its turn if a reply is in progress. */
  createReply(): void;
  /** Answers a `tool-called` event; `respond` asks for a reply that can use the result. */
  sendToolResult(callId: string, output: string, options: { respond: boolean }): void;
  /** Adds text to the conversation as the caller's (keypad digits, a note from the system); `respond` asks for a reply to it. */
  sendText(text: string, options: { respond: boolean }): void;
  /** Ends the session; resolves once the connection is closed. */
  close(): Promise<void>;
}

/**
 * Speech-to-speech over one long-lived connection per call: the caller's
 * audio goes in as it arrives, the model decides when the caller has finished,
 * and answers with audio directly, with no separate transcription and speech
 * synthesis steps in between.
 */
export interface RealtimeModel {
  /** Resolves once the provider has accepted the session's settings. */
  connect(options: RealtimeConnectOptions): Promise<RealtimeSession>;
}

import type { TurnEvent, TurnTiming } from './turn-detector.js';

/**
 * Where a call's turn detector runs: on the event loop, or on worker threads
 * so that voice activity detection (a neural network over every 32 ms of
 * every caller) does not hold up the frames other calls are waiting for.
 * Either way a call gets the same events for the same audio.
 */
export interface CallerTurns {
  /** `silero` when the model loaded, `energy` when it did not (or was not asked for). */
  readonly detector: Promise<VoiceDetectorKind>;
  /**
   * A turn detector for one call. Its events arrive through `listener`, in
   * order, some time after the audio that caused them: `push` never waits.
   */
  open(timing: Partial<TurnTiming>, listener: CallerTurnListener): CallerTurnStream;
  /** Stops every detector and frees the model and threads; for shutdown. */
  close(): Promise<void>;
}

export type VoiceDetectorKind = 'silero' | 'energy';

/** Receives one call's turn events. */
export interface CallerTurnListener {
  onEvents(events: TurnEvent[]): void;
  /** Detection failed for some audio; the call goes on and later audio is still judged. */
  onError(error: Error): void;
}

/** One call's turn detector, fed the caller's audio as it arrives. */
export interface CallerTurnStream {
  /** The next caller audio, 8 kHz μ-law (normally one 20 ms frame). */
  push(mulaw: Uint8Array): void;
  /** Changes `minSpeechMs` or `endOfSpeechMs` from the next audio on. */
  configure(timing: Partial<TurnTiming>): void;
  /** The call is over: no more events. */
  close(): void;
}

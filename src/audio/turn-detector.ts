import { decodeMulaw } from './mulaw.js';
import { createResampler, type Resampler } from './resample.js';
import type { VoiceActivityDetector } from './voice-activity.js';

// Decides, from the caller's audio alone, when they start and stop talking.
// Times are audio time (ms of caller audio pushed since the start or the
// last `reset`), not wall-clock time, so the same audio always gives the
// same events however fast it is pushed.

/** What the turn detector noticed, named noun-verb. */
export type TurnEvent =
  | {
      /** The caller has talked for `minSpeechMs`: a turn (or a barge-in) has begun. */
      type: 'speech-started';
      /** Where the speech began, before the detector was sure of it. */
      startedAtMs: number;
      atMs: number;
    }
  | {
      /** A burst too short to be a turn ("mhm", a cough, a knock); nothing was started. */
      type: 'backchannel-ignored';
      /** How long the burst was voiced. */
      speechMs: number;
      startedAtMs: number;
      atMs: number;
    }
  | {
      /** The caller has been silent for `endOfSpeechMs` after a started turn. */
      type: 'speech-ended';
      /** 16 kHz 16-bit mono, from `preRollMs` before the speech to shortly after its last voiced frame. */
      audio: Int16Array;
      /** From the start of the speech to its last voiced frame. */
      speechMs: number;
      startedAtMs: number;
      lastVoicedAtMs: number;
      atMs: number;
      /** The turn ran into `maxUtteranceMs` and was cut; the caller may still be talking. */
      truncated: boolean;
    };

/**
 * Sample rate of the audio in `speech-ended`: the caller's own. Transcription
 * APIs take 8 kHz WAV and resample it themselves; upsampling here would add
 * no information, only CPU and twice the bytes to upload.
 */
export const utteranceSampleRate = 8000;

/** Keeps caller audio as it is (frames are reused, so they are copied). */
const copying: Resampler = { push: (chunk) => chunk.slice(), flush: () => new Int16Array(0) };

/** Settings a call may change as it goes, e.g. a longer `minSpeechMs` while the assistant talks. */
export interface TurnTiming {
  /**
   * Confident speech before a burst counts as a turn; shorter bursts become
   * `backchannel-ignored`. Defaults to 250 ms, so a short "yes" to a
   * question counts. While the assistant talks it decides what interrupts:
   * Silero hears a 0.3–0.4 s "mhm" or "uh-huh" as 320–580 ms of speech
   * (longer in noise), so letting them pass takes about 550 ms, which is
   * then the barge-in delay (`turn-detector.quality.test.ts` measures it).
   */
  minSpeechMs: number;
  /** Silence that ends a started turn; defaults to 600 ms. Longer waits out thinking pauses; shorter answers sooner. */
  endOfSpeechMs: number;
}

export interface TurnDetectorOptions extends Partial<TurnTiming> {
  /** The detector for this call; at 8 kHz it gets the caller's audio as is, at 16 kHz resampled. */
  vad: VoiceActivityDetector;
  /** A frame at or above this probability can start speech; defaults to 0.5. */
  startThreshold?: number;
  /** Once speech has started, frames at or above this still count as speech (hysteresis); defaults to 0.35. */
  endThreshold?: number;
  /** Audio kept from before the detected start, which holds the soft first sounds of a word; defaults to 300 ms. */
  preRollMs?: number;
  /** A turn is cut after this long, bounding the memory a call holds; defaults to 30 s (960 KB of audio). */
  maxUtteranceMs?: number;
}

export type TurnState = 'silent' | 'starting' | 'speaking';

const callerRate = 8000;
/** One 20 ms Twilio media frame. */
const callerFrameSamples = 160;
/** Audio kept after the last voiced frame, for the fading end of a word. */
const tailMs = 200;
/** Silence that ends a burst which has not yet become speech. */
const maxBurstGapMs = 240;

/**
 * Turns the caller's 8 kHz μ-law into `speech-started`, `backchannel-ignored`
 * and `speech-ended` events. Per call it holds the detector's state, a few
 * hundred milliseconds of pre-roll and, while the caller talks, their words.
 */
export class TurnDetector {
  private readonly vad: VoiceActivityDetector;
  private readonly startThreshold: number;
  private readonly endThreshold: number;
  private readonly preRollSamples: number;
  private readonly maxUtteranceMs: number;
  private timing: TurnTiming;

  /** The newest caller audio at 8 kHz, oldest first: enough for the pre-roll. */
  private readonly history: Int16Array;
  private historyFill = 0;
  /** Caller samples pushed so far. */
  private received = 0;
  /** Resamples the caller for a 16 kHz detector. */
  private readonly vadResampler: Resampler | undefined;
  private readonly vadFrame: Float32Array;
  private vadFill = 0;
  /** VAD-rate samples judged so far. */
  private judged = 0;

  private currentState: TurnState = 'silent';
  private startedAtMs = 0;
  private voicedMs = 0;
  private silentMs = 0;
  private lastVoicedAtMs = 0;
  /** The turn's audio at 16 kHz, resampled as it arrives so the cost is spread over the turn. */
  private utterance: Int16Array[] = [];
  private utteranceResampler: Resampler | undefined;
  /** Caller sample the utterance audio starts at. */
  private utteranceStart = 0;
  private queue: Promise<unknown> = Promise.resolve();

  constructor(options: TurnDetectorOptions) {
    this.vad = options.vad;
    if (this.vad.sampleRate !== 8000 && this.vad.sampleRate !== 16000) throw new RangeError(`the detector must run at 8 or 16 kHz, not ${this.vad.sampleRate} Hz`);
    this.startThreshold = options.startThreshold ?? 0.5;
    this.endThreshold = options.endThreshold ?? 0.35;
    if (this.endThreshold > this.startThreshold) throw new RangeError('endThreshold must not be above startThreshold');
    this.preRollSamples = Math.round(((options.preRollMs ?? 300) * callerRate) / 1000);
    this.maxUtteranceMs = options.maxUtteranceMs ?? 30_000;
    this.timing = { minSpeechMs: options.minSpeechMs ?? 250, endOfSpeechMs: options.endOfSpeechMs ?? 600 };
    const frameMs = (this.vad.frameSamples * 1000) / this.vad.sampleRate;
    // Pre-roll is taken when a burst starts, one frame after its first voiced frame began.
    this.history = new Int16Array(this.preRollSamples + Math.ceil(((frameMs + 20) * callerRate) / 1000));
    this.vadResampler = this.vad.sampleRate === callerRate ? undefined : createResampler(callerRate, this.vad.sampleRate);
    this.vadFrame = new Float32Array(this.vad.frameSamples);
  }

  /** Where the caller is: silent, in a burst not yet long enough to be speech, or speaking. */
  get state(): TurnState {
    return this.currentState;
  }

  /** Changes how long speech must last to start a turn and how much silence ends one. */
  configure(timing: Partial<TurnTiming>): void {
    this.timing = { ...this.timing, ...timing };
  }

  /**
   * Takes the next caller audio (any length, normally one 160-byte frame)
   * and resolves with the events it caused. Pushes are processed in order
   * even if the caller does not wait for each.
   */
  push(mulaw: Uint8Array): Promise<TurnEvent[]> {
    const run = this.queue.then(() => this.process(mulaw));
    this.queue = run.catch(() => undefined);
    return run;
  }

  /** Forgets the stream so far, as at the start of a new one. */
  reset(): void {
    this.vad.reset();
    this.vadResampler?.flush();
    this.historyFill = 0;
    this.received = 0;
    this.vadFill = 0;
    this.judged = 0;
    this.toSilence();
  }

  private async process(mulaw: Uint8Array): Promise<TurnEvent[]> {
    const events: TurnEvent[] = [];
    // A Twilio frame at a time, so the pre-roll history always reaches back
    // far enough, however much audio one push holds.
    for (let offset = 0; offset < mulaw.length; offset += callerFrameSamples) {
      await this.processFrame(decodeMulaw(mulaw.subarray(offset, offset + callerFrameSamples)), events);
    }
    return events;
  }

  private async processFrame(pcm: Int16Array, events: TurnEvent[]): Promise<void> {
    this.remember(pcm);
    if (this.utteranceResampler) this.utterance.push(this.utteranceResampler.push(pcm));
    const forVad = this.vadResampler ? this.vadResampler.push(pcm) : pcm;
    for (let i = 0; i < forVad.length; i++) {
      this.vadFrame[this.vadFill++] = forVad[i] / 32768;
      if (this.vadFill < this.vadFrame.length) continue;
      this.vadFill = 0;
      const probability = await this.vad.probability(this.vadFrame);
      this.judged += this.vadFrame.length;
      this.judge(probability, events);
    }
  }

  private judge(probability: number, events: TurnEvent[]): void {
    const frameMs = (this.vadFrame.length * 1000) / this.vad.sampleRate;
    const atMs = (this.judged * 1000) / this.vad.sampleRate;
    const confident = probability >= this.startThreshold;
    // Hysteresis: frames between the two thresholds keep a burst or a turn
    // going, but only confident frames make a burst long enough to be speech,
    // so noise trailing an "mhm" does not stretch it into a turn.
    const voiced = probability >= this.endThreshold;

    if (this.currentState === 'silent') {
      if (confident) this.startBurst(atMs - frameMs, frameMs);
      return;
    }
    if (voiced) {
      if (confident || this.currentState === 'speaking') this.voicedMs += frameMs;
      this.silentMs = 0;
      this.lastVoicedAtMs = atMs;
    } else {
      this.silentMs += frameMs;
    }

    if (this.currentState === 'starting') {
      if (this.voicedMs >= this.timing.minSpeechMs) {
        this.currentState = 'speaking';
        events.push({ type: 'speech-started', startedAtMs: this.startedAtMs, atMs });
      } else if (this.silentMs >= Math.min(maxBurstGapMs, this.timing.endOfSpeechMs)) {
        events.push({ type: 'backchannel-ignored', speechMs: this.voicedMs, startedAtMs: this.startedAtMs, atMs });
        this.toSilence();
      }
      return;
    }
    const truncated = atMs - this.startedAtMs >= this.maxUtteranceMs;
    if (this.silentMs >= this.timing.endOfSpeechMs || truncated) {
      events.push({
        type: 'speech-ended',
        audio: this.takeUtterance(truncated ? atMs : this.lastVoicedAtMs + tailMs),
        speechMs: this.lastVoicedAtMs - this.startedAtMs,
        startedAtMs: this.startedAtMs,
        lastVoicedAtMs: this.lastVoicedAtMs,
        atMs,
        truncated,
      });
      this.toSilence();
    }
  }

  private startBurst(startedAtMs: number, frameMs: number): void {
    this.currentState = 'starting';
    this.startedAtMs = startedAtMs;
    this.voicedMs = frameMs;
    this.silentMs = 0;
    this.lastVoicedAtMs = startedAtMs + frameMs;
    // The words' audio starts `preRollMs` before the burst, as far as the history reaches.
    const start = Math.max(0, Math.round((startedAtMs * callerRate) / 1000) - this.preRollSamples, this.received - this.historyFill);
    this.utteranceStart = start;
    this.utteranceResampler = utteranceSampleRate === callerRate ? copying : createResampler(callerRate, utteranceSampleRate);
    this.utterance = [this.utteranceResampler.push(this.recent(start))];
  }

  private takeUtterance(endMs: number): Int16Array {
    const resampler = this.utteranceResampler;
    if (resampler) this.utterance.push(resampler.flush());
    const total = this.utterance.reduce((sum, chunk) => sum + chunk.length, 0);
    const startMs = (this.utteranceStart * 1000) / callerRate;
    const length = Math.min(total, Math.max(0, Math.round(((endMs - startMs) * utteranceSampleRate) / 1000)));
    const audio = new Int16Array(length);
    let offset = 0;
    for (const chunk of this.utterance) {
      if (offset >= length) break;
      const part = chunk.subarray(0, length - offset);
      audio.set(part, offset);
      offset += part.length;
    }
    return audio;
  }

  private toSilence(): void {
    this.currentState = 'silent';
    this.voicedMs = 0;
    this.silentMs = 0;
    this.utterance = [];
    this.utteranceResampler = undefined;
  }

  /** Keeps the newest caller samples in `history`, oldest first. */
  private remember(pcm: Int16Array): void {
    this.received += pcm.length;
    const capacity = this.history.length;
    if (pcm.length >= capacity) {
      this.history.set(pcm.subarray(pcm.length - capacity));
      this.historyFill = capacity;
      return;
    }
    const overflow = Math.max(0, this.historyFill + pcm.length - capacity);
    if (overflow > 0) {
      this.history.copyWithin(0, overflow, this.historyFill);
      this.historyFill -= overflow;
    }
    this.history.set(pcm, this.historyFill);
    this.historyFill += pcm.length;
  }

  /** The remembered samples from caller sample `start` to now. */
  private recent(start: number): Int16Array {
    const oldest = this.received - this.historyFill;
    return this.history.slice(start - oldest, this.historyFill);
  }
}

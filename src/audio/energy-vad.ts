import type { VoiceActivityDetector } from './voice-activity.js';

// The fallback detector, for when the Silero model cannot load: frame energy
// against a tracked noise floor. Three things make it usable on phone audio.
// A pre-emphasis filter first, because line and room noise (hum, rumble,
// brown noise) sits low where speech carries little of its energy above the
// floor. A floor that is the quietest frame of the last two seconds
// ("minimum statistics"): speech pauses between words far more often than
// that, so the minimum is the noise, and a steady new noise is learned within
// the window. And an absolute level below which nothing is speech, because
// μ-law silence decodes to near-zero samples and any click would otherwise
// tower above that floor.

export interface EnergyVadOptions {
  /** 8000 or 16000; defaults to 8000, the rate Twilio sends. */
  sampleRate?: number;
  /** Frame length; defaults to 20 ms, one Twilio media frame. */
  frameMs?: number;
  /** Energy above the noise floor at which the probability is 0.5; defaults to 6 dB. */
  snrMidpointDb?: number;
  /** How far back the noise floor looks for the quietest frame; defaults to 2000 ms. */
  floorWindowMs?: number;
  /** Frames quieter than this are never speech; defaults to −50 dBFS (measured after pre-emphasis). */
  minSpeechDb?: number;
}

const preEmphasis = 0.95;
/** The floor never drops below this, so digital silence does not make every click look loud. */
const lowestFloorDb = -75;
/** Width of the logistic step from "noise" to "speech", in dB. */
const slopeDb = 1.5;
/** The window's minimum is kept per block of this many frames, so each frame costs a handful of comparisons. */
const framesPerBlock = 10;

/** Energy detector with an adaptive noise floor; about a microsecond a frame and under 200 bytes of state. */
export class EnergyVad implements VoiceActivityDetector {
  readonly sampleRate: number;
  readonly frameSamples: number;
  private readonly snrMidpointDb: number;
  private readonly minSpeechDb: number;
  /** Minimum energy of each finished block in the window, oldest overwritten first. */
  private readonly blockMinima: Float64Array;
  private blocksSeen = 0;
  private currentMinimum = Number.POSITIVE_INFINITY;
  private framesInBlock = 0;
  private previousSample = 0;

  constructor(options: EnergyVadOptions = {}) {
    this.sampleRate = options.sampleRate ?? 8000;
    const frameMs = options.frameMs ?? 20;
    this.frameSamples = Math.round((this.sampleRate * frameMs) / 1000);
    this.snrMidpointDb = options.snrMidpointDb ?? 6;
    this.minSpeechDb = options.minSpeechDb ?? -50;
    const windowFrames = Math.max(framesPerBlock, Math.round((options.floorWindowMs ?? 2000) / frameMs));
    this.blockMinima = new Float64Array(Math.ceil(windowFrames / framesPerBlock));
  }

  probability(frame: Float32Array): number {
    if (frame.length !== this.frameSamples) throw new RangeError(`expected ${this.frameSamples}-sample frames, got ${frame.length}`);
    const energyDb = this.emphasisedEnergyDb(frame);
    const floorDb = Math.max(lowestFloorDb, this.trackFloor(energyDb));
    if (energyDb < this.minSpeechDb) return 0;
    return 1 / (1 + Math.exp(-(energyDb - floorDb - this.snrMidpointDb) / slopeDb));
  }

  reset(): void {
    this.blocksSeen = 0;
    this.currentMinimum = Number.POSITIVE_INFINITY;
    this.framesInBlock = 0;
    this.previousSample = 0;
  }

  private emphasisedEnergyDb(frame: Float32Array): number {
    let sum = 0;
    let previous = this.previousSample;
    for (let i = 0; i < frame.length; i++) {
      const emphasised = frame[i] - preEmphasis * previous;
      previous = frame[i];
      sum += emphasised * emphasised;
    }
    this.previousSample = previous;
    return 10 * Math.log10(sum / frame.length + 1e-12);
  }

  /** Adds a frame's energy to the window and returns the window's minimum. */
  private trackFloor(energyDb: number): number {
    this.currentMinimum = Math.min(this.currentMinimum, energyDb);
    let floor = this.currentMinimum;
    const blocks = Math.min(this.blocksSeen, this.blockMinima.length);
    for (let i = 0; i < blocks; i++) floor = Math.min(floor, this.blockMinima[i]);
    if (++this.framesInBlock === framesPerBlock) {
      this.blockMinima[this.blocksSeen % this.blockMinima.length] = this.currentMinimum;
      this.blocksSeen++;
      this.currentMinimum = Number.POSITIVE_INFINITY;
      this.framesInBlock = 0;
    }
    return floor;
  }
}

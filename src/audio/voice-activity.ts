/**
 * Tells speech from silence and noise, one fixed-size frame at a time.
 *
 * A detector keeps state between frames (a noise floor, a recurrent
 * network's memory), so each call needs its own instance, fed frames in
 * order and one at a time: wait for one `probability` before asking the next.
 * Anything heavy a detector needs (a model) is loaded once and shared.
 */
export interface VoiceActivityDetector {
  /** Samples in each frame `probability` takes. */
  readonly frameSamples: number;
  /** Sample rate of those frames, in hertz. */
  readonly sampleRate: number;
  /**
   * How likely the frame holds speech, from 0 to 1. Samples are linear PCM
   * scaled to −1…1 and the frame must hold exactly `frameSamples` of them.
   */
  probability(frame: Float32Array): Promise<number> | number;
  /** Forgets everything heard so far, as at the start of a new stream. */
  reset(): void;
}

/** Scales 16-bit PCM to the −1…1 floats a detector takes. */
export function pcm16ToFloat32(samples: Int16Array, out = new Float32Array(samples.length)): Float32Array {
  for (let i = 0; i < samples.length; i++) out[i] = samples[i] / 32768;
  return out;
}

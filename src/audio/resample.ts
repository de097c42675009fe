import { createDecimatingFir, type DecimatingFir } from './fir-kernel.js';

// Rational-ratio resampling with a polyphase windowed-sinc FIR. Speech
// providers answer at 24 kHz (OpenAI "pcm") or 16 kHz while the phone side is
// 8 kHz: dropping samples without a low-pass first folds everything between
// 4 and 12 kHz back into the voice band as audible hiss and whistles.

/** A resampler that keeps its filter state between chunks of one stream. */
export interface Resampler {
  /** Resamples the next chunk; returns every output sample that can be computed so far. */
  push(chunk: Int16Array): Int16Array;
  /**
   * Ends the stream, treating the input as silence past its end, and returns
   * the last samples. The resampler then starts over as if new.
   */
  flush(): Int16Array;
}

// The filter passes up to 85 % of the lower Nyquist frequency (3.4 kHz at
// 8 kHz, the classic telephone band) and is down by `stopbandDb` from the
// frequency whose alias would land on the passband (4.6 kHz at 8 kHz). 60 dB is enough for the phone: μ-law keeps speech
// about 38 dB above its own quantisation noise, so aliases 60 dB down are
// buried under the codec, and the filter is a quarter shorter than at 80 dB.
const passbandFraction = 0.85;
const stopbandDb = 60;

interface Polyphase {
  /** Upsampling factor. */
  up: number;
  /** Downsampling factor. */
  down: number;
  /** Filter length in the upsampled domain (odd, so the delay is whole). */
  taps: number;
  /** Group delay in the upsampled domain, compensated so output lines up with input. */
  delay: number;
  /** `phases[k0][j]` is the coefficient for tap `k0 + j * up`. */
  phases: Float64Array[];
}

function greatestCommonDivisor(a: number, b: number): number {
  while (b !== 0) [a, b] = [b, a % b];
  return a;
}

/** Zeroth-order modified Bessel function of the first kind, for the Kaiser window. */
function besselI0(x: number): number {
  let sum = 1;
  let term = 1;
  for (let k = 1; k < 64; k++) {
    term *= (x / (2 * k)) ** 2;
    sum += term;
    if (term < sum * 1e-16) break;
  }
  return sum;
}

/** Filters designed so far, by rate pair: every reply piece opens a resampler, and a design never changes. */
const designs = new Map<string, Polyphase>();

function polyphaseFor(fromRate: number, toRate: number): Polyphase {
  const key = `${fromRate}:${toRate}`;
  let design = designs.get(key);
  if (!design) designs.set(key, (design = designPolyphase(fromRate, toRate)));
  return design;
}

/** Joins what a resampler still holds with the next chunk. */
function joined(held: Int16Array, chunk: Int16Array): Int16Array<ArrayBuffer> {
  const out = new Int16Array(held.length + chunk.length);
  out.set(held);
  out.set(chunk, held.length);
  return out;
}

function designPolyphase(fromRate: number, toRate: number): Polyphase {
  const divisor = greatestCommonDivisor(fromRate, toRate);
  const up = toRate / divisor;
  const down = fromRate / divisor;
  const upsampledRate = fromRate * up;
  const nyquist = Math.min(fromRate, toRate) / 2;
  // Frequencies in cycles per upsampled sample.
  const passEdge = (passbandFraction * nyquist) / upsampledRate;
  // The stopband starts where aliases (or images) would reach the passband:
  // whatever lies between the Nyquist frequency and this edge folds onto
  // the band between the passband and Nyquist, which carries no speech.
  // Twice the transition of stopping at Nyquist itself, so half the taps.
  const stopEdge = (2 * nyquist - passbandFraction * nyquist) / upsampledRate;
  const cutoff = (passEdge + stopEdge) / 2;
  const transition = 2 * Math.PI * (stopEdge - passEdge);
  // Kaiser's estimates for window shape and length.
  const beta = 0.1102 * (stopbandDb - 8.7);
  let taps = Math.ceil((stopbandDb - 8) / (2.285 * transition)) + 1;
  if (taps % 2 === 0) taps++;
  const delay = (taps - 1) / 2;

  const coefficients = new Float64Array(taps);
  const windowScale = besselI0(beta);
  for (let k = 0; k < taps; k++) {
    const t = k - delay;
    const sinc = t === 0 ? 1 : Math.sin(2 * Math.PI * cutoff * t) / (2 * Math.PI * cutoff * t);
    const ratio = t / delay;
    const window = besselI0(beta * Math.sqrt(Math.max(0, 1 - ratio * ratio))) / windowScale;
    coefficients[k] = 2 * cutoff * sinc * window;
  }

  // Normalising each phase to unit sum makes the DC gain exactly 1 for every
  // output sample, so a constant input never picks up a ripple at the
  // upsampling rate.
  const phases: Float64Array[] = [];
  for (let k0 = 0; k0 < up; k0++) {
    const phase = new Float64Array(Math.ceil((taps - k0) / up));
    let sum = 0;
    for (let j = 0; j < phase.length; j++) {
      phase[j] = coefficients[k0 + j * up];
      sum += phase[j];
    }
    for (let j = 0; j < phase.length; j++) phase[j] /= sum;
    phases.push(phase);
  }
  return { up, down, taps, delay, phases };
}

function assertRate(rate: number, name: string): void {
  if (!Number.isInteger(rate) || rate <= 0) throw new RangeError(`${name} must be a positive integer, got ${rate}`);
}

/**
 * Creates a streaming resampler for 16-bit mono PCM. Feeding a stream chunk by
 * chunk (any chunk sizes) and then calling `flush` yields exactly the samples
 * `resamplePcm16` gives for the whole stream; output trails input by half the
 * filter length (about 4 ms).
 *
 * Decimating by a whole factor (24 or 16 kHz to 8 kHz, every reply's speech)
 * runs in WebAssembly where the runtime has SIMD (`fir-kernel.ts`);
 * `{ simd: false }` keeps it in JavaScript, for comparison.
 */
export function createResampler(fromRate: number, toRate: number, options: { simd?: boolean } = {}): Resampler {
  assertRate(fromRate, 'fromRate');
  assertRate(toRate, 'toRate');
  if (fromRate === toRate) return { push: (chunk) => chunk.slice(), flush: () => new Int16Array(0) };

  const { up, down, taps, delay, phases } = polyphaseFor(fromRate, toRate);
  const fir = up === 1 && options.simd !== false ? createDecimatingFir(phases[0], down) : undefined;
  if (fir) return createDecimator(fir, down, taps, delay);
  // Decimating by a whole factor (24 or 16 kHz to 8 kHz) uses the one phase,
  // which is the whole symmetric filter: adding the two samples that share a
  // coefficient first halves the multiplications (1.4× faster end to end).
  // The sum can differ from the tap-by-tap one in the last bits of the double,
  // which moves a 16-bit sample only when it lies that close to a half; whole
  // streams and chunked ones take the same path, so they still agree exactly.
  const symmetric = up === 1 ? phases[0] : undefined;
  const half = (taps - 1) / 2;
  // Input samples still needed, `buffer[0]` being input sample `base`.
  let buffer = new Int16Array(0);
  let base = 0;
  let received = 0;
  let nextOutput = 0;

  function produce(end: number): Int16Array {
    const out = new Int16Array(Math.max(0, end - nextOutput));
    // Locals, not the closure's variables, in the hot loop.
    const input = buffer;
    const pairs = symmetric;
    for (let o = 0; o < out.length; o++) {
      // Output n sits at position n * down + delay on the upsampled grid; only
      // every `up`-th point there is a real input sample, the rest are zeros.
      const position = (nextOutput + o) * down + delay;
      const k0 = position % up;
      const newest = (position - k0) / up;
      const phase = phases[k0];
      // Tap j reads input sample `newest - j`. Only taps whose sample exists
      // (not before the stream's start, not past what has arrived: `flush`
      // treats both as zeros) contribute, so the range is worked out once and
      // the loop runs branch-free over it. Same terms in the same order as
      // testing each tap, so the output is bit-identical.
      const first = Math.max(0, newest - received + 1);
      const end = Math.min(phase.length, newest + 1);
      let sum = 0;
      if (pairs !== undefined && first === 0 && end === taps) {
        // Whole filter in range: pair the taps that share a coefficient.
        const newestAt = newest - base;
        const oldestAt = newestAt - taps + 1;
        for (let j = 0; j < half; j++) sum += pairs[j] * (input[newestAt - j] + input[oldestAt + j]);
        sum += pairs[half] * input[newestAt - half];
      } else {
        for (let j = first, at = newest - first - base; j < end; j++, at--) sum += phase[j] * input[at];
      }
      const rounded = Math.round(sum);
      out[o] = rounded > 32767 ? 32767 : rounded < -32768 ? -32768 : rounded;
    }
    nextOutput = Math.max(nextOutput, end);
    const oldestNeeded = Math.max(base, Math.ceil((nextOutput * down + delay - taps + 1) / up));
    buffer = buffer.subarray(Math.min(buffer.length, oldestNeeded - base));
    base = Math.min(oldestNeeded, received);
    return out;
  }

  return {
    push(chunk) {
      buffer = joined(buffer, chunk);
      received += chunk.length;
      // Outputs whose newest input sample has arrived.
      return produce(Math.ceil((received * up - delay) / down));
    },
    flush() {
      const out = produce(Math.ceil((received * up) / down));
      buffer = new Int16Array(0);
      base = 0;
      received = 0;
      nextOutput = 0;
      return out;
    },
  };
}

/**
 * The streaming state around a whole-factor decimating filter: the input
 * still needed, with the silence before the stream's start as real zeros (so
 * every output is the whole filter over a full window, and chunking cannot
 * change a sum), and the silence after its end added by `flush`.
 */
function createDecimator(fir: DecimatingFir, factor: number, taps: number, delay: number): Resampler {
  // `pending[0]` is input sample `start`; negative indices are the silence before the stream.
  let pending = new Int16Array(delay);
  let start = -delay;
  let received = 0;
  let nextOutput = 0;

  // Output n is the filter over input samples n * factor − delay … n * factor + delay.
  function produce(end: number, window: Int16Array): Int16Array {
    if (end <= nextOutput) return new Int16Array(0);
    const out = fir.run(window.subarray(nextOutput * factor - delay - start), end - nextOutput);
    nextOutput = end;
    return out;
  }

  return {
    push(chunk) {
      const window = joined(pending, chunk);
      received += chunk.length;
      // Outputs whose newest input sample has arrived.
      const out = produce(Math.ceil((received - delay) / factor), window);
      const keepFrom = nextOutput * factor - delay;
      pending = window.subarray(keepFrom - start);
      start = keepFrom;
      return out;
    },
    flush() {
      const end = Math.ceil(received / factor);
      const window = new Int16Array(Math.max(pending.length, (end - 1) * factor - delay + taps - start));
      window.set(pending);
      const out = produce(end, window);
      pending = new Int16Array(delay);
      start = -delay;
      received = 0;
      nextOutput = 0;
      return out;
    },
  };
}

/**
 * Resamples 16-bit mono PCM between any two integer rates, low-pass filtered
 * below the lower rate's Nyquist frequency. The output has
 * `ceil(input.length * toRate / fromRate)` samples and is time-aligned with
 * the input (the filter delay is compensated).
 */
export function resamplePcm16(input: Int16Array, fromRate: number, toRate: number): Int16Array {
  const resampler = createResampler(fromRate, toRate);
  const head = resampler.push(input);
  const tail = resampler.flush();
  const out = new Int16Array(head.length + tail.length);
  out.set(head);
  out.set(tail, head.length);
  return out;
}

import { describe, expect, it } from 'vitest';
import { createResampler, resamplePcm16 } from './resample.js';

function sine(frequency: number, rate: number, seconds: number, amplitude: number): Int16Array {
  const out = new Int16Array(Math.round(rate * seconds));
  for (let i = 0; i < out.length; i++) out[i] = Math.round(amplitude * Math.sin((2 * Math.PI * frequency * i) / rate));
  return out;
}

/** Amplitude of the `frequency` component (single-bin DFT), over whole periods. */
function amplitudeAt(samples: Int16Array, frequency: number, rate: number): number {
  let re = 0;
  let im = 0;
  for (let i = 0; i < samples.length; i++) {
    re += samples[i] * Math.cos((2 * Math.PI * frequency * i) / rate);
    im -= samples[i] * Math.sin((2 * Math.PI * frequency * i) / rate);
  }
  return (2 * Math.hypot(re, im)) / samples.length;
}

function rms(samples: Int16Array): number {
  let sum = 0;
  for (const sample of samples) sum += sample * sample;
  return Math.sqrt(sum / samples.length);
}

function zeroCrossings(samples: Int16Array): number {
  let count = 0;
  for (let i = 1; i < samples.length; i++) if ((samples[i - 1] < 0) !== (samples[i] < 0)) count++;
  return count;
}

/** Drops the first and last `margin` samples, where the zero padding at the edges shows. */
function middle(samples: Int16Array, margin: number): Int16Array {
  return samples.subarray(margin, samples.length - margin);
}

function concat(parts: Int16Array[]): Int16Array {
  const out = new Int16Array(parts.reduce((total, part) => total + part.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

function pseudoRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
}

const conversions = [
  [24000, 8000],
  [16000, 8000],
  [8000, 16000],
  [8000, 24000],
  [24000, 16000],
] as const;

describe('resamplePcm16', () => {
  it.each(conversions)('%i → %i keeps a 440 Hz tone at 440 Hz and its amplitude', (fromRate, toRate) => {
    const input = sine(440, fromRate, 1, 10000);
    const output = resamplePcm16(input, fromRate, toRate);
    const steady = middle(output, toRate / 20);
    // 1 s minus 0.1 s of 440 Hz: 0.9 * 880 crossings.
    expect(Math.abs(zeroCrossings(steady) - 792)).toBeLessThanOrEqual(2);
    const amplitude = amplitudeAt(middle(output, toRate / 10), 440, toRate);
    expect(amplitude / 10000).toBeGreaterThan(0.98);
    expect(amplitude / 10000).toBeLessThan(1.02);
  });

  it.each(conversions)('%i → %i gives ceil(length * to / from) samples', (fromRate, toRate) => {
    for (const length of [0, 1, 2, 3, 7, 100, 2401]) {
      const output = resamplePcm16(new Int16Array(length), fromRate, toRate);
      expect(output.length).toBe(Math.ceil((length * toRate) / fromRate));
    }
  });

  it('suppresses a 6 kHz tone going from 24 kHz to 8 kHz by at least 30 dB', () => {
    const input = sine(6000, 24000, 1, 10000);
    const output = middle(resamplePcm16(input, 24000, 8000), 800);
    // Without filtering, 6 kHz would alias to 2 kHz at full strength.
    const attenuationDb = 20 * Math.log10(rms(output) / rms(input));
    expect(attenuationDb).toBeLessThan(-30);
    expect(amplitudeAt(output, 2000, 8000)).toBeLessThan(10000 * 10 ** (-30 / 20));
  });

  it('keeps every alias that would land in the telephone band 55 dB down (24 kHz → 8 kHz)', () => {
    // 4.6–8 kHz folds onto 0–3.4 kHz; 4–4.6 kHz may fold onto 3.4–4 kHz, which carries no speech.
    for (const frequency of [4700, 5200, 6000, 7000, 8500, 11000]) {
      const alias = Math.abs(((frequency + 4000) % 8000) - 4000);
      const output = middle(resamplePcm16(sine(frequency, 24000, 1, 10000), 24000, 8000), 800);
      expect(20 * Math.log10(amplitudeAt(output, alias, 8000) / 10000), `${frequency} Hz → ${alias} Hz`).toBeLessThan(-55);
    }
  });

  it('suppresses a 5 kHz tone going from 16 kHz to 8 kHz', () => {
    const output = middle(resamplePcm16(sine(5000, 16000, 1, 10000), 16000, 8000), 800);
    expect(20 * Math.log10(rms(output) / (10000 / Math.SQRT2))).toBeLessThan(-30);
  });

  it('keeps the telephone band (3.3 kHz) nearly flat going from 24 kHz to 8 kHz', () => {
    const output = resamplePcm16(sine(3300, 24000, 1, 10000), 24000, 8000);
    expect(amplitudeAt(middle(output, 800), 3300, 8000) / 10000).toBeGreaterThan(0.95);
  });

  it('passes a constant through unchanged away from the edges', () => {
    for (const [fromRate, toRate] of conversions) {
      const output = middle(resamplePcm16(new Int16Array(fromRate / 10).fill(1234), fromRate, toRate), toRate / 50);
      expect(new Set(output)).toEqual(new Set([1234]));
    }
  });

  it('lines the output up in time with the input', () => {
    // A click at 50 ms should come out at 50 ms.
    const input = new Int16Array(2400);
    input[1200] = 30000;
    const output = resamplePcm16(input, 24000, 8000);
    const peak = output.indexOf(Math.max(...output));
    expect(peak).toBe(400);
  });

  it('clips instead of wrapping around on full-scale input', () => {
    // A full-scale 200 Hz square wave: the filter's ringing overshoots past
    // the 16-bit range right after each edge.
    const square = new Int16Array(2400).map((_, i) => (Math.floor(i / 60) % 2 ? -32768 : 32767));
    const output = resamplePcm16(square, 24000, 8000);
    expect(Math.max(...output)).toBe(32767);
    expect(Math.min(...output)).toBe(-32768);
    for (let center = 10; center < output.length - 10; center += 20) {
      expect(Math.sign(output[center])).toBe(Math.floor(center / 20) % 2 ? -1 : 1);
    }
  });

  it('copies when the rates are equal', () => {
    const input = Int16Array.from([1, 2, 3]);
    const output = resamplePcm16(input, 8000, 8000);
    expect(Array.from(output)).toEqual([1, 2, 3]);
    expect(output).not.toBe(input);
  });

  it('rejects rates that are not positive integers', () => {
    expect(() => resamplePcm16(new Int16Array(1), 0, 8000)).toThrow(RangeError);
    expect(() => resamplePcm16(new Int16Array(1), 8000, 22050.5)).toThrow(RangeError);
  });
});

describe('createResampler', () => {
  it.each(conversions)('%i → %i chunk by chunk equals the whole, for odd chunk sizes', (fromRate, toRate) => {
    const random = pseudoRandom(fromRate + toRate);
    const input = new Int16Array(fromRate / 2).map(() => Math.round((random() * 2 - 1) * 20000));
    const whole = resamplePcm16(input, fromRate, toRate);

    for (const sizes of [[1], [3, 5, 7], [0, 1, 2, 997], [17, 1, 1, 1, 255]]) {
      const resampler = createResampler(fromRate, toRate);
      const parts: Int16Array[] = [];
      let offset = 0;
      for (let i = 0; offset < input.length; i++) {
        const size = sizes[i % sizes.length];
        parts.push(resampler.push(input.subarray(offset, offset + size)));
        offset += size;
      }
      parts.push(resampler.flush());
      expect(concat(parts)).toEqual(whole);
    }
  });

  it.each([[24000, 8000], [16000, 8000]])('%i → %i in JavaScript, chunk by chunk, equals the whole too', (fromRate, toRate) => {
    const random = pseudoRandom(fromRate);
    const input = new Int16Array(fromRate / 4).map(() => Math.round((random() * 2 - 1) * 20000));
    const oneGo = createResampler(fromRate, toRate, { simd: false });
    const whole = concat([oneGo.push(input), oneGo.flush()]);
    const resampler = createResampler(fromRate, toRate, { simd: false });
    const parts: Int16Array[] = [];
    for (let offset = 0; offset < input.length; offset += 333) parts.push(resampler.push(input.subarray(offset, offset + 333)));
    parts.push(resampler.flush());
    expect(concat(parts)).toEqual(whole);
  });

  it.each([[24000, 8000], [16000, 8000]])('%i → %i in WebAssembly agrees with JavaScript to within one step', (fromRate, toRate) => {
    const random = pseudoRandom(fromRate + 1);
    // Full-scale noise and a loud tone: the sums the float kernel rounds most.
    const input = new Int16Array(fromRate).map((_, i) => (i < fromRate / 2 ? Math.round((random() * 2 - 1) * 32767) : Math.round(30000 * Math.sin(i / 7))));
    const run = (simd: boolean) => {
      const resampler = createResampler(fromRate, toRate, { simd });
      return concat([resampler.push(input.subarray(0, 4001)), resampler.push(input.subarray(4001)), resampler.flush()]);
    };
    const kernel = run(true);
    const javascript = run(false);
    expect(kernel.length).toBe(javascript.length);
    let differing = 0;
    for (let i = 0; i < kernel.length; i++) {
      expect(Math.abs(kernel[i] - javascript[i])).toBeLessThanOrEqual(1);
      if (kernel[i] !== javascript[i]) differing++;
    }
    // Rounding the other way is rare: a sum within a few thousandths of a half.
    expect(differing / kernel.length).toBeLessThan(0.01);
  });

  it('emits output as input arrives, trailing by only a few milliseconds', () => {
    const resampler = createResampler(24000, 8000);
    const out = resampler.push(new Int16Array(2400));
    // 100 ms in, at most 5 ms held back.
    expect(out.length).toBeGreaterThanOrEqual(760);
    expect(out.length + resampler.flush().length).toBe(800);
  });

  it('starts over after flush', () => {
    const input = sine(440, 24000, 0.1, 8000);
    const resampler = createResampler(24000, 8000);
    const first = concat([resampler.push(input), resampler.flush()]);
    const second = concat([resampler.push(input), resampler.flush()]);
    expect(second).toEqual(first);
  });
});

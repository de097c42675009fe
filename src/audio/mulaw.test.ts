import { describe, expect, it } from 'vitest';
import { decodeMulaw, decodeMulawSample, encodeMulaw, encodeMulawSample } from './mulaw.js';

describe('encodeMulaw', () => {
  it.each([
    [0, 0xff],
    [-1, 0x7f],
    [1, 0xff],
    [32767, 0x80],
    [32635, 0x80],
    [-32768, 0x00],
    [-32635, 0x00],
    [1000, 0xce],
    [-1000, 0x4e],
    [100, 0xf2],
  ])('encodes %i as code %i', (sample, code) => {
    expect(encodeMulawSample(sample)).toBe(code);
  });

  it('encodes an Int16Array element-wise', () => {
    expect(Array.from(encodeMulaw(Int16Array.from([0, 32767, -32768])))).toEqual([0xff, 0x80, 0x00]);
  });

  it('is monotonic: louder samples never get a smaller magnitude code', () => {
    let previous = -1;
    for (let sample = 0; sample <= 32767; sample++) {
      const magnitudeCode = 0x7f - (encodeMulawSample(sample) & 0x7f);
      expect(magnitudeCode).toBeGreaterThanOrEqual(previous);
      previous = magnitudeCode;
    }
  });
});

describe('decodeMulaw', () => {
  it.each([
    [0xff, 0],
    [0x7f, 0],
    [0x80, 32124],
    [0x00, -32124],
    [0xfe, 8],
    [0x7e, -8],
    [0xce, 988],
  ])('decodes code %i as %i', (code, sample) => {
    expect(decodeMulawSample(code)).toBe(sample);
  });

  it('decodes a Uint8Array element-wise', () => {
    expect(Array.from(decodeMulaw(Uint8Array.from([0xff, 0x80, 0x00])))).toEqual([0, 32124, -32124]);
  });

  it('is an inverse of encode on every code except negative zero', () => {
    for (let code = 0; code < 256; code++) {
      const expected = code === 0x7f ? 0xff : code;
      expect(encodeMulawSample(decodeMulawSample(code))).toBe(expected);
    }
  });
});

describe('round trip', () => {
  it('stays within half a quantisation step for every 16-bit sample', () => {
    const all = new Int16Array(65536);
    for (let i = 0; i < all.length; i++) all[i] = i - 32768;
    const decoded = decodeMulaw(encodeMulaw(all));
    const failures: number[] = [];
    let worstRelative = 0;
    for (let i = 0; i < all.length; i++) {
      const sample = all[i];
      const error = Math.abs(sample - decoded[i]);
      const exponent = ((~encodeMulawSample(sample) & 0xff) >> 4) & 0x07;
      // Above the clip level everything maps to the loudest code.
      const allowed = Math.abs(sample) <= 32635 ? 4 << exponent : Math.abs(sample) - 32124;
      if (error > allowed) failures.push(sample);
      if (Math.abs(sample) >= 1024) worstRelative = Math.max(worstRelative, error / Math.abs(sample));
    }
    expect(failures).toEqual([]);
    // μ-law's promise: about 3 % worst-case error away from the quietest segment.
    expect(worstRelative).toBeLessThan(0.035);
  });
});

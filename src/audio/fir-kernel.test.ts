import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { compileFirKernel, firKernelModuleSource, firKernelWatPath } from '../../scripts/fir-kernel-source.js';
import { createDecimatingFir } from './fir-kernel.js';

describe('FIR kernel', () => {
  it('is the compiled fir-kernel.wat (run npm run build:kernel after editing it)', async () => {
    const bytes = await compileFirKernel(readFileSync(firKernelWatPath, 'utf8'));
    expect(readFileSync(new URL('./fir-kernel-module.ts', import.meta.url), 'utf8')).toBe(firKernelModuleSource(bytes));
  });

  it('sums each window against the coefficients, clipping and rounding to 16 bits', () => {
    // Five taps (padded to eight in the kernel), every second output.
    const fir = createDecimatingFir(Float64Array.from([0.5, 0.25, 0, 0.25, 1]), 2)!;
    expect(fir).toBeDefined();
    const window = Int16Array.from([4, 8, 12, 16, 20, 24, 32767, 32767, 32767]);
    const expected = [
      4 * 0.5 + 8 * 0.25 + 16 * 0.25 + 20, // 28
      12 * 0.5 + 16 * 0.25 + 24 * 0.25 + 32767, // 32783, clipped
      20 * 0.5 + 24 * 0.25 + 32767 * 0.25 + 32767, // 41 thousand, clipped
    ].map((sum) => Math.min(32767, Math.round(sum)));
    expect(Array.from(fir.run(window, 3))).toEqual(expected);
    expect(Array.from(fir.run(Int16Array.from([-32768, -32768, -32768, -32768, -32768]), 1))).toEqual([-32768]);
    expect(fir.run(window, 0)).toHaveLength(0);
    expect(() => fir.run(window, 4)).toThrow(RangeError);
  });

  it('grows its memory for a long window, and keeps working after', () => {
    const fir = createDecimatingFir(Float64Array.from([1, 0, 0]), 3)!;
    const long = new Int16Array(600_000).map((_, i) => i % 1000);
    const out = fir.run(long, 199_999);
    expect(out).toHaveLength(199_999);
    expect(out[123_456]).toBe((123_456 * 3) % 1000);
    expect(Array.from(fir.run(Int16Array.from([7, 0, 0, 9, 0, 0]), 2))).toEqual([7, 9]);
  });
});

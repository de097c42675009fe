import { firKernelWasm } from './fir-kernel-module.js';

/**
 * Runs the decimating FIR filter in WebAssembly with SIMD (`fir-kernel.wat`):
 * four taps per instruction, in 32-bit floats, which is several times faster
 * than the same sums in JavaScript doubles. Speech conversion is the largest
 * single cost of a reply on the event loop, in both webhook and stream calls.
 * Float sums differ from double ones only below a thousandth of a 16-bit
 * step, so at most a sample lying that close to a half rounds the other way.
 */
export interface DecimatingFir {
  /**
   * `outputs` samples, output `o` being the filter over `window[o * factor …
   * o * factor + taps − 1]`. `window` must hold `(outputs − 1) * factor + taps`
   * samples at least.
   */
  run(window: Int16Array, outputs: number): Int16Array;
}

interface KernelExports {
  memory: WebAssembly.Memory;
  decimate(src: number, n: number, scratch: number, coef: number, taps4: number, step: number, dst: number, outs: number): void;
}

const pageBytes = 65_536;
let kernel: KernelExports | null | undefined;

/** The module, instantiated once per thread; `null` where WebAssembly SIMD is not available. */
function loadKernel(): KernelExports | null {
  if (kernel !== undefined) return kernel;
  try {
    const module = new WebAssembly.Module(Buffer.from(firKernelWasm, 'base64'));
    kernel = new WebAssembly.Instance(module).exports as unknown as KernelExports;
  } catch {
    kernel = null;
  }
  return kernel;
}

function align16(bytes: number): number {
  return (bytes + 15) & ~15;
}

/**
 * A filter of `coefficients` keeping every `factor`-th output, run in
 * WebAssembly; `undefined` when the runtime cannot (the caller then sums in
 * JavaScript).
 */
export function createDecimatingFir(coefficients: Float64Array, factor: number): DecimatingFir | undefined {
  const exports = loadKernel();
  if (!exports) return undefined;
  const taps = coefficients.length;
  const taps4 = (taps + 3) & ~3;
  const padded = new Float32Array(taps4);
  padded.set(coefficients);
  return {
    run(window, outputs) {
      if (outputs <= 0) return new Int16Array(0);
      const n = (outputs - 1) * factor + taps;
      if (window.length < n) throw new RangeError(`window of ${window.length} samples, ${n} needed`);
      // Layout: coefficients, input samples, float scratch (plus 4 zeros), output.
      const coef = 0;
      const src = align16(taps4 * 4);
      const scratch = align16(src + n * 2);
      const dst = align16(scratch + (n + 4) * 4);
      const end = dst + outputs * 2;
      const { memory } = exports;
      if (memory.buffer.byteLength < end) memory.grow(Math.ceil((end - memory.buffer.byteLength) / pageBytes));
      const buffer = memory.buffer;
      new Float32Array(buffer, coef, taps4).set(padded);
      new Int16Array(buffer, src, n).set(window.subarray(0, n));
      exports.decimate(src, n, scratch, coef, taps4, factor, dst, outputs);
      return new Int16Array(buffer, dst, outputs).slice();
    },
  };
}

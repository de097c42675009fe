import { createRequire } from 'node:module';
import type { InferenceSession, Tensor } from 'onnxruntime-node';
import type { VoiceActivityDetector } from './voice-activity.js';

// Silero VAD v5 (the ONNX file @ricky0123/vad-web ships), run with
// onnxruntime-node on the CPU. The model is a small recurrent network: each
// call carries a [2, 1, 128] state tensor from one frame to the next, and
// each frame is prefixed with the tail of the previous one (64 samples at
// 16 kHz, 32 at 8 kHz) so that a sound straddling the frame edge is seen
// whole; that is how silero-vad's own `OnnxWrapper` and vad-web's `Silero`
// class call it. Frames are 512 samples at 16 kHz or 256 at 8 kHz (32 ms).
// The session runs synchronously on the calling thread, about 0.1 ms a frame.

const require = createRequire(import.meta.url);

/** The sample rates Silero v5 was trained for. */
export type SileroSampleRate = 8000 | 16000;

const frameSamplesAt: Record<SileroSampleRate, number> = { 16000: 512, 8000: 256 };
const contextSamplesAt: Record<SileroSampleRate, number> = { 16000: 64, 8000: 32 };
const stateSize = 2 * 1 * 128;

type Ort = typeof import('onnxruntime-node');

/** Where the v5 weights live inside the installed `@ricky0123/vad-web` package. */
export function sileroModelPath(): string {
  return require.resolve('@ricky0123/vad-web/dist/silero_vad_v5.onnx');
}

export interface LoadSileroOptions {
  /** Defaults to the v5 model of `@ricky0123/vad-web`. */
  modelPath?: string;
}

/**
 * Loads the Silero model once per process; every call then gets a detector
 * of its own from {@link SileroModel.createDetector}, sharing the session.
 * One session serves any number of calls: inference is a synchronous native
 * call of about 0.15 ms per frame, and each detector keeps its own state.
 */
export async function loadSileroModel(options: LoadSileroOptions = {}): Promise<SileroModel> {
  const ort: Ort = await import('onnxruntime-node');
  // One thread per inference: the network is tiny, so spreading one frame
  // across cores costs more in hand-off than it saves, and a server running
  // hundreds of calls wants its cores for the calls.
  const session = await ort.InferenceSession.create(options.modelPath ?? sileroModelPath(), {
    intraOpNumThreads: 1,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
  });
  return new SileroModel(ort, session);
}

/** A loaded Silero session, shared by all calls of a process. */
export class SileroModel {
  constructor(
    private readonly ort: Ort,
    private readonly session: InferenceSession,
  ) {}

  /**
   * A detector with its own recurrent state, for one stream. 8 kHz, the
   * caller's own rate, needs no resampling, costs 0.10 ms a frame against
   * 0.14 ms at 16 kHz, and scored as well or better on phone audio.
   */
  createDetector(sampleRate: SileroSampleRate = 8000, options: SileroDetectorOptions = {}): SileroVad {
    return new SileroVad(this.ort, this.session, sampleRate, options.quietDbfs ?? -60);
  }

  /** Frees the native session; detectors made from it stop working. */
  async release(): Promise<void> {
    await this.session.release();
  }
}

export interface SileroDetectorOptions {
  /**
   * Frames quieter than this (RMS, dB below full scale) are silence without
   * asking the network; defaults to −60 dBFS, the hiss of a quiet line and
   * far below the softest speech a handset picks up. A caller is silent most
   * of a call, so this saves most of the inference; `-Infinity` turns it off.
   */
  quietDbfs?: number;
}

/** After this many quiet frames (about half a second) the network starts afresh, as it would have settled on silence anyway. */
const quietFramesBeforeReset = 16;

/** Silero VAD for one stream. Frames are queued, so overlapping calls still run in order. */
export class SileroVad implements VoiceActivityDetector {
  readonly frameSamples: number;
  private readonly contextSamples: number;
  private readonly rate: Tensor;
  private readonly quietEnergy: number;
  private state: Tensor;
  private context: Float32Array;
  private quietFrames = 0;
  private queue: Promise<unknown> = Promise.resolve();
  /** Bumped by `reset`, so a frame still running when it happens cannot bring old state back. */
  private generation = 0;

  constructor(
    private readonly ort: Ort,
    private readonly session: InferenceSession,
    readonly sampleRate: SileroSampleRate,
    quietDbfs = -60,
  ) {
    this.frameSamples = frameSamplesAt[sampleRate];
    this.contextSamples = contextSamplesAt[sampleRate];
    this.rate = new ort.Tensor('int64', BigInt64Array.from([BigInt(sampleRate)]), []);
    this.quietEnergy = 10 ** (quietDbfs / 10);
    this.state = this.emptyState();
    this.context = new Float32Array(this.contextSamples);
  }

  probability(frame: Float32Array): Promise<number> {
    if (frame.length !== this.frameSamples) {
      return Promise.reject(new RangeError(`Silero at ${this.sampleRate} Hz takes ${this.frameSamples}-sample frames, got ${frame.length}`));
    }
    let energy = 0;
    for (let i = 0; i < frame.length; i++) energy += frame[i] * frame[i];
    const quiet = energy / frame.length < this.quietEnergy;
    // The input is built now, in call order: the caller may reuse its frame buffer once this returns.
    const input = new Float32Array(this.contextSamples + frame.length);
    input.set(this.context);
    input.set(frame, this.contextSamples);
    this.context = frame.slice(frame.length - this.contextSamples);
    const run = this.queue.then(() => (quiet ? this.skip() : this.infer(input)));
    this.queue = run.catch(() => undefined);
    return run;
  }

  reset(): void {
    this.generation++;
    this.quietFrames = 0;
    this.state = this.emptyState();
    this.context = new Float32Array(this.contextSamples);
  }

  private skip(): number {
    if (++this.quietFrames === quietFramesBeforeReset) this.state = this.emptyState();
    return 0;
  }

  private async infer(input: Float32Array): Promise<number> {
    this.quietFrames = 0;
    const generation = this.generation;
    const output = await this.session.run({
      input: new this.ort.Tensor('float32', input, [1, input.length]),
      state: this.state,
      sr: this.rate,
    });
    if (generation === this.generation) this.state = output.stateN;
    return (output.output.data as Float32Array)[0];
  }

  private emptyState(): Tensor {
    return new this.ort.Tensor('float32', new Float32Array(stateSize), [2, 1, 128]);
  }
}

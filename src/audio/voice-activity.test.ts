import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { EnergyVad } from './energy-vad.js';
import { decodeMulaw } from './mulaw.js';
import { resamplePcm16 } from './resample.js';
import { loadSileroModel, sileroModelPath, type SileroModel } from './silero-vad.js';
import { pcm16ToFloat32, type VoiceActivityDetector } from './voice-activity.js';
import { parseWav } from './wav.js';

const fixture = (name: string) => decodeMulaw(parseWav(readFileSync(new URL(`../../test/fixtures/speech/${name}.wav`, import.meta.url))).data);

/** 8 kHz caller audio as the detector's rate and frames. */
function framesFor(vad: VoiceActivityDetector, pcm8k: Int16Array): Float32Array[] {
  const samples = pcm16ToFloat32(vad.sampleRate === 8000 ? pcm8k : resamplePcm16(pcm8k, 8000, vad.sampleRate));
  const frames: Float32Array[] = [];
  for (let offset = 0; offset + vad.frameSamples <= samples.length; offset += vad.frameSamples) frames.push(samples.subarray(offset, offset + vad.frameSamples));
  return frames;
}

async function probabilities(vad: VoiceActivityDetector, pcm8k: Int16Array): Promise<number[]> {
  const out: number[] = [];
  for (const frame of framesFor(vad, pcm8k)) out.push(await vad.probability(frame));
  return out;
}

/** `before` ms of silence, the clip, `after` ms of silence. */
function padded(clip: Int16Array, before = 500, after = 500): Int16Array {
  const out = new Int16Array((before + after) * 8 + clip.length);
  out.set(clip, before * 8);
  return out;
}

/** The contract every detector keeps; run against each implementation. */
function detectorContract(name: string, create: () => VoiceActivityDetector, frameMs: number) {
  describe(`${name} (VoiceActivityDetector contract)`, () => {
    it(`takes ${frameMs} ms frames`, () => {
      const vad = create();
      expect((vad.frameSamples * 1000) / vad.sampleRate).toBe(frameMs);
    });

    it('hears no speech in digital silence or quiet line noise', async () => {
      const vad = create();
      expect(Math.max(...(await probabilities(vad, new Int16Array(8000))))).toBeLessThan(0.2);
      vad.reset();
      expect(Math.max(...(await probabilities(vad, fixture('noise'))))).toBeLessThan(0.5);
    });

    it('hears speech through most of a spoken phrase', async () => {
      const vad = create();
      const clip = fixture('my-name-is-anna');
      const scores = await probabilities(vad, padded(clip));
      const first = Math.floor(500 / frameMs);
      const last = Math.floor((500 + clip.length / 8) / frameMs);
      const during = scores.slice(first, last);
      expect(during.filter((score) => score >= 0.5).length / during.length).toBeGreaterThan(0.6);
      expect(Math.max(...scores.slice(0, first - 1))).toBeLessThan(0.2);
    });

    it('forgets everything on reset', async () => {
      const vad = create();
      const audio = padded(fixture('yes-please'));
      const first = await probabilities(vad, audio);
      vad.reset();
      expect(await probabilities(vad, audio)).toEqual(first);
    });

    it('refuses a frame of the wrong size', async () => {
      const vad = create();
      await expect(async () => vad.probability(new Float32Array(vad.frameSamples + 1))).rejects.toThrow(RangeError);
    });
  });
}

describe('Silero', () => {
  let model: SileroModel;
  beforeAll(async () => {
    model = await loadSileroModel();
  });

  detectorContract('Silero at 8 kHz', () => model.createDetector(8000), 32);
  detectorContract('Silero at 16 kHz', () => model.createDetector(16000), 32);

  it('finds the v5 model inside the installed package', () => {
    expect(sileroModelPath()).toMatch(/@ricky0123[/\\]vad-web[/\\]dist[/\\]silero_vad_v5\.onnx$/);
  });

  it('keeps each call’s state apart while sharing one session', async () => {
    const speech = framesFor(model.createDetector(8000), padded(fixture('book-a-table')));
    // Other words on the second call, so both calls really run the network at once.
    const other = framesFor(model.createDetector(8000), fixture('wait-actually').subarray(0, 2000));
    const otherCall = speech.map((_, i) => other[i % other.length]);
    const alone = model.createDetector(8000);
    const expected: number[] = [];
    for (const frame of speech) expected.push(await alone.probability(frame));

    const a = model.createDetector(8000);
    const b = model.createDetector(8000);
    const interleaved: number[] = [];
    for (let i = 0; i < speech.length; i++) {
      const [score] = await Promise.all([a.probability(speech[i]), b.probability(otherCall[i])]);
      interleaved.push(score);
    }
    expect(interleaved).toEqual(expected);
  });

  it('skips the network for quiet frames, and can be told not to', async () => {
    const quiet = new Float32Array(256).fill(0.0005);
    expect(await model.createDetector(8000).probability(quiet)).toBe(0);
    expect(await model.createDetector(8000, { quietDbfs: Number.NEGATIVE_INFINITY }).probability(quiet)).toBeGreaterThan(0);
  });

  it('runs frames in order even when the caller does not wait for each', async () => {
    const vad = model.createDetector(8000);
    const frames = framesFor(vad, padded(fixture('yes-please')));
    const awaited: number[] = [];
    for (const frame of frames) awaited.push(await vad.probability(frame));
    vad.reset();
    expect(await Promise.all(frames.map((frame) => vad.probability(frame)))).toEqual(awaited);
  });
});

detectorContract('EnergyVad at 8 kHz', () => new EnergyVad({ sampleRate: 8000 }), 20);
detectorContract('EnergyVad at 16 kHz', () => new EnergyVad({ sampleRate: 16000 }), 20);

describe('EnergyVad', () => {
  it('learns a louder noise within its two-second window', () => {
    const vad = new EnergyVad();
    const frame = (amplitude: number, seed: number) => {
      let state = seed;
      return new Float32Array(160).map(() => {
        state = (state * 1103515245 + 12345) & 0x7fffffff;
        return amplitude * ((state / 0x7fffffff) * 2 - 1);
      });
    };
    for (let i = 0; i < 100; i++) vad.probability(frame(0.001, i));
    // The noise jumps 26 dB: it looks like speech at first...
    expect(vad.probability(frame(0.02, 1000))).toBeGreaterThan(0.9);
    // ...and is noise again once the window holds nothing quieter.
    let last = 1;
    for (let i = 0; i < 150; i++) last = vad.probability(frame(0.02, 2000 + i));
    expect(last).toBeLessThan(0.1);
  });
});

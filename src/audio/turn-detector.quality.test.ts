import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { EnergyVad } from './energy-vad.js';
import { decodeMulaw, encodeMulaw } from './mulaw.js';
import { loadSileroModel, type SileroModel } from './silero-vad.js';
import { TurnDetector, type TurnEvent, type TurnTiming } from './turn-detector.js';
import type { VoiceActivityDetector } from './voice-activity.js';
import { parseWav } from './wav.js';

// Turn detection on the committed speech fixtures (espeak-ng, phone band,
// 8 kHz μ-law), mixed with line noise at set signal-to-noise ratios, the way
// a caller reaches callme. Prints a table of the figures it checks; run it
// alone to compare detectors:
//   npx vitest run src/audio/turn-detector.quality.test.ts

const fixture = (name: string) => decodeMulaw(parseWav(readFileSync(new URL(`../../test/fixtures/speech/${name}.wav`, import.meta.url))).data);
const rms = (samples: Int16Array) => Math.sqrt(samples.reduce((sum, sample) => sum + sample * sample, 0) / samples.length);

const phrases = ['book-a-table', 'my-name-is-anna', 'yes-please', 'no-thanks-goodbye', 'wait-actually'];
const backchannels = ['mhm', 'uh-huh'];
const leadMs = 1000;
const trailMs = 1500;

/** Seeded white noise, a harsher line hiss than the brown noise fixture. */
function hiss(): Int16Array {
  let seed = 7;
  const random = () => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed / 0x7fffffff;
  };
  return new Int16Array(6 * 8000).map(() => Math.round((random() + random() + random() - 1.5) * 8000));
}

interface Condition {
  name: string;
  noise?: Int16Array;
  snrDb?: number;
}

/** `clip` between stretches of the condition's noise, scaled so speech sits `snrDb` above it, as μ-law. */
function mix(clip: Int16Array, condition: Condition, speechRms: number, noiseOffset: number, before = leadMs, after = trailMs): Uint8Array {
  const start = before * 8;
  const out = new Int16Array(start + clip.length + after * 8);
  const noise = condition.noise;
  const gain = noise ? speechRms / 10 ** (condition.snrDb! / 20) / rms(noise) : 0;
  for (let i = 0; i < out.length; i++) {
    let sample = i >= start && i < start + clip.length ? clip[i - start] : 0;
    if (noise) sample += noise[(i + noiseOffset) % noise.length] * gain;
    out[i] = Math.max(-32768, Math.min(32767, Math.round(sample)));
  }
  return encodeMulaw(out);
}

async function detect(vad: VoiceActivityDetector, stream: Uint8Array, timing: Partial<TurnTiming>): Promise<TurnEvent[]> {
  vad.reset();
  const detector = new TurnDetector({ vad, ...timing });
  const events: TurnEvent[] = [];
  for (let offset = 0; offset < stream.length; offset += 160) events.push(...(await detector.push(stream.subarray(offset, offset + 160))));
  return events;
}

interface Figures {
  /** Phrases heard as exactly one turn. */
  turns: number;
  /** From the first word to `speech-started`. */
  startDelays: number[];
  /** `startedAtMs` against the true start. */
  onsetErrors: number[];
  /** From the last word to `speech-ended`. */
  endDelays: number[];
  /** Backchannels and coughs that started a turn. */
  burstsStarted: string[];
  /** Turns started by 20 s of noise alone. */
  noiseStarts: number;
  noiseBursts: number;
}

async function measure(vad: VoiceActivityDetector, condition: Condition, speechRms: number, timing: Partial<TurnTiming>): Promise<Figures> {
  const figures: Figures = { turns: 0, startDelays: [], onsetErrors: [], endDelays: [], burstsStarted: [], noiseStarts: 0, noiseBursts: 0 };
  for (const [index, name] of phrases.entries()) {
    const clip = fixture(name);
    const events = await detect(vad, mix(clip, condition, speechRms, index * 3001), timing);
    const started = events.filter((event) => event.type === 'speech-started');
    const ended = events.filter((event) => event.type === 'speech-ended');
    if (started.length !== 1 || ended.length !== 1) continue;
    figures.turns++;
    figures.startDelays.push(started[0].atMs - leadMs);
    figures.onsetErrors.push(started[0].startedAtMs - leadMs);
    figures.endDelays.push(ended[0].atMs - (leadMs + clip.length / 8));
  }
  for (const [index, name] of [...backchannels, 'cough'].entries()) {
    const events = await detect(vad, mix(fixture(name), condition, speechRms, index * 5003), timing);
    if (events.some((event) => event.type === 'speech-started')) figures.burstsStarted.push(name);
  }
  if (condition.noise) {
    const events = await detect(vad, mix(new Int16Array(0), condition, speechRms, 123, 0, 20_000), timing);
    figures.noiseStarts = events.filter((event) => event.type === 'speech-started').length;
    figures.noiseBursts = events.filter((event) => event.type === 'backchannel-ignored').length;
  }
  return figures;
}

const mean = (values: number[]) => (values.length === 0 ? Number.NaN : Math.round(values.reduce((sum, value) => sum + value, 0) / values.length));
const max = (values: number[]) => (values.length === 0 ? Number.NaN : Math.round(Math.max(...values)));

function row(detector: string, condition: string, timing: Partial<TurnTiming>, figures: Figures): string {
  return [
    detector.padEnd(13),
    condition.padEnd(11),
    `min ${timing.minSpeechMs}`.padEnd(8),
    `turns ${figures.turns}/${phrases.length}`,
    `start +${mean(figures.startDelays)} (max ${max(figures.startDelays)})`.padEnd(22),
    `onset ${mean(figures.onsetErrors)}`.padEnd(10),
    `end +${mean(figures.endDelays)} (max ${max(figures.endDelays)})`.padEnd(21),
    `bursts started: ${figures.burstsStarted.join(',') || '-'}`.padEnd(31),
    `noise 20 s: ${figures.noiseStarts} starts, ${figures.noiseBursts} bursts`,
  ].join(' ');
}

describe('turn detection on speech fixtures', () => {
  let silero: SileroModel;
  let speechRms: number;
  const conditions: Condition[] = [];
  const table: string[] = [];

  beforeAll(async () => {
    silero = await loadSileroModel();
    speechRms = phrases.reduce((sum, name) => sum + rms(fixture(name)), 0) / phrases.length;
    const brown = fixture('noise');
    conditions.push(
      { name: 'clean' },
      { name: 'brown 20 dB', noise: brown, snrDb: 20 },
      { name: 'brown 10 dB', noise: brown, snrDb: 10 },
      { name: 'brown 5 dB', noise: brown, snrDb: 5 },
      { name: 'hiss 10 dB', noise: hiss(), snrDb: 10 },
    );
    return () => console.log(`\n${table.join('\n')}\n`);
  });

  it('Silero at 8 kHz finds every phrase as one turn, in every noise, and is never started by noise or a cough', async () => {
    const timing = { minSpeechMs: 250, endOfSpeechMs: 600 };
    for (const condition of conditions) {
      const figures = await measure(silero.createDetector(8000), condition, speechRms, timing);
      table.push(row('silero 8 kHz', condition.name, timing, figures));
      expect(figures.turns, condition.name).toBe(phrases.length);
      expect(max(figures.startDelays), condition.name).toBeLessThanOrEqual(450);
      expect(figures.onsetErrors.every((error) => Math.abs(error) <= 150), condition.name).toBe(true);
      expect(max(figures.endDelays), condition.name).toBeLessThanOrEqual(1000);
      expect(figures.burstsStarted, condition.name).not.toContain('cough');
      expect(figures.noiseStarts + figures.noiseBursts, condition.name).toBe(0);
    }
  });

  it('Silero at 16 kHz (resampled) does as well, for twice the cost', async () => {
    const timing = { minSpeechMs: 250, endOfSpeechMs: 600 };
    for (const condition of conditions) {
      const figures = await measure(silero.createDetector(16000), condition, speechRms, timing);
      table.push(row('silero 16 kHz', condition.name, timing, figures));
      expect(figures.turns, condition.name).toBe(phrases.length);
      expect(figures.noiseStarts, condition.name).toBe(0);
    }
  });

  it('a barge-in setting of 550 ms lets "mhm" and "uh-huh" pass on a clean or quiet line', async () => {
    const timing = { minSpeechMs: 550, endOfSpeechMs: 600 };
    for (const condition of conditions) {
      const figures = await measure(silero.createDetector(8000), condition, speechRms, timing);
      table.push(row('silero 8 kHz', condition.name, timing, figures));
      expect(figures.turns, condition.name).toBe(phrases.length);
      if (condition.name === 'clean' || condition.name === 'brown 20 dB') expect(figures.burstsStarted, condition.name).toEqual([]);
    }
  });

  it('EnergyVad, the fallback, finds every phrase on a quiet line, most at 10 dB, and is not started by steady noise', async () => {
    const timing = { minSpeechMs: 250, endOfSpeechMs: 600 };
    for (const condition of conditions) {
      const figures = await measure(new EnergyVad({ sampleRate: 8000 }), condition, speechRms, timing);
      table.push(row('energy 8 kHz', condition.name, timing, figures));
      const snrDb = condition.snrDb ?? Number.POSITIVE_INFINITY;
      // In 10 dB of white hiss it hears "No thanks, goodbye" only as two short bursts.
      if (snrDb >= 10) expect(figures.turns, condition.name).toBeGreaterThanOrEqual(snrDb >= 20 ? phrases.length : phrases.length - 1);
      expect(figures.noiseStarts, condition.name).toBe(0);
    }
  });
});

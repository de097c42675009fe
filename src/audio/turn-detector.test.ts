import { describe, expect, it } from 'vitest';
import { encodeMulaw } from './mulaw.js';
import { TurnDetector, utteranceSampleRate, type TurnDetectorOptions, type TurnEvent } from './turn-detector.js';
import type { VoiceActivityDetector } from './voice-activity.js';

/**
 * A detector whose verdict is written into the audio: the frame's loudness
 * picks the probability, so a test spells out speech, doubt and silence as
 * levels. Loud (≥ 0.2 full scale) is 0.9, middling (≥ 0.05) 0.4, quiet 0.
 */
class LevelVad implements VoiceActivityDetector {
  readonly frameSamples: number;
  resets = 0;
  constructor(
    readonly sampleRate = 8000,
    frameMs = 20,
    private readonly delayed = false,
  ) {
    this.frameSamples = (sampleRate * frameMs) / 1000;
  }
  probability(frame: Float32Array): number | Promise<number> {
    let peak = 0;
    for (const sample of frame) peak = Math.max(peak, Math.abs(sample));
    const score = peak >= 0.2 ? 0.9 : peak >= 0.05 ? 0.4 : 0;
    return this.delayed ? new Promise((resolve) => setTimeout(() => resolve(score), 0)) : score;
  }
  reset(): void {
    this.resets++;
  }
}

type Level = 'speech' | 'doubt' | 'silence';
const amplitude: Record<Level, number> = { speech: 16000, doubt: 3000, silence: 0 };

/** Caller μ-law: a square wave at the level's amplitude for `ms`. */
function audio(...parts: Array<[Level, number]>): Uint8Array {
  const samples: number[] = [];
  for (const [level, ms] of parts) for (let i = 0; i < ms * 8; i++) samples.push(i % 8 < 4 ? amplitude[level] : -amplitude[level]);
  return encodeMulaw(Int16Array.from(samples));
}

async function run(stream: Uint8Array, options: Partial<TurnDetectorOptions> = {}, chunkBytes = 160): Promise<TurnEvent[]> {
  const detector = new TurnDetector({ vad: new LevelVad(), ...options });
  const events: TurnEvent[] = [];
  for (let offset = 0; offset < stream.length; offset += chunkBytes) events.push(...(await detector.push(stream.subarray(offset, offset + chunkBytes))));
  return events;
}

/** Events without their audio, for comparing. */
const summary = (events: TurnEvent[]) => events.map((event) => (event.type === 'speech-ended' ? { ...event, audio: event.audio.length } : event));

describe('TurnDetector', () => {
  it('starts a turn after minSpeechMs of speech and ends it after endOfSpeechMs of silence', async () => {
    const events = await run(audio(['silence', 1000], ['speech', 1200], ['silence', 1000]), { minSpeechMs: 250, endOfSpeechMs: 600, preRollMs: 300 });
    expect(summary(events)).toEqual([
      { type: 'speech-started', startedAtMs: 1000, atMs: 1260 },
      {
        type: 'speech-ended',
        // 300 ms pre-roll + 1200 ms speech + 200 ms tail, at 16 kHz.
        audio: 1700 * 8,
        speechMs: 1200,
        startedAtMs: 1000,
        lastVoicedAtMs: 2200,
        atMs: 2800,
        truncated: false,
      },
    ]);
  });

  it('hands over the words with their pre-roll, at the caller’s 8 kHz', async () => {
    const events = await run(audio(['silence', 1000], ['speech', 500], ['silence', 800]), { preRollMs: 300 });
    const ended = events.find((event) => event.type === 'speech-ended');
    expect(utteranceSampleRate).toBe(8000);
    if (ended?.type !== 'speech-ended') throw new Error('no speech-ended');
    const level = (fromMs: number, toMs: number) => Math.max(...ended.audio.subarray(fromMs * 8, toMs * 8).map(Math.abs));
    // The first 300 ms are the silence before the words, then the words, then the tail.
    expect(level(0, 290)).toBeLessThan(100);
    expect(level(310, 790)).toBeGreaterThan(10000);
    expect(level(810, 1000)).toBeLessThan(100);
    expect(ended.audio.length).toBe((300 + 500 + 200) * 8);
  });

  it('ignores bursts shorter than minSpeechMs as backchannels', async () => {
    const events = await run(audio(['silence', 500], ['speech', 160], ['silence', 1000], ['speech', 80], ['silence', 1000]), { minSpeechMs: 250 });
    expect(summary(events)).toEqual([
      { type: 'backchannel-ignored', speechMs: 160, startedAtMs: 500, atMs: 900 },
      { type: 'backchannel-ignored', speechMs: 80, startedAtMs: 1660, atMs: 1980 },
    ]);
  });

  it('adds up a burst across short gaps', async () => {
    const events = await run(audio(['silence', 500], ['speech', 200], ['silence', 100], ['speech', 100], ['silence', 1000]), { minSpeechMs: 250 });
    expect(events.map((event) => event.type)).toEqual(['speech-started', 'speech-ended']);
  });

  it('does not end a turn on a pause shorter than endOfSpeechMs', async () => {
    const events = await run(audio(['speech', 500], ['silence', 500], ['speech', 500], ['silence', 800]), { endOfSpeechMs: 600 });
    expect(summary(events)).toMatchObject([{ type: 'speech-started' }, { type: 'speech-ended', startedAtMs: 0, lastVoicedAtMs: 1500 }]);
  });

  it('uses hysteresis: doubtful frames keep a turn going but never start one', async () => {
    const doubtOnly = await run(audio(['silence', 200], ['doubt', 2000], ['silence', 1000]));
    expect(doubtOnly).toEqual([]);

    const events = await run(audio(['speech', 400], ['doubt', 1000], ['silence', 800]), { endOfSpeechMs: 600 });
    expect(summary(events)).toMatchObject([{ type: 'speech-started' }, { type: 'speech-ended', lastVoicedAtMs: 1400 }]);
  });

  it('counts only confident frames towards minSpeechMs', async () => {
    const events = await run(audio(['speech', 100], ['doubt', 400], ['silence', 1000]), { minSpeechMs: 250 });
    expect(summary(events)).toEqual([{ type: 'backchannel-ignored', speechMs: 100, startedAtMs: 0, atMs: 740 }]);
  });

  it('cuts a turn at maxUtteranceMs', async () => {
    const events = await run(audio(['speech', 3000], ['silence', 800]), { maxUtteranceMs: 2000 });
    expect(summary(events)).toMatchObject([
      { type: 'speech-started' },
      { type: 'speech-ended', truncated: true, atMs: 2000, audio: 2000 * 8 },
      { type: 'speech-started', startedAtMs: 2000 },
      { type: 'speech-ended', truncated: false, lastVoicedAtMs: 3000 },
    ]);
  });

  it('takes new timing mid-call, e.g. a longer minSpeechMs while the assistant talks', async () => {
    const detector = new TurnDetector({ vad: new LevelVad(), minSpeechMs: 250 });
    detector.configure({ minSpeechMs: 500 });
    const events = await detector.push(audio(['speech', 400], ['silence', 600]));
    expect(events.map((event) => event.type)).toEqual(['backchannel-ignored']);
    detector.configure({ minSpeechMs: 200 });
    expect((await detector.push(audio(['speech', 400], ['silence', 100]))).map((event) => event.type)).toEqual(['speech-started']);
    expect(detector.state).toBe('speaking');
  });

  it('gives the same events however the audio is chunked', async () => {
    const stream = audio(['silence', 700], ['speech', 900], ['silence', 300], ['speech', 140], ['silence', 1200]);
    const byFrame = summary(await run(stream));
    expect(byFrame.map((event) => event.type)).toEqual(['speech-started', 'speech-ended']);
    expect(summary(await run(stream, {}, stream.length))).toEqual(byFrame);
    expect(summary(await run(stream, {}, 77))).toEqual(byFrame);
  });

  it('keeps pushes in order when they are not awaited, with an asynchronous detector', async () => {
    const stream = audio(['silence', 300], ['speech', 600], ['silence', 800]);
    const detector = new TurnDetector({ vad: new LevelVad(8000, 20, true) });
    const pushes: Array<Promise<TurnEvent[]>> = [];
    for (let offset = 0; offset < stream.length; offset += 160) pushes.push(detector.push(stream.subarray(offset, offset + 160)));
    const events = (await Promise.all(pushes)).flat();
    expect(summary(events)).toEqual(summary(await run(stream)));
  });

  it('resamples for a 16 kHz detector with 32 ms frames and keeps the same timeline', async () => {
    const stream = audio(['silence', 1024], ['speech', 1024], ['silence', 1024]);
    const events = await run(stream, { vad: new LevelVad(16000, 32), minSpeechMs: 250, endOfSpeechMs: 600 });
    expect(events.map((event) => event.type)).toEqual(['speech-started', 'speech-ended']);
    const ended = events[1];
    if (ended.type !== 'speech-ended') throw new Error('no speech-ended');
    // The resampling filter smears the hard edges of the test signal by a few
    // milliseconds, which can tip the frame on either side: one frame of slack.
    expect(Math.abs(ended.startedAtMs - 1024)).toBeLessThanOrEqual(32);
    expect(Math.abs(ended.lastVoicedAtMs - 2048)).toBeLessThanOrEqual(32);
  });

  it('starts over on reset', async () => {
    const vad = new LevelVad();
    const detector = new TurnDetector({ vad });
    await detector.push(audio(['speech', 400]));
    expect(detector.state).toBe('speaking');
    detector.reset();
    expect(detector.state).toBe('silent');
    expect(vad.resets).toBe(1);
    expect(summary(await detector.push(audio(['silence', 100], ['speech', 300])))).toEqual([{ type: 'speech-started', startedAtMs: 100, atMs: 360 }]);
  });

  it('refuses contradictory settings', () => {
    expect(() => new TurnDetector({ vad: new LevelVad(), startThreshold: 0.3, endThreshold: 0.5 })).toThrow(RangeError);
    expect(() => new TurnDetector({ vad: new LevelVad(44100) })).toThrow(RangeError);
  });
});

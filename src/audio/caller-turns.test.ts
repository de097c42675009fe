import { readFileSync } from 'node:fs';
import pino from 'pino';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import type { CallerTurns, CallerTurnStream } from './caller-turns.js';
import { LocalCallerTurns } from './local-caller-turns.js';
import { encodeMulaw } from './mulaw.js';
import { ThreadedCallerTurns } from './threaded-caller-turns.js';
import type { TurnEvent, TurnTiming } from './turn-detector.js';
import { loadVoiceDetectors } from './voice-detector-factory.js';
import { parseWav } from './wav.js';

// One suite, run against turn detection on the event loop and on worker
// threads: the same caller audio must give the same events either way.

const silentLogger = pino({ level: 'silent' });
const fixture = (name: string) => parseWav(readFileSync(new URL(`../../test/fixtures/speech/${name}.wav`, import.meta.url))).data;
const silence = (ms: number) => encodeMulaw(new Int16Array((ms * 8000) / 1000));

/** A call: 400 ms of silence, the phrase, `tailMs` of silence, in 20 ms frames. */
function callerAudio(phrases: string[], tailMs = 1000): Uint8Array[] {
  const parts = [silence(400), ...phrases.flatMap((name) => [fixture(name), silence(tailMs)])];
  const all = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0));
  let offset = 0;
  for (const part of parts) {
    all.set(part, offset);
    offset += part.length;
  }
  const frames: Uint8Array[] = [];
  for (let at = 0; at + 160 <= all.length; at += 160) frames.push(all.slice(at, at + 160));
  return frames;
}

interface Heard {
  events: TurnEvent[];
  errors: Error[];
  stream: CallerTurnStream;
}

function listen(turns: CallerTurns, timing: Partial<TurnTiming> = {}): Heard {
  const heard = { events: [], errors: [] } as unknown as Heard;
  heard.stream = turns.open(timing, { onEvents: (events) => heard.events.push(...events), onError: (error) => heard.errors.push(error) });
  return heard;
}

async function until(check: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** What two runs must agree on: the events with the utterance's length in place of its audio. */
function comparable(events: TurnEvent[]) {
  return events.map((event) => (event.type === 'speech-ended' ? { ...event, audio: event.audio.length } : event));
}

const implementations: Array<{ name: string; make: () => CallerTurns }> = [
  { name: 'on the event loop', make: () => new LocalCallerTurns(() => loadVoiceDetectors(() => {})) },
  { name: 'on worker threads', make: () => new ThreadedCallerTurns({ threads: 2, logger: silentLogger }) },
];

const reference = new LocalCallerTurns(() => loadVoiceDetectors(() => {}));
afterAll(() => reference.close());

describe.each(implementations)('caller turns $name', ({ make }) => {
  let turns: CallerTurns | undefined;
  afterEach(async () => {
    await turns?.close();
    turns = undefined;
  });

  it('loads Silero and hears a phrase as one turn, with its audio', async () => {
    turns = make();
    expect(await turns.detector).toBe('silero');
    const heard = listen(turns, { minSpeechMs: 250, endOfSpeechMs: 600 });
    for (const frame of callerAudio(['book-a-table'])) heard.stream.push(frame);
    await until(() => heard.events.some((event) => event.type === 'speech-ended'));
    expect(heard.events.map((event) => event.type)).toEqual(['speech-started', 'speech-ended']);
    const ended = heard.events[1] as Extract<TurnEvent, { type: 'speech-ended' }>;
    // 8 kHz audio from the pre-roll to 200 ms past the last voiced frame: about the phrase's length.
    expect(ended.audio.length / 8000).toBeGreaterThan(fixture('book-a-table').length / 8000 - 0.5);
    expect(ended.audio.some((sample) => Math.abs(sample) > 1000)).toBe(true);
    expect(heard.errors).toEqual([]);
  });

  it('gives the same events as a detector on the event loop, for several calls at once', async () => {
    turns = make();
    const scripts = [['book-a-table', 'yes-please'], ['mhm', 'my-name-is-anna'], ['wait-actually'], ['no-thanks-goodbye', 'uh-huh']];
    const calls = scripts.map(() => listen(turns!, { minSpeechMs: 600, endOfSpeechMs: 600 }));
    const expected = scripts.map(() => listen(reference, { minSpeechMs: 600, endOfSpeechMs: 600 }));
    const audio = scripts.map((phrases) => callerAudio(phrases));
    // Interleaved, as frames of calls on one server arrive.
    for (let frame = 0; frame < Math.max(...audio.map((frames) => frames.length)); frame++) {
      for (const [index, frames] of audio.entries()) {
        if (frame < frames.length) {
          calls[index].stream.push(frames[frame]);
          expected[index].stream.push(frames[frame]);
        }
      }
    }
    const ends = (heard: Heard) => heard.events.filter((event) => event.type === 'speech-ended').length;
    await until(() => expected.every((heard, index) => ends(heard) === scripts[index].filter((name) => !['mhm', 'uh-huh'].includes(name)).length));
    await until(() => calls.every((heard, index) => ends(heard) === ends(expected[index])));
    await new Promise((resolve) => setTimeout(resolve, 100));
    for (const [index, heard] of calls.entries()) expect(comparable(heard.events)).toEqual(comparable(expected[index].events));
    // The backchannels were heard and let pass, not taken for turns.
    expect(calls[1].events.filter((event) => event.type === 'backchannel-ignored')).toHaveLength(1);
  });

  it('applies a new timing from the next audio on, and says nothing after close', async () => {
    turns = make();
    const heard = listen(turns, { minSpeechMs: 250, endOfSpeechMs: 600 });
    // No burst in "yes please" lasts 5 s: with that minimum it is a backchannel, not a turn.
    heard.stream.configure({ minSpeechMs: 5000 });
    for (const frame of callerAudio(['yes-please'])) heard.stream.push(frame);
    await until(() => heard.events.length > 0);
    expect(heard.events.every((event) => event.type === 'backchannel-ignored')).toBe(true);

    const closed = listen(turns);
    const frames = callerAudio(['book-a-table']);
    for (const frame of frames.slice(0, 60)) closed.stream.push(frame);
    closed.stream.close();
    for (const frame of frames.slice(60)) closed.stream.push(frame);
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(closed.events.filter((event) => event.type === 'speech-ended')).toEqual([]);
  });
});

describe('caller turns on worker threads, when a thread dies', () => {
  const crashing = new URL('../testing/crashing-turns-worker.ts', import.meta.url);

  it('restarts it: its calls hear an error, start afresh, and are heard again', async () => {
    const turns = new ThreadedCallerTurns({ threads: 1, logger: silentLogger, workerUrl: crashing });
    try {
      const heard = listen(turns);
      await turns.detector;
      heard.stream.push(new Uint8Array([0]));
      await until(() => heard.errors.length > 0);
      expect(heard.errors[0].message).toMatch(/voice activity thread stopped \(exit code 7\)/);
      for (const frame of callerAudio(['book-a-table'])) heard.stream.push(frame);
      await until(() => heard.events.some((event) => event.type === 'speech-ended'));
      expect(heard.events.map((event) => event.type)).toEqual(['speech-started', 'speech-ended']);
    } finally {
      await turns.close();
    }
  });

  it('gives up a thread that keeps dying, and its calls move to a live one', async () => {
    const turns = new ThreadedCallerTurns({ threads: 2, logger: silentLogger, workerUrl: crashing });
    try {
      // Both threads start with one call each; then the first keeps dying (its call's frames kill it).
      const doomed = listen(turns);
      const other = listen(turns);
      await turns.detector;
      for (let crash = 0; crash < 6; crash++) {
        const before = doomed.errors.length;
        doomed.stream.push(new Uint8Array([0]));
        await until(() => doomed.errors.length > before);
      }
      expect(doomed.errors.at(-1)?.message).toMatch(/exit code 7/);
      // Given up after the sixth death in a minute: the call now lives on the other thread.
      for (const frame of callerAudio(['wait-actually'])) {
        doomed.stream.push(frame);
        other.stream.push(frame);
      }
      await until(() => [doomed, other].every((heard) => heard.events.some((event) => event.type === 'speech-ended')));
      expect(doomed.events.map((event) => event.type)).toEqual(['speech-started', 'speech-ended']);
    } finally {
      await turns.close();
    }
  });

  it('starts no thread until one is needed, then one per call up to the number asked for', async () => {
    const turns = new ThreadedCallerTurns({ threads: 3, logger: silentLogger });
    try {
      expect(turns.runningThreads).toBe(0);
      await turns.detector;
      expect(turns.runningThreads).toBe(1);
      const calls = Array.from({ length: 5 }, () => listen(turns));
      expect(turns.runningThreads).toBe(3);
      for (const call of calls) call.stream.close();
    } finally {
      await turns.close();
    }
    expect(turns.runningThreads).toBe(0);
  });

  it('stops its threads by asking them, mid-speech: each releases the model and ends without being forced', async () => {
    const logged: Array<{ level: number; msg: string; code?: number }> = [];
    const logger = pino({ level: 'debug' }, { write: (line: string) => logged.push(JSON.parse(line)) });
    const turns = new ThreadedCallerTurns({ threads: 2, logger });
    const calls = Array.from({ length: 4 }, () => listen(turns));
    const frames = callerAudio(['book-a-table']);
    // Every call is in the middle of its phrase, with detections in flight, when the threads are told to stop.
    for (const frame of frames.slice(0, 60)) for (const call of calls) call.stream.push(frame);
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(turns.runningThreads).toBe(2);
    await turns.close();
    expect(turns.runningThreads).toBe(0);
    // Exit code 0: each thread returned from its loop; a forced end gives 1 and a warning.
    expect(logged.filter((line) => line.level >= 40)).toEqual([]);
    expect(logged.filter((line) => line.msg === 'a voice activity thread stopped').map((line) => line.code)).toEqual([0, 0]);
  });
});

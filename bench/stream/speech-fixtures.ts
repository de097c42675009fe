import { readFile } from 'node:fs/promises';
import { decodeMulaw } from '../../src/audio/mulaw.js';
import { loadSileroModel, type SileroModel } from '../../src/audio/silero-vad.js';
import { TurnDetector, type TurnEvent } from '../../src/audio/turn-detector.js';
import { parseWav } from '../../src/audio/wav.js';

/**
 * What the simulated callers say (the committed speech fixtures, 8 kHz μ-law)
 * and, worked out offline, where their voice is and when the server's own
 * turn detector reacts to it. The server runs Silero on 256-sample (32 ms)
 * frames over the whole stream while Twilio frames are 160 samples (20 ms),
 * so when it reacts depends on where the utterance falls on that grid: the
 * stream position of its first sample modulo 256, one of 8 "phases" (160 k
 * mod 256). Each phase is simulated here with the real `TurnDetector` and
 * Silero model, so the bench can split a measured latency into what the
 * detector needs by design and what the server adds.
 */

/** Speech the callers say as turns (all longer than the 600 ms a barge-in needs). */
export const turnPhrases = ['book-a-table', 'wait-actually', 'no-thanks-goodbye', 'my-name-is-anna', 'yes-please'] as const;

export const frameSamples = 160;
export const frameMs = 20;
/** The frame grid repeats every 8 Twilio frames against Silero's 256-sample frames. */
export const phaseCount = 8;
const mulawSilenceByte = 0xff;
/** A frame counts as voiced when its energy is within this of the fixture's loudest frame. */
const voicedBelowPeakDb = 35;

export interface SpeechFixture {
  name: string;
  mulaw: Uint8Array;
  frames: number;
  /** First and last 20 ms frame holding voice (by energy), counted from the fixture's first frame. */
  firstVoicedFrame: number;
  lastVoicedFrame: number;
}

/** How the server's detector reacts to a fixture at one phase, in fixture frames (frame index at which the event fires). */
export interface DetectorReaction {
  /** The frame whose arrival makes `speech-started` fire; undefined if it never does. */
  startedFrame?: number;
  /** The frame whose arrival makes `speech-ended` fire. */
  endedFrame?: number;
  /** Silero's last voiced moment, ms from the fixture's start. */
  lastVoicedMs?: number;
}

export interface FixtureAnalysis {
  fixture: SpeechFixture;
  /** Per phase (index = first frame's stream position mod 8): with the barge-in `minSpeechMs`, and with the listening one. */
  talking: DetectorReaction[];
  listening: DetectorReaction[];
}

export async function loadFixture(name: string): Promise<SpeechFixture> {
  const mulaw = parseWav(await readFile(new URL(`../../test/fixtures/speech/${name}.wav`, import.meta.url))).data;
  const pcm = decodeMulaw(mulaw);
  const frames = Math.ceil(mulaw.length / frameSamples);
  const energies: number[] = [];
  for (let frame = 0; frame < frames; frame++) {
    const part = pcm.subarray(frame * frameSamples, (frame + 1) * frameSamples);
    let sum = 0;
    for (const sample of part) sum += sample * sample;
    energies.push(10 * Math.log10(sum / frameSamples / 32768 ** 2 + 1e-12));
  }
  const peak = Math.max(...energies);
  const voiced = energies.map((energy) => energy >= peak - voicedBelowPeakDb);
  return { name, mulaw, frames, firstVoicedFrame: voiced.indexOf(true), lastVoicedFrame: voiced.lastIndexOf(true) };
}

/** Runs the server's `TurnDetector` over silence, the fixture at each phase, then silence, as a stream would bring them. */
export async function analyzeFixture(
  fixture: SpeechFixture,
  timing: { minSpeechMs: number; listeningMinSpeechMs: number; endOfSpeechMs: number },
  model?: SileroModel,
): Promise<FixtureAnalysis> {
  const silero = model ?? (await loadSileroModel());
  const react = async (minSpeechMs: number, phase: number): Promise<DetectorReaction> => {
    const detector = new TurnDetector({ vad: silero.createDetector(), minSpeechMs, endOfSpeechMs: timing.endOfSpeechMs });
    const silence = new Uint8Array(frameSamples).fill(mulawSilenceByte);
    // A second of silence before (as in a call: Silero's state has settled), whole frames so the phase is exact.
    const leadFrames = 8 * 7 + phase;
    for (let frame = 0; frame < leadFrames; frame++) await detector.push(silence);
    const reaction: DetectorReaction = {};
    const totalFrames = fixture.frames + Math.ceil((timing.endOfSpeechMs + 1000) / frameMs);
    for (let frame = 0; frame < totalFrames; frame++) {
      const bytes = new Uint8Array(frameSamples).fill(mulawSilenceByte);
      if (frame < fixture.frames) bytes.set(fixture.mulaw.subarray(frame * frameSamples, (frame + 1) * frameSamples));
      const events: TurnEvent[] = await detector.push(bytes);
      for (const event of events) {
        if (event.type === 'speech-started') reaction.startedFrame ??= frame;
        if (event.type === 'speech-ended' && reaction.endedFrame === undefined) {
          reaction.endedFrame = frame;
          reaction.lastVoicedMs = event.lastVoicedAtMs - leadFrames * frameMs;
        }
      }
      if (reaction.endedFrame !== undefined) break;
    }
    return reaction;
  };
  const talking: DetectorReaction[] = [];
  const listening: DetectorReaction[] = [];
  for (let phase = 0; phase < phaseCount; phase++) {
    talking.push(await react(timing.minSpeechMs, phase));
    listening.push(await react(timing.listeningMinSpeechMs, phase));
  }
  return { fixture, talking, listening };
}

/** The phase of an utterance whose first frame is the stream's frame number `streamFrame` (0 = the first media frame). */
export function phaseOf(streamFrame: number): number {
  return ((streamFrame % phaseCount) + phaseCount) % phaseCount;
}

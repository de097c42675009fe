import { describe, expect, it } from 'vitest';
import type { StreamTimelineEvent } from '../../src/simulator/media-stream-simulator.js';
import { addTimeline, deviationPercentile, emptyJitter } from './frame-jitter.js';

/** A reply as the simulated Twilio records it: frames at `arrivals` (ms), each queued behind the one before. */
function reply(arrivals: number[], marksBefore: number[] = []): StreamTimelineEvent[] {
  const events: StreamTimelineEvent[] = [];
  let playEnd = 0;
  arrivals.forEach((atMs, index) => {
    if (marksBefore.includes(index)) events.push({ type: 'mark-received', name: `m${index}`, atMs });
    const playsAtMs = Math.max(atMs, playEnd);
    playEnd = playsAtMs + 20;
    events.push({ type: 'audio-received', bytes: 160, atMs, playsAtMs });
  });
  return events;
}

const everything = { from: -Infinity, to: Infinity };

describe('frame jitter', () => {
  it('skips the lead burst and counts nothing for a perfectly paced reply', () => {
    const arrivals = [...Array.from({ length: 10 }, () => 0), ...Array.from({ length: 50 }, (_, index) => 20 * (index + 1))];
    const stats = emptyJitter();
    addTimeline(stats, reply(arrivals), 0, [], everything);
    expect(stats.pacedFrames).toBe(49);
    expect(deviationPercentile(stats, 99)).toBe(0);
    expect(stats.underrunsInPiece + stats.underrunsAtPieceBoundary).toBe(0);
  });

  it('counts a late tick and the catch-up after it', () => {
    const arrivals = [...Array.from({ length: 10 }, () => 0), ...Array.from({ length: 50 }, (_, index) => 20 * (index + 1))];
    arrivals[30] += 7;
    const stats = emptyJitter();
    addTimeline(stats, reply(arrivals), 0, [], everything);
    expect(stats.deviationMaxMs).toBeCloseTo(7);
    expect(deviationPercentile(stats, 99)).toBeCloseTo(7);
  });

  it('reports an underrun after a piece boundary as an audible gap, and starts the fill again', () => {
    const first = [...Array.from({ length: 10 }, () => 0), ...Array.from({ length: 10 }, (_, index) => 20 * (index + 1))];
    // The next piece's audio arrives 160 ms after the first piece finished playing (at 400 ms).
    const second = Array.from({ length: 10 }, () => 560);
    const stats = emptyJitter();
    addTimeline(stats, reply([...first, ...second], [first.length]), 0, [], everything);
    expect(stats.underrunsAtPieceBoundary).toBe(1);
    expect(stats.underrunsInPiece).toBe(0);
    expect(stats.underrunGapMs[0]).toBeCloseTo(160);
  });

  it('does not call a new reply an underrun', () => {
    const stats = emptyJitter();
    const arrivals = [...Array.from({ length: 12 }, (_, index) => (index < 10 ? 0 : 20 * (index - 9))), ...Array.from({ length: 12 }, (_, index) => 5000 + (index < 10 ? 0 : 20 * (index - 9)))];
    addTimeline(stats, reply(arrivals), 0, [1000], everything);
    expect(stats.underrunsInPiece + stats.underrunsAtPieceBoundary).toBe(0);
  });
});

import { describe, expect, it } from 'vitest';
import { OutboundAudio, type OutboundAudioSink, type PacingClock } from './outbound-audio.js';
import { createPcm24kToMulaw8k } from './wav.js';

/** A clock that only moves when told, with timers that fire as it passes them. */
class ManualClock implements PacingClock {
  private time = 0;
  private nextId = 1;
  readonly timers = new Map<number, { at: number; callback: () => void }>();
  maxPendingTimers = 0;

  now(): number {
    return this.time;
  }
  setTimeout(callback: () => void, ms: number): unknown {
    const id = this.nextId++;
    this.timers.set(id, { at: this.time + ms, callback });
    this.maxPendingTimers = Math.max(this.maxPendingTimers, this.timers.size);
    return id;
  }
  clearTimeout(handle: unknown): void {
    this.timers.delete(handle as number);
  }
  advance(ms: number): void {
    const end = this.time + ms;
    for (;;) {
      const due = [...this.timers.entries()].filter(([, timer]) => timer.at <= end).sort((a, b) => a[1].at - b[1].at)[0];
      if (!due) break;
      this.timers.delete(due[0]);
      this.time = Math.max(this.time, due[1].at);
      due[1].callback();
    }
    this.time = end;
  }
}

type Sent = { kind: 'audio'; frame: Uint8Array; at: number } | { kind: 'mark'; name: string; at: number } | { kind: 'clear'; at: number };

function recordingSink(clock: PacingClock): OutboundAudioSink & { sent: Sent[]; frames: () => Uint8Array[]; marks: () => string[] } {
  const sent: Sent[] = [];
  return {
    sent,
    sendAudio: (frame) => sent.push({ kind: 'audio', frame: frame.slice(), at: clock.now() }),
    sendMark: (name) => sent.push({ kind: 'mark', name, at: clock.now() }),
    sendClear: () => sent.push({ kind: 'clear', at: clock.now() }),
    frames: () => sent.flatMap((entry) => (entry.kind === 'audio' ? [entry.frame] : [])),
    marks: () => sent.flatMap((entry) => (entry.kind === 'mark' ? [entry.name] : [])),
  };
}

/** `ms` of a 24 kHz s16le tone, as OpenAI's `pcm` format streams it. */
function tone(ms: number, hz = 440): Uint8Array {
  const samples = (ms * 24000) / 1000;
  const bytes = new Uint8Array(samples * 2);
  const view = new DataView(bytes.buffer);
  for (let i = 0; i < samples; i++) view.setInt16(2 * i, Math.round(8000 * Math.sin((2 * Math.PI * hz * i) / 24000)), true);
  return bytes;
}

function setup(leadMs = 200) {
  const clock = new ManualClock();
  const sink = recordingSink(clock);
  const audio = new OutboundAudio({ sink, clock, leadMs });
  return { clock, sink, audio };
}

describe('OutboundAudio pacing', () => {
  it('sends the first frames inside push, up to the lead, and the rest one per 20 ms', () => {
    const { clock, sink, audio } = setup(200);
    audio.push(tone(1000));
    expect(sink.frames()).toHaveLength(10);
    expect(audio.queuedMs).toBeGreaterThan(700);
    clock.advance(20);
    expect(sink.frames()).toHaveLength(11);
    clock.advance(100);
    expect(sink.frames()).toHaveLength(16);
    // Never more than the lead ahead of playback.
    expect(audio.sentMs - audio.playedMs).toBeLessThanOrEqual(200);
  });

  it("tells when the piece being pushed sent its first frame, and not before it has", () => {
    const { clock, audio } = setup(200);
    clock.advance(5);
    expect(audio.openPieceFirstSentAt).toBeUndefined();
    audio.push(tone(10));
    // Half a frame: nothing sent yet.
    expect(audio.openPieceFirstSentAt).toBeUndefined();
    clock.advance(3);
    audio.push(tone(1000));
    expect(audio.openPieceFirstSentAt).toBe(8);
    audio.endPiece('one');
    clock.advance(2000);
    audio.push(tone(100));
    expect(audio.openPieceFirstSentAt).toBe(2008);
  });

  it('lets a producer wait until the queue has drained below a mark, or is cleared', async () => {
    const { clock, audio } = setup(200);
    audio.push(tone(1000));
    expect(audio.queuedMs).toBe(780);
    let drained = false;
    const waiting = audio.whenQueuedBelow(500).then(() => (drained = true));
    clock.advance(280);
    await Promise.resolve();
    expect(drained).toBe(false);
    clock.advance(40);
    await waiting;
    expect(audio.queuedMs).toBeLessThan(500);
    await audio.whenQueuedBelow(500);
    let released = false;
    const cleared = audio.whenQueuedBelow(100).then(() => (released = true));
    audio.clear();
    await cleared;
    expect(released).toBe(true);
  });

  it('sends every frame on time, with one timer at most', () => {
    const { clock, sink, audio } = setup(200);
    audio.push(tone(2000));
    audio.endPiece('end');
    for (let t = 0; t < 2500; t += 5) clock.advance(5);
    const frames = sink.sent.filter((entry) => entry.kind === 'audio');
    expect(frames.length).toBe(100);
    // Frame n plays at 20·n ms and must leave no later than 200 ms before that.
    frames.forEach((frame, n) => expect(frame.at).toBeLessThanOrEqual(Math.max(0, n * 20 - 200) + 5));
    expect(clock.maxPendingTimers).toBe(1);
    expect(clock.timers.size).toBe(0);
  });

  it('turns any chunking, odd byte counts included, into the same whole frames', () => {
    const speech = tone(730, 300);
    const whole = createPcm24kToMulaw8k();
    const expected = new Uint8Array([...whole.push(speech), ...whole.flush()]);

    const { clock, sink, audio } = setup();
    let offset = 0;
    for (const size of [1, 7, 1000, 333, 2, 4095, 1]) {
      audio.push(speech.subarray(offset, offset + size));
      offset += size;
    }
    audio.push(speech.subarray(offset));
    audio.endPiece('piece-1');
    clock.advance(2000);

    const frames = sink.frames();
    expect(frames.every((frame) => frame.length === 160)).toBe(true);
    const joined = new Uint8Array(frames.reduce<number[]>((all, frame) => all.concat(...frame), []));
    expect(joined.length).toBe(Math.ceil(expected.length / 160) * 160);
    expect(joined.subarray(0, expected.length)).toEqual(expected);
    // The last frame is padded with μ-law silence.
    expect([...joined.subarray(expected.length)].every((byte) => byte === 0xff)).toBe(true);
  });

  it('passes μ-law through in whole frames, copied from the caller’s buffer', () => {
    const { clock, sink, audio } = setup();
    const buffer = new Uint8Array(400).map((_, i) => i % 256);
    const expected = buffer.slice();
    audio.pushMulaw(buffer.subarray(0, 250));
    audio.pushMulaw(buffer.subarray(250));
    buffer.fill(0);
    audio.endPiece('cached');
    clock.advance(1000);
    const frames = sink.frames();
    expect(frames).toHaveLength(3);
    expect(new Uint8Array([...frames[0], ...frames[1], ...frames[2].subarray(0, 80)])).toEqual(expected);
    expect([...frames[2].subarray(80)].every((byte) => byte === 0xff)).toBe(true);
    expect(sink.marks()).toEqual(['cached']);
  });

  it('sends a frame as soon as a streamed chunk completes one', () => {
    const { sink, audio } = setup();
    audio.push(new Uint8Array(100));
    expect(sink.frames()).toHaveLength(0);
    audio.push(tone(40));
    expect(sink.frames().length).toBeGreaterThan(0);
  });

  it('catches up at once after running dry, as slow speech synthesis would cause', () => {
    const { clock, sink, audio } = setup(200);
    audio.push(tone(100));
    clock.advance(1000);
    const before = sink.frames().length;
    audio.push(tone(300));
    expect(sink.frames().length - before).toBeGreaterThanOrEqual(10);
    expect(audio.playedMs).toBeLessThanOrEqual(audio.sentMs);
  });
});

describe('OutboundAudio pieces and marks', () => {
  it('sends a piece’s mark right after its last frame', () => {
    const { clock, sink, audio } = setup(100);
    audio.push(tone(300));
    audio.endPiece('first');
    audio.push(tone(100));
    audio.endPiece('second');
    expect(sink.marks()).toEqual([]);
    clock.advance(1000);
    const order = sink.sent.map((entry) => (entry.kind === 'mark' ? entry.name : entry.kind));
    const firstMark = order.indexOf('first');
    expect(order.slice(0, firstMark).every((kind) => kind === 'audio')).toBe(true);
    expect(firstMark).toBe(15);
    expect(order.lastIndexOf('second')).toBe(order.length - 1);
    expect(order.filter((kind) => kind === 'audio')).toHaveLength(20);
  });

  it('sends the mark of a piece without audio at once', () => {
    const { sink, audio } = setup();
    audio.endPiece('nothing-to-say');
    expect(sink.marks()).toEqual(['nothing-to-say']);
  });

  it('reports how much of each piece the caller heard', () => {
    const { clock, audio } = setup(200);
    audio.push(tone(400));
    audio.endPiece('one');
    audio.push(tone(600));
    expect(audio.progress()).toEqual([
      { name: 'one', queuedMs: 400, sentMs: 200, heardMs: 0 },
      { name: undefined, queuedMs: 580, sentMs: 0, heardMs: 0 },
    ]);
    clock.advance(300);
    expect(audio.progress()).toEqual([
      { name: 'one', queuedMs: 400, sentMs: 400, heardMs: 300 },
      { name: undefined, queuedMs: 580, sentMs: 100, heardMs: 0 },
    ]);
    clock.advance(200);
    // The first piece is fully heard and forgotten.
    expect(audio.progress()).toEqual([{ name: undefined, queuedMs: 580, sentMs: 300, heardMs: 100 }]);
  });

  it('trusts a mark echo over its own estimate', () => {
    const { clock, sink, audio } = setup(200);
    audio.push(tone(200));
    audio.endPiece('first');
    audio.push(tone(1000));
    clock.advance(200);
    expect(sink.marks()).toEqual(['first']);
    // Twilio started playing 100 ms late, so the echo arrives at 300 ms, not 200.
    clock.advance(100);
    expect(audio.markEchoed('first')).toBe('played');
    expect(audio.playedMs).toBe(200);
    const sentBefore = audio.sentMs;
    clock.advance(20);
    // Still 200 ms ahead of where the caller really is: no catch-up burst.
    expect(audio.sentMs - sentBefore).toBeLessThanOrEqual(20);
    expect(audio.markEchoed('first')).toBe('unknown');
    expect(audio.markEchoed('never-sent')).toBe('unknown');
  });
});

describe('OutboundAudio clear (barge-in)', () => {
  it('drops the queue, tells Twilio to clear and reports what was heard', () => {
    const { clock, sink, audio } = setup(200);
    audio.push(tone(500));
    audio.endPiece('one');
    audio.push(tone(1000));
    audio.endPiece('two');
    clock.advance(600);
    expect(sink.marks()).toEqual(['one']);

    const result = audio.clear();
    expect(result.droppedMs).toBe(1500 - 800);
    expect(result.unplayedMs).toBe(200);
    expect(result.pieces).toEqual([{ name: 'two', queuedMs: 1000, sentMs: 300, heardMs: 100 }]);
    expect(sink.sent.at(-1)?.kind).toBe('clear');
    expect(audio.queuedMs).toBe(0);
    expect(audio.idle).toBe(true);

    clock.advance(2000);
    expect(sink.marks()).toEqual(['one']);
    expect(sink.frames()).toHaveLength(40);
  });

  it('knows the marks Twilio echoes because of a clear', () => {
    const { clock, audio } = setup(300);
    audio.push(tone(100));
    audio.endPiece('short');
    clock.advance(10);
    audio.clear();
    expect(audio.markEchoed('short')).toBe('cleared');
    expect(audio.markEchoed('short')).toBe('unknown');
  });

  it('starts cleanly after a clear', () => {
    const { clock, sink, audio } = setup(200);
    audio.push(tone(1000));
    clock.advance(100);
    audio.clear();
    const before = sink.frames().length;
    audio.push(tone(400));
    expect(sink.frames().length - before).toBe(10);
    audio.endPiece('after');
    clock.advance(1000);
    expect(sink.marks()).toEqual(['after']);
    expect(audio.progress()).toEqual([]);
  });

  it('does not send a clear when nothing was ever sent', () => {
    const { sink, audio } = setup();
    expect(audio.clear()).toEqual({ droppedMs: 0, unplayedMs: 0, pieces: [] });
    expect(sink.sent).toEqual([]);
  });

  it('stops for good on close', () => {
    const { clock, sink, audio } = setup();
    audio.push(tone(1000));
    audio.close();
    const count = sink.sent.length;
    clock.advance(2000);
    audio.push(tone(100));
    audio.endPiece('late');
    expect(sink.sent).toHaveLength(count);
    expect(clock.timers.size).toBe(0);
  });
});

describe('OutboundAudio on the real clock', () => {
  it('sends the first frame of a chunk within 2 ms', () => {
    const delays: number[] = [];
    let arrived = 0;
    let waiting = false;
    const audio = new OutboundAudio({
      sink: {
        sendAudio: () => {
          if (waiting) delays.push(performance.now() - arrived);
          waiting = false;
        },
        sendMark: () => {},
        sendClear: () => {},
      },
    });
    // A second of speech in one network chunk, the worst case for conversion before the first frame.
    const chunk = tone(1000);
    for (let trial = 0; trial < 7; trial++) {
      waiting = true;
      arrived = performance.now();
      audio.push(chunk);
      audio.clear();
    }
    audio.close();
    // The median, so one garbage collection on a busy test machine does not decide it.
    expect(delays.sort((a, b) => a - b)[3]).toBeLessThan(2);
  });

  it('keeps to a 20 ms beat, each frame within 20 ms of its schedule', async () => {
    const sendTimes: number[] = [];
    const audio = new OutboundAudio({ sink: { sendAudio: () => sendTimes.push(performance.now()), sendMark: () => {}, sendClear: () => {} }, leadMs: 100 });
    audio.push(tone(600));
    await new Promise((resolve) => setTimeout(resolve, 600));
    audio.close();
    const start = sendTimes[0];
    const lateness = sendTimes.map((at, n) => at - (start + Math.max(0, n * 20 - 100)));
    expect(sendTimes.length).toBeGreaterThanOrEqual(28);
    expect(Math.max(...lateness)).toBeLessThan(20);
  });
});

import { describe, expect, it } from 'vitest';
import { PendingAudio, type PendingReply } from '../audio/pending-audio.js';
import { bistro } from '../testing/test-profiles.js';
import type { CallRepository, SegmentRow } from '../storage/call-repository.js';
import { ReplyWriter } from './reply-writer.js';
import type { RenderedSpeech, SpeechRenderer } from './speech-renderer.js';
import { TurnProgress } from './turn-progress.js';

/** A renderer whose syntheses finish (or fail) when the test says so. */
function controlledRenderer() {
  const pendingAudio = new PendingAudio();
  const syntheses = new Map<string, { finish(): void; fail(): void; reserved?: PendingReply }>();
  const renderer = {
    synthesizes: () => true,
    reserveReply: () => pendingAudio.reserve(),
    renderPhrase: async (text: string): Promise<RenderedSpeech> => ({ kind: 'audio', audioId: `phrase-${text}`, filename: `phrase-${text}.wav` }),
    renderReply: (text: string, _profile: unknown, _owner: unknown, _signal: unknown, reserved?: PendingReply) =>
      new Promise<RenderedSpeech>((resolve, reject) => {
        syntheses.set(text, {
          reserved,
          finish: () => {
            reserved?.ready(new Uint8Array([1]));
            reserved?.stored();
            resolve({ kind: 'audio', audioId: reserved!.filename.slice(0, -4), filename: reserved!.filename });
          },
          fail: () => {
            reserved?.failed();
            reject(new Error('speech failed'));
          },
        });
      }),
  };
  return { renderer: renderer as unknown as SpeechRenderer, syntheses, pendingAudio };
}

function writerWith(renderer: SpeechRenderer, failingSeq?: number) {
  const stored: Array<{ seq: number; text: string; audioId: string | null }> = [];
  const published: SegmentRow[] = [];
  const repository = {
    addSegment: async (_turnId: number, seq: number, text: string, audioId: string | null) => {
      if (seq === failingSeq) throw new Error('database unavailable');
      stored.push({ seq, text, audioId });
      return new Date();
    },
  } as unknown as CallRepository;
  const errors: string[] = [];
  const writer = new ReplyWriter(
    {
      repository,
      renderer,
      progress: new TurnProgress(),
      pipelined: true,
      onRenderError: (error) => errors.push((error as Error).message),
      onSegmentStored: (segment) => published.push(segment),
    },
    { callId: 'CA1', turnId: 7 },
    bistro,
    new AbortController().signal,
  );
  return { writer, stored, published, errors };
}

const tick = () => new Promise((resolve) => setTimeout(resolve, 0));
const first = 'Certainly, we have a table free.';
const second = 'It is by the window, with a view of the square and the fountain in the middle of it.';
const third = 'Shall I book it for you now, under your name, for tonight at eight o\'clock sharp?';

describe('ReplyWriter', () => {
  it('gives each piece its URL as soon as its text is complete, without waiting for the audio before it', async () => {
    const { renderer, syntheses } = controlledRenderer();
    const { writer, stored, published } = writerWith(renderer);
    writer.append(`${first} ${second} ${third}`);
    writer.flushText();
    await tick();
    // All three are playable already, in order, under names that are pending; nothing is stored yet.
    expect(published.map((segment) => [segment.seq, segment.text])).toEqual([[0, first], [1, second], [2, third]]);
    expect(stored).toEqual([]);
    syntheses.get(third)!.finish();
    syntheses.get(second)!.finish();
    await tick();
    // Stored in spoken order: the third waits for the first.
    expect(stored).toEqual([]);
    syntheses.get(first)!.finish();
    const outcome = await writer.finish();
    expect(stored.map((row) => row.seq)).toEqual([0, 1, 2]);
    expect(stored.every((row) => row.audioId !== null)).toBe(true);
    expect(outcome.spokenText).toBe(`${first} ${second} ${third}`);
  });

  it('follows a piece whose synthesis failed after its URL went out with its words, as the next piece not yet given out', async () => {
    const { renderer, syntheses } = controlledRenderer();
    const { writer, stored, errors } = writerWith(renderer);
    writer.append(`${first} ${second} ${third}`);
    writer.flushText();
    await tick();
    syntheses.get(first)!.finish();
    syntheses.get(second)!.fail();
    syntheses.get(third)!.finish();
    const outcome = await writer.finish();
    expect(errors).toEqual(['speech failed']);
    expect(stored.sort((a, b) => a.seq - b.seq).map((row) => [row.seq, row.text, row.audioId === null])).toEqual([
      [0, first, false],
      [1, '', true],
      [2, third, false],
      [3, second, true],
    ]);
    // What was heard, in the order it was heard.
    expect(outcome.spokenText).toBe(`${first} ${third} ${second}`);
  });

  it('gives a fixed phrase its place only once every piece before it is stored', async () => {
    const { renderer, syntheses } = controlledRenderer();
    const { writer, stored, published } = writerWith(renderer);
    writer.append(first);
    writer.say('Goodbye!');
    writer.append(second);
    writer.flushText();
    await tick();
    expect(published.map((segment) => segment.text)).toEqual([first]);
    syntheses.get(first)!.finish();
    await tick();
    await tick();
    expect(published.map((segment) => [segment.seq, segment.text])).toEqual([[0, first], [0, first], [1, 'Goodbye!'], [2, second]]);
    syntheses.get(second)!.finish();
    await writer.finish();
    expect(stored.map((row) => [row.seq, row.text])).toEqual([[0, first], [1, 'Goodbye!'], [2, second]]);
  });

  it('fails the reply when a piece cannot be stored, and leaves no promise rejected unseen', async () => {
    const { renderer, syntheses } = controlledRenderer();
    const { writer, stored } = writerWith(renderer, 1);
    writer.append(first);
    writer.say('Goodbye!');
    writer.append(second);
    writer.flushText();
    await tick();
    syntheses.get(first)!.finish();
    await expect(writer.finish()).rejects.toThrow('database unavailable');
    expect(stored.map((row) => row.seq)).toEqual([0]);
  });
});

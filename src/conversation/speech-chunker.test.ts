import { describe, expect, it } from 'vitest';
import { SpeechChunker } from './speech-chunker.js';

function chunkAll(text: string, step: number, chunker = new SpeechChunker()): string[] {
  const pieces: string[] = [];
  for (let index = 0; index < text.length; index += step) pieces.push(...chunker.push(text.slice(index, index + step)));
  pieces.push(...chunker.flush());
  return pieces;
}

describe('SpeechChunker', () => {
  it('cuts the first piece at a clause and later pieces at sentence ends', () => {
    const text = 'Sure, I can book that table for you tonight, no problem at all. We open at noon and close at half past ten. Anything else?';
    const pieces = chunkAll(text, 3);
    expect(pieces[0]).toBe('Sure, I can book that table for you tonight,');
    expect(pieces.join(' ')).toBe(text);
    expect(pieces.at(-1)).toBe('Anything else?');
  });

  it('gives the same pieces whatever the streaming granularity', () => {
    const text = 'Hello there! Thank you for calling. How many people, and at what time? We have tables free.';
    expect(chunkAll(text, 1)).toEqual(chunkAll(text, 7));
    expect(chunkAll(text, 1)).toEqual(chunkAll(text, 1000));
  });

  it('does not wait for a sentence end forever', () => {
    const text = 'word '.repeat(200);
    const pieces = chunkAll(text, 5);
    expect(pieces.length).toBeGreaterThan(2);
    for (const piece of pieces) expect(piece.length).toBeLessThanOrEqual(300);
    expect(pieces.join(' ')).toBe(text.trim());
  });

  it('keeps a short reply whole', () => {
    expect(chunkAll('Goodbye!', 2)).toEqual(['Goodbye!']);
    expect(chunkAll('   ', 2)).toEqual([]);
  });
});

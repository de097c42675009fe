import { describe, expect, it } from 'vitest';
import { createRingBuffer, RingReader, RingWriter, type RingMessage } from './message-ring.js';

const bytes = (length: number, seed: number) => Uint8Array.from({ length }, (_, index) => (seed * 31 + index) & 0xff);
const drained = (reader: RingReader) => {
  const out: Array<{ tag: number; kind: number; bytes: number[] }> = [];
  reader.drain((message: RingMessage) => out.push({ tag: message.tag, kind: message.kind, bytes: [...message.bytes] }));
  return out;
};

describe('message ring', () => {
  it('hands messages over in order, with their bytes, any length including 0', () => {
    const buffer = createRingBuffer(1024);
    const writer = new RingWriter(buffer);
    const reader = new RingReader(buffer);
    expect(writer.write(7, 0, bytes(160, 1))).toBe(true);
    expect(writer.write(8, 2, new Uint8Array(0))).toBe(true);
    expect(writer.write(9, 1, bytes(3, 2))).toBe(true);
    expect(drained(reader)).toEqual([
      { tag: 7, kind: 0, bytes: [...bytes(160, 1)] },
      { tag: 8, kind: 2, bytes: [] },
      { tag: 9, kind: 1, bytes: [...bytes(3, 2)] },
    ]);
    expect(drained(reader)).toEqual([]);
  });

  it('wraps around the end for thousands of messages of varied sizes, losing and reordering none', () => {
    const buffer = createRingBuffer(1000);
    const writer = new RingWriter(buffer);
    const reader = new RingReader(buffer);
    const expected: number[] = [];
    const seen: number[] = [];
    let tag = 0;
    for (let round = 0; round < 3000; round++) {
      // A few writes, then a read, so the offsets land everywhere on the ring.
      for (let write = 0; write < (round % 4) + 1; write++) {
        const length = (tag * 37) % 170;
        if (!writer.write(tag, 0, bytes(length, tag))) break;
        expected.push(tag++);
      }
      reader.drain((message) => {
        expect([...message.bytes]).toEqual([...bytes((message.tag * 37) % 170, message.tag)]);
        seen.push(message.tag);
      });
    }
    expect(seen).toEqual(expected);
    expect(seen.length).toBeGreaterThan(5000);
  });

  it('refuses a message when full, and takes messages again once the reader catches up', () => {
    const buffer = createRingBuffer(600);
    const writer = new RingWriter(buffer);
    const reader = new RingReader(buffer);
    let written = 0;
    while (writer.write(written, 0, bytes(160, written))) written++;
    // 172 bytes a message in 600: three fit, the fourth would fill the ring completely.
    expect(written).toBe(3);
    expect(drained(reader).map((message) => message.tag)).toEqual([0, 1, 2]);
    expect(writer.write(3, 0, bytes(160, 3))).toBe(true);
    expect(drained(reader).map((message) => message.tag)).toEqual([3]);
  });

  it('polls while messages flow, and once quiet sleeps until the writer wakes it', async () => {
    const buffer = createRingBuffer(4096);
    const writer = new RingWriter(buffer);
    const reader = new RingReader(buffer);
    // Messages already there: no wait at all.
    writer.write(1, 0, bytes(10, 1));
    await reader.waitForMessages(5, 50);
    expect(drained(reader)).toHaveLength(1);
    // None there, recently busy: back after the poll interval with nothing new.
    await reader.waitForMessages(5, 50);
    expect(drained(reader)).toEqual([]);
    // Quiet for longer than `sleepAfterMs`: sleeps, and only a notify (not a timer) ends the wait.
    await new Promise((resolve) => setTimeout(resolve, 60));
    let woken = false;
    const sleeping = reader.waitForMessages(5, 50).then(() => (woken = true));
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(woken).toBe(false);
    writer.write(2, 0, bytes(3, 2));
    writer.notify();
    await sleeping;
    expect(drained(reader).map((message) => message.tag)).toEqual([2]);
  });
});

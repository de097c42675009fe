// A single-producer, single-consumer ring of messages in shared memory: how
// the event loop hands caller audio to a turn thread. Posting a message to a
// worker costs tens of microseconds under load (it is serialized, queued
// under a lock and wakes the thread's loop); writing into shared memory costs
// a copy, and the reader is woken only when it sleeps.
//
// Waking a sleeping thread is a system call and costs as much as posting:
// so the reader polls every few milliseconds while messages flow, and only
// when none has come for a while does it sleep until the writer wakes it.
//
// Layout: three Int32 slots (write and read offsets into the data, in
// bytes; whether the reader sleeps) then the data. A record is a 12-byte header (tag, kind, length)
// and its bytes, padded to 4; a record that does not fit before the end
// starts over at offset 0 (a header of kind `wrap`, or fewer than 12 bytes
// left, says so).

const writeSlot = 0;
const readSlot = 1;
const sleepingSlot = 2;
const counterBytes = 12;
const headerBytes = 12;
const wrapKind = -1;

/** `Atomics.waitAsync` (Node 16 and later), which this project's TypeScript library does not yet declare. */
interface AtomicsWithWaitAsync {
  waitAsync(array: Int32Array, index: number, value: number, timeoutMs?: number): { async: false; value: 'not-equal' | 'timed-out' } | { async: true; value: Promise<'ok' | 'timed-out'> };
}

/** One message: a number naming its sender (a call), a kind, and bytes. */
export interface RingMessage {
  tag: number;
  kind: number;
  bytes: Uint8Array;
}

/** The ring's memory as both sides see it. */
abstract class RingView {
  protected readonly counters: Int32Array;
  protected readonly data: Uint8Array;
  protected readonly words: Int32Array;
  protected readonly capacity: number;

  constructor(buffer: SharedArrayBuffer) {
    this.capacity = buffer.byteLength - counterBytes;
    if (this.capacity <= headerBytes || this.capacity % 4 !== 0) throw new RangeError(`a message ring needs ${counterBytes} + a multiple of 4 bytes`);
    this.counters = new Int32Array(buffer, 0, 3);
    this.data = new Uint8Array(buffer, counterBytes, this.capacity);
    this.words = new Int32Array(buffer, counterBytes, this.capacity / 4);
  }
}

/** Memory for a ring holding up to about `capacity` bytes of messages. */
export function createRingBuffer(capacity: number): SharedArrayBuffer {
  return new SharedArrayBuffer(counterBytes + Math.ceil(capacity / 4) * 4);
}

/** The producing side. Never waits: a full ring refuses the message. */
export class RingWriter extends RingView {
  /** Adds a message; `false` when there is no room for it (the reader is behind). */
  write(tag: number, kind: number, bytes: Uint8Array): boolean {
    const size = headerBytes + Math.ceil(bytes.length / 4) * 4;
    let write = Atomics.load(this.counters, writeSlot);
    const read = Atomics.load(this.counters, readSlot);
    // One byte-quad always stays free, so that write === read means empty.
    if (read > write) {
      if (read - write - 4 < size) return false;
    } else if (this.capacity - write < size) {
      // Does not fit before the end: start over at 0, if the reader has moved on far enough.
      if (read - 4 < size) return false;
      if (this.capacity - write >= headerBytes) this.words[write / 4 + 1] = wrapKind;
      write = 0;
    } else if (this.capacity - write + read - 4 < size) {
      return false;
    }
    const at = write / 4;
    this.words[at] = tag;
    this.words[at + 1] = kind;
    this.words[at + 2] = bytes.length;
    this.data.set(bytes, write + headerBytes);
    const next = write + size;
    Atomics.store(this.counters, writeSlot, next === this.capacity ? 0 : next);
    return true;
  }

  /** Wakes the reader if it has gone to sleep; a polling reader finds the messages on its own. */
  notify(): void {
    if (Atomics.load(this.counters, sleepingSlot) === 1) Atomics.notify(this.counters, writeSlot);
  }
}

/** The consuming side. */
export class RingReader extends RingView {
  private quietSince = performance.now();

  /**
   * Hands every message written so far to `take`, in order. The bytes are a
   * view of the ring, valid only during the call: copy what must outlive it.
   */
  drain(take: (message: RingMessage) => void): number {
    let read = Atomics.load(this.counters, readSlot);
    let count = 0;
    for (;;) {
      const write = Atomics.load(this.counters, writeSlot);
      if (read === write) break;
      if (this.capacity - read < headerBytes || this.words[read / 4 + 1] === wrapKind) {
        read = 0;
        continue;
      }
      const at = read / 4;
      const length = this.words[at + 2];
      take({ tag: this.words[at], kind: this.words[at + 1], bytes: this.data.subarray(read + headerBytes, read + headerBytes + length) });
      count++;
      read += headerBytes + Math.ceil(length / 4) * 4;
      if (read === this.capacity) read = 0;
      Atomics.store(this.counters, readSlot, read);
    }
    return count;
  }

  /**
   * Resolves when there may be new messages: after `pollMs` while messages
   * are flowing, or, once none has come for `sleepAfterMs`, when the writer
   * wakes it (at once if there already are some).
   */
  async waitForMessages(pollMs: number, sleepAfterMs: number): Promise<void> {
    const read = Atomics.load(this.counters, readSlot);
    const seen = Atomics.load(this.counters, writeSlot);
    if (seen !== read) {
      this.quietSince = performance.now();
      return;
    }
    const waits = Atomics as unknown as AtomicsWithWaitAsync;
    if (performance.now() - this.quietSince < sleepAfterMs) {
      const waiting = waits.waitAsync(this.counters, writeSlot, seen, pollMs);
      if (waiting.async) await waiting.value;
      return;
    }
    Atomics.store(this.counters, sleepingSlot, 1);
    // Written between the check above and the flag: the writer did not see the flag, so do not sleep.
    if (Atomics.load(this.counters, writeSlot) === seen) {
      const waiting = waits.waitAsync(this.counters, writeSlot, seen);
      if (waiting.async) await waiting.value;
    }
    Atomics.store(this.counters, sleepingSlot, 0);
    this.quietSince = performance.now();
  }
}

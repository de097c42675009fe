import { Readable } from 'node:stream';
import type { AudioStore, PutOptions, StoredAudio } from './audio-store.js';

export interface RecentAudioOptions {
  /** Most bytes held at once; the oldest files leave first. */
  maxBytes: number;
  /** How long a file stays after it was written. */
  keepMs: number;
  now?: () => number;
}

interface Recent {
  info: StoredAudio;
  bytes: Uint8Array;
  storedAt: number;
}

/**
 * Keeps the files written in the last moments in memory, in front of another
 * store. Twilio fetches a reply's audio within milliseconds to seconds of it
 * being written, so those fetches are answered without touching the disk (or
 * a bucket, a network round trip away). Every write and delete still goes to
 * the store behind, which stays the one source of truth: a file only cached
 * here is never reported, and a deleted one leaves the cache first.
 */
export class RecentAudioStore implements AudioStore {
  private readonly recent = new Map<string, Recent>();
  private bytesHeld = 0;
  private readonly now: () => number;

  constructor(
    /** The store every file is written to. */
    readonly store: AudioStore,
    private readonly options: RecentAudioOptions,
  ) {
    this.now = options.now ?? Date.now;
  }

  async put(filename: string, bytes: Uint8Array, contentType: string, options?: PutOptions): Promise<StoredAudio> {
    const info = await this.store.put(filename, bytes, contentType, options);
    this.forget(filename);
    if (bytes.length <= this.options.maxBytes) {
      this.recent.set(filename, { info, bytes, storedAt: this.now() });
      this.bytesHeld += bytes.length;
      this.trim();
    }
    return info;
  }

  async get(filename: string): Promise<{ info: StoredAudio; body: NodeJS.ReadableStream } | undefined> {
    this.trim();
    const recent = this.recent.get(filename);
    if (recent) return { info: recent.info, body: Readable.from([Buffer.from(recent.bytes.buffer, recent.bytes.byteOffset, recent.bytes.byteLength)]) };
    return this.store.get(filename);
  }

  async has(filename: string): Promise<boolean> {
    this.trim();
    return this.recent.has(filename) || this.store.has(filename);
  }

  async delete(filename: string): Promise<void> {
    this.forget(filename);
    await this.store.delete(filename);
  }

  /** Files and bytes held in memory now. */
  get held(): { files: number; bytes: number } {
    return { files: this.recent.size, bytes: this.bytesHeld };
  }

  private forget(filename: string): void {
    const recent = this.recent.get(filename);
    if (!recent) return;
    this.recent.delete(filename);
    this.bytesHeld -= recent.bytes.length;
  }

  /** Drops what is too old, then the oldest until under the byte limit (a Map keeps insertion order). */
  private trim(): void {
    const oldest = this.now() - this.options.keepMs;
    for (const [filename, recent] of this.recent) {
      if (recent.storedAt >= oldest && this.bytesHeld <= this.options.maxBytes) break;
      this.forget(filename);
    }
  }
}

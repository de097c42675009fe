import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { AudioStore } from './audio-store.js';
import { refusingAudioStore, runAudioStoreContract } from './audio-store.contract.js';
import { DiskAudioStore, newAudioName } from './disk-audio-store.js';
import { RecentAudioStore } from './recent-audio-store.js';

runAudioStoreContract('RecentAudioStore over DiskAudioStore', async () => {
  const root = await mkdtemp(join(tmpdir(), 'callme-recent-audio-'));
  return {
    store: new RecentAudioStore(new DiskAudioStore(join(root, 'audio')), { maxBytes: 1024 * 1024, keepMs: 60_000 }),
    cleanup: () => rm(root, { recursive: true, force: true }),
  };
});

/** A disk store that counts the reads reaching it. */
async function countingDisk() {
  const root = await mkdtemp(join(tmpdir(), 'callme-recent-audio-'));
  const disk = new DiskAudioStore(join(root, 'audio'));
  const reads = { get: 0 };
  const store: AudioStore = {
    put: (filename, bytes, type) => disk.put(filename, bytes, type),
    get: (filename) => {
      reads.get += 1;
      return disk.get(filename);
    },
    has: (filename) => disk.has(filename),
    delete: (filename) => disk.delete(filename),
  };
  return { store, reads, cleanup: () => rm(root, { recursive: true, force: true }) };
}

async function text(file: { body: NodeJS.ReadableStream } | undefined): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of file!.body) chunks.push(Buffer.from(chunk as Buffer));
  return Buffer.concat(chunks).toString('utf8');
}

describe('RecentAudioStore', () => {
  it('serves a file it just wrote from memory, and the store behind once it has expired', async () => {
    const { store: behind, reads, cleanup } = await countingDisk();
    let now = 0;
    const store = new RecentAudioStore(behind, { maxBytes: 1024, keepMs: 60_000, now: () => now });
    try {
      const name = newAudioName('wav');
      await store.put(name, Buffer.from('fresh audio'), 'audio/wav');
      const fresh = await store.get(name);
      expect(fresh?.info).toEqual({ filename: name, contentType: 'audio/wav', sizeBytes: 11 });
      expect(await text(fresh)).toBe('fresh audio');
      expect(reads.get).toBe(0);
      now = 60_001;
      expect(await text(await store.get(name))).toBe('fresh audio');
      expect(reads.get).toBe(1);
      expect(store.held).toEqual({ files: 0, bytes: 0 });
    } finally {
      await cleanup();
    }
  });

  it('holds at most maxBytes, dropping the oldest files first, and never a file larger than that', async () => {
    const { store: behind, reads, cleanup } = await countingDisk();
    const store = new RecentAudioStore(behind, { maxBytes: 10, keepMs: 60_000 });
    try {
      const [a, b, c, big] = [newAudioName('wav'), newAudioName('wav'), newAudioName('wav'), newAudioName('wav')];
      await store.put(a, Buffer.from('aaaa'), 'audio/wav');
      await store.put(b, Buffer.from('bbbb'), 'audio/wav');
      await store.put(c, Buffer.from('cccc'), 'audio/wav');
      expect(store.held).toEqual({ files: 2, bytes: 8 });
      await store.put(big, Buffer.from('x'.repeat(11)), 'audio/wav');
      expect(store.held).toEqual({ files: 2, bytes: 8 });
      expect(await text(await store.get(c))).toBe('cccc');
      expect(reads.get).toBe(0);
      // Dropped from memory, still in the store.
      expect(await text(await store.get(a))).toBe('aaaa');
      expect(await text(await store.get(big))).toBe('x'.repeat(11));
      expect(reads.get).toBe(2);
    } finally {
      await cleanup();
    }
  });

  it('forgets a deleted file at once', async () => {
    const { store: behind, cleanup } = await countingDisk();
    const store = new RecentAudioStore(behind, { maxBytes: 1024, keepMs: 60_000 });
    try {
      const name = newAudioName('wav');
      await store.put(name, Buffer.from('gone soon'), 'audio/wav');
      await store.delete(name);
      expect(await store.get(name)).toBeUndefined();
      expect(await store.has(name)).toBe(false);
      expect(store.held).toEqual({ files: 0, bytes: 0 });
    } finally {
      await cleanup();
    }
  });

  it('keeps nothing in memory when the store behind refuses the write', async () => {
    const store = new RecentAudioStore(refusingAudioStore('disk full'), { maxBytes: 1024, keepMs: 60_000 });
    const name = newAudioName('wav');
    await expect(store.put(name, Buffer.from('lost'), 'audio/wav')).rejects.toThrow('disk full');
    expect(await store.get(name)).toBeUndefined();
  });
});

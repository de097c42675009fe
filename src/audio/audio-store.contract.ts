import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type AudioStore, InvalidAudioNameError } from './audio-store.js';
import { newAudioName } from './disk-audio-store.js';

/** Names every store must refuse without touching storage. */
export const unsafeAudioNames: readonly string[] = [
  '',
  '../abcdefgh.wav',
  '..\\abcdefgh.wav',
  'a/abcdefgh.wav',
  'abcdefgh/../../abcdefgh.wav',
  '..%2fabcdefgh.wav',
  '%2e%2e%2fabcdefgh.wav',
  '/tmp/abcdefgh.wav',
  '/etc/passwd',
  'C:\\abcdefgh.wav',
  'abcdefgh\0.wav',
  'abcdefgh.wav\0',
  'abcdefgh.wav\n',
  ' abcdefgh.wav',
  '.abcdefgh.wav',
  'abcdefgh.wav.type',
  'abcdefgh.WAV',
  'abcdefgh.exe',
  'abcdefgh',
  'abc.wav',
  'ａｂｃｄｅｆｇｈ.wav',
  `${'a'.repeat(129)}.wav`,
  `${'a'.repeat(5000)}.wav`,
];

/** A store whose every write fails with `message`, as a full disk's would; it holds nothing. */
export function refusingAudioStore(message: string): AudioStore {
  return {
    put: async () => {
      throw new Error(message);
    },
    get: async () => undefined,
    has: async () => false,
    delete: async () => {},
  };
}

async function readAll(body: NodeJS.ReadableStream): Promise<Uint8Array> {
  const chunks: Buffer[] = [];
  for await (const chunk of body) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk));
  return new Uint8Array(Buffer.concat(chunks));
}

/** Byte-wise equality; `toEqual` on large typed arrays is slow enough to time out. */
function sameBytes(actual: Uint8Array | undefined, expected: Uint8Array): boolean {
  return actual !== undefined && Buffer.from(actual.buffer, actual.byteOffset, actual.byteLength).equals(expected);
}

function everyByte(length: number): Uint8Array {
  return Uint8Array.from({ length }, (_, i) => (i * 7 + 3) % 256);
}

/**
 * The behaviour every `AudioStore` promises. Run it once per implementation
 * (disk, S3-compatible, fake) with a factory that gives a fresh, empty store.
 */
export function runAudioStoreContract(
  name: string,
  create: () => Promise<{ store: AudioStore; cleanup(): Promise<void> }>,
  options: {
    /**
     * False skips the reader-racing-a-replacement check, for an emulated
     * backend that cannot honour it (s3rver rewrites an object's file in
     * place; S3 itself never serves part of an object).
     */
    concurrentReplace?: boolean;
  } = {},
): void {
  describe(`AudioStore contract: ${name}`, () => {
    let store: AudioStore;
    let cleanup: () => Promise<void>;

    beforeEach(async () => {
      ({ store, cleanup } = await create());
    });

    afterEach(async () => {
      await cleanup();
    });

    it('returns what it stored: bytes, content type and size', async () => {
      const filename = newAudioName('wav');
      const bytes = everyByte(70_001);
      expect(await store.put(filename, bytes, 'audio/wav')).toEqual({ filename, contentType: 'audio/wav', sizeBytes: 70_001 });
      const found = await store.get(filename);
      expect(found?.info).toEqual({ filename, contentType: 'audio/wav', sizeBytes: 70_001 });
      expect(sameBytes(await readAll(found!.body), bytes)).toBe(true);
    });

    it('writes a new name in one go, with any content type', async () => {
      const filename = newAudioName('wav');
      const bytes = everyByte(20_000);
      expect(await store.put(filename, bytes, 'audio/wav', { newName: true })).toEqual({ filename, contentType: 'audio/wav', sizeBytes: 20_000 });
      const found = await store.get(filename);
      expect(found?.info).toEqual({ filename, contentType: 'audio/wav', sizeBytes: 20_000 });
      expect(sameBytes(await readAll(found!.body), bytes)).toBe(true);
      const opus = newAudioName('opus');
      await store.put(opus, everyByte(10), 'audio/ogg; codecs=opus', { newName: true });
      const typed = await store.get(opus);
      expect(typed?.info.contentType).toBe('audio/ogg; codecs=opus');
      await readAll(typed!.body);
    });

    it('keeps the content type it was given, not one guessed from the name', async () => {
      const filename = newAudioName('opus');
      await store.put(filename, everyByte(10), 'audio/ogg; codecs=opus');
      const found = await store.get(filename);
      expect(found?.info.contentType).toBe('audio/ogg; codecs=opus');
      await readAll(found!.body);
    });

    it('stores an empty file', async () => {
      const filename = newAudioName('pcm');
      await store.put(filename, new Uint8Array(0), 'audio/pcm');
      const found = await store.get(filename);
      expect(found?.info.sizeBytes).toBe(0);
      expect(await readAll(found!.body)).toEqual(new Uint8Array(0));
    });

    it('replaces a file put twice under one name', async () => {
      const filename = newAudioName('mp3');
      await store.put(filename, everyByte(1000), 'audio/wav');
      await store.put(filename, Uint8Array.of(1, 2, 3), 'audio/mpeg');
      const found = await store.get(filename);
      expect(found?.info).toEqual({ filename, contentType: 'audio/mpeg', sizeBytes: 3 });
      expect(await readAll(found!.body)).toEqual(Uint8Array.of(1, 2, 3));
    });

    it('answers has() before, after put and after delete', async () => {
      const filename = newAudioName('wav');
      expect(await store.has(filename)).toBe(false);
      await store.put(filename, everyByte(10), 'audio/wav');
      expect(await store.has(filename)).toBe(true);
      await store.delete(filename);
      expect(await store.has(filename)).toBe(false);
      expect(await store.get(filename)).toBeUndefined();
    });

    it('gives undefined for a missing file', async () => {
      expect(await store.get(newAudioName('wav'))).toBeUndefined();
    });

    it('deletes idempotently, missing files included', async () => {
      const filename = newAudioName('flac');
      await store.delete(filename);
      await store.put(filename, everyByte(10), 'audio/flac');
      await store.delete(filename);
      await store.delete(filename);
      expect(await store.has(filename)).toBe(false);
    });

    it('deletes only the named file', async () => {
      const [kept, deleted] = [newAudioName('wav'), newAudioName('wav')];
      await store.put(kept, everyByte(10), 'audio/wav');
      await store.put(deleted, everyByte(10), 'audio/wav');
      await store.delete(deleted);
      expect(await store.has(kept)).toBe(true);
    });

    it('accepts every name newAudioName makes, for every extension', async () => {
      for (const extension of ['wav', 'mp3', 'opus', 'ogg', 'aac', 'flac', 'pcm']) {
        const filename = newAudioName(extension);
        await store.put(filename, everyByte(5), 'application/octet-stream');
        expect(await store.has(filename)).toBe(true);
      }
    });

    it.each(unsafeAudioNames.map((unsafe) => [JSON.stringify(unsafe.slice(0, 40)), unsafe]))(
      'rejects the name %s in every method',
      async (_, unsafe) => {
        await expect(store.put(unsafe, everyByte(10), 'audio/wav')).rejects.toThrow(InvalidAudioNameError);
        await expect(store.get(unsafe)).rejects.toThrow(InvalidAudioNameError);
        await expect(store.has(unsafe)).rejects.toThrow(InvalidAudioNameError);
        await expect(store.delete(unsafe)).rejects.toThrow(InvalidAudioNameError);
        // A store that "cleaned" the name instead of rejecting it would have written this.
        expect(await store.has('abcdefgh.wav')).toBe(false);
      },
    );

    it('handles concurrent puts of different names', async () => {
      const files = Array.from({ length: 25 }, (_, i) => ({ filename: newAudioName('wav'), bytes: everyByte(1000 + i * 997) }));
      await Promise.all(files.map(({ filename, bytes }) => store.put(filename, bytes, 'audio/wav')));
      for (const { filename, bytes } of files) {
        const found = await store.get(filename);
        expect(found?.info.sizeBytes).toBe(bytes.length);
        expect(sameBytes(await readAll(found!.body), bytes)).toBe(true);
      }
    });

    it.skipIf(options.concurrentReplace === false)('never shows a reader part of a file, even while it is being replaced', async () => {
      const filename = newAudioName('wav');
      const versions = Array.from({ length: 8 }, (_, i) => new Uint8Array(200_000 + i).fill(i + 1));
      await store.put(filename, versions[0], 'audio/wav');
      const reads = Array.from({ length: 16 }, async () => {
        const found = await store.get(filename);
        return found && (await readAll(found.body));
      });
      const writes = versions.slice(1).map((bytes) => store.put(filename, bytes, 'audio/wav'));
      const [seen] = await Promise.all([Promise.all(reads), Promise.all(writes)]);
      for (const bytes of seen) {
        expect(versions.some((version) => sameBytes(bytes, version)), 'a read matches no version written').toBe(true);
      }
    });
  });
}

import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { InvalidAudioNameError, audioNamePattern } from './audio-store.js';
import { runAudioStoreContract, unsafeAudioNames } from './audio-store.contract.js';
import { DiskAudioStore, contentTypeForExtension, newAudioName } from './disk-audio-store.js';

runAudioStoreContract('DiskAudioStore', async () => {
  const root = await mkdtemp(join(tmpdir(), 'callme-audio-'));
  return {
    store: new DiskAudioStore(join(root, 'audio')),
    cleanup: () => rm(root, { recursive: true, force: true }),
  };
});

/** Every file and directory under `root`, relative to it. */
async function listTree(root: string): Promise<string[]> {
  const entries = await readdir(root, { recursive: true, withFileTypes: true });
  return entries.map((entry) => relative(root, join(entry.parentPath ?? entry.path, entry.name))).sort();
}

describe('DiskAudioStore', () => {
  let root: string;
  let directory: string;
  let store: DiskAudioStore;

  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'callme-audio-'));
    directory = join(root, 'deep', 'audio');
    store = new DiskAudioStore(directory);
  });

  afterEach(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('creates its directory on the first put, and reads fine before that', async () => {
    const filename = newAudioName('wav');
    expect(await store.has(filename)).toBe(false);
    expect(await store.get(filename)).toBeUndefined();
    await store.delete(filename);
    expect(await listTree(root)).toEqual([]);
    await store.put(filename, Uint8Array.of(1), 'audio/wav');
    expect(await store.has(filename)).toBe(true);
  });

  it('leaves no temporary files behind', async () => {
    const filename = newAudioName('wav');
    await store.put(filename, Uint8Array.of(1, 2), 'audio/wav');
    await store.put(filename, Uint8Array.of(3), 'audio/wav');
    expect(await readdir(directory)).toEqual([filename]);
    await store.delete(filename);
    expect(await readdir(directory)).toEqual([]);
  });

  it('writes a new name in place, and leaves a file under a name it was wrongly told is new', async () => {
    const filename = newAudioName('wav');
    await store.put(filename, Uint8Array.of(1, 2, 3), 'audio/wav', { newName: true });
    expect(await readdir(directory)).toEqual([filename]);
    await expect(store.put(filename, Uint8Array.of(9), 'audio/wav', { newName: true })).rejects.toMatchObject({ code: 'EEXIST' });
    const kept = await store.get(filename);
    expect(kept?.info.sizeBytes).toBe(3);
    kept?.body.resume();
  });

  it('writes a type file only for a type the extension does not imply, and removes it when a file replaces it', async () => {
    const filename = newAudioName('wav');
    await store.put(filename, Uint8Array.of(1), 'audio/x-wav');
    expect(await readdir(directory)).toEqual([filename, `${filename}.type`].sort());
    expect((await store.get(filename))?.info.contentType).toBe('audio/x-wav');
    await store.put(filename, Uint8Array.of(2), 'audio/wav');
    expect(await readdir(directory)).toEqual([filename]);
    expect((await store.get(filename))?.info.contentType).toBe('audio/wav');
  });

  it('writes nothing outside its directory when given unsafe names', async () => {
    await store.put(newAudioName('wav'), Uint8Array.of(1), 'audio/wav');
    const before = await listTree(root);
    for (const unsafe of unsafeAudioNames) {
      await expect(store.put(unsafe, Uint8Array.of(6, 6, 6), 'audio/wav')).rejects.toThrow(InvalidAudioNameError);
      await expect(store.delete(unsafe)).rejects.toThrow(InvalidAudioNameError);
    }
    expect(await listTree(root)).toEqual(before);
    expect(await readdir(tmpdir())).not.toContain('abcdefgh.wav');
  });

  it('derives the content type from the extension for audio placed by hand', async () => {
    await store.put(newAudioName('wav'), Uint8Array.of(1), 'audio/wav');
    await writeFile(join(directory, 'handmade-01.mp3'), Uint8Array.of(1, 2, 3));
    const found = await store.get('handmade-01.mp3');
    expect(found?.info).toEqual({ filename: 'handmade-01.mp3', contentType: 'audio/mpeg', sizeBytes: 3 });
    found?.body.resume();
  });
});

describe('newAudioName', () => {
  it('makes 22-character base64url stems that the stores accept', () => {
    const names = new Set<string>();
    for (let i = 0; i < 1000; i++) {
      const filename = newAudioName('wav');
      expect(filename).toMatch(/^[A-Za-z0-9_-]{22}\.wav$/);
      expect(filename).toMatch(audioNamePattern);
      names.add(filename);
    }
    expect(names.size).toBe(1000);
  });

  it('rejects extensions the stores would not accept', () => {
    for (const extension of ['exe', 'WAV', '', 'wav/../x', 'wav\0']) {
      expect(() => newAudioName(extension)).toThrow(InvalidAudioNameError);
    }
  });
});

describe('contentTypeForExtension', () => {
  it('covers exactly the extensions audio names may have', () => {
    const extensions = /\(([a-z0-9|]+)\)\$\/?$/.exec(audioNamePattern.source)?.[1].split('|');
    expect(Object.keys(contentTypeForExtension).sort()).toEqual(extensions?.sort());
  });
});

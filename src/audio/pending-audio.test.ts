import { describe, expect, it } from 'vitest';
import { newAudioName } from './disk-audio-store.js';
import { audioNamePattern } from './audio-store.js';
import { PendingAudio, newReplyAudioName, replyAudioMintedAt } from './pending-audio.js';

describe('PendingAudio', () => {
  it('answers a download waiting on a name the moment its audio is whole, then lets the store serve it', async () => {
    const pending = new PendingAudio();
    const reply = pending.reserve();
    const waiting = pending.get(reply.filename);
    expect(waiting).toBeDefined();
    let answered: Uint8Array | undefined;
    void waiting!.then((audio) => (answered = audio));
    await Promise.resolve();
    expect(answered).toBeUndefined();
    reply.ready(new Uint8Array([1, 2, 3]));
    expect(await waiting).toEqual(new Uint8Array([1, 2, 3]));
    reply.stored();
    expect(pending.get(reply.filename)).toBeUndefined();
    expect(pending.size).toBe(0);
  });

  it('tells waiting and late downloads that a failed name will never have audio', async () => {
    const pending = new PendingAudio();
    const reply = pending.reserve();
    const waiting = pending.get(reply.filename);
    reply.failed();
    expect(await waiting).toBeUndefined();
    expect(await pending.get(reply.filename)).toBeUndefined();
    expect(pending.get('someoneelse.wav')).toBeUndefined();
  });

  it('keeps serving audio that was made but could not be stored', async () => {
    const pending = new PendingAudio();
    const reply = pending.reserve();
    reply.ready(new Uint8Array([9]));
    reply.failed();
    expect(await pending.get(reply.filename)).toEqual(new Uint8Array([9]));
  });
});

describe('reply audio names', () => {
  it('are valid, unguessable audio names that carry the time they were made', () => {
    const at = Date.UTC(2026, 11, 7, 10, 30, 0, 123);
    const names = new Set(Array.from({ length: 100 }, () => newReplyAudioName(at)));
    expect(names.size).toBe(100);
    for (const name of names) {
      expect(name).toMatch(audioNamePattern);
      expect(replyAudioMintedAt(name)).toBe(at);
    }
  });

  it('tell no time for other audio names', () => {
    expect(replyAudioMintedAt(newAudioName('wav'))).toBeUndefined();
    expect(replyAudioMintedAt(newAudioName('mp3'))).toBeUndefined();
    expect(replyAudioMintedAt('short.wav')).toBeUndefined();
  });
});

import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runAudioStoreContract } from './audio-store.contract.js';
import { newAudioName } from './disk-audio-store.js';
import { S3AudioStore } from './s3-audio-store.js';
import { s3TestCredentials, startS3TestServer, type S3TestServer } from '../testing/s3-test-server.js';

let s3: S3TestServer;
beforeAll(async () => {
  s3 = await startS3TestServer();
});
afterAll(async () => {
  await s3?.close();
});

/** Each store gets its own key prefix in the shared bucket: a fresh, empty store. */
function newStore(prefix = `t${randomBytes(6).toString('hex')}/`): S3AudioStore {
  return new S3AudioStore({
    bucket: s3.bucket,
    region: 'us-east-1',
    endpoint: s3.endpoint,
    forcePathStyle: true,
    credentials: s3TestCredentials,
    prefix,
  });
}

runAudioStoreContract(
  'S3AudioStore (s3rver)',
  async () => {
    const store = newStore();
    return { store, cleanup: async () => store.destroy() };
  },
  // A PUT to S3 replaces an object whole; s3rver truncates and rewrites the file under a reader.
  { concurrentReplace: false },
);

describe('S3AudioStore', () => {
  it('keeps stores with different prefixes apart', async () => {
    const [first, second] = [newStore(), newStore()];
    const filename = newAudioName('wav');
    await first.put(filename, Uint8Array.of(1, 2, 3), 'audio/wav');
    expect(await first.has(filename)).toBe(true);
    expect(await second.has(filename)).toBe(false);
    first.destroy();
    second.destroy();
  });

  it('reports a bucket that does not exist as an error, not as a missing file', async () => {
    const store = new S3AudioStore({
      bucket: 'no-such-bucket',
      region: 'us-east-1',
      endpoint: s3.endpoint,
      forcePathStyle: true,
      credentials: s3TestCredentials,
    });
    await expect(store.put(newAudioName('wav'), Uint8Array.of(1), 'audio/wav')).rejects.toThrow();
    store.destroy();
  });
});

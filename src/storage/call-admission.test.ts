import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { databaseKinds, openTestDatabase, type TestDatabase } from '../testing/test-databases.js';
import { CallRepository, type AudioFileRow, type NewCall } from './call-repository.js';
import type { Database } from './database.js';
import { openPostgresDatabase } from './postgres-database.js';

/**
 * What several instances sharing one database rely on: the per-number hourly
 * limit admits exactly `limit` calls however many arrive at once, and a
 * cached phrase synthesized by two instances at once keeps one file.
 * On PostgreSQL the "instances" are two repositories on two connection pools.
 */

const hourAgo = () => new Date(Date.now() - 3_600_000);

function newCall(callId: string, from: string): NewCall {
  return { callId, from, to: '+15005550001', direction: 'inbound', profileId: 'restaurant', language: 'en-US', status: 'ringing' };
}

function phrase(filename: string): Omit<AudioFileRow, 'created_at' | 'deleted_at'> {
  return {
    audio_id: filename.slice(0, -4),
    filename,
    call_id: null,
    turn_id: null,
    cache_key: 'greeting-key',
    text: 'Hello!',
    voice: 'alloy',
    model: 'tts-1',
    format: 'wav',
    content_type: 'audio/wav',
    size_bytes: 100,
    duration_ms: 500,
  };
}

describe.each(databaseKinds())('call admission and shared phrases (%s)', (kind) => {
  let database: TestDatabase;
  let second: Database | undefined;
  let instances: CallRepository[];

  beforeEach(async () => {
    database = await openTestDatabase(kind);
    second = database.url ? await openPostgresDatabase(database.url) : undefined;
    instances = [new CallRepository(database.db), new CallRepository(second ?? database.db)];
  });

  afterEach(async () => {
    await second?.close();
    await database.cleanup();
  });

  it('admits exactly the limit when calls from one number arrive at once on two instances', async () => {
    const admitted = await Promise.all(
      Array.from({ length: 12 }, (_, index) => instances[index % 2].insertCallWithinLimit(newCall(`CA${index}`, '+15550001111'), hourAgo(), 3)),
    );
    expect(admitted.filter(Boolean)).toHaveLength(3);
    expect(await instances[0].countCallsFrom('+15550001111', hourAgo())).toBe(3);
  });

  it('counts each number on its own, and returns a call already stored even over the limit', async () => {
    await instances[0].insertCallWithinLimit(newCall('CA-a', '+15550002222'), hourAgo(), 1);
    expect(await instances[1].insertCallWithinLimit(newCall('CA-b', '+15550002222'), hourAgo(), 1)).toBeUndefined();
    expect(await instances[1].insertCallWithinLimit(newCall('CA-c', '+15550003333'), hourAgo(), 1)).toMatchObject({ call_id: 'CA-c' });
    // A retried incoming webhook of an admitted call is not refused.
    expect(await instances[1].insertCallWithinLimit(newCall('CA-a', '+15550002222'), hourAgo(), 1)).toMatchObject({ call_id: 'CA-a' });
  });

  it('keeps the first file of a phrase stored by two instances at once', async () => {
    const [first, second] = await Promise.all([instances[0].insertAudioFile(phrase('first-phrase.wav')), instances[1].insertAudioFile(phrase('second-phrase.wav'))]);
    expect(first.filename).toBe(second.filename);
    expect((await instances[0].findCachedAudio('greeting-key'))?.filename).toBe(first.filename);
  });

  it('replaces a phrase file only when told which missing file it replaces, or when the row was deleted', async () => {
    await instances[0].insertAudioFile(phrase('original-phrase.wav'));
    expect((await instances[1].insertAudioFile(phrase('stranger-phrase.wav'), { replacing: 'unrelated-file.wav' })).filename).toBe('original-phrase.wav');
    expect((await instances[1].insertAudioFile(phrase('renewed-phrase.wav'), { replacing: 'original-phrase.wav' })).filename).toBe('renewed-phrase.wav');
    await database.db.query('UPDATE audio_files SET deleted_at = now() WHERE cache_key = $1', ['greeting-key']);
    expect((await instances[0].insertAudioFile(phrase('after-delete.wav'))).filename).toBe('after-delete.wav');
  });
});

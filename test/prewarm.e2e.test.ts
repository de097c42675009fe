import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { prewarmPhrases } from '../src/app.js';
import { latencyProfiles, startFakeOpenAI, type FakeOpenAI } from '../src/testing/fake-openai-server.js';
import { startTestApp, type TestApp } from '../src/testing/test-app.js';

describe('preparing fixed phrases at start', () => {
  let fake: FakeOpenAI;
  let server: TestApp;

  beforeAll(async () => {
    // Speech's first byte comes 500 ms after the request: phrases are still in flight when shutdown comes.
    fake = await startFakeOpenAI({ profile: { ...latencyProfiles.realistic, jitter: 0 } });
    server = await startTestApp('pglite', { OPENAI_API_KEY: 'test', OPENAI_BASE_URL: fake.url });
  });

  afterAll(async () => {
    await server?.close();
    await fake?.close();
  });

  it('stops when shutdown comes: nothing new starts, what is in flight is dropped, and nothing is written after', async () => {
    const stop = new AbortController();
    const prewarm = prewarmPhrases(server.app.services, stop.signal);
    const speechRequests = () => fake.requests.filter((request) => request.endpoint === 'speech');
    // Shutdown comes once three are in flight (not after a fixed time: on a busy machine the third may not have left yet)
    // and after a moment in which a fourth could have started; each is still 400 ms from its first byte.
    for (let waited = 0; speechRequests().length < 3 && waited < 5_000; waited += 10) await new Promise((resolve) => setTimeout(resolve, 10));
    await new Promise((resolve) => setTimeout(resolve, 50));
    stop.abort();
    // None of the three in flight finished, and a dropped one is not a failure to report.
    expect(await prewarm).toEqual({ ready: 0, failed: 0 });
    // Three at a time, as the provider's rate limits are shared with calls: only the first three were asked for.
    expect(speechRequests()).toHaveLength(3);
    const { rows } = await server.db.query<{ count: number }>('SELECT count(*)::int AS count FROM audio_files');
    expect(rows[0].count).toBe(0);
  });
});

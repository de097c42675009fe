import { afterEach, describe, expect, it, vi } from 'vitest';
import { ActiveCallCache } from './active-call-cache.js';
import type { CallRow } from './call-repository.js';

function call(callId: string, endedAt: Date | null = null): CallRow {
  const now = new Date();
  return {
    call_id: callId, account_sid: null, from_number: '+15005550006', to_number: null, direction: 'inbound',
    profile_id: 'restaurant', language: 'en-US', status: endedAt ? 'completed' : 'in-progress', status_sequence: 0,
    assistant_mode: 'llm', llm_failures: 0, silent_prompts: 0, details: {}, outcome: null, started_at: now,
    ended_at: endedAt, duration_seconds: null, audio_retention: null, audio_expires_at: null, audio_deleted_at: null,
    updated_at: now, mode: 'webhook',
  };
}

describe('ActiveCallCache memory', () => {
  afterEach(() => vi.useRealTimers());

  it('forgets an ended call a minute after its last use, and an idle one after ten', () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    const cache = new ActiveCallCache({ canForget: () => true });
    cache.putCall(call('CA-ended', new Date()));
    cache.putCall(call('CA-talking'));
    vi.advanceTimersByTime(2 * 60_000);
    cache.putCall(call('CA-new')); // a new call is when the cache sweeps
    expect(cache.call('CA-ended')).toBeUndefined();
    expect(cache.call('CA-talking')).toBeDefined();
    vi.advanceTimersByTime(9 * 60_000);
    cache.putCall(call('CA-newer'));
    expect(cache.call('CA-talking')).toBeUndefined();
    expect(cache.call('CA-newer')).toBeDefined();
  });

  it('keeps everything while queued writes may still need it', () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    const cache = new ActiveCallCache({ canForget: () => false });
    cache.putCall(call('CA-ended', new Date()));
    vi.advanceTimersByTime(60 * 60_000);
    cache.putCall(call('CA-new'));
    expect(cache.call('CA-ended')).toBeDefined();
  });
});

import { describe, expect, it } from 'vitest';
import { LoginThrottle } from './login-throttle.js';

describe('LoginThrottle', () => {
  it('lets a client fail a few times, then makes it wait out the window', () => {
    const throttle = new LoginThrottle({ maxFailures: 3, windowMs: 1000 });
    for (let failure = 0; failure < 3; failure += 1) {
      expect(throttle.retryAfterMs('a', 0)).toBe(0);
      throttle.recordFailure('a', 0);
    }
    expect(throttle.retryAfterMs('a', 400)).toBe(600);
    expect(throttle.retryAfterMs('b', 400)).toBe(0);
    expect(throttle.retryAfterMs('a', 1000)).toBe(0);
    throttle.recordFailure('a', 1000);
    expect(throttle.retryAfterMs('a', 1000)).toBe(0);
  });
});

/**
 * Counts failed sign-ins per client address and refuses more once there
 * were `maxFailures` within `windowMs`: enough for a person who mistypes,
 * far too few to guess a password. Successful sign-ins are never limited.
 * Each server instance counts its own failures.
 */
export class LoginThrottle {
  private readonly failures = new Map<string, { count: number; resetAt: number }>();

  constructor(private readonly options: { maxFailures: number; windowMs: number }) {}

  /** Milliseconds until `client` may try again, or 0 when it may now. */
  retryAfterMs(client: string, now = Date.now()): number {
    const entry = this.failures.get(client);
    if (!entry || entry.resetAt <= now) return 0;
    return entry.count >= this.options.maxFailures ? entry.resetAt - now : 0;
  }

  recordFailure(client: string, now = Date.now()): void {
    const entry = this.failures.get(client);
    if (!entry || entry.resetAt <= now) {
      if (this.failures.size >= 10_000) this.prune(now);
      this.failures.set(client, { count: 1, resetAt: now + this.options.windowMs });
    } else {
      entry.count += 1;
    }
  }

  private prune(now: number): void {
    for (const [client, entry] of this.failures) if (entry.resetAt <= now) this.failures.delete(client);
    // Still full of live entries (many addresses failing at once): forget the oldest rather than grow.
    for (const client of this.failures.keys()) {
      if (this.failures.size < 10_000) break;
      this.failures.delete(client);
    }
  }
}

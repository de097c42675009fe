/**
 * Wakes webhook requests waiting for a turn's next reply piece. It only
 * shortens the wait on the instance producing the reply: a request served by
 * another instance still sees progress by reading the database.
 */
export class TurnProgress {
  private readonly waiters = new Map<number, Set<() => void>>();

  notify(turnId: number): void {
    const waiting = this.waiters.get(turnId);
    if (!waiting) return;
    this.waiters.delete(turnId);
    for (const wake of waiting) wake();
  }

  /** Resolves on the next `notify(turnId)` or after `timeoutMs`, whichever is first. */
  wait(turnId: number, timeoutMs: number): Promise<void> {
    return new Promise((resolve) => {
      let waiting = this.waiters.get(turnId);
      if (!waiting) this.waiters.set(turnId, (waiting = new Set()));
      const wake = () => {
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(() => {
        waiting!.delete(wake);
        if (waiting!.size === 0 && this.waiters.get(turnId) === waiting) this.waiters.delete(turnId);
        resolve();
      }, timeoutMs);
      waiting.add(wake);
    });
  }
}

/** A registration made before reading the database, so a notification in between is not missed. */
export interface ProgressTicket {
  /** Resolves at once if the turn moved since the ticket was taken, else on the next move or after `timeoutMs`. */
  wait(timeoutMs: number): Promise<void>;
  cancel(): void;
}

/**
 * Wakes webhook requests waiting for a turn's next reply piece. It only
 * shortens the wait on the instance producing the reply: a request served by
 * another instance still sees progress by reading the database.
 */
export class TurnProgress {
  private readonly listeners = new Map<number, Set<() => void>>();

  notify(turnId: number): void {
    const listening = this.listeners.get(turnId);
    if (!listening) return;
    this.listeners.delete(turnId);
    for (const wake of listening) wake();
  }

  /** Take a ticket, then read the state, then wait on the ticket if nothing new was there. */
  listen(turnId: number): ProgressTicket {
    let moved = false;
    let resolveWait: (() => void) | undefined;
    let timer: NodeJS.Timeout | undefined;
    let listening = this.listeners.get(turnId);
    if (!listening) this.listeners.set(turnId, (listening = new Set()));
    const wake = () => {
      moved = true;
      clearTimeout(timer);
      resolveWait?.();
    };
    listening.add(wake);
    const cancel = () => {
      clearTimeout(timer);
      const current = this.listeners.get(turnId);
      if (!current) return;
      current.delete(wake);
      if (current.size === 0) this.listeners.delete(turnId);
    };
    return {
      cancel,
      wait: (timeoutMs) =>
        moved
          ? Promise.resolve()
          : new Promise<void>((resolve) => {
              resolveWait = resolve;
              timer = setTimeout(() => {
                cancel();
                resolve();
              }, timeoutMs);
            }),
    };
  }
}

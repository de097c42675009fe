import type { Logger } from 'pino';
import type { LiveCallView } from '../admin/call-views.js';

/** What every subscriber receives: the calls in progress, whole, whenever they change. */
export interface LiveSnapshot {
  calls: LiveCallView[];
  at: string;
}

export type LiveListener = (snapshot: LiveSnapshot) => void;

/**
 * Calls in progress, read from the database about once a second while
 * someone watches. The database, not this process, is the source: with
 * several instances behind one PostgreSQL, a call answered by another
 * instance shows up here too. One poll serves every subscriber, and a
 * snapshot is sent only when it differs from the previous one.
 */
export class LiveFeed {
  private readonly listeners = new Set<LiveListener>();
  private latest: LiveSnapshot | undefined;
  private latestKey = '';
  private timer: NodeJS.Timeout | undefined;
  private polling: Promise<void> | undefined;
  private closed = false;

  constructor(
    private readonly deps: { load: () => Promise<LiveCallView[]>; intervalMs: number; logger: Logger },
  ) {}

  /** Calls `listener` with the current snapshot as soon as there is one, then on every change. Returns the unsubscribe. */
  subscribe(listener: LiveListener): () => void {
    this.listeners.add(listener);
    if (this.latest) listener(this.latest);
    if (!this.timer && !this.polling) void this.poll();
    return () => {
      this.listeners.delete(listener);
      if (this.listeners.size === 0) this.stop();
    };
  }

  /** The calls in progress now, read fresh. */
  async snapshot(): Promise<LiveSnapshot> {
    return { calls: await this.deps.load(), at: new Date().toISOString() };
  }

  close(): void {
    this.closed = true;
    this.stop();
    this.listeners.clear();
  }

  private stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.latest = undefined;
    this.latestKey = '';
  }

  private poll(): Promise<void> {
    this.timer = undefined;
    this.polling = (async () => {
      try {
        const snapshot = await this.snapshot();
        const key = JSON.stringify(snapshot.calls);
        if (key !== this.latestKey && this.listeners.size > 0) {
          this.latest = snapshot;
          this.latestKey = key;
          for (const listener of this.listeners) listener(snapshot);
        }
      } catch (error) {
        this.deps.logger.warn({ err: error }, 'live calls could not be read');
      } finally {
        this.polling = undefined;
        if (!this.closed && this.listeners.size > 0) {
          this.timer = setTimeout(() => void this.poll(), this.deps.intervalMs);
          this.timer.unref();
        }
      }
    })();
    return this.polling;
  }
}

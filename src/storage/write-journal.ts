import type { Logger } from 'pino';
import { Counter, Gauge, type Registry } from 'prom-client';

/** One write the database could not take when it was made. */
export interface PendingWrite {
  /** What it writes, for the logs (never the data itself). */
  description: string;
  /**
   * Performs the write. It may run more than once — an attempt can fail after
   * the database committed it — so it must be idempotent.
   */
  run(): Promise<void>;
}

/** Options of {@link WriteJournal}. */
export interface WriteJournalOptions {
  logger: Logger;
  /** True for errors worth waiting out (see `isDatabaseUnreachable`); any other error drops the write. */
  isUnreachable: (error: unknown) => boolean;
  /** Asks the database for a trivial answer; used to learn it is back when no write waits. */
  probe: () => Promise<void>;
  /** Most writes kept waiting; past it, writes fail as they would without the journal. */
  maxPending?: number;
  /** First wait between attempts; doubled after each failure up to `maxBackoffMs`. */
  initialBackoffMs?: number;
  maxBackoffMs?: number;
}

/** Thrown by {@link WriteJournal.enqueue} when the outage has lasted too long to keep remembering. */
export class JournalFullError extends Error {
  readonly code = 'journal_full';
  readonly retryable = true;
  constructor(limit: number) {
    super(`the database has been unreachable for too long: ${limit} writes are already waiting`);
  }
}

/** A finished outage, as the journal saw it. */
export interface OutageReport {
  /** Writes queued during it. */
  queued: number;
  /** Writes the database refused for good (not unreachability) and that were dropped. */
  dropped: number;
  /** From the first failure to the last queued write written. */
  durationMs: number;
  /** From the database answering again to the last queued write written. */
  drainMs: number;
}

const defaultMaxPending = 100_000;
const reminderIntervalMs = 10_000;

/**
 * Writes waiting for the database, replayed in the order they were made
 * once it answers again. While anything waits, later writes queue behind it
 * too, so a write never overtakes one it depends on (a turn before its
 * reply's pieces). Attempts back off exponentially; only unreachability is
 * waited out — a write refused for any other reason is logged and dropped
 * so one bad row cannot hold back every call.
 */
export class WriteJournal {
  private readonly queue: PendingWrite[] = [];
  private readonly maxPending: number;
  private readonly initialBackoffMs: number;
  private readonly maxBackoffMs: number;
  private loop?: Promise<void>;
  private unreachableSince?: number;
  private outage?: { startedAt: number; queued: number; dropped: number; reachableAt?: number };
  private lastReminderAt = 0;
  private waiters: Array<() => void> = [];
  private wake?: () => void;
  private closed = false;
  private queuedTotal?: Counter;
  /** The last outage that ended, for reports and tests. */
  lastOutage?: OutageReport;

  constructor(private readonly options: WriteJournalOptions) {
    this.maxPending = options.maxPending ?? defaultMaxPending;
    this.initialBackoffMs = options.initialBackoffMs ?? 100;
    this.maxBackoffMs = options.maxBackoffMs ?? 1_000;
  }

  /** Writes waiting. */
  get pending(): number {
    return this.queue.length;
  }

  /**
   * True while writes wait or the database was last seen unreachable. The
   * database then lags behind this instance's memory, so reads of what is
   * remembered should be answered from memory.
   */
  get degraded(): boolean {
    return this.queue.length > 0 || this.unreachableSince !== undefined;
  }

  /** Throws {@link JournalFullError} when no more writes can wait; check before changing anything a write depends on. */
  assertRoom(): void {
    if (this.queue.length >= this.maxPending) throw new JournalFullError(this.maxPending);
  }

  /** Queues a write behind every other waiting one. */
  enqueue(write: PendingWrite): void {
    this.assertRoom();
    this.beginOutage().queued += 1;
    this.queue.push(write);
    this.queuedTotal?.inc();
    this.start();
  }

  /** Tells the journal a query failed because the database is unreachable (reads included). */
  reportUnreachable(): void {
    this.unreachableSince ??= Date.now();
    this.beginOutage();
    this.start();
  }

  /** Resolves true once nothing waits, false if `timeoutMs` passes first. */
  whenDrained(timeoutMs = Number.POSITIVE_INFINITY): Promise<boolean> {
    if (!this.degraded) return Promise.resolve(true);
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        resolve(true);
      };
      const timer = Number.isFinite(timeoutMs)
        ? setTimeout(() => {
            this.waiters = this.waiters.filter((waiter) => waiter !== done);
            resolve(false);
          }, timeoutMs)
        : undefined;
      this.waiters.push(done);
    });
  }

  /** Stops retrying; writes still waiting are logged as lost. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.wake?.();
    if (this.queue.length > 0) {
      this.options.logger.error({ pending: this.queue.length }, 'shutting down with writes still waiting for the database: they are lost');
    }
  }

  /** Exposes the number of waiting writes (and how many were ever queued) on `registry`. */
  registerMetrics(registry: Registry): void {
    const journal = this;
    new Gauge({
      name: 'callme_database_pending_writes',
      help: 'Writes waiting for the database to be reachable again',
      registers: [registry],
      collect() {
        this.set(journal.pending);
      },
    });
    this.queuedTotal = new Counter({
      name: 'callme_database_queued_writes_total',
      help: 'Writes that could not reach the database when made and were queued',
      registers: [registry],
    });
  }

  private beginOutage(): NonNullable<WriteJournal['outage']> {
    if (this.outage) return this.outage;
    this.lastReminderAt = Date.now();
    this.options.logger.warn('database unreachable: calls in progress go on from memory; their writes are queued until it is back');
    return (this.outage = { startedAt: Date.now(), queued: 0, dropped: 0 });
  }

  private start(): void {
    if (this.loop || this.closed) return;
    this.loop = this.run().finally(() => {
      this.loop = undefined;
      // Something may have been queued after the loop's last look.
      if (this.degraded && !this.closed) this.start();
    });
  }

  private async run(): Promise<void> {
    let backoffMs = this.initialBackoffMs;
    while (!this.closed && this.degraded) {
      const head = this.queue[0];
      try {
        if (head) await head.run();
        else await this.options.probe();
      } catch (error) {
        if (this.options.isUnreachable(error)) {
          this.unreachableSince ??= Date.now();
          if (this.outage) this.outage.reachableAt = undefined;
          this.remind();
          await this.sleep(backoffMs);
          backoffMs = Math.min(backoffMs * 2, this.maxBackoffMs);
          continue;
        }
        // The database answered and refused this write: it never will take it. (A probe answered at all: it is reachable.)
        if (head) {
          this.options.logger.error({ err: error, write: head.description }, 'a queued write was refused by the database; it is dropped');
          if (this.outage) this.outage.dropped += 1;
        }
      }
      if (this.outage) this.outage.reachableAt ??= Date.now();
      this.unreachableSince = undefined;
      backoffMs = this.initialBackoffMs;
      if (head) this.queue.shift();
    }
    if (!this.degraded) this.finishOutage();
  }

  private finishOutage(): void {
    const outage = this.outage;
    this.outage = undefined;
    if (outage) {
      const now = Date.now();
      this.lastOutage = {
        queued: outage.queued,
        dropped: outage.dropped,
        durationMs: now - outage.startedAt,
        drainMs: now - (outage.reachableAt ?? now),
      };
      if (outage.dropped > 0) this.options.logger.error(this.lastOutage, 'database reachable again; some queued writes were refused and dropped');
      else this.options.logger.warn(this.lastOutage, 'database reachable again: every queued write is written');
    }
    const waiters = this.waiters;
    this.waiters = [];
    for (const waiter of waiters) waiter();
  }

  private remind(): void {
    if (Date.now() - this.lastReminderAt < reminderIntervalMs) return;
    this.lastReminderAt = Date.now();
    this.options.logger.warn({ pending: this.queue.length }, 'database still unreachable; writes are waiting');
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      // A retry loop must never keep the process alive by itself.
      timer.unref();
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.wake = done;
    });
  }
}

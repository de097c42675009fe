import type { Worker } from 'node:worker_threads';
import type { Logger } from 'pino';
import { siblingModule, startModuleWorker } from '../runtime/module-worker.js';
import type { CallerTurnListener, CallerTurns, CallerTurnStream, VoiceDetectorKind } from './caller-turns.js';
import { createRingBuffer, RingWriter } from './message-ring.js';
import type { TurnEvent, TurnTiming } from './turn-detector.js';

/**
 * What the event loop tells a turn thread, written into a shared message
 * ring (tag: the call's id; bytes: its μ-law, or the timing as JSON).
 */
export const TurnMessageKind = { audio: 0, open: 1, configure: 2, close: 3, stop: 4 } as const;

/** What the worker gets at start: the ring it reads. */
export interface TurnThreadData {
  ring: SharedArrayBuffer;
}

/** What a turn thread tells the event loop. */
export type FromTurnThread =
  | { type: 'ready'; detector: VoiceDetectorKind }
  | { type: 'fallback'; reason: string }
  | { type: 'events'; id: number; events: TurnEvent[] }
  | { type: 'failed'; id: number; message: string };

export interface ThreadedCallerTurnsOptions {
  /** Worker threads to spread calls over; at least 1. */
  threads: number;
  logger: Logger;
  /** Where the worker's code is; the default is `caller-turns-worker`, beside this file. */
  workerUrl?: URL;
}

/** Shared memory per thread for messages on their way: 4 MB is over 4 s of the audio of 100 calls. */
const ringBytes = 4 * 2 ** 20;
/** Messages held back while the ring is full; past this, caller audio is dropped (control messages never are). */
const maxOverflow = 2000;
const encoder = new TextEncoder();

/** How long a thread asked to stop has to let its model go before it is ended. */
const stopGraceMs = 3000;

/** A thread that keeps dying is restarted at most this often. */
const restartLimit = { count: 5, windowMs: 60_000 };

interface Stream {
  id: number;
  timing: Partial<TurnTiming>;
  listener: CallerTurnListener;
}

/**
 * Turn detection on worker threads: each thread loads the model once and
 * judges the audio of the calls given to it (the thread with the fewest
 * calls gets the next one). The event loop only copies each 20 ms frame into
 * memory it shares with the thread, and hears back when a turn starts or ends. A
 * thread that dies is restarted and its calls start afresh on it; one that
 * keeps dying is given up, and its calls are spread over the others.
 */
export class ThreadedCallerTurns implements CallerTurns {
  private readonly threads: TurnThread[];
  private nextId = 1;

  constructor(private readonly options: ThreadedCallerTurnsOptions) {
    if (!Number.isInteger(options.threads) || options.threads < 1) throw new RangeError('threads must be a whole number of at least 1');
    const url = options.workerUrl ?? siblingModule('caller-turns-worker', import.meta.url);
    this.threads = Array.from({ length: options.threads }, (_, index) => new TurnThread(url, index, options.logger, (orphans) => this.adopt(orphans)));
  }

  get detector(): Promise<VoiceDetectorKind> {
    return this.threads[0].detector;
  }

  /** Threads started so far: none until the first call (or `detector`) needs one. */
  get runningThreads(): number {
    return this.threads.filter((thread) => thread.running).length;
  }

  open(timing: Partial<TurnTiming>, listener: CallerTurnListener): CallerTurnStream {
    const stream: Stream = { id: this.nextId++, timing: { ...timing }, listener };
    let thread = this.pick();
    thread.open(stream);
    return {
      push: (mulaw) => {
        if (thread.given) thread = this.findHome(stream, thread);
        thread.hear(stream.id, mulaw);
      },
      configure: (change) => {
        stream.timing = { ...stream.timing, ...change };
        thread.send(stream.id, TurnMessageKind.configure, change);
      },
      close: () => thread.close(stream.id),
    };
  }

  async close(): Promise<void> {
    await Promise.all(this.threads.map((thread) => thread.stop()));
  }

  /** Calls whose thread has been given up follow their handle to a live one on their next frame. */
  private adopt(orphans: Stream[]): void {
    if (this.threads.every((thread) => thread.given)) {
      this.options.logger.error('every voice activity thread has failed; calls on this instance can no longer be heard');
      for (const stream of orphans) stream.listener.onError(new Error('voice activity detection is unavailable'));
    }
  }

  private findHome(stream: Stream, from: TurnThread): TurnThread {
    const thread = this.pick();
    if (thread.given) return from;
    thread.open(stream);
    return thread;
  }

  private pick(): TurnThread {
    const live = this.threads.filter((thread) => !thread.given);
    const candidates = live.length > 0 ? live : this.threads;
    return candidates.reduce((best, thread) => (thread.load < best.load ? thread : best));
  }
}

/** One worker thread and the calls it judges. */
class TurnThread {
  private worker: Worker | undefined;
  private readonly streams = new Map<number, Stream>();
  private readonly restarts: number[] = [];
  private ring: RingWriter | undefined;
  /** Messages the ring had no room for, oldest first. */
  private overflow: Array<{ id: number; kind: number; bytes: Uint8Array }> = [];
  private waking = false;
  private dropped = 0;
  private droppedLoggedAt = 0;
  private stopping = false;
  /** This thread kept dying and is no longer used. */
  given = false;
  private kind: Promise<VoiceDetectorKind> | undefined;

  constructor(
    private readonly url: URL,
    private readonly index: number,
    private readonly logger: Logger,
    private readonly onGivenUp: (orphans: Stream[]) => void,
  ) {}

  /** Starts the thread (it is started on first use, not before). */
  get detector(): Promise<VoiceDetectorKind> {
    if (!this.worker) this.start();
    return this.kind!;
  }

  get running(): boolean {
    return this.worker !== undefined && !this.given && !this.stopping;
  }

  get load(): number {
    return this.streams.size;
  }

  open(stream: Stream): void {
    if (!this.worker) this.start();
    this.streams.set(stream.id, stream);
    this.send(stream.id, TurnMessageKind.open, stream.timing);
  }

  close(id: number): void {
    if (this.streams.delete(id) && !this.given) this.enqueue(id, TurnMessageKind.close, new Uint8Array(0));
  }

  send(id: number, kind: typeof TurnMessageKind.open | typeof TurnMessageKind.configure, timing: Partial<TurnTiming>): void {
    if (!this.given && this.streams.has(id)) this.enqueue(id, kind, encoder.encode(JSON.stringify(timing)));
  }

  /** A call's audio frame, copied into the ring; a sleeping thread is woken at the end of the event loop's turn. */
  hear(id: number, mulaw: Uint8Array): void {
    if (this.given || !this.streams.has(id)) return;
    if (this.overflow.length >= maxOverflow) {
      this.dropped++;
      return;
    }
    this.enqueue(id, TurnMessageKind.audio, mulaw);
  }

  /**
   * Asks the thread to finish: it lets the detections in flight end, releases
   * the model and exits. Ending a thread while the model's native code runs
   * in it can abort the whole process, so it is ended by force only when it
   * does not stop in time.
   */
  async stop(): Promise<void> {
    const worker = this.worker;
    const alreadyStopping = this.stopping;
    this.stopping = true;
    this.streams.clear();
    // A thread that has exited has no id any more.
    if (!worker || worker.threadId === -1) return;
    const exited = new Promise<void>((resolve) =>
      worker.once('exit', (code) => {
        this.logger.debug({ thread: this.index, code }, 'a voice activity thread stopped');
        resolve();
      }),
    );
    // Delivered like any message: behind audio still waiting, the thread woken at the end of this turn.
    if (!alreadyStopping) this.enqueue(0, TurnMessageKind.stop, new Uint8Array(0));
    const timer = setTimeout(() => {
      this.logger.warn({ thread: this.index }, 'a voice activity thread did not stop in time; ending it');
      void worker.terminate();
    }, stopGraceMs);
    await exited;
    clearTimeout(timer);
  }

  private enqueue(id: number, kind: number, bytes: Uint8Array): void {
    // Once anything waits, everything after it waits too: messages keep their order.
    if (this.overflow.length > 0 || !this.ring?.write(id, kind, bytes)) this.overflow.push({ id, kind, bytes: bytes.slice() });
    if (!this.waking) {
      this.waking = true;
      setImmediate(this.wake);
    }
  }

  private readonly wake = (): void => {
    this.waking = false;
    const ring = this.ring;
    if (!ring) return;
    let moved = 0;
    while (moved < this.overflow.length && ring.write(this.overflow[moved].id, this.overflow[moved].kind, this.overflow[moved].bytes)) moved++;
    if (moved > 0) this.overflow.splice(0, moved);
    ring.notify();
    if (this.overflow.length > 0 && !this.waking) {
      // The thread is behind: try again shortly rather than spin.
      this.waking = true;
      setTimeout(this.wake, 5);
    }
    if (this.dropped > 0 && Date.now() - this.droppedLoggedAt > 10_000) {
      this.logger.warn({ thread: this.index, frames: this.dropped }, 'a voice activity thread is behind; caller audio was dropped');
      this.dropped = 0;
      this.droppedLoggedAt = Date.now();
    }
  };

  private start(): Worker {
    const ring = createRingBuffer(ringBytes);
    this.ring = new RingWriter(ring);
    this.overflow = [];
    const worker = startModuleWorker(this.url, { ring } satisfies TurnThreadData);
    this.worker = worker;
    // A worker must not keep the process alive on its own; shutdown stops it.
    worker.unref();
    let ready!: (kind: VoiceDetectorKind) => void;
    this.kind = new Promise((resolve) => (ready = resolve));
    // Until it has said which detector it runs, a failure to start counts as "energy" for anyone asking.
    worker.once('exit', () => ready('energy'));
    worker.on('message', (message: FromTurnThread) => {
      switch (message.type) {
        case 'ready':
          ready(message.detector);
          return;
        case 'fallback':
          this.logger.error({ reason: message.reason, thread: this.index }, 'the Silero voice activity model could not be loaded; using the energy detector');
          return;
        case 'events':
          this.streams.get(message.id)?.listener.onEvents(message.events);
          return;
        case 'failed':
          this.streams.get(message.id)?.listener.onError(new Error(message.message));
          return;
      }
    });
    worker.on('error', (error) => this.logger.error({ err: error, thread: this.index }, 'a voice activity thread failed'));
    worker.on('exit', (code) => {
      if (this.stopping || this.worker !== worker) return;
      this.restarted(code);
    });
    return worker;
  }

  /** The thread died: its calls' detectors are gone, so they start afresh on a new one. */
  private restarted(code: number): void {
    const now = Date.now();
    this.restarts.push(now);
    while (this.restarts.length > 0 && now - this.restarts[0] > restartLimit.windowMs) this.restarts.shift();
    const streams = [...this.streams.values()];
    for (const stream of streams) stream.listener.onError(new Error(`the voice activity thread stopped (exit code ${code})`));
    if (this.restarts.length > restartLimit.count) {
      this.logger.error({ thread: this.index, restarts: this.restarts.length }, 'a voice activity thread keeps stopping; giving it up');
      this.given = true;
      this.streams.clear();
      this.onGivenUp(streams);
      return;
    }
    this.logger.error({ thread: this.index, code, calls: streams.length }, 'a voice activity thread stopped; restarting it');
    // A new ring: audio still waiting was meant for detectors that are gone; the new ones start on what comes next.
    this.start();
    for (const stream of streams) this.send(stream.id, TurnMessageKind.open, stream.timing);
  }
}

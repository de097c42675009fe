import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { Logger } from 'pino';
import type { CallerTurnListener, CallerTurns, CallerTurnStream, VoiceDetectorKind } from './caller-turns.js';
import type { TurnEvent, TurnTiming } from './turn-detector.js';

/** What the event loop tells a turn thread. */
export type ToTurnThread =
  | { type: 'open'; id: number; timing: Partial<TurnTiming> }
  /** Caller audio of any number of calls: `frames` holds (call id, byte length) pairs, `bytes` the audio, in that order. */
  | { type: 'audio'; frames: Int32Array; bytes: Uint8Array }
  | { type: 'configure'; id: number; timing: Partial<TurnTiming> }
  | { type: 'close'; id: number };

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
 * calls gets the next one). The event loop only forwards each 20 ms frame,
 * about 2 µs of its time, and hears back when a turn starts or ends. A
 * thread that dies is restarted and its calls start afresh on it; one that
 * keeps dying is given up, and its calls are spread over the others.
 */
export class ThreadedCallerTurns implements CallerTurns {
  private readonly threads: TurnThread[];
  private nextId = 1;

  constructor(private readonly options: ThreadedCallerTurnsOptions) {
    if (!Number.isInteger(options.threads) || options.threads < 1) throw new RangeError('threads must be a whole number of at least 1');
    const url = options.workerUrl ?? new URL(`./caller-turns-worker${extensionOf(import.meta.url)}`, import.meta.url);
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
        thread.send({ type: 'configure', id: stream.id, timing: change });
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
    const live = this.threads.filter((thread) => !thread.given);
    if (live.length === 0) return from;
    const thread = this.pick();
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
  /** Audio not yet posted: (call id, byte length) pairs and the bytes. */
  private pending: number[] = [];
  private pendingAudio: Uint8Array[] = [];
  private pendingBytes = 0;
  private flushing = false;
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
    this.send({ type: 'open', id: stream.id, timing: stream.timing });
  }

  close(id: number): void {
    if (this.streams.delete(id) && !this.given) this.post({ type: 'close', id });
  }

  send(message: Exclude<ToTurnThread, { type: 'audio' }>): void {
    if (!this.given && this.streams.has(message.id)) this.post(message);
  }

  /**
   * Audio waits for the end of the event loop's current turn and goes over
   * with every other call's audio that came in during it: one message
   * instead of one per frame (posting one costs a few microseconds, which at
   * fifty frames a second per call added up to a tenth of the loop).
   */
  hear(id: number, mulaw: Uint8Array): void {
    if (this.given || !this.streams.has(id)) return;
    this.pending.push(id, mulaw.length);
    this.pendingAudio.push(mulaw);
    this.pendingBytes += mulaw.length;
    if (!this.flushing) {
      this.flushing = true;
      setImmediate(this.flush);
    }
  }

  private readonly flush = (): void => {
    this.flushing = false;
    if (this.pendingAudio.length === 0) return;
    const frames = Int32Array.from(this.pending);
    const bytes = new Uint8Array(this.pendingBytes);
    let offset = 0;
    for (const chunk of this.pendingAudio) {
      bytes.set(chunk, offset);
      offset += chunk.length;
    }
    this.pending = [];
    this.pendingAudio = [];
    this.pendingBytes = 0;
    this.worker?.postMessage({ type: 'audio', frames, bytes } satisfies ToTurnThread, [frames.buffer, bytes.buffer]);
  };

  /** Control messages keep their place after the audio that came before them. */
  private post(message: ToTurnThread): void {
    this.flush();
    this.worker?.postMessage(message);
  }

  async stop(): Promise<void> {
    this.stopping = true;
    this.streams.clear();
    await this.worker?.terminate();
  }

  private start(): Worker {
    const worker = spawnWorker(this.url);
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
    // Audio still waiting here was meant for detectors that are gone; the new ones start on what comes next.
    this.pending = [];
    this.pendingAudio = [];
    this.pendingBytes = 0;
    const worker = this.start();
    for (const stream of streams) worker.postMessage({ type: 'open', id: stream.id, timing: stream.timing } satisfies ToTurnThread);
  }
}

/** `.ts` when running from source (through tsx), `.js` when compiled. */
function extensionOf(url: string): string {
  return url.endsWith('.ts') ? '.ts' : '.js';
}

/**
 * Starts a worker on a module. From TypeScript sources the worker registers
 * tsx itself first: a worker thread does not inherit the loader hooks of the
 * thread that made it.
 */
function spawnWorker(url: URL): Worker {
  if (!url.pathname.endsWith('.ts')) return new Worker(url);
  const require = createRequire(import.meta.url);
  // tsx's ESM API (the `import` condition of `tsx/esm/api`, which require.resolve cannot select).
  const tsx = pathToFileURL(require.resolve('tsx/esm/api').replace(/\.cjs$/, '.mjs')).href;
  return new Worker(`import(${JSON.stringify(tsx)}).then((api) => { api.register(); return import(${JSON.stringify(url.href)}); })`, { eval: true });
}

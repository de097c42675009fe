import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { StreamFakeMessage, StreamFakeRequest, StreamFakeRequestMessage } from './stream-fake-process.js';

/** The stream bench's side of its fake OpenAI process. */
export interface StreamFakeHandle {
  url: string;
  pid: number;
  /** Every request since the last take (finished, still open or aborted), and the fake's event-loop delay over that time. */
  takeLog(): Promise<{ requests: StreamFakeRequest[]; loopDelayMs: { p50: number; p99: number; max: number } }>;
  /** Waits until no request has been in flight for `quietMs` (the server's start-up phrases are done). */
  waitQuiet(quietMs: number, timeoutMs: number): Promise<void>;
  setProfile(profile: 'realistic' | 'zero', transcriptionMs: number): Promise<void>;
  close(): Promise<void>;
}

export async function startStreamFake(profile: string, seed: number, transcriptionMs: number): Promise<StreamFakeHandle> {
  const entry = fileURLToPath(new URL('./stream-fake-process.ts', import.meta.url));
  const child: ChildProcess = fork(entry, [profile, String(seed), String(transcriptionMs)], {
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  process.once('exit', () => child.kill('SIGKILL'));
  type Waiter = { type: StreamFakeMessage['type']; resolve: (message: StreamFakeMessage) => void; reject: (error: Error) => void };
  const waiting: Waiter[] = [];
  child.on('message', (message: StreamFakeMessage) => {
    const index = waiting.findIndex((waiter) => waiter.type === message.type);
    if (index !== -1) waiting.splice(index, 1)[0].resolve(message);
  });
  child.on('exit', (code) => {
    for (const waiter of waiting.splice(0)) waiter.reject(new Error(`the fake OpenAI process exited (${code})`));
  });
  const next = <T extends StreamFakeMessage['type']>(type: T, send?: StreamFakeRequestMessage) =>
    new Promise<Extract<StreamFakeMessage, { type: T }>>((resolve, reject) => {
      waiting.push({ type, resolve: resolve as (message: StreamFakeMessage) => void, reject });
      if (send) child.send(send);
    });
  const ready = await next('ready');

  return {
    url: ready.url,
    pid: child.pid ?? 0,
    async takeLog() {
      const log = await next('log', { type: 'take-log' });
      return { requests: log.requests, loopDelayMs: log.loopDelayMs };
    },
    async setProfile(profile, transcriptionMs) {
      await next('profile-set', { type: 'set-profile', profile, transcriptionMs });
    },
    async waitQuiet(quietMs, timeoutMs) {
      const deadline = Date.now() + timeoutMs;
      let quietSince = Date.now();
      let finished = -1;
      while (Date.now() < deadline) {
        const status = await next('status', { type: 'status' });
        if (status.inFlight > 0 || status.finished !== finished) quietSince = Date.now();
        finished = status.finished;
        if (Date.now() - quietSince >= quietMs) return;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    },
    async close() {
      if (child.exitCode !== null) return;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.disconnect();
      await exited;
    },
  };
}

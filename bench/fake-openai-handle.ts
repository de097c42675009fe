import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { FakeProcessMessage, FakeProcessRequest, FakeRequestSummary } from './fake-openai-process.js';

/** The bench's side of the fake OpenAI process. */
export interface FakeOpenAIHandle {
  url: string;
  pid: number;
  /** Every request finished since the last take, and the fake's event-loop delay over that time. */
  takeLog(): Promise<{ requests: FakeRequestSummary[]; loopDelayMs: { p50: number; p99: number; max: number } }>;
  /** Waits until no request has been in flight for `quietMs` (the servers' start-up phrases are done). */
  waitQuiet(quietMs: number, timeoutMs: number): Promise<void>;
  close(): Promise<void>;
}

export async function startFakeProcess(profile: string, seed: number): Promise<FakeOpenAIHandle> {
  const entry = fileURLToPath(new URL('./fake-openai-process.ts', import.meta.url));
  const child: ChildProcess = fork(entry, [profile, String(seed)], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  type Waiter = { type: FakeProcessMessage['type']; resolve: (message: FakeProcessMessage) => void; reject: (error: Error) => void };
  const waiting: Waiter[] = [];
  child.on('message', (message: FakeProcessMessage) => {
    const index = waiting.findIndex((waiter) => waiter.type === message.type);
    if (index !== -1) waiting.splice(index, 1)[0].resolve(message);
  });
  child.on('exit', (code) => {
    for (const waiter of waiting.splice(0)) waiter.reject(new Error(`the fake OpenAI process exited (${code})`));
  });
  const next = <T extends FakeProcessMessage['type']>(type: T, send?: FakeProcessRequest) =>
    new Promise<Extract<FakeProcessMessage, { type: T }>>((resolve, reject) => {
      waiting.push({ type, resolve: resolve as (message: FakeProcessMessage) => void, reject });
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

import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { CallerMessage, CallerRequest } from './caller-process.js';
import type { CallEnvironment, CallPlan, CallResult } from './stream-call.js';

/** The bench's side of its caller processes. */
export interface CallerPool {
  pids: number[];
  /** Runs the plans, dealt round-robin over the processes (or all in the first one when `processes` is 1). */
  run(environment: CallEnvironment, plans: CallPlan[], processes?: number): Promise<{ results: CallResult[]; loopDelayP99Ms: number[] }>;
  close(): Promise<void>;
}

export async function startCallerPool(size: number): Promise<CallerPool> {
  const entry = fileURLToPath(new URL('./caller-process.ts', import.meta.url));
  const children: ChildProcess[] = [];
  for (let index = 0; index < size; index++) {
    // 'advanced' serialization carries the fixtures' audio (typed arrays) as they are.
    const child = fork(entry, [], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'], serialization: 'advanced' });
    process.once('exit', () => child.kill('SIGKILL'));
    await new Promise<void>((resolve, reject) => {
      child.once('message', (message: CallerMessage) => (message.type === 'ready' ? resolve() : reject(new Error('caller process did not start'))));
      child.once('exit', (code) => reject(new Error(`caller process exited (${code})`)));
    });
    children.push(child);
  }

  const runOn = (child: ChildProcess, environment: CallEnvironment, plans: CallPlan[]) =>
    new Promise<Extract<CallerMessage, { type: 'done' }>>((resolve, reject) => {
      const onExit = (code: number | null) => reject(new Error(`caller process exited (${code})`));
      child.once('exit', onExit);
      child.once('message', (message: CallerMessage) => {
        child.off('exit', onExit);
        if (message.type === 'done') resolve(message);
      });
      child.send({ type: 'run', environment, plans } satisfies CallerRequest);
    });

  return {
    pids: children.map((child) => child.pid ?? 0),
    async run(environment, plans, processes = children.length) {
      const used = children.slice(0, Math.max(1, Math.min(processes, children.length)));
      const shares = used.map((_, index) => plans.filter((__, planIndex) => planIndex % used.length === index));
      const answers = await Promise.all(used.map((child, index) => runOn(child, environment, shares[index])));
      return {
        results: answers.flatMap((answer) => answer.results).sort((a, b) => a.index - b.index),
        loopDelayP99Ms: answers.map((answer) => answer.loopDelayMs.p99),
      };
    },
    async close() {
      await Promise.all(children.map((child) => {
        if (child.exitCode !== null) return Promise.resolve();
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.disconnect();
        return exited;
      }));
    },
  };
}

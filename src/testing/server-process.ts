import { spawn } from 'node:child_process';
import { request } from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from './free-port.js';

/** How a server process ended. */
export interface ServerExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** `src/main.ts` running in a process of its own, as in production. */
export interface ServerProcess {
  readonly pid: number;
  readonly port: number;
  /** `http://127.0.0.1:PORT`. */
  readonly baseUrl: string;
  /** What it printed (stdout and stderr), for failure messages and log checks. */
  readonly output: string[];
  /** Resolves when the process has exited. */
  readonly exited: Promise<ServerExit>;
  kill(signal: NodeJS.Signals): void;
}

/** Options of {@link startServerProcess}. */
export interface ServerProcessOptions {
  /** The environment it is configured from; PORT and HOST are set here. Nothing is inherited but PATH and HOME. */
  env: Record<string, string>;
  /** A fixed port, to restart a server where its callers expect it; a free one by default. */
  port?: number;
  readyTimeoutMs?: number;
}

const repositoryRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

/**
 * Starts the server with `node --import tsx src/main.ts` (node itself, not
 * the tsx launcher, so a signal reaches the server and not a wrapper) and
 * resolves once `/healthz` answers.
 */
export async function startServerProcess(options: ServerProcessOptions): Promise<ServerProcess> {
  const port = options.port ?? (await freePort());
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
    cwd: repositoryRoot,
    env: { PATH: process.env.PATH, HOME: process.env.HOME, ...options.env, PORT: String(port), HOST: '127.0.0.1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const output: string[] = [];
  const keep = (chunk: Buffer) => output.push(...chunk.toString().split('\n').filter(Boolean));
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  let exit: ServerExit | undefined;
  const exited = new Promise<ServerExit>((resolve) =>
    child.once('exit', (code, signal) => {
      exit = { code, signal };
      resolve(exit);
    }),
  );
  const baseUrl = `http://127.0.0.1:${port}`;

  const deadline = Date.now() + (options.readyTimeoutMs ?? 60_000);
  for (;;) {
    if (exit) throw new Error(`the server exited while starting (${JSON.stringify(exit)}):\n${output.join('\n')}`);
    if (await answers(`${baseUrl}/healthz`)) break;
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`the server did not answer /healthz in time:\n${output.join('\n')}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }

  return {
    pid: child.pid!,
    port,
    baseUrl,
    output,
    exited,
    kill: (signal) => {
      if (!exit) child.kill(signal);
    },
  };
}

function answers(url: string): Promise<boolean> {
  return new Promise((resolve) => {
    // A fresh connection each time: a pooled one could outlive the server being probed.
    const probe = request(url, { agent: false, timeout: 2_000 }, (response) => {
      response.resume();
      resolve(response.statusCode === 200);
    });
    probe.on('error', () => resolve(false));
    probe.on('timeout', () => probe.destroy());
    probe.end();
  });
}

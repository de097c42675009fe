import { spawn, type ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { request } from './http-client.js';
import { freePort } from '../src/testing/free-port.js';

/** A callme server process started by the bench. */
export interface BenchServer {
  /** `pipelined` or `sequential`. */
  name: string;
  baseUrl: string;
  authToken: string;
  process: ChildProcess;
  dataDir: string;
  /** The server's own PostgreSQL database, when the bench runs on PostgreSQL. */
  databaseUrl?: string;
  /** The V8 inspector's WebSocket address, when started with `inspect`. */
  inspectorUrl?: string;
  /** Stops the process (SIGTERM: it finishes turns in flight) and removes its data. */
  stop(): Promise<void>;
}

export interface StartServerOptions {
  name: string;
  pipelined: boolean;
  openaiBaseUrl: string;
  /** Folder of the callme checkout to run (default: this one). */
  serverDir: string;
  databaseUrl?: string;
  /** Folder for V8 CPU profiles of the server (`--cpu-prof`), written when it stops. */
  cpuProfileDir?: string;
  /** Opens the V8 inspector on a free loopback port (the soak collects garbage through it before each heap sample). */
  inspect?: boolean;
  /** Variables set last, over the bench's own (several instances share `DATABASE_URL`, `PUBLIC_URL`, `AUDIO_DIR`). */
  env?: Record<string, string>;
}

const authToken = 'bench-twilio-auth-token';

/** Servers still running, so an interrupted bench does not leave them behind. */
const running = new Set<{ child: ChildProcess; dataDir: string }>();
process.on('exit', () => {
  for (const { child, dataDir } of running) {
    child.kill('SIGKILL');
    rmSync(dataDir, { recursive: true, force: true });
  }
});

/** Starts `src/main.ts` as production would (its own process and event loop) and waits for `/readyz`. */
export async function startServer(options: StartServerOptions): Promise<BenchServer> {
  const port = await freePort();
  const dataDir = await mkdtemp(path.join(tmpdir(), `callme-bench-${options.name}-`));
  // On PostgreSQL each server gets a database of its own, created here and dropped when it stops.
  const database = options.databaseUrl ? await createDatabase(options.databaseUrl, `callme_bench_${options.name}_${process.pid}`) : undefined;
  const baseUrl = `http://127.0.0.1:${port}`;
  // One folder per server: every thread (tsx's loader has one) writes its own profile there.
  const profiling = options.cpuProfileDir ? ['--cpu-prof', `--cpu-prof-dir=${path.join(options.cpuProfileDir, options.name)}`] : [];
  const inspecting = options.inspect ? ['--inspect=127.0.0.1:0'] : [];
  const child = spawn(process.execPath, [...profiling, ...inspecting, '--import', 'tsx', 'src/main.ts'], {
    cwd: options.serverDir,
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      PORT: String(port),
      HOST: '127.0.0.1',
      PUBLIC_URL: baseUrl,
      DATA_DIR: dataDir,
      TWILIO_AUTH_TOKEN: authToken,
      OPENAI_API_KEY: 'bench',
      OPENAI_BASE_URL: options.openaiBaseUrl,
      LOG_LEVEL: 'warn',
      AUDIO_RETENTION: 'delete',
      PIPELINED_REPLIES: String(options.pipelined),
      ...(database ? { DATABASE_URL: database.url } : {}),
      ...options.env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const output: string[] = [];
  const keep = (chunk: Buffer) => {
    output.push(chunk.toString());
    if (output.length > 200) output.shift();
  };
  child.stdout?.on('data', keep);
  let inspectorUrl: string | undefined;
  child.stderr?.on('data', (chunk: Buffer) => {
    keep(chunk);
    for (const line of chunk.toString().split('\n').filter(Boolean)) {
      // The inspector announces itself and each client on stderr: its address is kept, the rest is not worth showing.
      inspectorUrl ??= /^Debugger listening on (ws:\/\/\S+)/.exec(line)?.[1];
      if (/^(Debugger (listening|attached|ending)|For help, see|Waiting for the debugger)/.test(line)) continue;
      // Warnings and errors from the server are worth seeing while the bench runs.
      process.stderr.write(`  [${options.name}] ${line.slice(0, 300)}\n`);
    }
  });
  let exited = false;
  const entry = { child, dataDir };
  running.add(entry);
  const exit = new Promise<void>((resolve) => child.once('exit', () => {
    exited = true;
    running.delete(entry);
    resolve();
  }));

  const deadline = Date.now() + 60_000;
  for (;;) {
    if (exited) throw new Error(`the ${options.name} server exited while starting:\n${output.join('')}`);
    const ready = await request('GET', `${baseUrl}/readyz`).then((answer) => answer.status === 200, () => false);
    if (ready) break;
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`the ${options.name} server did not become ready within 60 s:\n${output.join('')}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }

  return {
    name: options.name,
    baseUrl,
    authToken,
    process: child,
    dataDir,
    databaseUrl: database?.url,
    inspectorUrl,
    async stop() {
      if (!exited) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 25_000);
        await exit;
        clearTimeout(timer);
      }
      await rm(dataDir, { recursive: true, force: true });
      await database?.drop();
    },
  };
}

/** The server's own view of itself, from `/metrics` (which answers loopback clients without a token). */
export interface ServerMetrics {
  at: number;
  cpuSeconds: number;
  /** `callme_event_loop_busy_seconds`: the main thread's busy time so far (worker threads not included). */
  loopBusySeconds: number;
  residentBytes: number;
  heapUsedBytes: number;
  /** prom-client's event-loop delay percentiles since the previous scrape (the scrape resets them). */
  eventLoopP50Seconds: number;
  eventLoopP99Seconds: number;
  eventLoopMaxSeconds: number;
  /** `callme_stream_speech_to_frame_seconds`: cumulative counts by upper bound (seconds), ascending, `+Inf` last. */
  speechToFrameBuckets: Array<[number, number]>;
}

/** Percentile of the observations between two scrapes of a histogram, as the upper bound of the bucket it falls in. */
export function bucketPercentile(before: Array<[number, number]>, after: Array<[number, number]>, q: number): { count: number; upperBound: number } {
  const earlier = new Map(before);
  const counts = after.map(([bound, count]): [number, number] => [bound, count - (earlier.get(bound) ?? 0)]);
  const total = counts.at(-1)?.[1] ?? 0;
  const bucket = counts.find(([, count]) => count >= q * total);
  return { count: total, upperBound: total > 0 && bucket ? bucket[0] : Number.NaN };
}

export async function scrapeMetrics(server: BenchServer): Promise<ServerMetrics> {
  const answer = await request('GET', `${server.baseUrl}/metrics`);
  if (answer.status !== 200) throw new Error(`/metrics answered ${answer.status}`);
  const values = new Map<string, number>();
  const speechToFrameBuckets: Array<[number, number]> = [];
  for (const line of answer.body.toString('utf8').split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const bucket = /^callme_stream_speech_to_frame_seconds_bucket\{le="([^"]+)"\}\s+(\S+)/.exec(line);
    if (bucket) speechToFrameBuckets.push([bucket[1] === '+Inf' ? Number.POSITIVE_INFINITY : Number(bucket[1]), Number(bucket[2])]);
    const match = /^([a-zA-Z_:][\w:]*)(?:\{[^}]*\})?\s+(\S+)/.exec(line);
    if (match && !values.has(match[1])) values.set(match[1], Number(match[2]));
  }
  const value = (name: string) => values.get(name) ?? Number.NaN;
  return {
    at: performance.now(),
    cpuSeconds: value('callme_process_cpu_seconds_total'),
    loopBusySeconds: value('callme_event_loop_busy_seconds'),
    residentBytes: value('callme_process_resident_memory_bytes'),
    heapUsedBytes: value('callme_nodejs_heap_size_used_bytes'),
    eventLoopP50Seconds: value('callme_nodejs_eventloop_lag_p50_seconds'),
    eventLoopP99Seconds: value('callme_nodejs_eventloop_lag_p99_seconds'),
    eventLoopMaxSeconds: value('callme_nodejs_eventloop_lag_max_seconds'),
    speechToFrameBuckets,
  };
}

async function createDatabase(serverUrl: string, name: string): Promise<{ url: string; drop(): Promise<void> }> {
  const admin = async (sql: string) => {
    const client = new pg.Client({ connectionString: serverUrl });
    await client.connect();
    try {
      await client.query(sql);
    } finally {
      await client.end();
    }
  };
  await admin(`DROP DATABASE IF EXISTS ${name}`);
  await admin(`CREATE DATABASE ${name}`);
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  return { url: url.toString(), drop: () => admin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`) };
}


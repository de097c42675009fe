import { spawn, type ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';
import { copyFile, cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { request } from '../http-client.js';
import type { BenchServer } from '../server-process.js';
import { freePort } from '../../src/testing/free-port.js';

/**
 * One callme server for the stream bench, started as production starts it
 * (`node --import tsx src/main.ts`, its own process) with a profiles folder
 * holding the restaurant profile and a `stream`-mode copy of it answering the
 * bench's number. It satisfies `BenchServer`, so `scrapeMetrics` reads it.
 */
export interface StreamServer extends BenchServer {
  /** The number the stream profile answers. */
  streamNumber: string;
  /** The stream profile's turn-taking settings, as written. */
  stream: { endOfSpeechMs: number; minSpeechMs: number; silenceRepromptMs: number; maxCallSeconds: number };
}

export interface StartStreamServerOptions {
  openaiBaseUrl: string;
  serverDir: string;
  /** A PostgreSQL server URL: the server gets a throwaway database there instead of embedded PGlite. */
  databaseUrl?: string;
  /** `VAD_THREADS` for the server; its default when absent. */
  vadThreads?: number;
  /** `PGLITE_THREAD` for the server; its default when absent. */
  pgliteThread?: boolean;
  /** Folder for V8 CPU profiles (`--cpu-prof`), written when the server stops. */
  cpuProfileDir?: string;
}

const authToken = 'bench-twilio-auth-token';
export const benchStreamNumber = '+15550007777';
/** The profile defaults (README, "Three ways to talk"), written out so the report can quote them; only the reprompt is longer, so a caller listening to a long reply is never reprompted. */
const streamSettings = { endOfSpeechMs: 600, minSpeechMs: 600, silenceRepromptMs: 30_000, maxCallSeconds: 900 };

const running = new Set<{ child: ChildProcess; dirs: string[] }>();
process.on('exit', () => {
  for (const { child, dirs } of running) {
    child.kill('SIGKILL');
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  }
});

export async function startStreamServer(options: StartStreamServerOptions): Promise<StreamServer> {
  const port = await freePort();
  const dataDir = await mkdtemp(path.join(tmpdir(), 'callme-bench-stream-'));
  const profilesDir = path.join(dataDir, 'profiles');
  await mkdir(profilesDir);
  await copyFile(path.join(options.serverDir, 'profiles/restaurant.json'), path.join(profilesDir, 'restaurant.json'));
  // Its knowledge sources too (paths relative to the profiles folder): without them each turn would skip the knowledge search a real line runs.
  await cp(path.join(options.serverDir, 'profiles/knowledge'), path.join(profilesDir, 'knowledge'), { recursive: true });
  const restaurant = JSON.parse(await readFile(path.join(options.serverDir, 'profiles/restaurant.json'), 'utf8'));
  await writeFile(
    path.join(profilesDir, 'restaurant-stream.json'),
    JSON.stringify({
      ...restaurant,
      id: 'restaurant-stream',
      greeting: 'Bella Vista, hello! How can I help?',
      mode: 'stream',
      phoneNumbers: [benchStreamNumber],
      stream: streamSettings,
    }, null, 2),
  );
  const database = options.databaseUrl ? await createDatabase(options.databaseUrl, `callme_bench_stream_${process.pid}`) : undefined;
  const baseUrl = `http://127.0.0.1:${port}`;
  const profiling = options.cpuProfileDir ? ['--cpu-prof', `--cpu-prof-dir=${options.cpuProfileDir}`] : [];
  const child = spawn(process.execPath, [...profiling, '--import', 'tsx', 'src/main.ts'], {
    cwd: options.serverDir,
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      PORT: String(port),
      HOST: '127.0.0.1',
      PUBLIC_URL: baseUrl,
      DATA_DIR: path.join(dataDir, 'data'),
      PROFILES_DIR: profilesDir,
      TWILIO_AUTH_TOKEN: authToken,
      OPENAI_API_KEY: 'bench',
      OPENAI_BASE_URL: options.openaiBaseUrl,
      LOG_LEVEL: 'warn',
      AUDIO_RETENTION: 'delete',
      // Every simulated call has a number of its own; the limit must not turn a level's calls away.
      MAX_CALLS_PER_NUMBER_PER_HOUR: '100000',
      ...(database ? { DATABASE_URL: database.url } : {}),
      ...(options.vadThreads === undefined ? {} : { VAD_THREADS: String(options.vadThreads) }),
      ...(options.pgliteThread === undefined ? {} : { PGLITE_THREAD: String(options.pgliteThread) }),
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const output: string[] = [];
  const keep = (chunk: Buffer) => {
    output.push(chunk.toString());
    if (output.length > 200) output.shift();
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', (chunk: Buffer) => {
    keep(chunk);
    for (const line of chunk.toString().split('\n').filter(Boolean)) process.stderr.write(`  [server] ${line.slice(0, 300)}\n`);
  });
  let exited = false;
  const entry = { child, dirs: [dataDir] };
  running.add(entry);
  const exit = new Promise<void>((resolve) => child.once('exit', () => {
    exited = true;
    running.delete(entry);
    resolve();
  }));

  const deadline = Date.now() + 60_000;
  for (;;) {
    if (exited) throw new Error(`the server exited while starting:\n${output.join('')}`);
    const ready = await request('GET', `${baseUrl}/readyz`).then((answer) => answer.status === 200, () => false);
    if (ready) break;
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`the server did not become ready within 60 s:\n${output.join('')}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }

  return {
    name: 'stream',
    baseUrl,
    authToken,
    process: child,
    dataDir,
    streamNumber: benchStreamNumber,
    stream: streamSettings,
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

/** Resident set of a process from /proc (Linux), in bytes; reading it costs the process nothing. */
export async function residentBytes(pid: number): Promise<number> {
  try {
    const status = await readFile(`/proc/${pid}/status`, 'utf8');
    const kb = /^VmRSS:\s+(\d+)\s+kB/m.exec(status)?.[1];
    return kb === undefined ? Number.NaN : Number(kb) * 1024;
  } catch {
    return Number.NaN;
  }
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


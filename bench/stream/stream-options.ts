import { parseArgs } from 'node:util';

export type RampProfile = 'realistic' | 'zero';

/** What `npm run bench -- --mode stream …` asked for, with every default filled in. */
export interface StreamBenchOptions {
  quick: boolean;
  /** Latency phase: calls in flight, how long they keep starting turns, share of turns spoken over the reply. */
  latencyCalls: number;
  latencySeconds: number;
  bargeInShare: number;
  /** Injected transcription delay (realistic profile). */
  transcriptionMs: number;
  /** Concurrency ramp: simultaneous streams per level, measured seconds per level, and the fake's profile. */
  levels: number[];
  levelSeconds: number;
  rampProfile: RampProfile;
  /** Processes the simulated callers of a ramp level are spread over. */
  callerProcesses: number;
  databaseUrl?: string;
  /** The server's `VAD_THREADS`; `undefined` leaves its default (auto). */
  vadThreads?: number;
  /** The server's `PGLITE_THREAD`; `undefined` leaves its default. */
  pgliteThread?: boolean;
  cpuProfile: boolean;
  serverDir: string;
  outDir: string;
  seed: number;
}

const usage = `npm run bench -- --mode stream [options]      (or: npx tsx bench/stream/run-stream.ts [options])

  --quick                    a short smoke run (latency 30 s, levels of 12 s)
  --latency-calls N          latency phase: calls in flight (default 20)
  --latency-seconds N        latency phase: seconds during which callers start turns (default 75; 0 skips it)
  --barge-in-share F         latency phase: share of turns spoken over the reply (default 0.5)
  --transcription-ms N       injected transcription delay, ±20 % (default 350)
  --levels 25,50,100,200     concurrency ramp: simultaneous stream calls per level (0 skips the ramp)
  --level-seconds N          measured seconds per level (default 30)
  --ramp-profile P           realistic (default) or zero: the fake's latency profile during the ramp
  --caller-processes N       processes the simulated callers of a level are spread over (default 2)
  --database-url URL         run the server on a throwaway database of this PostgreSQL server instead of PGlite
  --pglite-thread true|false the server's PGLITE_THREAD (default: its own, a thread where there are 2+ cores)
  --vad-threads N            the server's VAD_THREADS (default: its own, one fewer than the cores; 0 = on the event loop)
  --cpu-prof                 write the server's V8 CPU profile to <out>/profiles and summarize it
  --server-dir DIR           the callme checkout to run (default: this one)
  --out DIR                  where stream-latest.json and .svg go (default bench/results)
  --seed N                   seed of replies, jitter and caller choices (default 1)
`;

export function parseStreamOptions(argv: string[]): StreamBenchOptions | undefined {
  const { values } = parseArgs({
    args: argv,
    options: {
      mode: { type: 'string' },
      quick: { type: 'boolean', default: false },
      'latency-calls': { type: 'string' },
      'latency-seconds': { type: 'string' },
      'barge-in-share': { type: 'string' },
      'transcription-ms': { type: 'string' },
      levels: { type: 'string' },
      'level-seconds': { type: 'string' },
      'ramp-profile': { type: 'string' },
      'caller-processes': { type: 'string' },
      'database-url': { type: 'string' },
      'cpu-prof': { type: 'boolean', default: false },
      'vad-threads': { type: 'string' },
      'pglite-thread': { type: 'string' },
      'server-dir': { type: 'string' },
      out: { type: 'string' },
      seed: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(usage);
    return undefined;
  }
  if (values.mode !== undefined && values.mode !== 'stream') throw new Error(`this is the stream bench; --mode must be stream, got ${values.mode}`);
  const rampProfile = values['ramp-profile'] ?? 'realistic';
  if (rampProfile !== 'realistic' && rampProfile !== 'zero') throw new Error(`--ramp-profile must be realistic or zero, got ${rampProfile}`);
  const number = (name: string, text: string | undefined, fallback: number) => {
    if (text === undefined) return fallback;
    const value = Number(text);
    if (!Number.isFinite(value) || value < 0) throw new Error(`--${name} must be a non-negative number, got ${text}`);
    return value;
  };
  const quick = values.quick;
  return {
    quick,
    latencyCalls: Math.max(1, Math.round(number('latency-calls', values['latency-calls'], quick ? 10 : 20))),
    latencySeconds: number('latency-seconds', values['latency-seconds'], quick ? 30 : 75),
    bargeInShare: Math.min(1, number('barge-in-share', values['barge-in-share'], 0.5)),
    transcriptionMs: number('transcription-ms', values['transcription-ms'], 350),
    levels: values.levels === undefined
      ? (quick ? [25, 100] : [25, 50, 100, 200])
      : values.levels.split(',').map((item) => Math.round(number('levels', item.trim(), 0))).filter((value) => value > 0),
    levelSeconds: number('level-seconds', values['level-seconds'], quick ? 12 : 30),
    rampProfile,
    callerProcesses: Math.max(1, Math.round(number('caller-processes', values['caller-processes'], 2))),
    databaseUrl: values['database-url'],
    cpuProfile: values['cpu-prof'],
    pgliteThread: values['pglite-thread'] === undefined ? undefined : trueOrFalse(values['pglite-thread'], '--pglite-thread'),
    vadThreads: values['vad-threads'] === undefined ? undefined : Math.round(number('vad-threads', values['vad-threads'], 0)),
    serverDir: values['server-dir'] ?? process.cwd(),
    outDir: values.out ?? 'bench/results',
    seed: Math.round(number('seed', values.seed, 1)),
  };
}

function trueOrFalse(value: string, name: string): boolean {
  if (value !== 'true' && value !== 'false') throw new Error(`${name} must be true or false, got ${value}`);
  return value === 'true';
}

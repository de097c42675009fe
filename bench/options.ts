import { parseArgs } from 'node:util';

export type ProfileName = 'realistic' | 'zero';

/** What `npm run bench -- …` asked for, with every default filled in. */
export interface BenchOptions {
  profiles: ProfileName[];
  quick: boolean;
  /** Realistic comparison: caller turns per path, and calls in flight. */
  turns: number;
  calls: number;
  turnsPerCall: number;
  /** Concurrency levels for "added latency vs concurrency". */
  levels: number[];
  /** Zero profile: concurrency ramp for the capacity figure, and its bound. */
  ramp: number[];
  rampBoundMs: number;
  /** Seconds of calling per zero-profile level (turns per call = seconds × 1000 / think time). */
  levelSeconds: number;
  /** Longest a level other than the realistic comparison may run before callers stop starting turns. */
  levelLimitSeconds: number;
  /** Mean think time (ms) per profile; undefined means the profile's default. */
  thinkMs?: number;
  databaseUrl?: string;
  /** The servers' `PGLITE_THREAD`; `undefined` leaves their default. */
  pgliteThread?: boolean;
  cpuProfile: boolean;
  serverDir: string;
  outDir: string;
  seed: number;
}

const usage = `npm run bench -- [options]

  --profile realistic|zero   latency profile of the fake OpenAI (default realistic)
  --all                      both profiles, realistic first
  --turns N                  realistic: caller turns per path in the comparison (default 1000; --quick 100)
  --calls N                  realistic: calls in flight during the comparison (default 50; --quick 10)
  --quick                    a short run for smoke tests
  --levels 1,50,200          concurrency levels for added latency (default 1,50,200)
  --ramp 50,100,…            zero: concurrency ramp for the capacity figure
  --think-ms N               pause before each caller answer (default: realistic 8000, zero 1000)
  --database-url URL         run the servers on PostgreSQL instead of the embedded PGlite
  --pglite-thread true|false the servers' PGLITE_THREAD (default: theirs, a thread where there are 2+ cores)
  --cpu-prof                 write the servers' V8 CPU profiles to <out>/profiles and summarize them
  --server-dir DIR           the callme checkout to run (default: this one)
  --out DIR                  where latest.json and latest.svg go (default bench/results)
  --seed N                   seed of the replies, jitter and think times (default 1)
`;

export function parseOptions(argv: string[]): BenchOptions | undefined {
  const { values } = parseArgs({
    args: argv,
    options: {
      profile: { type: 'string' },
      all: { type: 'boolean', default: false },
      turns: { type: 'string' },
      calls: { type: 'string' },
      quick: { type: 'boolean', default: false },
      levels: { type: 'string' },
      ramp: { type: 'string' },
      'think-ms': { type: 'string' },
      'database-url': { type: 'string' },
      'cpu-prof': { type: 'boolean', default: false },
      'server-dir': { type: 'string' },
      out: { type: 'string' },
      'pglite-thread': { type: 'string' },
      seed: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(usage);
    return undefined;
  }
  const profile = values.profile ?? 'realistic';
  if (profile !== 'realistic' && profile !== 'zero') throw new Error(`--profile must be realistic or zero, got ${profile}`);
  const quick = values.quick;
  const number = (name: string, text: string | undefined, fallback: number) => {
    if (text === undefined) return fallback;
    const value = Number(text);
    if (!Number.isFinite(value) || value < 0) throw new Error(`--${name} must be a non-negative number, got ${text}`);
    return value;
  };
  const list = (name: string, text: string | undefined, fallback: number[]) =>
    text === undefined ? fallback : text.split(',').map((item) => number(name, item.trim(), 0)).filter((value) => value > 0);
  const turns = Math.max(1, Math.round(number('turns', values.turns, quick ? 100 : 1000)));
  const calls = Math.max(1, Math.round(number('calls', values.calls, quick ? 10 : 50)));
  return {
    profiles: values.all ? ['realistic', 'zero'] : [profile],
    quick,
    turns,
    calls,
    // Under the profile's 40-turn limit, so every call keeps listening.
    turnsPerCall: Math.min(30, Math.ceil(turns / calls)),
    levels: list('levels', values.levels, [1, 50, 200]),
    ramp: list('ramp', values.ramp, quick ? [50, 100, 200, 500] : [50, 100, 200, 300, 500, 750, 1000, 1500, 2000]),
    rampBoundMs: 10,
    levelSeconds: quick ? 3 : 6,
    levelLimitSeconds: quick ? 40 : 90,
    thinkMs: values['think-ms'] === undefined ? undefined : number('think-ms', values['think-ms'], 0),
    databaseUrl: values['database-url'],
    pgliteThread: pgliteThread(values['pglite-thread']),
    cpuProfile: values['cpu-prof'],
    serverDir: values['server-dir'] ?? process.cwd(),
    outDir: values.out ?? 'bench/results',
    seed: Math.round(number('seed', values.seed, 1)),
  };
}

function pgliteThread(value: string | undefined): boolean | undefined {
  if (value === undefined) return undefined;
  if (value !== 'true' && value !== 'false') throw new Error(`--pglite-thread must be true or false, got ${value}`);
  return value === 'true';
}

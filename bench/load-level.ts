import { readFile } from 'node:fs/promises';
import { placeCall, type AudioSample, type CallRecorder, type TurnSample, type WebhookSample } from './bench-caller.js';
import { loadBetween, snapshotLoad, type MachineLoad } from './machine-load.js';
import { scrapeMetrics, type BenchServer, type ServerMetrics } from './server-process.js';
import { mulberry32 } from './stats.js';

/** One load level: `concurrency` calls in flight at once until `turns` caller turns are done. */
export interface LevelOptions {
  server: BenchServer;
  concurrency: number;
  turns: number;
  /** Turns per call; a caller slot places calls one after another until its share of turns is done. */
  turnsPerCall: number;
  /** Mean pause between a `<Gather>` and the caller's answer (uniform ±50 %); 0 for back to back. */
  thinkMs: number;
  /** Call indexes start here (each call has its own number, so the fake can tell them apart). */
  firstCallIndex: number;
  seed: number;
  label: string;
  /** The bench's other processes (fake, other server), so their CPU is not counted as someone else's. */
  ownPids: number[];
  /** No new turn starts after this long (turns in flight finish); unset for no limit. */
  maxSeconds?: number;
}

export interface LevelRun {
  options: Omit<LevelOptions, 'server' | 'ownPids'> & { server: string };
  wallMs: number;
  calls: number;
  turns: TurnSample[];
  webhooks: WebhookSample[];
  audio: AudioSample[];
  errors: string[];
  before: ServerMetrics;
  after: ServerMetrics;
  /** Largest resident set seen while the level ran (sampled from /proc, which costs the server nothing). */
  peakResidentBytes: number;
  machine: MachineLoad;
  /** The level hit its time limit before all its turns were done. */
  cutShort: boolean;
}

export async function runLevel(options: LevelOptions): Promise<LevelRun> {
  const { server, concurrency } = options;
  const random = mulberry32(options.seed);
  const turns: TurnSample[] = [];
  const webhooks: WebhookSample[] = [];
  const audio: AudioSample[] = [];
  const errors: string[] = [];
  const steps = new Map<number, string>();
  const recorder: CallRecorder = {
    turn: (sample) => turns.push(sample),
    webhook: (sample) => webhooks.push(sample),
    audio: (sample) => audio.push(sample),
    error: (message) => errors.push(message),
    step: (callIndex, what) => steps.set(callIndex, what),
  };
  let nextCall = options.firstCallIndex;
  const thinkMs = () => (options.thinkMs > 0 ? options.thinkMs * (0.5 + random()) : 0);
  // Calls start spread over a second (or a think time), not all in the same millisecond.
  const spreadMs = Math.max(options.thinkMs, concurrency > 1 ? 1000 : 0);

  let peakResidentBytes = 0;
  const sampleResident = async () => {
    const resident = await residentBytes(server.process.pid);
    if (resident !== undefined) peakResidentBytes = Math.max(peakResidentBytes, resident);
  };
  const pids = [process.pid, ...options.ownPids, ...(server.process.pid ? [server.process.pid] : [])];
  const before = await scrapeMetrics(server);
  const loadBefore = await snapshotLoad(pids);
  peakResidentBytes = before.residentBytes;
  const started = performance.now();
  let lastReport = started;
  let turnsAtLastReport = 0;
  const progress = setInterval(() => {
    void sampleResident();
    const now = performance.now();
    if (now - lastReport < 5000) return;
    lastReport = now;
    const seconds = (now - started) / 1000;
    let line = `    ${options.label}: ${turns.length}/${options.turns} turns, ${(turns.length / seconds).toFixed(1)} turns/s, ${seconds.toFixed(0)} s`;
    if (turns.length === turnsAtLastReport && steps.size > 0) {
      // No turn finished in 5 s: say what the calls in flight are waiting on.
      const waiting = new Map<string, number>();
      for (const what of steps.values()) {
        const key = what.replace(/[?&](turn|from)=\d+/g, '');
        waiting.set(key, (waiting.get(key) ?? 0) + 1);
      }
      line += `; no progress, calls waiting on: ${[...waiting.entries()].map(([what, count]) => `${count}× ${what}`).join(', ')}`;
    }
    turnsAtLastReport = turns.length;
    process.stdout.write(`${line}\n`);
  }, 500);

  const deadline = options.maxSeconds === undefined ? Number.POSITIVE_INFINITY : started + options.maxSeconds * 1000;
  let cutShort = false;
  const keepGoing = () => {
    if (performance.now() < deadline) return true;
    cutShort = true;
    return false;
  };
  const slot = async (index: number) => {
    let quota = Math.floor(options.turns / concurrency) + (index < options.turns % concurrency ? 1 : 0);
    await sleep(random() * spreadMs);
    while (quota > 0 && keepGoing()) {
      const callTurns = Math.min(options.turnsPerCall, quota);
      quota -= callTurns;
      const callIndex = nextCall++;
      await placeCall({ server, callIndex, turns: callTurns, thinkMs, recorder, keepGoing });
      steps.delete(callIndex);
    }
  };
  try {
    await Promise.all(Array.from({ length: concurrency }, (_, index) => slot(index)));
  } finally {
    clearInterval(progress);
  }
  const wallMs = performance.now() - started;
  const machine = loadBetween(loadBefore, await snapshotLoad(pids));
  await sampleResident();
  const after = await scrapeMetrics(server);
  return {
    options: { ...withoutProcesses(options), server: server.name },
    wallMs,
    calls: nextCall - options.firstCallIndex,
    turns,
    webhooks,
    audio,
    errors,
    before,
    after,
    peakResidentBytes,
    machine,
    cutShort,
  };
}

async function residentBytes(pid: number | undefined): Promise<number | undefined> {
  if (pid === undefined) return undefined;
  try {
    const status = await readFile(`/proc/${pid}/status`, 'utf8');
    const kilobytes = /VmRSS:\s+(\d+)\s+kB/.exec(status)?.[1];
    return kilobytes === undefined ? undefined : Number(kilobytes) * 1024;
  } catch {
    return undefined;
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function withoutProcesses({ server: _server, ownPids: _pids, ...rest }: LevelOptions): Omit<LevelOptions, 'server' | 'ownPids'> {
  return rest;
}

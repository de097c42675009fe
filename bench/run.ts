import { execFileSync } from 'node:child_process';
import { mkdir, readdir, rename, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { latencyProfiles } from '../src/testing/fake-openai-server.js';
import { renderChart } from './chart-svg.js';
import { formatProfileSummary, summarizeCpuProfile, type ProfileSummary } from './cpu-profile-summary.js';
import { startFakeProcess, type FakeOpenAIHandle } from './fake-openai-handle.js';
import { levelFigures, type LevelFigures } from './figures.js';
import { realisticGoals, zeroGoals } from './goals.js';
import { request } from './http-client.js';
import { runLevel } from './load-level.js';
import { parseOptions, type BenchOptions, type ProfileName } from './options.js';
import {
  addedLatency,
  comparisonTable,
  fakeHealthLine,
  goalsTable,
  levelsTable,
  ms,
  rampTable,
  stagesTable,
  type Comparison,
  type ProfileResult,
  type Ramp,
} from './report.js';
import { startServer, type BenchServer } from './server-process.js';
import { readStages } from './stage-timeline.js';
import { summarize } from './stats.js';

/**
 * `npm run bench`: callme's latency benchmark, fully offline. A fake OpenAI
 * (its own process) injects the latencies of a profile; two callme servers
 * (pipelined and sequential replies, each its own process) answer calls from
 * a lean simulated Twilio; the bench measures time to first audio, compares it
 * with what the injected delays allow, and reads the servers' own metrics.
 * See bench/README.md for the method.
 */

let nextCallIndex = 1;

async function main(): Promise<void> {
  // `--mode stream` measures media-stream calls instead (bench/stream/README.md).
  const modeIndex = process.argv.indexOf('--mode');
  if (modeIndex > 0 && process.argv[modeIndex + 1] === 'stream') {
    const { runStreamBench } = await import('./stream/run-stream.js');
    const rest = process.argv.slice(2).filter((_, index) => index !== modeIndex - 2 && index !== modeIndex - 1);
    await runStreamBench(rest);
    return;
  }
  const options = parseOptions(process.argv.slice(2));
  if (!options) return;
  const startedAt = new Date();
  const environment = describeEnvironment(options);
  console.log(`callme bench: ${options.profiles.join(' + ')}${options.quick ? ' (quick)' : ''} on ${environment.cpuModel} ×${environment.cpus}, Node ${environment.node}, ${environment.database}`);
  if (environment.gitDirty.length) console.log(`  working tree has uncommitted changes: ${environment.gitDirty.join(', ')}`);

  const profileDir = path.resolve(options.outDir, 'profiles', startedAt.toISOString().replace(/[:.]/g, '-'));
  if (options.cpuProfile) await mkdir(profileDir, { recursive: true });

  const results: ProfileResult[] = [];
  for (const profile of options.profiles) results.push(await runProfile(profile, options, options.cpuProfile ? profileDir : undefined));

  const cpuProfiles: ProfileSummary[] = [];
  if (options.cpuProfile) {
    for (const file of (await readdir(profileDir, { recursive: true })).filter((name) => name.endsWith('.cpuprofile')).sort()) {
      const summary = await summarizeCpuProfile(path.join(profileDir, file));
      // tsx's module-loader thread writes a profile too; only the thread that ran the server matters.
      if (summary.inclusive.length > 0) cpuProfiles.push(summary);
    }
    console.log(`CPU profiles: ${profileDir} (open in Chrome DevTools → Performance, or speedscope)`);
  }

  console.log('');
  for (const result of results) {
    console.log(`=== ${result.profile} profile (${describeLatency(result.latencyProfile)}) ===`);
    console.log(`HTTP round trip to the server, bench client included (GET /healthz): p50 ${ms(result.httpBaselineMs.p50)} ms, p99 ${ms(result.httpBaselineMs.p99)} ms\n`);
    if (result.comparison) console.log(`${comparisonTable(result.comparison)}\n`);
    const withStages = new Set([result.comparison?.pipelined, result.comparison?.sequential, ...result.levels].filter((figures) => figures?.stages));
    for (const figures of withStages) console.log(`${stagesTable(figures!)}\n`);
    if (result.levels.length) {
      const title = result.profile === 'zero'
        ? 'Added latency vs concurrency (ms; added = webhook + first audio download, nothing injected)'
        : 'Added latency vs concurrency (ms; added = time to first audio − its floor)';
      console.log(`${levelsTable(result.levels, title)}\n`);
      console.log(`${fakeHealthLine(result.levels)}\n`);
    }
    if (result.ramp) console.log(`${rampTable(result.ramp)}\n`);
    if (result.goals.length) console.log(`${goalsTable(result.goals)}\n`);
  }
  for (const summary of cpuProfiles) console.log(`${formatProfileSummary(summary)}\n`);

  const finishedAt = new Date();
  const json = {
    version: 1,
    startedAt: startedAt.toISOString(),
    finishedAt: finishedAt.toISOString(),
    environment,
    options: { ...options, serverDir: path.relative(process.cwd(), options.serverDir) || '.' },
    results,
    cpuProfiles,
  };
  await mkdir(options.outDir, { recursive: true });
  const stem = `latest-${options.profiles.join('+')}${options.quick ? '-quick' : ''}`;
  const caption = `callme ${environment.gitCommit?.slice(0, 10) ?? ''}${environment.gitDirty.length ? ' (modified)' : ''} · ${environment.cpuModel} ×${environment.cpus} · Node ${environment.node} · ${environment.database} · ${finishedAt.toISOString().slice(0, 16)}Z`;
  const svg = renderChart(results, caption);
  const written: string[] = [];
  for (const name of ['latest', stem]) {
    written.push(await writeAtomically(path.join(options.outDir, `${name}.json`), `${JSON.stringify(json, null, 2)}\n`));
    written.push(await writeAtomically(path.join(options.outDir, `${name}.svg`), svg));
  }
  console.log(`Results: ${written.join(', ')} (${((finishedAt.getTime() - startedAt.getTime()) / 1000).toFixed(0)} s)`);
}

async function runProfile(profile: ProfileName, options: BenchOptions, cpuProfileDir: string | undefined): Promise<ProfileResult> {
  console.log(`\n--- ${profile} profile ---`);
  const fake = await startFakeProcess(profile, options.seed);
  const servers: BenchServer[] = [];
  try {
    for (const [name, pipelined] of [['pipelined', true], ['sequential', false]] as const) {
      servers.push(await startServer({ name, pipelined, openaiBaseUrl: fake.url, serverDir: options.serverDir, databaseUrl: options.databaseUrl, cpuProfileDir,
        env: options.pgliteThread === undefined ? undefined : { PGLITE_THREAD: String(options.pgliteThread) } }));
    }
    const [pipelined, sequential] = servers;
    const ownPids = (server: BenchServer) => [fake.pid, ...servers.filter((other) => other !== server).map((other) => other.process.pid ?? 0)];
    // The servers synthesize their fixed phrases at start; wait for that, then warm each one up (JIT, connections, caches).
    await fake.waitQuiet(1000, 60_000);
    for (const server of servers) {
      await runLevel({ server, concurrency: 4, turns: 8, turnsPerCall: 2, thinkMs: 0, firstCallIndex: takeCallIndexes(4), seed: options.seed, label: `${server.name} warm-up`, ownPids: ownPids(server) });
    }
    const httpBaselineMs = await httpBaseline(pipelined);

    const measure = async (server: BenchServer, concurrency: number, turns: number, turnsPerCall: number, thinkMs: number, maxSeconds?: number) => {
      await fake.takeLog();
      const label = `${server.name} ×${concurrency}`;
      console.log(`  ${label}: ${turns} turns, ${turnsPerCall} per call, think ${Math.round(thinkMs)} ms`);
      const run = await runLevel({
        server, concurrency, turns, turnsPerCall, thinkMs, label, ownPids: ownPids(server), maxSeconds,
        firstCallIndex: takeCallIndexes(Math.ceil(turns / turnsPerCall) + concurrency),
        seed: options.seed + concurrency,
      });
      const log = await fake.takeLog();
      const figures = levelFigures(run, profile, server === pipelined, log.requests, log.loopDelayMs.p99);
      if (server.databaseUrl) {
        figures.stages = await readStages(server.databaseUrl, run.turns, log.requests, server === pipelined).catch((error: Error) => {
          console.log(`    (stage timestamps not read: ${error.message})`);
          return undefined;
        });
      }
      printLevel(figures);
      return figures;
    };

    const result: ProfileResult = { profile, latencyProfile: { ...latencyProfiles[profile] }, httpBaselineMs, levels: [], goals: [] };
    if (profile === 'realistic') {
      // A caller hears the reply out (5–10 s of audio here) and speaks before the next webhook: 8 s ±50 %.
      // `--think-ms 0` sends turns back to back, which measures a saturated server instead.
      const thinkMs = options.thinkMs ?? 8000;
      const pipelinedRun = await measure(pipelined, options.calls, options.turns, options.turnsPerCall, thinkMs);
      const sequentialRun = await measure(sequential, options.calls, options.turns, options.turnsPerCall, thinkMs);
      const ratio = (key: 'p50' | 'p95' | 'p99') => sequentialRun.firstAudioMs[key] / pipelinedRun.firstAudioMs[key];
      result.comparison = { concurrency: options.calls, pipelined: pipelinedRun, sequential: sequentialRun, ratio: { p50: ratio('p50'), p95: ratio('p95'), p99: ratio('p99') } } satisfies Comparison;
      for (const concurrency of options.levels) {
        if (concurrency === options.calls) {
          result.levels.push(pipelinedRun, sequentialRun);
          continue;
        }
        const turnsPerCall = concurrency === 1 ? (options.quick ? 3 : 10) : options.quick ? 1 : 2;
        for (const server of servers) result.levels.push(await measure(server, concurrency, concurrency * turnsPerCall, turnsPerCall, thinkMs, options.levelLimitSeconds));
      }
      result.goals = realisticGoals(result.comparison);
    } else {
      const thinkMs = options.thinkMs ?? 1000;
      const zeroLevel = (server: BenchServer, concurrency: number) => {
        // One call has nobody to queue behind: it runs back to back, and long enough for a p99.
        if (concurrency === 1) return measure(server, 1, options.quick ? 100 : 300, 30, 0, options.levelLimitSeconds);
        const turnsPerCall = Math.max(1, Math.round((options.levelSeconds * 1000) / Math.max(thinkMs, 1)));
        return measure(server, concurrency, concurrency * turnsPerCall, turnsPerCall, thinkMs, options.levelLimitSeconds);
      };
      for (const concurrency of options.levels) for (const server of servers) result.levels.push(await zeroLevel(server, concurrency));
      const ramp: Ramp = { boundMs: options.rampBoundMs, levels: [] };
      for (const concurrency of options.ramp) {
        const known = result.levels.find((figures) => figures.path === 'pipelined' && figures.concurrency === concurrency);
        const figures = known ?? (await zeroLevel(pipelined, concurrency));
        ramp.levels.push(figures);
        if (addedLatency(figures).p99 < ramp.boundMs && figures.errors === 0) {
          ramp.largestPassing = concurrency;
        } else {
          ramp.firstFailing = concurrency;
          break;
        }
      }
      result.ramp = ramp;
      result.goals = zeroGoals(result.levels, ramp);
    }
    return result;
  } finally {
    for (const server of servers) await server.stop().catch((error: Error) => console.error(`stopping ${server.name}: ${error.message}`));
    await fake.close();
  }
}

function printLevel(figures: LevelFigures): void {
  const added = addedLatency(figures);
  console.log(
    `    → ${figures.turns} turns in ${figures.wallSeconds.toFixed(1)} s (${figures.turnsPerSecond.toFixed(1)} turns/s, ${figures.requestsPerSecond.toFixed(0)} req/s); ` +
      `first audio p50 ${ms(figures.firstAudioMs.p50)} / p99 ${ms(figures.firstAudioMs.p99)} ms; added p50 ${ms(added.p50)} / p99 ${ms(added.p99)} ms; ` +
      `CPU ${(100 * figures.server.cpuUtilisation).toFixed(0)} %; event-loop delay p99 ${ms(figures.server.eventLoopDelayP99Ms)} ms; ` +
      `other processes on the machine ${figures.machine.otherCores.toFixed(2)} cores` +
      (figures.abandonedTurns ? `; ${figures.abandonedTurns} turns abandoned` : '') +
      (figures.cutShort ? `; ${figures.turns} of ${figures.plannedTurns} planned turns done` : '') +
      (figures.errors ? `; ${figures.errors} errors (${figures.errorSamples[0]})` : '') +
      (figures.matching.chatMissing || figures.matching.speechMissing ? `; floors missing for ${figures.matching.chatMissing + figures.matching.speechMissing} turns` : ''),
  );
}

function takeCallIndexes(count: number): number {
  const first = nextCallIndex;
  nextCallIndex += count + 1;
  return first;
}

/** What the bench client plus loopback HTTP cost by themselves: a floor under every "added" figure. */
async function httpBaseline(server: BenchServer): Promise<ReturnType<typeof summarize>> {
  const samples: number[] = [];
  for (let index = 0; index < 300; index++) {
    const started = performance.now();
    await request('GET', `${server.baseUrl}/healthz`);
    samples.push(performance.now() - started);
  }
  return summarize(samples.slice(50));
}

function describeEnvironment(options: BenchOptions) {
  const git = (...args: string[]) => {
    try {
      return execFileSync('git', args, { cwd: options.serverDir, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    } catch {
      return undefined;
    }
  };
  const cpus = os.cpus();
  return {
    node: process.versions.node,
    platform: `${os.platform()} ${os.release()} ${os.arch()}`,
    cpuModel: cpus[0]?.model.trim() ?? 'unknown',
    cpus: cpus.length,
    memoryGb: Number((os.totalmem() / 2 ** 30).toFixed(1)),
    date: new Date().toISOString(),
    gitCommit: git('rev-parse', 'HEAD')?.trim(),
    gitDirty: (git('status', '--porcelain') ?? '').split('\n').filter(Boolean).map((line) => line.slice(3)).filter((file) => !file.startsWith('bench/')),
    database: options.databaseUrl ? 'PostgreSQL' : options.pgliteThread === false ? 'PGlite (embedded, on the event loop)' : 'PGlite (embedded)',
  };
}

function describeLatency(profile: Record<string, number>): string {
  return Object.entries(profile).map(([name, value]) => `${name} ${value}`).join(', ');
}

async function writeAtomically(file: string, text: string): Promise<string> {
  const temporary = `${file}.${process.pid}.tmp`;
  await writeFile(temporary, text);
  await rename(temporary, file);
  return file;
}

// Ctrl-C: the 'exit' handlers stop the servers and the fake.
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => process.exit(130));

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error instanceof Error ? error.stack : error);
    process.exit(1);
  },
);

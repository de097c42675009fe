import { execFileSync } from 'node:child_process';
import { mkdir, readdir, rename, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { loadSileroModel } from '../../src/audio/silero-vad.js';
import { latencyProfiles } from '../../src/testing/fake-openai-server.js';
import { formatProfileSummary, summarizeCpuProfile, type ProfileSummary } from '../cpu-profile-summary.js';
import { ms } from '../report.js';
import { epochNow } from '../stats.js';
import { startCallerPool } from './caller-pool.js';
import { analyzeFixture, loadFixture, turnPhrases, type FixtureAnalysis } from './speech-fixtures.js';
import { renderStreamChart } from './stream-chart.js';
import { startStreamFake } from './stream-fake.js';
import { parseStreamOptions, type StreamBenchOptions } from './stream-options.js';
import { plansFor, environmentFor, runLatencyPhase, runRampLevel, type LatencyPhaseResult, type LevelResult, type PhaseContext } from './stream-phases.js';
import { goalsTable, latencyTable, levelsTable, streamGoalRows } from './stream-report.js';
import { residentBytes, startStreamServer } from './stream-server.js';

/**
 * `npm run bench -- --mode stream`: callme's media-stream benchmark, fully
 * offline. A fake OpenAI (its own process) injects realistic latencies, one
 * callme server (its own process) answers stream-mode calls, and simulated
 * Twilio callers (one or two processes of their own) speak real recorded
 * speech into media streams. It measures how soon a reply's first frame
 * follows the caller's last word and what of that the server adds, how fast
 * a barge-in clears Twilio's buffer, and how many streams one process holds.
 * See bench/stream/README.md for the method.
 *
 * Entry point: `runStreamBench(argv)`; run directly with
 * `npx tsx bench/stream/run-stream.ts [options]`.
 */

/** Barge-in fixtures: those the detector takes as an interruption at every phase (the others fail at some). */
function interruptingFixtures(fixtures: Record<string, FixtureAnalysis>): string[] {
  return Object.values(fixtures).filter((analysis) => analysis.talking.every((reaction) => reaction.startedFrame !== undefined)).map((analysis) => analysis.fixture.name);
}

export async function runStreamBench(argv: string[]): Promise<void> {
  const options = parseStreamOptions(argv);
  if (!options) return;
  const startedAt = new Date();
  const environment = describeEnvironment(options);
  console.log(`callme stream bench${options.quick ? ' (quick)' : ''} on ${environment.cpuModel} ×${environment.cpus}, Node ${environment.node}, ${environment.database}`);
  if (environment.gitDirty.length) console.log(`  working tree has uncommitted changes: ${environment.gitDirty.join(', ')}`);

  const profileDir = path.resolve(options.outDir, 'profiles', `stream-${startedAt.toISOString().replace(/[:.]/g, '-')}`);
  if (options.cpuProfile) await mkdir(profileDir, { recursive: true });

  const fake = await startStreamFake('realistic', options.seed, options.transcriptionMs);
  const server = await startStreamServer({ openaiBaseUrl: fake.url, serverDir: options.serverDir, databaseUrl: options.databaseUrl, vadThreads: options.vadThreads, pgliteThread: options.pgliteThread, cpuProfileDir: options.cpuProfile ? profileDir : undefined });
  const pool = await startCallerPool(options.callerProcesses);
  let latency: LatencyPhaseResult | undefined;
  const levels: LevelResult[] = [];
  const fixtureTable: Array<Record<string, unknown>> = [];
  try {
    const timing = { endOfSpeechMs: server.stream.endOfSpeechMs, minSpeechMs: server.stream.minSpeechMs };
    console.log(`  analysing the speech fixtures with the server's turn detector (Silero, 8 phases; endOfSpeechMs ${timing.endOfSpeechMs}, minSpeechMs ${timing.minSpeechMs})`);
    const model = await loadSileroModel();
    const fixtures: Record<string, FixtureAnalysis> = {};
    for (const name of turnPhrases) {
      fixtures[name] = await analyzeFixture(await loadFixture(name), { ...timing, listeningMinSpeechMs: 120 }, model);
      const { fixture, talking, listening } = fixtures[name];
      fixtureTable.push({
        name,
        ms: fixture.frames * 20,
        lastVoicedFrame: fixture.lastVoicedFrame,
        endOfSpeechDetectedMs: listening.map((reaction) => ((reaction.endedFrame ?? Number.NaN) - fixture.lastVoicedFrame) * 20),
        bargeInDetectedAfterMinSpeechMs: talking.map((reaction) => (reaction.startedFrame === undefined ? null : (reaction.startedFrame - (Math.ceil(timing.minSpeechMs / 20) - 1)) * 20)),
      });
    }
    await model.release();
    const bargeInFixtures = interruptingFixtures(fixtures);
    console.log(`  barge-in fixtures (interrupt at every phase): ${bargeInFixtures.join(', ')}`);

    let callIndex = 0;
    const context: PhaseContext = {
      server, fake, pool, fixtures, turnFixtures: [...turnPhrases], bargeInFixtures, timing, seed: options.seed,
      nextCallIndex: () => ++callIndex,
    };
    // The server synthesizes its fixed phrases at start; then a few calls warm it up (JIT, Silero, connections).
    await fake.waitQuiet(1000, 60_000);
    console.log('  warm-up: 4 calls');
    const warmStart = epochNow() + 200;
    const warmStop = warmStart + (options.quick ? 8000 : 12_000);
    await pool.run(environmentFor(context, { bargeInShare: 0.5, replyQuietMs: 1500, window: { from: 0, to: 0 } }), plansFor(context, 'latency', 4, warmStart, 1000, warmStop), 1);

    if (options.latencySeconds > 0) {
      console.log(`  latency phase: ${options.latencyCalls} calls for ${options.latencySeconds} s, ${Math.round(options.bargeInShare * 100)} % of turns spoken over the reply`);
      latency = await runLatencyPhase(context, options.latencyCalls, options.latencySeconds, options.bargeInShare);
      console.log(`    → ${latency.turns} turns; first frame p50 ${ms(latency.firstFrame.measured.p50)} ms, added p99 ${ms(latency.firstFrame.added.p99)} ms; TTS byte → frame p99 ${ms(latency.ttsToFrame.client.p99)} ms; barge-in server p99 ${ms(latency.bargeIn.server.p99)} ms`);
    }

    if (options.rampProfile === 'zero') await fake.setProfile('zero', 0);
    await new Promise((resolve) => setTimeout(resolve, 2000));
    const idleResident = await residentBytes(server.process.pid ?? 0);
    for (const calls of options.levels) {
      console.log(`  ramp: ${calls} streams (${options.rampProfile} profile, ${options.levelSeconds} s measured, callers in ${Math.min(options.callerProcesses, calls)} process(es))`);
      const level = await runRampLevel(context, calls, options.levelSeconds, options.rampProfile, idleResident);
      levels.push(level);
      console.log(
        `    → ${level.callsStarted}/${calls} calls ok, ${level.turns} turns; jitter p99 ${ms(level.jitter.p99Ms)} ms; ELD p99 ${ms(level.server.eventLoopP99Ms)} ms; ` +
          `CPU ${level.server.cpuPercent.toFixed(0)} % (loop busy ${level.server.loopBusyPercent.toFixed(0)} %); RSS ${level.server.residentPeakMb.toFixed(0)} MB (${level.residentPerCallMb.toFixed(2)} MB/call); ` +
          `callers ${(level.callerCores * 100).toFixed(0)} % CPU, loop p99 ${level.callerLoopP99Ms.map(ms).join('/')} ms; other processes ${level.otherCores.toFixed(2)} cores` +
          (level.errors.length ? `; ${level.errors.length} call errors (${level.errors[0]})` : '') + (level.noReply ? `; ${level.noReply} turns without a reply (noReplyTurns in the JSON)` : ''),
      );
      // Let the hung-up calls' turns settle before the next level.
      await new Promise((resolve) => setTimeout(resolve, 3000));
    }
  } finally {
    await pool.close();
    await server.stop().catch((error: Error) => console.error(`stopping the server: ${error.message}`));
    await fake.close();
  }

  const cpuProfiles: ProfileSummary[] = [];
  if (options.cpuProfile) {
    for (const file of (await readdir(profileDir)).filter((name) => name.endsWith('.cpuprofile')).sort()) {
      const summary = await summarizeCpuProfile(path.join(profileDir, file));
      if (summary.inclusive.length > 0) cpuProfiles.push(summary);
    }
  }

  console.log('');
  if (latency) console.log(`${latencyTable(latency, server.stream.endOfSpeechMs)}\n`);
  if (levels.length) console.log(`${levelsTable(levels)}\n`);
  const goals = streamGoalRows(latency, levels);
  console.log(`${goalsTable(goals)}\n`);
  for (const summary of cpuProfiles) console.log(`${formatProfileSummary(summary)}\n`);
  if (options.cpuProfile) console.log(`CPU profile: ${profileDir}`);

  const finishedAt = new Date();
  const json = {
    version: 1,
    mode: 'stream',
    startedAt: startedAt.toISOString(),
    finishedAt: finishedAt.toISOString(),
    environment,
    options: { ...options, serverDir: path.relative(process.cwd(), options.serverDir) || '.' },
    latencyProfile: { ...latencyProfiles.realistic, transcriptionMs: options.transcriptionMs },
    streamProfile: server.stream,
    fixtures: fixtureTable,
    latency,
    levels,
    goals,
    cpuProfiles,
  };
  await mkdir(options.outDir, { recursive: true });
  const caption = `callme ${environment.gitCommit?.slice(0, 10) ?? ''}${environment.gitDirty.length ? ' (modified)' : ''} · ${environment.cpuModel} ×${environment.cpus} · Node ${environment.node} · ${environment.database} · ${finishedAt.toISOString().slice(0, 16)}Z`;
  const stem = `stream-latest${options.quick ? '-quick' : ''}`;
  const written = [
    await writeAtomically(path.join(options.outDir, `${stem}.json`), `${JSON.stringify(json, null, 2)}\n`),
    await writeAtomically(path.join(options.outDir, `${stem}.svg`), renderStreamChart(latency, levels, caption)),
  ];
  console.log(`Results: ${written.join(', ')} (${((finishedAt.getTime() - startedAt.getTime()) / 1000).toFixed(0)} s)`);
}

function describeEnvironment(options: StreamBenchOptions) {
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
    gitCommit: git('rev-parse', 'HEAD')?.trim(),
    gitDirty: (git('status', '--porcelain') ?? '').split('\n').filter(Boolean).map((line) => line.slice(3)).filter((file) => !file.startsWith('bench/')),
    database: options.databaseUrl ? 'PostgreSQL' : options.pgliteThread === false ? 'PGlite (embedded, on the event loop)' : 'PGlite (embedded)',
  };
}

async function writeAtomically(file: string, text: string): Promise<string> {
  const temporary = `${file}.${process.pid}.tmp`;
  await writeFile(temporary, text);
  await rename(temporary, file);
  return file;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  // Ctrl-C: the 'exit' handlers stop the server, the fake and the callers.
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => process.exit(130));
  runStreamBench(process.argv.slice(2)).then(
    () => process.exit(0),
    (error: unknown) => {
      console.error(error instanceof Error ? error.stack : error);
      process.exit(1);
    },
  );
}

import { snapshotLoad, loadBetween } from '../machine-load.js';
import { request } from '../http-client.js';
import { bucketPercentile, scrapeMetrics, type ServerMetrics } from '../server-process.js';
import { epochNow, summarize, type Summary } from '../stats.js';
import type { CallerPool } from './caller-pool.js';
import { emptyJitter, mergeJitter, deviationPercentile, slackPercentile, type JitterStats } from './frame-jitter.js';
import type { FixtureAnalysis } from './speech-fixtures.js';
import type { CallEnvironment, CallPlan, CallResult, TurnSample } from './stream-call.js';
import type { StreamFakeHandle } from './stream-fake.js';
import {
  bargeInFigures,
  matchTurns,
  storedFirstByteToFrame,
  summarizeBy,
  type StageTimes,
  type StreamTiming,
} from './stream-figures.js';
import { residentBytes, type StreamServer } from './stream-server.js';

/** prom-client samples the event loop every 10 ms and its percentiles include that interval. */
const eventLoopResolutionMs = 10;

export interface PhaseContext {
  server: StreamServer;
  fake: StreamFakeHandle;
  pool: CallerPool;
  fixtures: Record<string, FixtureAnalysis>;
  turnFixtures: string[];
  bargeInFixtures: string[];
  timing: StreamTiming;
  seed: number;
  /** Hands out caller numbers, so no two calls of a run share one. */
  nextCallIndex: () => number;
}

export interface ServerFigures {
  /** prom-client's p99 as scraped, and less its 10 ms sampling interval: the delay itself. */
  eventLoopP99RawMs: number;
  eventLoopP99Ms: number;
  eventLoopMaxMs: number;
  /** Of one core, over the measured window. */
  cpuPercent: number;
  /** Share of the window the main thread was busy (its utilisation), in % of the window. */
  loopBusyPercent: number;
  residentIdleMb: number;
  residentPeakMb: number;
  heapUsedMb: number;
}

export interface JitterFigures {
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  pacedFrames: number;
  /** The caller's buffer ahead at the 1st percentile of paced frames: how close playback came to a gap. */
  slackP1Ms: number;
  underrunsAtPieceBoundary: number;
  underrunsInPiece: number;
  underrunGapMs: Summary;
}

export interface LatencyPhaseResult {
  calls: number;
  seconds: number;
  turns: number;
  bargeInTurns: number;
  matched: number;
  unmatched: number;
  unmatchedWhy: { chat: number; transcription: number; speech: number };
  ambiguous: number;
  noReply: number;
  noReplyTurns: NoReplyTurn[];
  unexpectedClears: number;
  errors: string[];
  firstFrame: { measured: Summary; floor: Summary; overFloor: Summary; detector: Summary; detectorFloor: Summary; added: Summary; serverAdded: Summary };
  stages: Record<keyof StageTimes, Summary>;
  /** `server`: the server's own monotonic measure, p50 and p99 as the upper bound of their histogram bucket (ms). */
  ttsToFrame: { client: Summary; stored: Summary; server: { count: number; p50Ms: number; p99Ms: number } };
  bargeIn: { count: number; missed: number; total: Summary; detector: Summary; server: Summary };
  micLateMs: Summary;
  jitter: JitterFigures;
  server: ServerFigures;
  callerLoopP99Ms: number[];
  fakeLoopP99Ms: number;
  otherCores: number;
}

/** A turn the caller got no reply to, with what the server stored of its call: what a search for the cause starts from. */
export interface NoReplyTurn {
  callSid: string;
  turn: number;
  fixture: string;
  bargeIn: boolean;
  /** When the caller's last voiced frame of that turn left. */
  lastVoicedAt: string;
  /** The call's turns as the server stored them (`GET /api/calls/:callSid`), when it answered. */
  conversation?: unknown;
}

/** Every turn of `results` that got no reply, with its call's stored turns. */
async function noReplyTurns(baseUrl: string, results: CallResult[]): Promise<NoReplyTurn[]> {
  const found: NoReplyTurn[] = [];
  for (const result of results) {
    for (const sample of result.turns.filter((turn) => turn.noReply)) {
      const answer = await request('GET', `${baseUrl}/api/calls/${result.callSid}`).catch(() => undefined);
      const conversation = answer?.status === 200 ? (JSON.parse(answer.body.toString('utf8')) as { conversation?: unknown }).conversation : undefined;
      found.push({ callSid: result.callSid, turn: sample.turn, fixture: sample.fixture, bargeIn: sample.bargeIn, lastVoicedAt: new Date(sample.lastVoicedAt).toISOString(), conversation });
    }
  }
  return found;
}

export interface LevelResult {
  calls: number;
  profile: string;
  windowSeconds: number;
  callsStarted: number;
  turns: number;
  noReply: number;
  noReplyTurns: NoReplyTurn[];
  errors: string[];
  jitter: JitterFigures;
  /** Reply's first frame after the caller's last voiced frame, less the detector's end of speech and the injected delays. */
  firstFrameAdded: Summary;
  /** Turns in the window matched to their requests, of all turns in the window. */
  matched: number;
  turnsInWindow: number;
  server: ServerFigures;
  /** Resident set right before the level's calls started (after the previous level's had ended). */
  residentBeforeMb: number;
  residentPerCallMb: number;
  callerLoopP99Ms: number[];
  callerCores: number;
  fakeLoopP99Ms: number;
  otherCores: number;
}

export function environmentFor(context: PhaseContext, options: { bargeInShare: number; replyQuietMs: number; window: { from: number; to: number } }): CallEnvironment {
  return {
    baseUrl: context.server.baseUrl,
    authToken: context.server.authToken,
    streamNumber: context.server.streamNumber,
    fixtures: context.fixtures,
    turnFixtures: context.turnFixtures,
    bargeInFixtures: context.bargeInFixtures,
    minSpeechMs: context.timing.minSpeechMs,
    bargeInShare: options.bargeInShare,
    replyQuietMs: options.replyQuietMs,
    jitterWindow: options.window,
  };
}

export function plansFor(context: PhaseContext, script: CallPlan['script'], count: number, startAt: number, spreadMs: number, stopAt: number): CallPlan[] {
  return Array.from({ length: count }, (_, slot) => {
    const index = context.nextCallIndex();
    return {
      index,
      callerNumber: `+1555${String(index).padStart(7, '0')}`,
      script,
      startAt: startAt + (slot * spreadMs) / Math.max(1, count),
      stopAt,
      maxTurns: 100,
      seed: context.seed * 100_003 + index,
    };
  });
}

/** Calls with turns, half of them spoken over the reply, at a concurrency low enough not to load the server. */
export async function runLatencyPhase(context: PhaseContext, calls: number, seconds: number, bargeInShare: number): Promise<LatencyPhaseResult> {
  const { server, fake, pool } = context;
  await fake.takeLog();
  const startAt = epochNow() + 500;
  const stopAt = startAt + seconds * 1000;
  const environment = environmentFor(context, { bargeInShare, replyQuietMs: 1500, window: { from: startAt + 5000, to: stopAt } });
  const plans = plansFor(context, 'latency', calls, startAt, 3000, stopAt);
  const before = await measureStart(context);
  const { results, loopDelayP99Ms } = await pool.run(environment, plans, 1);
  const after = await measureEnd(context, before);
  const log = await fake.takeLog();

  const samples = results.flatMap((result) => result.turns);
  const matched = matchTurns(samples, log.requests, context.fixtures, context.timing);
  const bargeIns = bargeInFigures(samples, context.fixtures, context.timing);
  const stored: number[] = [];
  for (const result of results) {
    const answer = await request('GET', `${server.baseUrl}/api/calls/${result.callSid}`).catch(() => undefined);
    if (answer?.status === 200) stored.push(...storedFirstByteToFrame(JSON.parse(answer.body.toString('utf8'))));
  }
  const stageNames = Object.keys(matched.turns[0]?.stages ?? {}) as Array<keyof StageTimes>;
  return {
    calls,
    seconds,
    turns: samples.length,
    bargeInTurns: samples.filter((sample) => sample.bargeIn).length,
    matched: matched.turns.length,
    unmatched: matched.unmatched,
    unmatchedWhy: matched.unmatchedWhy,
    ambiguous: matched.ambiguous,
    noReply: samples.filter((sample) => sample.noReply).length,
    noReplyTurns: await noReplyTurns(server.baseUrl, results),
    unexpectedClears: results.reduce((sum, result) => sum + result.unexpectedClears, 0),
    errors: results.flatMap((result) => result.errors),
    firstFrame: {
      measured: summarizeBy(matched.turns, (turn) => turn.measuredMs),
      floor: summarizeBy(matched.turns, (turn) => turn.floorMs),
      overFloor: summarizeBy(matched.turns, (turn) => turn.measuredMs - turn.floorMs),
      detector: summarizeBy(matched.turns, (turn) => turn.detectorMs),
      detectorFloor: summarizeBy(matched.turns, (turn) => turn.detectorFloorMs),
      added: summarizeBy(matched.turns, (turn) => turn.addedMs),
      serverAdded: summarizeBy(matched.turns, (turn) => turn.serverAddedMs),
    },
    stages: Object.fromEntries(stageNames.map((name) => [name, summarizeBy(matched.turns, (turn) => turn.stages[name])])) as Record<keyof StageTimes, Summary>,
    ttsToFrame: {
      client: summarizeBy(matched.turns, (turn) => turn.ttsToFrameMs),
      stored: summarize(stored),
      server: speechToFrame(before.metrics, after.metrics),
    },
    bargeIn: {
      count: bargeIns.bargeIns.length,
      missed: bargeIns.missed,
      total: summarizeBy(bargeIns.bargeIns, (item) => item.totalMs),
      detector: summarizeBy(bargeIns.bargeIns, (item) => item.detectorMs),
      server: summarizeBy(bargeIns.bargeIns, (item) => item.serverMs),
    },
    micLateMs: summarizeBy(samples, (sample: TurnSample) => sample.micLateMs),
    jitter: jitterFigures(results),
    server: serverFigures(before.metrics, after.metrics, before.resident, after.peakResident),
    callerLoopP99Ms: loopDelayP99Ms,
    fakeLoopP99Ms: log.loopDelayMs.p99,
    otherCores: after.otherCores,
  };
}

/**
 * One level of the concurrency ramp: `calls` streams at once, each greeted,
 * then speaking, hearing the reply out, speaking again, until the window
 * closes and they all hang up. Measured only inside the window, once every
 * call has been greeted.
 */
export async function runRampLevel(context: PhaseContext, calls: number, windowSeconds: number, profile: string, idleResidentBytes: number): Promise<LevelResult> {
  const { fake, pool } = context;
  await fake.takeLog();
  const spreadMs = Math.max(1000, calls * 20);
  const startAt = epochNow() + 500;
  // The greeting (~2.3 s) has played for every call by then.
  const from = startAt + spreadMs + 3500;
  const to = from + windowSeconds * 1000;
  const environment = environmentFor(context, { bargeInShare: 0, replyQuietMs: profile === 'zero' ? 800 : 1500, window: { from, to } });
  const plans = plansFor(context, 'load', calls, startAt, spreadMs, to);
  const residentBefore = await residentBytes(context.server.process.pid ?? 0);
  const running = pool.run(environment, plans);
  await sleepUntil(from);
  const before = await measureStart(context);
  const stopSampling = sampleResident(context.server.process.pid ?? 0);
  await sleepUntil(to);
  const after = await measureEnd(context, before);
  const peakResident = Math.max(after.peakResident, await stopSampling());
  const { results, loopDelayP99Ms } = await running;
  const log = await fake.takeLog();
  const samples = results.flatMap((result) => result.turns);
  const inWindow = samples.filter((sample) => sample.lastVoicedAt >= from && sample.lastVoicedAt <= to);
  const matched = matchTurns(inWindow, log.requests, context.fixtures, context.timing);
  const server = serverFigures(before.metrics, after.metrics, idleResidentBytes, peakResident);
  return {
    calls,
    profile,
    windowSeconds,
    callsStarted: results.filter((result) => !result.errors.length).length,
    turns: samples.length,
    noReply: samples.filter((sample) => sample.noReply).length,
    noReplyTurns: await noReplyTurns(context.server.baseUrl, results),
    errors: results.flatMap((result) => result.errors),
    jitter: jitterFigures(results),
    firstFrameAdded: summarizeBy(matched.turns, (turn) => turn.addedMs),
    matched: matched.turns.length,
    turnsInWindow: inWindow.length,
    server,
    residentBeforeMb: residentBefore / 2 ** 20,
    residentPerCallMb: (server.residentPeakMb - server.residentIdleMb) / calls,
    callerLoopP99Ms: loopDelayP99Ms,
    callerCores: after.callerCores,
    fakeLoopP99Ms: log.loopDelayMs.p99,
    otherCores: after.otherCores,
  };
}

interface WindowStart {
  metrics: ServerMetrics;
  resident: number;
  load: Awaited<ReturnType<typeof snapshotLoad>>;
  callers: Awaited<ReturnType<typeof snapshotLoad>>;
}

async function measureStart(context: PhaseContext): Promise<WindowStart> {
  const pid = context.server.process.pid ?? 0;
  // This scrape also resets prom-client's event-loop histogram: the next one covers the window alone.
  const metrics = await scrapeMetrics(context.server);
  return {
    metrics,
    resident: await residentBytes(pid),
    load: await snapshotLoad(ownPids(context)),
    callers: await snapshotLoad(context.pool.pids),
  };
}

async function measureEnd(context: PhaseContext, start: WindowStart) {
  const metrics = await scrapeMetrics(context.server);
  const load = loadBetween(start.load, await snapshotLoad(ownPids(context)));
  const callers = loadBetween(start.callers, await snapshotLoad(context.pool.pids));
  return {
    metrics,
    peakResident: Math.max(metrics.residentBytes, await residentBytes(context.server.process.pid ?? 0)),
    otherCores: load.otherCores,
    callerCores: callers.busyCores - callers.otherCores,
  };
}

function ownPids(context: PhaseContext): number[] {
  return [context.server.process.pid ?? 0, context.fake.pid, process.pid, ...context.pool.pids];
}

function serverFigures(before: ServerMetrics, after: ServerMetrics, idleResident: number, peakResident: number): ServerFigures {
  const seconds = (after.at - before.at) / 1000;
  return {
    eventLoopP99RawMs: after.eventLoopP99Seconds * 1000,
    eventLoopP99Ms: Math.max(0, after.eventLoopP99Seconds * 1000 - eventLoopResolutionMs),
    eventLoopMaxMs: Math.max(0, after.eventLoopMaxSeconds * 1000 - eventLoopResolutionMs),
    cpuPercent: (100 * (after.cpuSeconds - before.cpuSeconds)) / seconds,
    loopBusyPercent: (100 * (after.loopBusySeconds - before.loopBusySeconds)) / seconds,
    residentIdleMb: idleResident / 2 ** 20,
    residentPeakMb: peakResident / 2 ** 20,
    heapUsedMb: after.heapUsedBytes / 2 ** 20,
  };
}

function jitterFigures(results: readonly CallResult[]): JitterFigures {
  const stats: JitterStats = results.reduce((all, result) => mergeJitter(all, result.jitter), emptyJitter());
  return {
    p50Ms: deviationPercentile(stats, 50),
    p99Ms: deviationPercentile(stats, 99),
    maxMs: stats.deviationMaxMs,
    pacedFrames: stats.pacedFrames,
    slackP1Ms: slackPercentile(stats, 1),
    underrunsAtPieceBoundary: stats.underrunsAtPieceBoundary,
    underrunsInPiece: stats.underrunsInPiece,
    underrunGapMs: summarize(stats.underrunGapMs),
  };
}

/** Reads the server's resident set every 0.5 s from /proc until stopped; resolves with the largest seen. */
function sampleResident(pid: number): () => Promise<number> {
  let peak = 0;
  let running = true;
  const loop = (async () => {
    while (running) {
      peak = Math.max(peak, (await residentBytes(pid)) || 0);
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
  })();
  return async () => {
    running = false;
    await loop;
    return peak;
  };
}

function sleepUntil(at: number): Promise<void> {
  const ms = at - epochNow();
  return ms > 0 ? new Promise((resolve) => setTimeout(resolve, ms)) : Promise.resolve();
}

/** The server's own speech-to-first-frame histogram over the phase: p50 and p99 as bucket bounds, in ms. */
function speechToFrame(before: ServerMetrics, after: ServerMetrics): { count: number; p50Ms: number; p99Ms: number } {
  const [p50, p99] = [0.5, 0.99].map((q) => bucketPercentile(before.speechToFrameBuckets, after.speechToFrameBuckets, q));
  return { count: p99.count, p50Ms: p50.upperBound * 1000, p99Ms: p99.upperBound * 1000 };
}

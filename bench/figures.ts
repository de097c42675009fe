import type { FakeRequestSummary } from './fake-openai-process.js';
import { matchFloors } from './floors.js';
import type { LevelRun } from './load-level.js';
import type { StageFigure } from './stage-timeline.js';
import { summarize, type Summary } from './stats.js';

/** prom-client's event-loop monitor samples every 10 ms, and its percentiles include that interval. */
const eventLoopSamplingMs = 10;

/** Every figure of one level on one server, as printed and as written to the JSON. */
export interface LevelFigures {
  path: string;
  profile: string;
  concurrency: number;
  thinkMs: number;
  turns: number;
  plannedTurns: number;
  /** Fewer turns than planned: the level hit its time limit, or calls failed (the server could not keep up). */
  cutShort: boolean;
  calls: number;
  wallSeconds: number;
  turnsPerSecond: number;
  /** TwiML webhooks (incoming, voice, continue, status) per second. */
  webhooksPerSecond: number;
  /** Webhooks and audio downloads per second. */
  requestsPerSecond: number;
  errors: number;
  errorSamples: string[];
  /** Turns whose TwiML had a `<Say>` (a fallback voice or an apology). */
  turnsWithSay: number;
  /** Turns the caller gave up on; their wait counts in `firstAudioMs` (a lower bound of what they would have waited). */
  abandonedTurns: number;
  /** Caller's words → first `<Play>` of the reply downloaded. */
  firstAudioMs: Summary;
  /** The same turns' floors, from the delays the fake injected into them. */
  floorMs: Summary;
  /** Measured − floor, turn by turn: what the server (and loopback HTTP) added. */
  overFloorMs: Summary;
  /** The turn's own webhook, and every webhook by route. */
  webhookMs: Record<'turn' | 'all' | 'incoming' | 'voice' | 'continue' | 'status', Summary>;
  audioFetchMs: Summary;
  /**
   * How much later than scheduled the fake's responses finished (included in "over floor"): its own
   * event-loop delay, plus the server reading its responses late when the server's loop is busy.
   */
  fake: { chatLatenessMs: Summary; speechLatenessMs: Summary; loopDelayP99Ms: number };
  matching: { chatMissing: number; speechMissing: number; ambiguous: number };
  server: {
    cpuSeconds: number;
    cpuMsPerTurn: number;
    /** CPU seconds per wall second (1 = one core busy). */
    cpuUtilisation: number;
    /** CPU share one concurrent call costs, in percent of a core. */
    cpuPercentPerCall: number;
    eventLoopP99Ms: number;
    eventLoopMaxMs: number;
    /** p99 minus prom-client's 10 ms sampling interval: the delay itself. */
    eventLoopDelayP99Ms: number;
    residentMbBefore: number;
    residentMbPeak: number;
    residentKbPerCall: number;
  };
  /** Cores busy on the whole machine, and those used by other processes than the bench's (a shared machine's noise). */
  machine: { busyCores: number; otherCores: number };
  /** On PostgreSQL: where measured − floor went, from the server's own timestamps. */
  stages?: StageFigure[];
}

export function levelFigures(
  run: LevelRun,
  profile: string,
  pipelined: boolean,
  fakeRequests: readonly FakeRequestSummary[],
  fakeLoopDelayP99Ms: number,
): LevelFigures {
  const { turns } = run;
  const match = matchFloors(turns, fakeRequests, pipelined);
  const measured = turns.filter((turn) => turn.firstAudioMs !== undefined);
  const waited = turns.flatMap((turn) => (turn.firstAudioMs !== undefined ? [turn.firstAudioMs] : turn.abandoned ? [turn.completeMs] : []));
  const floored = measured.filter((turn) => match.floors.has(turn));
  const routes = (route: string) => summarize(run.webhooks.filter((sample) => sample.route === route).map((sample) => sample.ms));
  const seconds = run.wallMs / 1000;
  const cpuSeconds = run.after.cpuSeconds - run.before.cpuSeconds;
  const floors = [...match.floors.values()];
  return {
    path: run.options.server,
    profile,
    concurrency: run.options.concurrency,
    thinkMs: run.options.thinkMs,
    turns: turns.length,
    plannedTurns: run.options.turns,
    cutShort: run.cutShort || turns.length < run.options.turns,
    calls: run.calls,
    wallSeconds: seconds,
    turnsPerSecond: turns.length / seconds,
    webhooksPerSecond: run.webhooks.length / seconds,
    requestsPerSecond: (run.webhooks.length + run.audio.length) / seconds,
    errors: run.errors.length + turns.filter((turn) => turn.error).length,
    errorSamples: [...run.errors, ...turns.flatMap((turn) => (turn.error ? [`call ${turn.callIndex} turn ${turn.turn}: ${turn.error}`] : []))].slice(0, 5),
    turnsWithSay: turns.filter((turn) => turn.said).length,
    abandonedTurns: turns.filter((turn) => turn.abandoned).length,
    firstAudioMs: summarize(waited),
    floorMs: summarize(floored.map((turn) => match.floors.get(turn)!.floorMs)),
    // Abandoned turns count with their wait (less their floor where it is known): leaving them out would flatter an overloaded server.
    overFloorMs: summarize(
      turns.flatMap((turn) => {
        const waitedMs = turn.firstAudioMs ?? (turn.abandoned ? turn.completeMs : undefined);
        const floor = match.floors.get(turn);
        if (waitedMs === undefined || (!floor && !turn.abandoned)) return [];
        return [waitedMs - (floor?.floorMs ?? 0)];
      }),
    ),
    webhookMs: {
      turn: summarize(turns.map((turn) => turn.firstWebhookMs)),
      all: summarize(run.webhooks.map((sample) => sample.ms)),
      incoming: routes('incoming'),
      voice: routes('voice'),
      continue: routes('continue'),
      status: routes('status'),
    },
    audioFetchMs: summarize(run.audio.map((sample) => sample.ms)),
    fake: {
      chatLatenessMs: summarize(floors.flatMap((floor) => (floor.chatLatenessMs === undefined ? [] : [floor.chatLatenessMs]))),
      speechLatenessMs: summarize(floors.flatMap((floor) => (floor.speechLatenessMs === undefined ? [] : [floor.speechLatenessMs]))),
      loopDelayP99Ms: fakeLoopDelayP99Ms,
    },
    matching: { chatMissing: match.chatMissing, speechMissing: match.speechMissing, ambiguous: match.ambiguous },
    server: {
      cpuSeconds,
      cpuMsPerTurn: turns.length ? (cpuSeconds * 1000) / turns.length : Number.NaN,
      cpuUtilisation: cpuSeconds / seconds,
      cpuPercentPerCall: (100 * cpuSeconds) / seconds / run.options.concurrency,
      eventLoopP99Ms: run.after.eventLoopP99Seconds * 1000,
      eventLoopMaxMs: run.after.eventLoopMaxSeconds * 1000,
      eventLoopDelayP99Ms: Math.max(0, run.after.eventLoopP99Seconds * 1000 - eventLoopSamplingMs),
      residentMbBefore: run.before.residentBytes / 2 ** 20,
      residentMbPeak: run.peakResidentBytes / 2 ** 20,
      residentKbPerCall: (run.peakResidentBytes - run.before.residentBytes) / 1024 / run.options.concurrency,
    },
    machine: run.machine,
  };
}

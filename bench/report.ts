import type { LevelFigures } from './figures.js';
import type { Summary } from './stats.js';

/** A target the issue sets, and whether this run met it. */
export interface Goal {
  name: string;
  target: string;
  measured: string;
  pass: boolean | undefined;
}

export interface Comparison {
  concurrency: number;
  pipelined: LevelFigures;
  sequential: LevelFigures;
  /** Sequential ÷ pipelined time to first audio, per percentile. */
  ratio: { p50: number; p95: number; p99: number };
}

export interface Ramp {
  boundMs: number;
  levels: LevelFigures[];
  largestPassing?: number;
  firstFailing?: number;
}

export interface ProfileResult {
  profile: string;
  latencyProfile: Record<string, number>;
  httpBaselineMs: Summary;
  comparison?: Comparison;
  levels: LevelFigures[];
  ramp?: Ramp;
  goals: Goal[];
}

/** Number formatting for milliseconds: more decimals where they carry meaning. */
export function ms(value: number): string {
  if (!Number.isFinite(value)) return '—';
  const size = Math.abs(value);
  return size < 10 ? value.toFixed(2) : size < 100 ? value.toFixed(1) : value.toFixed(0);
}

function table(headers: string[], rows: string[][]): string {
  const widths = headers.map((header, column) => Math.max(header.length, ...rows.map((row) => (row[column] ?? '').length)));
  const line = (cells: string[]) => cells.map((cell, column) => (column === 0 ? cell.padEnd(widths[column]) : cell.padStart(widths[column]))).join('  ');
  return [line(headers), widths.map((width) => '-'.repeat(width)).join('  '), ...rows.map(line)].join('\n');
}

const triple = (summary: Summary) => [ms(summary.p50), ms(summary.p95), ms(summary.p99)];

/** The added latency a level is judged by: measured − floor where floors were found, else the raw time to first audio. */
export function addedLatency(figures: LevelFigures): Summary {
  return figures.overFloorMs.count > 0 ? figures.overFloorMs : figures.firstAudioMs;
}

export function comparisonTable(comparison: Comparison): string {
  const { pipelined, sequential, ratio } = comparison;
  const rows = [
    ['pipelined: measured', ...triple(pipelined.firstAudioMs), String(pipelined.firstAudioMs.count)],
    ['pipelined: floor', ...triple(pipelined.floorMs), String(pipelined.floorMs.count)],
    ['pipelined: measured − floor', ...triple(pipelined.overFloorMs), String(pipelined.overFloorMs.count)],
    ['sequential: measured', ...triple(sequential.firstAudioMs), String(sequential.firstAudioMs.count)],
    ['sequential: floor', ...triple(sequential.floorMs), String(sequential.floorMs.count)],
    ['sequential: measured − floor', ...triple(sequential.overFloorMs), String(sequential.overFloorMs.count)],
    ['sequential ÷ pipelined (measured)', `${ratio.p50.toFixed(2)}×`, `${ratio.p95.toFixed(2)}×`, `${ratio.p99.toFixed(2)}×`, ''],
  ];
  return `Time to first playable audio (ms), ${comparison.concurrency} calls in flight\n${table(['', 'p50', 'p95', 'p99', 'turns'], rows)}`;
}

export function levelsTable(levels: LevelFigures[], title: string): string {
  const rows = levels.map((figures) => {
    const added = addedLatency(figures);
    return [
      figures.path,
      String(figures.concurrency),
      String(Math.round(figures.thinkMs)),
      `${figures.turns}${figures.cutShort ? `/${figures.plannedTurns}*` : ''}`,
      figures.turnsPerSecond.toFixed(1),
      figures.requestsPerSecond.toFixed(0),
      ...triple(added),
      ms(figures.webhookMs.all.p50),
      ms(figures.webhookMs.all.p99),
      ms(figures.audioFetchMs.p50),
      ms(figures.audioFetchMs.p99),
      ms(figures.server.eventLoopDelayP99Ms),
      ms(figures.server.eventLoopMaxMs),
      figures.server.cpuMsPerTurn.toFixed(1),
      (100 * figures.server.cpuUtilisation).toFixed(0),
      figures.server.cpuPercentPerCall.toFixed(2),
      figures.server.residentMbPeak.toFixed(0),
      figures.server.residentKbPerCall.toFixed(0),
      figures.machine.otherCores.toFixed(2),
      String(figures.errors),
    ];
  });
  const headers = [
    'path', 'calls', 'think', 'turns', 'turns/s', 'req/s', 'added p50', 'p95', 'p99', 'webhook p50', 'p99', 'audio p50', 'p99',
    'ELD p99', 'ELD max', 'CPU ms/turn', 'CPU %', 'CPU %/call', 'RSS MB', 'RSS KB/call', 'other cores', 'errors',
  ];
  const note = levels.some((figures) => figures.cutShort) ? '\n* fewer turns than planned: the level hit its time limit, or calls failed (the server could not keep up)' : '';
  return `${title}\n${table(headers, rows)}${note}`;
}

export function rampTable(ramp: Ramp): string {
  const rows = ramp.levels.map((figures) => {
    const added = addedLatency(figures);
    return [
      String(figures.concurrency),
      `${figures.turns}${figures.cutShort ? `/${figures.plannedTurns}*` : ''}`,
      figures.turnsPerSecond.toFixed(0),
      figures.webhooksPerSecond.toFixed(0),
      figures.requestsPerSecond.toFixed(0),
      ...triple(added),
      ms(figures.webhookMs.all.p99),
      ms(figures.server.eventLoopDelayP99Ms),
      (100 * figures.server.cpuUtilisation).toFixed(0),
      figures.server.residentMbPeak.toFixed(0),
      String(figures.errors),
      added.p99 < ramp.boundMs && figures.errors === 0 ? 'under' : 'OVER',
    ];
  });
  const verdict = ramp.largestPassing === undefined
    ? `no level stayed under ${ramp.boundMs} ms`
    : `largest level under ${ramp.boundMs} ms p99: ${ramp.largestPassing} calls`;
  return `Capacity ramp (pipelined, added latency per turn = webhook + first audio download; ${verdict})\n${table(
    ['calls', 'turns', 'turns/s', 'webhooks/s', 'req/s', 'added p50', 'p95', 'p99', 'webhook p99', 'ELD p99', 'CPU %', 'RSS MB', 'errors', `p99 vs ${ramp.boundMs} ms`],
    rows,
  )}`;
}

export function goalsTable(goals: Goal[]): string {
  const rows = goals.map((goal) => [goal.name, goal.target, goal.measured, goal.pass === undefined ? 'n/a' : goal.pass ? 'PASS' : 'MISS']);
  return `Goals\n${table(['goal', 'target', 'measured', 'result'], rows)}`;
}

export function fakeHealthLine(levels: LevelFigures[]): string {
  const worst = (pick: (figures: LevelFigures) => number) => Math.max(...levels.map(pick).filter(Number.isFinite));
  return `The fake's event-loop delay p99 was ≤ ${ms(worst((figures) => figures.fake.loopDelayP99Ms))} ms (its own lateness, included in "added"). Its responses finished later than scheduled by up to ${ms(
    worst((figures) => figures.fake.chatLatenessMs.p99),
  )} ms (chat, p99) and ${ms(worst((figures) => figures.fake.speechLatenessMs.p99))} ms (speech, p99): that adds the server reading them late while its event loop is busy.`;
}

export function stagesTable(figures: LevelFigures): string {
  const rows = (figures.stages ?? []).map((stage) => [stage.stage, ...triple(stage.ms), String(stage.ms.count)]);
  rows.push(['measured − floor (all of it)', ...triple(figures.overFloorMs), String(figures.overFloorMs.count)]);
  return `Where measured − floor went: ${figures.path}, ${figures.concurrency} calls (ms, first piece's path, server timestamps from PostgreSQL)\n${table(['stage', 'p50', 'p95', 'p99', 'turns'], rows)}`;
}

import { goalsTable, ms, type Goal } from '../report.js';
import type { Summary } from '../stats.js';
import type { LatencyPhaseResult, LevelResult } from './stream-phases.js';

/** The stream bench's tables and its verdicts on issue #4's goals. */

export const streamGoals = {
  ttsToFrameP99Ms: 2,
  bargeInP99Ms: 25,
  streams: 200,
  jitterP99Ms: 20,
  eventLoopP99Ms: 10,
  residentPerCallMb: 2,
};

function table(headers: string[], rows: string[][]): string {
  const widths = headers.map((header, column) => Math.max(header.length, ...rows.map((row) => (row[column] ?? '').length)));
  const line = (cells: string[]) => cells.map((cell, column) => (column === 0 ? cell.padEnd(widths[column]) : cell.padStart(widths[column]))).join('  ');
  return [line(headers), widths.map((width) => '-'.repeat(width)).join('  '), ...rows.map(line)].join('\n');
}

const triple = (summary: Summary) => [ms(summary.p50), ms(summary.p95), ms(summary.p99), String(summary.count)];

export function latencyTable(result: LatencyPhaseResult, endOfSpeechMs: number): string {
  const { firstFrame, stages, ttsToFrame, bargeIn } = result;
  const rows = [
    ['a) last voiced frame → first reply frame', ...triple(firstFrame.measured)],
    [`   floor: end of speech ${endOfSpeechMs} + injected delays`, ...triple(firstFrame.floor)],
    ['   measured − floor', ...triple(firstFrame.overFloor)],
    ['   detector: last voiced frame → turn called (offline)', ...triple(firstFrame.detector)],
    ['   detector floor: detector + injected delays', ...triple(firstFrame.detectorFloor)],
    ['   added: measured − detector floor', ...triple(firstFrame.added)],
    ['   added, less the fake\'s own measured lateness', ...triple(firstFrame.serverAdded)],
    ['     turn called → transcription request', ...triple(stages.detectedToTranscription)],
    ['     transcription, beyond its injected delay', ...triple(stages.transcriptionOverhead)],
    ['     transcript → chat request', ...triple(stages.transcriptToChat)],
    ['     first piece due → its speech request', ...triple(stages.pieceToSpeech)],
    ['     speech request → first byte, beyond injected', ...triple(stages.speechOverhead)],
    ['     speech first byte → first frame at caller', ...triple(stages.firstByteToFrame)],
    ['b) TTS first byte → first frame (client-side)', ...triple(ttsToFrame.client)],
    ['   same, from the turn rows (ms timestamps)', ...triple(ttsToFrame.stored)],
    ['   same, in the server (monotonic; bucket bounds: p50, –, p99)', `≤ ${ms(ttsToFrame.server.p50Ms)}`, '', `≤ ${ms(ttsToFrame.server.p99Ms)}`, String(ttsToFrame.server.count)],
    ['c) barge-in: minSpeechMs of voice sent → clear', ...triple(bargeIn.total)],
    ['   detector: that frame → frame it fires on (offline)', ...triple(bargeIn.detector)],
    ['   detected speech → clear (server + loopback)', ...triple(bargeIn.server)],
  ];
  const notes = [
    `${result.calls} calls in flight for ${result.seconds} s; ${result.turns} turns (${result.bargeInTurns} spoken over the reply), ${result.matched} matched to their requests` +
      (result.unmatched ? `, ${result.unmatched} not matched (no chat ${result.unmatchedWhy.chat}, transcription ${result.unmatchedWhy.transcription}, speech ${result.unmatchedWhy.speech})` : '') + (result.ambiguous ? `, ${result.ambiguous} ambiguous speech matches` : '') +
      (result.noReply ? `, ${result.noReply} without a reply` : '') + (bargeIn.missed ? `, ${bargeIn.missed} barge-ins without a clear` : '') +
      (result.unexpectedClears ? `, ${result.unexpectedClears} clears in turns not spoken over a reply` : '') + (result.errors.length ? `, ${result.errors.length} call errors (${result.errors[0]})` : ''),
    `server during the phase: event-loop delay p99 ${ms(result.server.eventLoopP99Ms)} ms (max ${ms(result.server.eventLoopMaxMs)}), CPU ${result.server.cpuPercent.toFixed(0)} % of a core; ` +
      `caller process loop delay p99 ${result.callerLoopP99Ms.map(ms).join('/')} ms, microphone clock late p99 ${ms(result.micLateMs.p99)} ms; fake loop p99 ${ms(result.fakeLoopP99Ms)} ms; other processes ${result.otherCores.toFixed(2)} cores`,
    `frames: jitter p50 ${ms(result.jitter.p50Ms)} / p99 ${ms(result.jitter.p99Ms)} / max ${ms(result.jitter.maxMs)} ms over ${result.jitter.pacedFrames} paced frames; ` +
      `caller buffer p1 ${ms(result.jitter.slackP1Ms)} ms; underruns ${result.jitter.underrunsAtPieceBoundary} at piece boundaries, ${result.jitter.underrunsInPiece} inside pieces` +
      (result.jitter.underrunGapMs.count ? ` (gap p50 ${ms(result.jitter.underrunGapMs.p50)}, max ${ms(result.jitter.underrunGapMs.max)} ms)` : ''),
  ];
  return `Stream latency (ms), realistic profile\n${table(['', 'p50', 'p95', 'p99', 'n'], rows)}\n${notes.join('\n')}`;
}

export function levelsTable(levels: LevelResult[]): string {
  const rows = levels.map((level) => [
    String(level.calls),
    `${level.callsStarted}/${level.calls}`,
    String(level.turns),
    ms(level.jitter.p50Ms),
    ms(level.jitter.p99Ms),
    ms(level.jitter.maxMs),
    ms(level.jitter.slackP1Ms),
    String(level.jitter.underrunsInPiece + level.jitter.underrunsAtPieceBoundary),
    ms(level.firstFrameAdded.p50),
    ms(level.firstFrameAdded.p99),
    ms(level.server.eventLoopP99Ms),
    ms(level.server.eventLoopP99RawMs),
    ms(level.server.eventLoopMaxMs),
    level.server.cpuPercent.toFixed(0),
    level.server.loopBusyPercent.toFixed(0),
    level.residentBeforeMb.toFixed(0),
    level.server.residentPeakMb.toFixed(0),
    level.residentPerCallMb.toFixed(2),
    level.server.heapUsedMb.toFixed(0),
    (level.callerCores * 100).toFixed(0),
    level.callerLoopP99Ms.map(ms).join('/'),
    level.otherCores.toFixed(2),
    verdict(level),
  ]);
  const headers = [
    'streams', 'ok', 'turns', 'jitter p50', 'p99', 'max', 'buffer p1', 'underruns', 'added p50', 'p99',
    'ELD p99', 'raw', 'ELD max', 'CPU %', 'loop %', 'RSS before', 'RSS peak', 'MB/call', 'heap MB', 'callers CPU %', 'callers ELD p99', 'other cores', 'jitter/ELD/RSS',
  ];
  const profile = levels[0]?.profile ?? '';
  return `Concurrent streams in one process (${profile} profile; ${levels[0]?.windowSeconds ?? 0} s measured per level, after every call's greeting)\n${table(headers, rows)}\n` +
    'jitter: |inter-arrival − 20 ms| of paced frames at the simulated Twilio; buffer p1: audio the caller had queued (ms), 1st percentile; ' +
    'added: reply\'s first frame − (detector end of speech + injected delays); ELD: event-loop delay (prom-client p99 less its 10 ms sampling interval; raw as scraped); ' +
    'CPU %: the server process, all threads; loop %: the share of the window its event loop was busy; ' +
    `MB/call: (peak RSS − RSS of the idle server before the ramp, ${levels[0]?.server.residentIdleMb.toFixed(0) ?? '?'} MB) ÷ streams; RSS before: right before the level; heap: V8 heap used at the window's end.`;
}

function verdict(level: LevelResult): string {
  const mark = (pass: boolean) => (pass ? 'ok' : 'MISS');
  return [
    mark(level.jitter.p99Ms < streamGoals.jitterP99Ms),
    mark(level.server.eventLoopP99Ms < streamGoals.eventLoopP99Ms),
    mark(level.residentPerCallMb <= streamGoals.residentPerCallMb),
  ].join('/');
}

function levelPasses(level: LevelResult): boolean {
  return level.errors.length === 0 && level.noReply === 0 && verdict(level) === 'ok/ok/ok';
}

export function streamGoalRows(latency: LatencyPhaseResult | undefined, levels: LevelResult[]): Goal[] {
  const goals: Goal[] = [];
  if (latency) {
    const { client, server } = latency.ttsToFrame;
    goals.push({
      name: 'TTS first byte → first frame sent (p99)',
      target: `≤ ${streamGoals.ttsToFrameP99Ms} ms`,
      measured: `≤ ${ms(server.p99Ms)} ms in the server (${server.count} replies, monotonic clock, histogram bucket bound); at the caller ${ms(client.p99)} ms (2 loopback hops and the caller included)`,
      pass: server.count > 0 ? server.p99Ms <= streamGoals.ttsToFrameP99Ms : undefined,
    });
    goals.push({
      name: 'barge-in: detected speech → clear (p99)',
      target: `≤ ${streamGoals.bargeInP99Ms} ms`,
      measured: `${ms(latency.bargeIn.server.p99)} ms (+ detector ${ms(latency.bargeIn.detector.p50)}/${ms(latency.bargeIn.detector.p99)} ms p50/p99 by design)`,
      pass: latency.bargeIn.count > 0 ? latency.bargeIn.server.p99 <= streamGoals.bargeInP99Ms : undefined,
    });
  }
  if (levels.length) {
    const passing = levels.filter(levelPasses).map((level) => level.calls);
    const largest = passing.length ? Math.max(...passing) : undefined;
    const top = levels.find((level) => level.calls >= streamGoals.streams) ?? levels.at(-1)!;
    goals.push({
      name: `streams one process holds (jitter p99 < ${streamGoals.jitterP99Ms} ms, ELD p99 < ${streamGoals.eventLoopP99Ms} ms, ≤ ${streamGoals.residentPerCallMb} MB/call)`,
      target: `≥ ${streamGoals.streams}`,
      measured: largest === undefined ? `none of ${levels.map((level) => level.calls).join(', ')}` : `${largest} (largest level meeting all three)`,
      pass: (largest ?? 0) >= streamGoals.streams,
    });
    goals.push({
      name: `  frame jitter p99 at ${top.calls} streams`,
      target: `< ${streamGoals.jitterP99Ms} ms`,
      measured: `${ms(top.jitter.p99Ms)} ms`,
      pass: top.jitter.p99Ms < streamGoals.jitterP99Ms,
    });
    goals.push({
      name: `  event-loop delay p99 at ${top.calls} streams`,
      target: `< ${streamGoals.eventLoopP99Ms} ms`,
      measured: `${ms(top.server.eventLoopP99Ms)} ms (raw ${ms(top.server.eventLoopP99RawMs)})`,
      pass: top.server.eventLoopP99Ms < streamGoals.eventLoopP99Ms,
    });
    goals.push({
      name: `  RSS per call at ${top.calls} streams`,
      target: `≤ ${streamGoals.residentPerCallMb} MB`,
      measured: `${top.residentPerCallMb.toFixed(2)} MB`,
      pass: top.residentPerCallMb <= streamGoals.residentPerCallMb,
    });
  }
  return goals;
}

export { goalsTable };

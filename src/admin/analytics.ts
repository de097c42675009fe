import type { AnalyticsRows } from './admin-repository.js';
import { durationBucketBounds } from './admin-repository.js';
import { outcomeLabel, type CallViews } from './call-views.js';
import { addCosts, type Cost } from './pricing.js';

/** The analytics page's data (and `GET /api/analytics`): series are aligned with `days`, UTC. */
export interface AnalyticsReport {
  range: { from: string; to: string };
  currency: 'USD';
  totals: {
    calls: number;
    endedCalls: number;
    failedCalls: number;
    durationSeconds: number;
    averageDurationSeconds: number | null;
    billedMinutes: number;
    promptTokens: number;
    completionTokens: number;
    ttsCharacters: number;
    transcriptionSeconds: number;
    /** The same, split by who transcribed: OpenAI (media streams) or Twilio (`<Gather>` speech recognition). */
    transcriptionSecondsByProvider: { openai: number; twilio: number };
    /** Over every caller turn of the range: caller done speaking → first audio playable. */
    timeToFirstAudio: { turns: number; p50Ms: number | null; p95Ms: number | null };
    cost: Cost;
  };
  days: string[];
  callsPerDay: number[];
  failedPerDay: number[];
  durationDistribution: Array<{ label: string; calls: number }>;
  timeToFirstAudio: { p50Ms: Array<number | null>; p95Ms: Array<number | null>; turns: number[] };
  confidenceDistribution: Array<{ label: string; turns: number }>;
  costPerDay: { openai: number[]; twilio: number[] };
  failureReasons: Array<{ reason: string; count: number; example: string | null }>;
  outcomes: Array<{ outcome: string; label: string; calls: number }>;
}

/** The longest range analytics covers at once. */
export const maxAnalyticsDays = 366;

export function buildAnalyticsReport(rows: AnalyticsRows, range: { from: string; to: string }, views: CallViews): AnalyticsReport {
  const days = daysBetween(range.from, range.to);
  const align = <Row extends { day: string }>(list: Row[], pick: (row: Row) => number | null, empty: number | null) => {
    const byDay = new Map(list.map((row) => [row.day, pick(row)]));
    return days.map((day) => (byDay.has(day) ? byDay.get(day)! : empty));
  };

  const usageCosts = rows.usagePerDay.map((row) => ({ day: row.day, cost: views.cost(views.usage(row, row.billed_minutes)) }));
  const costOfDay = (day: string) => addCosts(usageCosts.filter((entry) => entry.day === day).map((entry) => entry.cost));
  const dayCosts = days.map(costOfDay);
  const sum = <Row>(list: Row[], pick: (row: Row) => number) => list.reduce((total, row) => total + pick(row), 0);

  const transcribedByTwilio = (row: { profile_id: string; mode: string }) => views.models(row.profile_id, row.mode).transcriptionModel?.startsWith('twilio') ?? false;
  const calls = sum(rows.callsPerDay, (row) => row.calls);
  const endedCalls = sum(rows.callsPerDay, (row) => row.ended);
  const durationSeconds = sum(rows.callsPerDay, (row) => row.duration_seconds);
  const bucketLabels = [
    ...durationBucketBounds.map((bound, index) => `${index === 0 ? 0 : formatBound(durationBucketBounds[index - 1])}–${formatBound(bound)}`),
    `${formatBound(durationBucketBounds.at(-1)!)}+`,
  ];
  const durationBuckets = new Map(rows.durationBuckets.map((row) => [row.bucket, row.calls]));
  const confidenceBuckets = new Map(rows.confidenceBuckets.map((row) => [row.bucket, row.turns]));

  return {
    range,
    currency: 'USD',
    totals: {
      calls,
      endedCalls,
      failedCalls: sum(rows.callsPerDay, (row) => row.failed),
      durationSeconds,
      averageDurationSeconds: endedCalls > 0 ? Math.round(durationSeconds / endedCalls) : null,
      billedMinutes: sum(rows.usagePerDay, (row) => row.billed_minutes),
      promptTokens: sum(rows.usagePerDay, (row) => row.prompt_tokens),
      completionTokens: sum(rows.usagePerDay, (row) => row.completion_tokens),
      ttsCharacters: sum(rows.usagePerDay, (row) => row.tts_characters),
      transcriptionSeconds: sum(rows.usagePerDay, (row) => row.speech_seconds),
      transcriptionSecondsByProvider: {
        openai: sum(rows.usagePerDay.filter((row) => !transcribedByTwilio(row)), (row) => row.speech_seconds),
        twilio: sum(rows.usagePerDay.filter(transcribedByTwilio), (row) => row.speech_seconds),
      },
      timeToFirstAudio: {
        turns: rows.timeToFirstAudioOverall.turns,
        p50Ms: rows.timeToFirstAudioOverall.p50_ms === null ? null : Math.round(rows.timeToFirstAudioOverall.p50_ms),
        p95Ms: rows.timeToFirstAudioOverall.p95_ms === null ? null : Math.round(rows.timeToFirstAudioOverall.p95_ms),
      },
      cost: addCosts(usageCosts.map((entry) => entry.cost)),
    },
    days,
    callsPerDay: align(rows.callsPerDay, (row) => row.calls, 0) as number[],
    failedPerDay: align(rows.callsPerDay, (row) => row.failed, 0) as number[],
    durationDistribution: bucketLabels.map((label, index) => ({ label, calls: durationBuckets.get(index) ?? 0 })),
    timeToFirstAudio: {
      p50Ms: align(rows.timeToFirstAudio, (row) => Math.round(row.p50_ms), null),
      p95Ms: align(rows.timeToFirstAudio, (row) => Math.round(row.p95_ms), null),
      turns: align(rows.timeToFirstAudio, (row) => row.turns, 0) as number[],
    },
    confidenceDistribution: Array.from({ length: 10 }, (_, index) => ({
      label: `${(index / 10).toFixed(1)}–${((index + 1) / 10).toFixed(1)}`,
      turns: confidenceBuckets.get(index) ?? 0,
    })),
    costPerDay: { openai: dayCosts.map((cost) => cost.openai), twilio: dayCosts.map((cost) => cost.twilio) },
    failureReasons: rows.failureReasons,
    outcomes: rows.outcomes.map((row) => ({ outcome: row.outcome, label: outcomeLabel(row.outcome, row.outcome !== 'in-progress'), calls: row.calls })),
  };
}

/** Every UTC day from `from` to `to`, both included. */
export function daysBetween(from: string, to: string): string[] {
  const days: string[] = [];
  for (let day = Date.parse(`${from}T00:00:00Z`); day <= Date.parse(`${to}T00:00:00Z`); day += 86_400_000) {
    days.push(new Date(day).toISOString().slice(0, 10));
  }
  return days;
}

function formatBound(seconds: number): string {
  return seconds < 60 ? `${seconds}s` : `${seconds / 60}m`;
}

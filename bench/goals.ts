import type { LevelFigures } from './figures.js';
import { ms, type Comparison, type Goal, type Ramp } from './report.js';

/** Issue #3's targets for the realistic profile. */
export function realisticGoals(comparison: Comparison | undefined): Goal[] {
  if (!comparison) return [];
  const { ratio, pipelined } = comparison;
  return [
    {
      name: 'pipelined first audio ≤ ½ of sequential (p50)',
      target: 'sequential ÷ pipelined ≥ 2×',
      measured: `${ratio.p50.toFixed(2)}×`,
      // Judged as printed (two decimals), so a "2.00×" never reads as a miss.
      pass: Number(ratio.p50.toFixed(2)) >= 2,
    },
    {
      name: 'pipelined first audio ≤ ½ of sequential (p99)',
      target: 'sequential ÷ pipelined ≥ 2×',
      measured: `${ratio.p99.toFixed(2)}×`,
      pass: Number(ratio.p99.toFixed(2)) >= 2,
    },
    {
      name: 'pipelined first audio within 15 ms of its floor (p99)',
      target: 'measured − floor ≤ 15 ms',
      measured: `${ms(pipelined.overFloorMs.p99)} ms`,
      pass: pipelined.overFloorMs.count > 0 ? pipelined.overFloorMs.p99 <= 15 : undefined,
    },
  ];
}

/** Issue #3's targets for the zero profile: the server's own cost per webhook, and how many calls one process holds. */
export function zeroGoals(levels: LevelFigures[], ramp: Ramp | undefined): Goal[] {
  // The level whose webhook rate is nearest 200 per second (with the default think time, 200 calls).
  const candidates = levels.filter((figures) => figures.path === 'pipelined' && figures.concurrency > 1);
  const at200 = candidates.sort((a, b) => Math.abs(a.webhooksPerSecond - 200) - Math.abs(b.webhooksPerSecond - 200))[0];
  const where = at200 ? ` (${at200.concurrency} calls, ${at200.webhooksPerSecond.toFixed(0)} webhooks/s)` : '';
  return [
    {
      name: 'added latency per webhook, p50, at ~200 webhooks/s',
      target: '≤ 0.5 ms',
      measured: at200 ? `${ms(at200.webhookMs.all.p50)} ms${where}` : 'not measured',
      pass: at200 ? at200.webhookMs.all.p50 <= 0.5 : undefined,
    },
    {
      name: 'added latency per webhook, p99, at ~200 webhooks/s',
      target: '≤ 2 ms',
      measured: at200 ? `${ms(at200.webhookMs.all.p99)} ms${where}` : 'not measured',
      pass: at200 ? at200.webhookMs.all.p99 <= 2 : undefined,
    },
    {
      name: `concurrent calls with p99 added latency < ${ramp?.boundMs ?? 10} ms`,
      target: '≥ 500 calls',
      measured: !ramp ? 'not measured' : ramp.largestPassing === undefined ? `none (first level, ${ramp.levels[0]?.concurrency} calls, was over)` : `${ramp.largestPassing} calls`,
      pass: ramp ? (ramp.largestPassing ?? 0) >= 500 : undefined,
    },
  ];
}

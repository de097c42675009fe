import type { Summary } from '../stats.js';
import type { LatencyPhaseResult, LevelResult } from './stream-phases.js';
import { streamGoals } from './stream-report.js';

/**
 * The stream bench's chart, hand-written SVG like `../chart-svg.ts`: first
 * reply frame vs its floors, barge-in time split into detector and server,
 * and the concurrency ramp's three figures against their bounds.
 */

interface Panel {
  title: string;
  subtitle: string;
  unit: string;
  series: Array<{ name: string; color: string }>;
  groups: Array<{ label: string; values: number[] }>;
  bound?: { value: number; label: string };
}

const width = 980;
const panelHeight = 300;
const margin = { left: 70, right: 20, top: 58, bottom: 50 };
const percentileSeries = [
  { name: 'p50', color: '#4c78a8' },
  { name: 'p95', color: '#f58518' },
  { name: 'p99', color: '#e45756' },
];
const trio = (summary: Summary) => [summary.p50, summary.p95, summary.p99];

export function renderStreamChart(latency: LatencyPhaseResult | undefined, levels: LevelResult[], caption: string): string {
  const panels: Panel[] = [];
  if (latency) {
    panels.push({
      title: `Caller stops speaking → first reply frame — ${latency.calls} calls, realistic profile`,
      subtitle: 'floor = end-of-speech setting + injected transcription, chat first piece and speech first byte; detector floor uses when the detector really calls the turn',
      unit: 'ms',
      series: percentileSeries,
      groups: [
        { label: 'measured', values: trio(latency.firstFrame.measured) },
        { label: 'floor', values: trio(latency.firstFrame.floor) },
        { label: 'detector floor', values: trio(latency.firstFrame.detectorFloor) },
      ],
    });
    panels.push({
      title: 'What the server added to the first reply frame',
      subtitle: 'measured − floor (end-of-speech setting); added = measured − detector floor; "less the fake" also removes the fake\'s measured lateness',
      unit: 'ms',
      series: percentileSeries,
      groups: [
        { label: 'measured − floor', values: trio(latency.firstFrame.overFloor) },
        { label: 'added', values: trio(latency.firstFrame.added) },
        { label: 'added, less the fake', values: trio(latency.firstFrame.serverAdded) },
      ],
    });
    panels.push({
      title: 'TTS first byte → first frame, at the simulated Twilio',
      subtitle: 'the fake writes the first audio bytes → the caller receives the first frame: includes two loopback hops and the caller',
      unit: 'ms',
      series: percentileSeries,
      groups: [
        { label: 'measured at the caller', values: trio(latency.ttsToFrame.client) },
        { label: 'turn rows (1 ms steps)', values: trio(latency.ttsToFrame.stored) },
      ],
      bound: { value: streamGoals.ttsToFrameP99Ms, label: `goal ${streamGoals.ttsToFrameP99Ms} ms (p99)` },
    });
    panels.push({
      title: 'Barge-in: detected speech → clear',
      subtitle: 'the frame on which the detector fires leaves the caller → the clear arrives (the detector\'s own delay is in the table)',
      unit: 'ms',
      series: percentileSeries,
      groups: [{ label: 'detected → clear', values: trio(latency.bargeIn.server) }],
      bound: { value: streamGoals.bargeInP99Ms, label: `goal ${streamGoals.bargeInP99Ms} ms (p99)` },
    });
  }
  if (levels.length) {
    const group = (value: (level: LevelResult) => number) => levels.map((level) => ({ label: `${level.calls} streams`, values: [value(level)] }));
    panels.push({
      title: `Outbound frame jitter p99 by concurrent streams (${levels[0].profile} profile)`,
      subtitle: '|inter-arrival − 20 ms| of paced frames at the simulated Twilio',
      unit: 'ms',
      series: [{ name: 'p99', color: '#e45756' }],
      groups: group((level) => level.jitter.p99Ms),
      bound: { value: streamGoals.jitterP99Ms, label: `${streamGoals.jitterP99Ms} ms` },
    });
    panels.push({
      title: 'Server event-loop delay p99 by concurrent streams',
      subtitle: 'prom-client p99 less its 10 ms sampling interval',
      unit: 'ms',
      series: [{ name: 'p99', color: '#e45756' }],
      groups: group((level) => level.server.eventLoopP99Ms),
      bound: { value: streamGoals.eventLoopP99Ms, label: `${streamGoals.eventLoopP99Ms} ms` },
    });
    panels.push({
      title: 'Resident memory per stream',
      subtitle: '(peak RSS during the level − RSS of the idle server) ÷ streams',
      unit: 'MB',
      series: [{ name: 'MB/call', color: '#4c78a8' }],
      groups: group((level) => level.residentPerCallMb),
      bound: { value: streamGoals.residentPerCallMb, label: `${streamGoals.residentPerCallMb} MB` },
    });
  }
  const height = panels.length * panelHeight + 40;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="Helvetica, Arial, sans-serif" font-size="12">`,
    `<rect width="${width}" height="${height}" fill="#ffffff"/>`,
    ...panels.map((panel, index) => renderPanel(panel, index * panelHeight)),
    `<text x="${margin.left}" y="${height - 14}" fill="#666">${escapeXml(caption)}</text>`,
    '</svg>',
    '',
  ].join('\n');
}

function renderPanel(panel: Panel, top: number): string {
  const plotTop = top + margin.top;
  const plotWidth = width - margin.left - margin.right;
  const plotHeight = panelHeight - margin.top - margin.bottom;
  const values = panel.groups.flatMap((group) => group.values).filter((value) => Number.isFinite(value));
  const maximum = niceMaximum(Math.max(1e-3, ...values, panel.bound?.value ?? 0));
  const y = (value: number) => plotTop + plotHeight - (Math.max(0, value) / maximum) * plotHeight;
  const parts = [
    `<text x="${margin.left}" y="${top + 22}" font-size="15" font-weight="bold">${escapeXml(panel.title)}</text>`,
    `<text x="${margin.left}" y="${top + 40}" fill="#555">${escapeXml(panel.subtitle)}</text>`,
  ];
  for (let index = 0; index <= 5; index++) {
    const tick = (maximum * index) / 5;
    parts.push(`<line x1="${margin.left}" x2="${margin.left + plotWidth}" y1="${y(tick)}" y2="${y(tick)}" stroke="#e5e5e5"/>`);
    parts.push(`<text x="${margin.left - 6}" y="${y(tick) + 4}" text-anchor="end" fill="#555">${format(tick)}</text>`);
  }
  parts.push(`<text x="${margin.left - 52}" y="${plotTop + plotHeight / 2}" transform="rotate(-90 ${margin.left - 52} ${plotTop + plotHeight / 2})" text-anchor="middle" fill="#555">${panel.unit}</text>`);
  const groupWidth = plotWidth / Math.max(1, panel.groups.length);
  const barWidth = Math.min(40, (groupWidth * 0.8) / panel.series.length);
  panel.groups.forEach((group, groupIndex) => {
    const left = margin.left + groupIndex * groupWidth + (groupWidth - barWidth * panel.series.length) / 2;
    group.values.forEach((value, seriesIndex) => {
      const x = left + seriesIndex * barWidth;
      if (!Number.isFinite(value)) return;
      const barTop = y(value);
      parts.push(`<rect x="${x.toFixed(1)}" y="${barTop.toFixed(1)}" width="${(barWidth - 2).toFixed(1)}" height="${Math.max(1, plotTop + plotHeight - barTop).toFixed(1)}" fill="${panel.series[seriesIndex].color}"/>`);
      parts.push(`<text x="${(x + barWidth / 2 - 1).toFixed(1)}" y="${(barTop - 3).toFixed(1)}" text-anchor="middle" font-size="9" fill="#333">${format(value)}</text>`);
    });
    parts.push(`<text x="${margin.left + groupIndex * groupWidth + groupWidth / 2}" y="${plotTop + plotHeight + 16}" text-anchor="middle">${escapeXml(group.label)}</text>`);
  });
  parts.push(`<line x1="${margin.left}" x2="${margin.left + plotWidth}" y1="${plotTop + plotHeight}" y2="${plotTop + plotHeight}" stroke="#333"/>`);
  if (panel.bound) {
    const by = y(panel.bound.value);
    parts.push(`<line x1="${margin.left}" x2="${margin.left + plotWidth}" y1="${by}" y2="${by}" stroke="#d62728" stroke-dasharray="6 4" stroke-width="1.5"/>`);
    parts.push(`<text x="${margin.left + plotWidth - 4}" y="${by - 4}" text-anchor="end" fill="#d62728">${escapeXml(panel.bound.label)}</text>`);
  }
  panel.series.forEach((series, index) => {
    const x = margin.left + plotWidth - 70 * (panel.series.length - index);
    parts.push(`<rect x="${x}" y="${top + 12}" width="12" height="12" fill="${series.color}"/>`);
    parts.push(`<text x="${x + 16}" y="${top + 22}">${escapeXml(series.name)}</text>`);
  });
  return `<g>\n${parts.join('\n')}\n</g>`;
}

function niceMaximum(value: number): number {
  const power = 10 ** Math.floor(Math.log10(value));
  const step = [1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10].find((candidate) => value <= candidate * power * 1.0001) ?? 10;
  return step * power;
}

function format(value: number): string {
  return value >= 100 ? value.toFixed(0) : value >= 10 ? value.toFixed(1) : value.toFixed(2);
}

function escapeXml(text: string): string {
  return text.replace(/[&<>"]/g, (character) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[character] ?? character);
}

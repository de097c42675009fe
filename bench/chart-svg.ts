import type { LevelFigures } from './figures.js';
import { addedLatency, type ProfileResult } from './report.js';

/**
 * The bench's chart, written by hand as SVG (no chart library): time to
 * first audio pipelined vs sequential vs their floors, added latency vs
 * concurrency, and the zero-profile capacity ramp against its bound.
 */

interface Series {
  name: string;
  color: string;
}

interface BarGroup {
  label: string;
  values: number[];
}

interface Panel {
  title: string;
  subtitle: string;
  unit: string;
  log: boolean;
  series: Series[];
  groups: BarGroup[];
  /** A horizontal reference line (a goal's bound). */
  bound?: { value: number; label: string };
}

const width = 980;
const panelHeight = 330;
const margin = { left: 70, right: 20, top: 58, bottom: 60 };
const percentileColors = ['#4c78a8', '#f58518', '#e45756'];

export function renderChart(profiles: ProfileResult[], caption: string): string {
  const panels: Panel[] = [];
  for (const result of profiles) {
    if (result.comparison) {
      const { pipelined, sequential } = result.comparison;
      panels.push({
        title: `Time to first playable audio — ${result.profile} profile, ${result.comparison.concurrency} calls in flight`,
        subtitle: `caller stops speaking → first <Play> file downloaded; floors from the delays the fake injected into each turn; sequential ÷ pipelined: p50 ${result.comparison.ratio.p50.toFixed(2)}×, p99 ${result.comparison.ratio.p99.toFixed(2)}×`,
        unit: 'ms',
        log: false,
        series: ['p50', 'p95', 'p99'].map((name, index) => ({ name, color: percentileColors[index] })),
        groups: [
          { label: 'pipelined', values: trio(pipelined.firstAudioMs) },
          { label: 'pipelined floor', values: trio(pipelined.floorMs) },
          { label: 'sequential', values: trio(sequential.firstAudioMs) },
          { label: 'sequential floor', values: trio(sequential.floorMs) },
        ],
      });
    }
    if (result.levels.length) {
      panels.push({
        title: `Added latency vs concurrency — ${result.profile} profile`,
        subtitle: result.profile === 'zero'
          ? 'webhook + first audio download, no injected delay (log scale)'
          : 'measured − floor per turn (log scale)',
        unit: 'ms',
        log: true,
        series: ['p50', 'p95', 'p99'].map((name, index) => ({ name, color: percentileColors[index] })),
        groups: result.levels.map((figures) => ({ label: `${figures.path} ×${figures.concurrency}`, values: trio(addedLatency(figures)) })),
        bound: result.profile === 'zero' ? undefined : { value: 15, label: 'goal: pipelined p99 ≤ 15 ms over its floor' },
      });
    }
    if (result.ramp) {
      panels.push({
        title: `Capacity ramp — ${result.profile} profile, pipelined, think time ${Math.round(result.ramp.levels[0]?.thinkMs ?? 0)} ms`,
        subtitle: `added latency per turn by calls in flight (log scale); bound ${result.ramp.boundMs} ms at p99`,
        unit: 'ms',
        log: true,
        series: ['p50', 'p95', 'p99'].map((name, index) => ({ name, color: percentileColors[index] })),
        groups: result.ramp.levels.map((figures: LevelFigures) => ({ label: `${figures.concurrency} calls`, values: trio(addedLatency(figures)) })),
        bound: { value: result.ramp.boundMs, label: `${result.ramp.boundMs} ms` },
      });
    }
  }
  const height = panels.length * panelHeight + 40;
  const body = panels.map((panel, index) => renderPanel(panel, index * panelHeight)).join('\n');
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="Helvetica, Arial, sans-serif" font-size="12">`,
    `<rect width="${width}" height="${height}" fill="#ffffff"/>`,
    body,
    `<text x="${margin.left}" y="${height - 14}" fill="#666">${escapeXml(caption)}</text>`,
    '</svg>',
    '',
  ].join('\n');
}

function trio(summary: { p50: number; p95: number; p99: number }): number[] {
  return [summary.p50, summary.p95, summary.p99];
}

function renderPanel(panel: Panel, top: number): string {
  const plotLeft = margin.left;
  const plotTop = top + margin.top;
  const plotWidth = width - margin.left - margin.right;
  const plotHeight = panelHeight - margin.top - margin.bottom;
  const values = panel.groups.flatMap((group) => group.values).filter((value) => Number.isFinite(value) && value > 0);
  const scale = panel.log ? logScale(values, panel.bound?.value) : linearScale(values);
  const y = (value: number) => plotTop + plotHeight - scale.position(value) * plotHeight;
  const parts: string[] = [
    `<text x="${plotLeft}" y="${top + 22}" font-size="15" font-weight="bold">${escapeXml(panel.title)}</text>`,
    `<text x="${plotLeft}" y="${top + 40}" fill="#555">${escapeXml(panel.subtitle)}</text>`,
  ];
  for (const tick of scale.ticks) {
    const ty = y(tick);
    parts.push(`<line x1="${plotLeft}" x2="${plotLeft + plotWidth}" y1="${ty}" y2="${ty}" stroke="#e5e5e5"/>`);
    parts.push(`<text x="${plotLeft - 6}" y="${ty + 4}" text-anchor="end" fill="#555">${formatTick(tick)}</text>`);
  }
  parts.push(`<text x="${plotLeft - 52}" y="${plotTop + plotHeight / 2}" transform="rotate(-90 ${plotLeft - 52} ${plotTop + plotHeight / 2})" text-anchor="middle" fill="#555">${panel.unit}</text>`);
  parts.push(`<line x1="${plotLeft}" x2="${plotLeft + plotWidth}" y1="${plotTop + plotHeight}" y2="${plotTop + plotHeight}" stroke="#333"/>`);

  const groupWidth = plotWidth / Math.max(1, panel.groups.length);
  const barWidth = Math.min(34, (groupWidth * 0.8) / panel.series.length);
  panel.groups.forEach((group, groupIndex) => {
    const groupLeft = plotLeft + groupIndex * groupWidth + (groupWidth - barWidth * panel.series.length) / 2;
    group.values.forEach((value, seriesIndex) => {
      const x = groupLeft + seriesIndex * barWidth;
      if (!Number.isFinite(value) || (panel.log && value <= 0)) {
        parts.push(`<text x="${x + barWidth / 2}" y="${plotTop + plotHeight - 4}" text-anchor="middle" fill="#999">—</text>`);
        return;
      }
      const barTop = y(Math.max(value, scale.minimum));
      const heightPx = Math.max(1, plotTop + plotHeight - barTop);
      parts.push(`<rect x="${x.toFixed(1)}" y="${barTop.toFixed(1)}" width="${(barWidth - 2).toFixed(1)}" height="${heightPx.toFixed(1)}" fill="${panel.series[seriesIndex].color}"><title>${escapeXml(`${group.label} ${panel.series[seriesIndex].name}: ${formatValue(value)} ${panel.unit}`)}</title></rect>`);
      parts.push(`<text x="${(x + barWidth / 2 - 1).toFixed(1)}" y="${(barTop - 3).toFixed(1)}" text-anchor="middle" font-size="9" fill="#333">${formatValue(value)}</text>`);
    });
    parts.push(`<text x="${plotLeft + groupIndex * groupWidth + groupWidth / 2}" y="${plotTop + plotHeight + 16}" text-anchor="middle">${escapeXml(group.label)}</text>`);
  });
  if (panel.bound) {
    const by = y(panel.bound.value);
    parts.push(`<line x1="${plotLeft}" x2="${plotLeft + plotWidth}" y1="${by}" y2="${by}" stroke="#d62728" stroke-dasharray="6 4" stroke-width="1.5"/>`);
    // A white halo keeps the label readable where it crosses a bar.
    parts.push(`<text x="${plotLeft + 4}" y="${by - 4}" fill="#d62728" stroke="#ffffff" stroke-width="3" paint-order="stroke">${escapeXml(panel.bound.label)}</text>`);
  }
  panel.series.forEach((series, index) => {
    const lx = plotLeft + plotWidth - 60 * (panel.series.length - index);
    parts.push(`<rect x="${lx}" y="${top + 12}" width="12" height="12" fill="${series.color}"/>`);
    parts.push(`<text x="${lx + 16}" y="${top + 22}">${escapeXml(series.name)}</text>`);
  });
  return `<g>\n${parts.join('\n')}\n</g>`;
}

interface Scale {
  position(value: number): number;
  ticks: number[];
  minimum: number;
}

function linearScale(values: number[]): Scale {
  const top = Math.max(1, ...values);
  const step = niceStep(top / 5);
  const maximum = Math.ceil(top / step) * step;
  const ticks = Array.from({ length: Math.round(maximum / step) + 1 }, (_, index) => index * step);
  return { position: (value) => value / maximum, ticks, minimum: 0 };
}

function logScale(values: number[], bound?: number): Scale {
  const all = bound === undefined ? values : [...values, bound];
  const low = Math.floor(Math.log10(Math.max(0.01, Math.min(...all, 1))));
  const high = Math.ceil(Math.log10(Math.max(...all, 10)));
  const ticks = Array.from({ length: high - low + 1 }, (_, index) => 10 ** (low + index));
  return {
    position: (value) => (Math.log10(Math.max(value, 10 ** low)) - low) / (high - low),
    ticks,
    minimum: 10 ** low,
  };
}

function niceStep(raw: number): number {
  const power = 10 ** Math.floor(Math.log10(raw));
  const fraction = raw / power;
  return (fraction <= 1 ? 1 : fraction <= 2 ? 2 : fraction <= 5 ? 5 : 10) * power;
}

function formatTick(value: number): string {
  return value >= 1000 ? `${value / 1000}k` : String(Number(value.toPrecision(3)));
}

function formatValue(value: number): string {
  return value >= 100 ? value.toFixed(0) : value >= 10 ? value.toFixed(1) : value.toFixed(2);
}

function escapeXml(text: string): string {
  return text.replace(/[&<>"]/g, (character) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[character] ?? character);
}

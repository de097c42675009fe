import type { AnalyticsReport } from '../admin/analytics.js';
import { formatDuration, formatMoney, formatMs, formatNumber } from './format.js';
import { html, jsonScript, type SafeHtml } from './html.js';
import { layout, type PageOptions } from './layout.js';

/** The charts analytics.js draws, each into the canvas with this id. */
export const analyticsCharts = [
  { id: 'chart-calls', title: 'Calls per day', wide: true },
  { id: 'chart-outcomes', title: 'Outcomes' },
  { id: 'chart-latency', title: 'Time to first audio (p50 / p95)', wide: true },
  { id: 'chart-durations', title: 'Call duration' },
  { id: 'chart-cost', title: 'Cost per day by provider', wide: true },
  { id: 'chart-confidence', title: 'Speech confidence' },
  { id: 'chart-failures', title: 'Most common failure reasons', wide: true },
] as const;

/** Charts of how the assistant is doing, over a range of UTC days. */
export function analyticsPage(report: AnalyticsReport, options: Pick<PageOptions, 'principal' | 'csrfToken'> & { today: string }): string {
  const { totals } = report;
  const minutes = (seconds: number) => formatNumber(Math.round(seconds / 6) / 10);
  // The transcription cost is one figure; Twilio's share is what it bills beyond the call minutes.
  const twilioTranscription = Math.max(0, totals.cost.twilio - totals.cost.telephony);
  const openaiTranscription = totals.cost.transcription === null ? null : Math.max(0, totals.cost.transcription - twilioTranscription);
  const preset = (days: number) => {
    const from = new Date(Date.parse(`${options.today}T00:00:00Z`) - (days - 1) * 86_400_000).toISOString().slice(0, 10);
    const active = report.range.to === options.today && report.range.from === from;
    return html`<a class="button button-ghost${active ? ' active' : ''}" href="/dashboard/analytics?from=${from}&amp;to=${options.today}">${days} days</a>`;
  };
  const kpi = (label: string, value: string, note: SafeHtml | string, testId: string) =>
    html`<div class="kpi card" data-testid="${testId}"><div class="kpi-label">${label}</div><div class="kpi-value">${value}</div><div class="kpi-note muted">${note}</div></div>`;

  const body = html`<div class="page-head row">
  <div><h1>Analytics</h1><p class="muted">${report.range.from} to ${report.range.to} (UTC)</p></div>
  <form class="range" method="get" action="/dashboard/analytics">
    ${preset(7)}${preset(30)}${preset(90)}
    <label>From <input type="date" name="from" value="${report.range.from}"></label>
    <label>To <input type="date" name="to" value="${report.range.to}"></label>
    <button type="submit" class="button">Show</button>
  </form>
</div>
<div class="kpis">
  ${kpi('Calls', formatNumber(totals.calls), `${formatNumber(totals.failedCalls)} failed · ${formatNumber(totals.calls - totals.endedCalls)} not ended`, 'kpi-calls')}
  ${kpi('Talk time', `${formatNumber(totals.billedMinutes)} min`, `average call ${formatDuration(totals.averageDurationSeconds)}`, 'kpi-minutes')}
  ${kpi('Time to first audio', formatMs(totals.timeToFirstAudio.p50Ms), `p50 · p95 ${formatMs(totals.timeToFirstAudio.p95Ms)} · ${formatNumber(totals.timeToFirstAudio.turns)} turns`, 'kpi-latency')}
  ${kpi('Cost', formatMoney(totals.cost.total), `OpenAI ${formatMoney(totals.cost.openai)} · Twilio ${formatMoney(totals.cost.twilio)}`, 'kpi-cost')}
</div>
<section class="card usage" data-testid="usage">
  <h2>Usage and cost</h2>
  <table class="cost usage-table">
    <thead><tr><th>Usage</th><th>Billed by</th><th class="num">Quantity</th><th class="num">Cost</th></tr></thead>
    <tbody>
      <tr><th>LLM tokens</th><td>OpenAI</td><td class="num">${formatNumber(totals.promptTokens)} in · ${formatNumber(totals.completionTokens)} out</td><td class="num">${formatMoney(totals.cost.llm)}</td></tr>
      <tr><th>Speech synthesis</th><td>OpenAI</td><td class="num">${formatNumber(totals.ttsCharacters)} characters</td><td class="num">${formatMoney(totals.cost.speech)}</td></tr>
      <tr><th>Transcription <span class="muted small">(media streams; estimated from the words heard)</span></th><td>OpenAI</td><td class="num">≈ ${minutes(totals.transcriptionSecondsByProvider.openai)} min</td><td class="num">${formatMoney(openaiTranscription)}</td></tr>
      <tr><th>Speech recognition <span class="muted small">(&lt;Gather&gt;; estimated)</span></th><td>Twilio</td><td class="num">≈ ${minutes(totals.transcriptionSecondsByProvider.twilio)} min</td><td class="num">${formatMoney(twilioTranscription)}</td></tr>
      <tr><th>Call minutes <span class="muted small">(per started minute)</span></th><td>Twilio</td><td class="num">${formatNumber(totals.billedMinutes)} min</td><td class="num">${formatMoney(totals.cost.telephony)}</td></tr>
      <tr class="total"><th>Total</th><td class="muted small">OpenAI ${formatMoney(totals.cost.openai)} · Twilio ${formatMoney(totals.cost.twilio)}</td><td></td><td class="num">${formatMoney(totals.cost.total)}</td></tr>
    </tbody>
  </table>
  ${totals.cost.unpriced.length ? html`<p class="muted small">No price for: ${totals.cost.unpriced.join(', ')}. Add them to the PRICING file.</p>` : html``}
</section>
<div class="charts">
  ${analyticsCharts.map(
    (chart) => html`<section class="card chart${'wide' in chart && chart.wide ? ' wide' : ''}">
    <h2>${chart.title}</h2>
    <div class="chart-box"><canvas id="${chart.id}" role="img" aria-label="${chart.title}"></canvas></div>
  </section>`,
  )}
  <section class="card failure-table">
    <h2>Failures in detail</h2>
    ${report.failureReasons.length
      ? html`<table class="plain"><thead><tr><th>Reason</th><th class="num">Count</th><th>Example</th></tr></thead>
      <tbody>${report.failureReasons.map((reason) => html`<tr><td><code>${reason.reason}</code></td><td class="num">${reason.count}</td><td class="muted small example">${reason.example ?? ''}</td></tr>`)}</tbody></table>`
      : html`<p class="muted">No failures in this range.</p>`}
  </section>
</div>
${jsonScript('analytics-data', report)}`;
  return layout({
    title: 'Analytics',
    section: 'analytics',
    principal: options.principal,
    csrfToken: options.csrfToken,
    body,
    scripts: ['chart.umd.min.js', 'analytics.js'],
  });
}

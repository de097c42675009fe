import type { CallPage } from '../admin/admin-api-routes.js';
import { callStatuses } from '../admin/admin-queries.js';
import { outcomeLabels } from '../admin/call-views.js';
import { badge, formatDuration, formatMoney, formatTime, outcomeTone, statusTone } from './format.js';
import { html } from './html.js';
import { layout, type PageOptions } from './layout.js';

/** The filter form's values as the reader typed them. */
export interface CallFilterForm {
  from?: string;
  to?: string;
  status?: string;
  outcome?: string;
  number?: string;
  q?: string;
  profile?: string;
}

const filterOutcomes = ['details-collected', 'completed', 'hung-up', 'no-input', 'transferred', 'failed', 'missed'];

/** Every call, newest first, with the filter form and pages. */
export function callsPage(options: { page?: CallPage; form: CallFilterForm; error?: string } & Pick<PageOptions, 'principal' | 'csrfToken'>): string {
  const { page, form } = options;
  const query = (pageNumber: number) => {
    const params = new URLSearchParams(Object.entries(form).filter((entry): entry is [string, string] => Boolean(entry[1])));
    if (pageNumber > 1) params.set('page', String(pageNumber));
    const text = params.toString();
    return `/dashboard/calls${text ? `?${text}` : ''}`;
  };
  const pages = page ? Math.max(1, Math.ceil(page.total / page.pageSize)) : 1;
  const filtered = Object.values(form).some(Boolean);

  const rows = page?.calls.map(
    (call) => html`<tr>
      <td><a class="row-link" href="/dashboard/calls/${encodeURIComponent(call.callSid)}">${formatTime(call.startedAt)}</a></td>
      <td>${badge(call.status, statusTone(call.status))}</td>
      <td class="mono">${call.from ?? '–'}${call.direction === 'staff-test' ? html` <span class="chip" title="A conversation from the Talk page or /mvp/*, not a phone call">staff test</span>` : html``}</td>
      <td class="mono">${call.to ?? '–'}</td>
      <td class="num">${formatDuration(call.durationSeconds)}</td>
      <td class="num">${call.turns}</td>
      <td>${badge(call.outcomeLabel, outcomeTone(call.outcome))}${call.errors > 0 ? html` <span class="chip chip-bad" title="Turns with errors">${call.errors} error${call.errors === 1 ? '' : 's'}</span>` : html``}</td>
      <td class="num" title="OpenAI ${formatMoney(call.cost.openai)} · Twilio ${formatMoney(call.cost.twilio)}">${formatMoney(call.cost.total)}</td>
    </tr>`,
  );

  const body = html`<div class="page-head">
  <h1>Calls</h1>
  ${page ? html`<p class="muted summary" data-testid="calls-summary">${page.total} call${page.total === 1 ? '' : 's'}${filtered ? ' match' : ''} · cost ${formatMoney(page.totalCost.total)}
    <span class="split">(OpenAI ${formatMoney(page.totalCost.openai)} · Twilio ${formatMoney(page.totalCost.twilio)})</span></p>` : html``}
</div>
<form class="filters card" method="get" action="/dashboard/calls" role="search">
  <label>From <input type="date" name="from" value="${form.from ?? ''}"></label>
  <label>To <input type="date" name="to" value="${form.to ?? ''}"></label>
  <label>Status <select name="status"><option value="">Any</option>${callStatuses.map((status) => html`<option value="${status}"${form.status === status ? html` selected` : html``}>${status}</option>`)}</select></label>
  <label>Outcome <select name="outcome"><option value="">Any</option>${filterOutcomes.map((outcome) => html`<option value="${outcome}"${form.outcome === outcome ? html` selected` : html``}>${outcomeLabels[outcome]}</option>`)}</select></label>
  <label>Number <input type="search" name="number" inputmode="tel" placeholder="+1555…" value="${form.number ?? ''}"></label>
  <label class="grow">Transcript contains <input type="search" name="q" placeholder="words the caller or assistant said" value="${form.q ?? ''}"></label>
  ${form.profile ? html`<input type="hidden" name="profile" value="${form.profile}">` : html``}
  <div class="actions"><button type="submit" class="button">Apply</button>${filtered ? html`<a class="button button-ghost" href="/dashboard/calls">Reset</a>` : html``}</div>
</form>
${options.error ? html`<p class="alert alert-bad" role="alert">${options.error}</p>` : html``}
${page
  ? page.calls.length === 0
    ? html`<div class="card empty">${filtered ? 'No call matches these filters.' : 'No calls yet. Point a Twilio number at this server, or try one with `npm run call`.'}</div>`
    : html`<div class="card table-card"><table class="calls" data-testid="calls-table">
  <thead><tr><th>Started</th><th>Status</th><th>Caller</th><th>Called</th><th class="num">Duration</th><th class="num">Turns</th><th>Outcome</th><th class="num">Cost</th></tr></thead>
  <tbody>${rows}</tbody>
</table></div>
<nav class="pager" aria-label="Pages">
  ${page.page > 1 ? html`<a class="button button-ghost" rel="prev" href="${query(page.page - 1)}">← Newer</a>` : html`<span></span>`}
  <span class="muted">Page ${page.page} of ${pages}</span>
  ${page.page < pages ? html`<a class="button button-ghost" rel="next" href="${query(page.page + 1)}">Older →</a>` : html`<span></span>`}
</nav>`
  : html``}`;
  return layout({ title: 'Calls', section: 'calls', principal: options.principal, csrfToken: options.csrfToken, body, scripts: ['calls.js'] });
}

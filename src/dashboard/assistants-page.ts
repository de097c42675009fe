import { formatNumber, formatTime } from './format.js';
import { html } from './html.js';
import { layout, type PageOptions } from './layout.js';
import type { loadAssistants } from '../admin/admin-api-routes.js';

type Assistant = Awaited<ReturnType<typeof loadAssistants>>[number];

/** The profiles this server answers with (read-only), and the numbers each answers. */
export function assistantsPage(assistants: Assistant[], options: Pick<PageOptions, 'principal' | 'csrfToken'>): string {
  const body = html`<div class="page-head">
  <h1>Assistants</h1>
  <p class="muted">The profiles in <code>PROFILES_DIR</code>. Edit their JSON files and restart to change them.</p>
</div>
<div class="assistants">
${assistants.map(
  (assistant) => html`<article class="card assistant" id="${assistant.id}" data-testid="assistant-${assistant.id}">
  <header>
    <h2>${assistant.name}</h2>
    <span class="mono muted">${assistant.id}</span>
    ${assistant.isDefault ? html`<span class="badge badge-info">default</span>` : html``}
  </header>
  <dl class="facts">
    <dt>Answers</dt><dd>${assistant.phoneNumbers.length ? assistant.phoneNumbers.map((number) => html`<span class="mono number">${number}</span> `) : assistant.isDefault ? html`<span class="muted">every number no other profile answers</span>` : html`<span class="muted">no number (set phoneNumbers)</span>`}</dd>
    <dt>Language</dt><dd>${assistant.language}</dd>
    <dt>Mode</dt><dd>${assistant.mode}</dd>
    <dt>Chat model</dt><dd>${assistant.chatModel}</dd>
    <dt>Voice</dt><dd>${assistant.speech === 'openai' ? `${assistant.voice} · ${assistant.speechModel}` : `Twilio ${assistant.voice ?? 'Polly voice for the language'}`}</dd>
    <dt>Transcription</dt><dd>${assistant.transcriptionModel ?? 'speech to speech'}</dd>
    <dt>Collects</dt><dd>${assistant.details.length ? assistant.details.map((detail) => html`<span class="chip" title="${detail.description}">${detail.name}</span> `) : html`<span class="muted">nothing</span>`}</dd>
    <dt>Calls (30 days)</dt><dd><a href="/dashboard/calls?profile=${assistant.id}">${formatNumber(assistant.callsLast30Days)}</a>${assistant.lastCallAt ? html` · last ${formatTime(assistant.lastCallAt)}` : html``}</dd>
  </dl>
  <blockquote class="greeting">${assistant.greeting}</blockquote>
  <p><a href="/dashboard/talk?profile=${assistant.id}" data-testid="talk-to-${assistant.id}">Talk to this assistant</a></p>
</article>`,
)}
</div>`;
  return layout({ title: 'Assistants', section: 'assistants', principal: options.principal, csrfToken: options.csrfToken, body });
}

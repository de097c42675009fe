import { html } from './html.js';
import { layout, type PageOptions } from './layout.js';

/** Calls in progress; live.js fills the list from `/api/live/events` and keeps it current. */
export function livePage(options: Pick<PageOptions, 'principal' | 'csrfToken'>): string {
  const body = html`<div class="page-head row">
  <div><h1>Live</h1><p class="muted">Calls in progress, updated as they happen.</p></div>
  <p class="connection" data-testid="live-connection"><span class="dot"></span> <span class="state">Connecting…</span></p>
</div>
<p class="card empty" id="live-empty" hidden>No calls in progress.</p>
<div id="live-calls" class="live-calls" aria-live="polite"></div>
<template id="live-call-template">
  <article class="card live-call">
    <header>
      <a class="title mono"></a>
      <span class="badge badge-info status"></span>
      <span class="muted small profile"></span>
      <span class="elapsed mono" title="Time since the call started"></span>
    </header>
    <div class="latest">
      <div class="line caller"><div class="meta"><strong>Caller</strong> <span class="chip confidence"></span></div><div class="bubble caller-text"></div></div>
      <div class="line assistant"><div class="meta"><strong>Assistant</strong> <span class="chip turn-status"></span></div><div class="bubble assistant-text"></div></div>
    </div>
    <footer class="muted small"><span class="turns"></span> <span class="details"></span></footer>
  </article>
</template>`;
  return layout({ title: 'Live', section: 'live', principal: options.principal, csrfToken: options.csrfToken, body, scripts: ['live.js'] });
}

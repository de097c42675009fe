import type { CallDetail, TurnView } from '../admin/call-views.js';
import { badge, confidenceChip, formatDuration, formatMoney, formatMs, formatNumber, formatTime, outcomeTone, statusTone } from './format.js';
import { html, type SafeHtml } from './html.js';
import { latencyWaterfall } from './latency-waterfall.js';
import { telephonyCards } from './telephony-cards.js';
import { layout, type PageOptions } from './layout.js';

/** One call: the conversation with its audio and latency, and beside it what was collected, what went wrong and what it cost. */
export function callPage(call: CallDetail, options: Pick<PageOptions, 'principal' | 'csrfToken'>): string {
  const scaleMs = Math.max(0, ...call.conversation.map((turn) => turn.latency.totalMs ?? 0));
  const audioGone = call.audioRetention.deletedAt !== null;
  const errors = call.conversation.filter((turn) => turn.error);
  const detailEntries = Object.entries(call.details);

  const body = html`<div class="page-head">
  <p class="crumbs"><a href="/dashboard/calls">← Calls</a></p>
  <h1>Call from <span class="mono">${call.from ?? 'unknown'}</span></h1>
  <p class="muted"><span class="mono">${call.callSid}</span> · ${badge(call.status, statusTone(call.status))} ${badge(call.outcomeLabel, outcomeTone(call.outcome))}</p>
</div>
<div class="call-grid">
  <section class="card transcript" aria-label="Transcript">
    <h2>Transcript</h2>
    ${audioGone
      ? html`<p class="alert alert-warn" data-testid="audio-deleted">This call's audio was deleted ${formatTime(call.audioRetention.deletedAt)} under the audio retention setting${call.audioRetention.applied ? html` (<code>${call.audioRetention.applied}</code>)` : html``}. Shared phrases such as the greeting can still be played.</p>`
      : call.audioRetention.expiresAt
        ? html`<p class="muted small">Audio is kept until ${formatTime(call.audioRetention.expiresAt)}.</p>`
        : html``}
    <ol class="conversation">${call.conversation.map((turn) => turnEntries(turn, scaleMs))}</ol>
  </section>
  <aside class="side">
    <section class="card">
      <h2>Overview</h2>
      <dl class="facts">
        <dt>Caller</dt><dd class="mono">${call.from ?? '–'}</dd>
        <dt>Called</dt><dd class="mono">${call.to ?? '–'}</dd>
        <dt>Assistant</dt><dd><a href="/dashboard/assistants#${call.profileId}">${call.profileId}</a> · ${call.assistantMode} · ${call.mode}</dd>
        <dt>Started</dt><dd>${formatTime(call.startedAt)}</dd>
        <dt>Ended</dt><dd>${formatTime(call.endedAt)}</dd>
        <dt>Duration</dt><dd>${formatDuration(call.durationSeconds)}</dd>
        <dt>Turns</dt><dd>${call.turns}</dd>
        <dt>Language</dt><dd>${call.language}</dd>
      </dl>
    </section>
    <section class="card" data-testid="details">
      <h2>Details collected</h2>
      ${detailEntries.length
        ? html`<dl class="facts">${detailEntries.map(([key, value]) => html`<dt>${humanize(key)}</dt><dd>${typeof value === 'string' ? value : JSON.stringify(value)}</dd>`)}</dl>`
        : html`<p class="muted">Nothing was collected.</p>`}
    </section>
    ${telephonyCards(call)}
    <section class="card" data-testid="errors">
      <h2>Errors</h2>
      ${errors.length
        ? html`<ul class="errors">${errors.map((turn) => html`<li><span class="chip chip-bad">${turn.error!.code}</span> turn ${turn.seq}${turn.error!.message ? html`<br><span class="muted small">${turn.error!.message}</span>` : html``}</li>`)}</ul>`
        : html`<p class="muted">None.</p>`}
    </section>
    <section class="card" data-testid="cost">
      <h2>Cost <span class="muted small">${formatMoney(call.cost.total)}</span></h2>
      <table class="cost">
        <tr><th>LLM<span class="model">${call.usage.chatModel}</span></th><td class="num">${formatNumber(call.usage.promptTokens)} in<br>${formatNumber(call.usage.completionTokens)} out</td><td class="num">${formatMoney(call.cost.llm)}</td></tr>
        <tr><th>Speech<span class="model">${call.usage.speechModel ?? 'Twilio voice'}</span></th><td class="num">${formatNumber(call.usage.ttsCharacters)} chars</td><td class="num">${formatMoney(call.cost.speech)}</td></tr>
        <tr><th>Transcription<span class="model">${call.usage.transcriptionModel ?? '–'}</span></th><td class="num" title="Estimated from the length of what the caller said">≈ ${call.usage.transcriptionSeconds} s</td><td class="num">${formatMoney(call.cost.transcription)}</td></tr>
        <tr><th>Call minutes<span class="model">Twilio, per started minute</span></th><td class="num">${call.usage.billedMinutes} min</td><td class="num">${formatMoney(call.cost.telephony)}</td></tr>
        <tr class="total"><th>Total</th><td></td><td class="num">${formatMoney(call.cost.total)}</td></tr>
      </table>
      <p class="muted small split-line">OpenAI ${formatMoney(call.cost.openai)} · Twilio ${formatMoney(call.cost.twilio)}</p>
      ${call.cost.unpriced.length ? html`<p class="muted small">No price for: ${call.cost.unpriced.join(', ')} (set PRICING).</p>` : html``}
    </section>
    <section class="card">
      <h2>Status callbacks</h2>
      ${call.events.length
        ? html`<ul class="events">${call.events.map((event) => html`<li>${formatTime(event.at, 'time')} ${badge(event.status, statusTone(event.status))}</li>`)}</ul>`
        : html`<p class="muted">None received yet.</p>`}
    </section>
  </aside>
</div>`;
  return layout({ title: `Call ${call.callSid}`, section: 'calls', principal: options.principal, csrfToken: options.csrfToken, body });
}

function turnEntries(turn: TurnView, scaleMs: number): SafeHtml {
  const caller = turn.caller
    ? html`<li class="line caller" data-seq="${turn.seq}">
      <div class="meta"><strong>Caller</strong> ${formatTime(turn.caller.at, 'time')} ${confidenceChip(turn.caller.confidence)}${turn.kind === 'unclear' ? html` <span class="chip chip-warn">unclear</span>` : html``}</div>
      <div class="bubble">${turn.caller.text ?? html`<em class="muted">${turn.kind === 'silence' ? '(silence)' : turn.kind === 'dtmf' ? '(keypad)' : '(nothing)'}</em>`}</div>
    </li>`
    : html``;
  const tools = turn.toolCalls.filter((call): call is { name: string; arguments?: unknown } => typeof call === 'object' && call !== null && 'name' in call);
  const assistant = html`<li class="line assistant" data-seq="${turn.seq}">
    <div class="meta"><strong>Assistant</strong> ${formatTime(turn.assistant.at, 'time')}${turn.assistant.mode ? html` <span class="chip">${turn.assistant.mode}</span>` : html``}${turn.latency.timeToFirstAudioMs !== null ? html` <span class="chip" title="Time to first audio">${formatMs(turn.latency.timeToFirstAudioMs)}</span>` : html``}${turn.assistant.interrupted ? html` <span class="chip chip-warn">interrupted</span>` : html``}${turn.action === 'hangup' ? html` <span class="chip">hung up</span>` : html``}</div>
    <div class="bubble">${turn.assistant.text ?? html`<em class="muted">${turn.status === 'processing' ? '(still speaking…)' : '(nothing)'}</em>`}</div>
    ${turn.audio.length
      ? html`<div class="audio">${turn.audio.map((audio) =>
          audio.available
            ? html`<figure><audio controls preload="metadata" src="${audio.url}" title="${audio.text}"></audio><figcaption>${audio.shared ? 'shared phrase' : audio.durationMs !== null ? formatMs(audio.durationMs) : ''}</figcaption></figure>`
            : html`<p class="muted small audio-gone">Audio deleted: “${audio.text}”</p>`,
        )}</div>`
      : html``}
    ${tools.length ? html`<div class="tools">${tools.map((call) => html`<code class="tool">${call.name}(${call.arguments === undefined ? '' : JSON.stringify(call.arguments)})</code>`)}</div>` : html``}
    ${turn.error ? html`<p class="turn-error"><span class="chip chip-bad">${turn.error.code}</span> ${turn.error.message ?? ''}</p>` : html``}
    ${latencyWaterfall(turn.latency, scaleMs)}
  </li>`;
  return html`${caller}${assistant}`;
}

/** `party_size` → `Party size`. */
function humanize(key: string): string {
  const words = key.replace(/_/g, ' ');
  return words.charAt(0).toUpperCase() + words.slice(1);
}

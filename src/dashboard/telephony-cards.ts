import type { CallDetail } from '../admin/call-views.js';
import { badge, formatDuration, formatTime } from './format.js';
import { html, type SafeHtml } from './html.js';

/** The call page's recording, hand-off and outbound cards; nothing for a call that had none. */
export function telephonyCards(call: CallDetail): SafeHtml {
  const recordings = call.recordings ?? [];
  const transfers = call.transfers ?? [];
  return html`${call.outbound
    ? html`<section class="card" data-testid="outbound">
      <h2>Outbound call</h2>
      <dl class="facts">
        <dt>Purpose</dt><dd>${call.outbound.purpose}${call.outbound.details ? html` · ${call.outbound.details}` : html``}</dd>
        <dt>Answered by</dt><dd>${call.outbound.answeredBy ?? call.outbound.status}</dd>
        <dt>${call.outbound.status === 'machine' ? 'Voicemail' : 'Opening'}</dt><dd>${call.outbound.status === 'machine' ? call.outbound.voicemail : call.outbound.greeting}</dd>
      </dl>
    </section>`
    : html``}
  ${recordings.length
    ? html`<section class="card" data-testid="recordings">
      <h2>Recording</h2>
      ${recordings.map(
        (recording) => html`<div class="recording">
        <p>${badge(recording.status, recording.status === 'completed' ? 'ok' : recording.status === 'in-progress' ? 'info' : 'warn')} ${formatDuration(recording.durationSeconds)}${recording.channels === 2 ? ' · two channels' : ''}</p>
        ${recording.url
          ? html`<audio controls preload="none" src="${recording.url}" data-testid="recording-audio"></audio>`
          : html`<p class="muted small">${recording.note ?? (recording.status === 'completed' ? 'Being fetched…' : 'Not finished yet.')}</p>`}
      </div>`,
      )}
    </section>`
    : html``}
  ${transfers.length
    ? html`<section class="card" data-testid="transfers">
      <h2>Transfer to a person</h2>
      ${transfers.map(
        (transfer) => html`<dl class="facts">
        <dt>To</dt><dd class="mono">${transfer.to}</dd>
        <dt>When</dt><dd>${formatTime(transfer.at)}</dd>
        <dt>Result</dt><dd>${badge(transfer.status, transfer.status === 'completed' || transfer.status === 'answered' ? 'ok' : transfer.status === 'dialing' ? 'info' : 'warn')}${transfer.durationSeconds ? html` · ${formatDuration(transfer.durationSeconds)}` : html``}</dd>
        <dt>Summary</dt><dd>${transfer.summary}</dd>
        ${transfer.message !== null ? html`<dt>Message</dt><dd data-testid="transfer-message">${transfer.message}</dd>` : html``}
      </dl>`,
      )}
    </section>`
    : html``}`;
}

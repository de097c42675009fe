import { html, type SafeHtml } from './html.js';

/** `65` → `1:05`, `3725` → `1:02:05`; `null` → an en dash. */
export function formatDuration(seconds: number | null): string {
  if (seconds === null) return '–';
  const hours = Math.floor(seconds / 3600);
  const minutes = Math.floor((seconds % 3600) / 60);
  const rest = String(Math.floor(seconds % 60)).padStart(2, '0');
  return hours > 0 ? `${hours}:${String(minutes).padStart(2, '0')}:${rest}` : `${minutes}:${rest}`;
}

/** Dollars: four decimals below a dollar (a call costs cents), two above. */
export function formatMoney(amount: number | null): string {
  if (amount === null) return '–';
  return amount < 1 ? `$${amount.toFixed(4)}` : `$${amount.toLocaleString('en-US', { minimumFractionDigits: 2, maximumFractionDigits: 2 })}`;
}

export function formatNumber(value: number): string {
  return value.toLocaleString('en-US');
}

export function formatMs(ms: number | null): string {
  if (ms === null) return '–';
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(2)} s`;
}

/**
 * A moment as `<time>`: UTC in the page, turned into the reader's own time
 * zone by dashboard.js.
 */
export function formatTime(iso: string | null, style: 'datetime' | 'time' = 'datetime'): SafeHtml {
  if (!iso) return html`–`;
  const text = style === 'time' ? `${iso.slice(11, 19)} UTC` : `${iso.slice(0, 10)} ${iso.slice(11, 16)} UTC`;
  return html`<time datetime="${iso}" data-local="${style}">${text}</time>`;
}

/** A Twilio status or outcome as a coloured badge. */
export function badge(text: string, tone: 'ok' | 'warn' | 'bad' | 'info' | 'muted'): SafeHtml {
  return html`<span class="badge badge-${tone}">${text}</span>`;
}

export function statusTone(status: string): 'ok' | 'warn' | 'bad' | 'info' | 'muted' {
  if (status === 'completed') return 'ok';
  if (status === 'in-progress' || status === 'ringing' || status === 'queued') return 'info';
  if (status === 'failed') return 'bad';
  return 'warn';
}

export function outcomeTone(outcome: string | null): 'ok' | 'warn' | 'bad' | 'info' | 'muted' {
  if (outcome === 'details-collected' || outcome === 'completed') return 'ok';
  if (outcome === 'transferred') return 'info';
  if (outcome === 'failed') return 'bad';
  if (outcome === null) return 'info';
  return 'warn';
}

/** Speech-recognition confidence as a chip: red below 0.5, amber below 0.8. */
export function confidenceChip(confidence: number | null): SafeHtml {
  if (confidence === null) return html``;
  const tone = confidence < 0.5 ? 'bad' : confidence < 0.8 ? 'warn' : 'ok';
  return html`<span class="chip chip-${tone}" title="Speech recognition confidence">${confidence.toFixed(2)}</span>`;
}

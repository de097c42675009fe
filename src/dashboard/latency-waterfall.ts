import type { TurnView } from '../admin/call-views.js';
import { formatMs } from './format.js';
import { html, type SafeHtml } from './html.js';

/**
 * A turn's reply path as a small waterfall: one row per stage, its bar placed
 * on a time axis shared by every turn of the call (`scaleMs`), so a slow turn
 * looks slow next to the others. Plain SVG attributes, no inline styles: the
 * page's Content-Security-Policy allows none.
 */
export function latencyWaterfall(latency: TurnView['latency'], scaleMs: number): SafeHtml {
  if (latency.stages.length === 0) return html``;
  const scale = Math.max(scaleMs, latency.totalMs ?? 0, 1);
  const percent = (ms: number) => ((ms / scale) * 100).toFixed(2);
  return html`<details class="waterfall" open>
  <summary>Latency${latency.timeToFirstAudioMs !== null ? html` · first audio after <strong>${formatMs(latency.timeToFirstAudioMs)}</strong>` : html``}${latency.totalMs !== null ? html` · complete after ${formatMs(latency.totalMs)}` : html``}</summary>
  <table class="stages">
    ${latency.stages.map(
      (stage) => html`<tr>
      <th scope="row">${stage.label}</th>
      <td class="bar"><svg viewBox="0 0 100 10" preserveAspectRatio="none" role="img" aria-label="${stage.label}: ${formatMs(stage.endMs - stage.startMs)}, from ${formatMs(stage.startMs)}">
        <rect class="track" x="0" y="0" width="100" height="10"></rect>
        <rect class="stage stage-${stage.name}" x="${percent(stage.startMs)}" y="1" width="${Math.max(0.6, Number(percent(stage.endMs - stage.startMs))).toFixed(2)}" height="8" rx="0.8"></rect>
      </svg></td>
      <td class="num">${formatMs(stage.endMs - stage.startMs)}</td>
    </tr>`,
    )}
  </table>
</details>`;
}

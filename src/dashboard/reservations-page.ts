import type { AssistantProfile } from '../assistant/profile.js';
import type { ReservationPage, ReservationView } from '../admin/reservation-api-routes.js';
import { addDays, isCalendarDate } from '../reservations/opening-hours.js';
import { badge } from './format.js';
import { html, type SafeHtml } from './html.js';
import { layout, type PageOptions } from './layout.js';

/** The filter form as the reader typed it (`date` empty: every day). */
export interface ReservationFilterForm {
  date?: string;
  status?: string;
  profile?: string;
  name?: string;
  phone?: string;
}

/** What the reservations page is rendered from. */
export interface ReservationsPageOptions extends Pick<PageOptions, 'principal'> {
  /** Needed by the change and cancel forms, whoever is signed in. */
  csrfToken: string;
  form: ReservationFilterForm;
  page?: ReservationPage;
  today: string;
  profiles: AssistantProfile[];
  notice?: string;
  error?: string;
}

const sourceLabels: Record<string, string> = { phone: 'Phone line', dashboard: 'Dashboard', api: 'API' };

/** The reservations of a day (or of every day), with forms to move, resize or cancel each. */
export function reservationsPage(options: ReservationsPageOptions): string {
  const { page, form, today } = options;
  const day = form.date;
  const back = filterUrl(form);
  const dayLink = (date: string, label: string) => html`<a class="button button-ghost" href="${filterUrl({ ...form, date })}">${label}</a>`;
  const title = day ? longDate(day) : 'Every day';

  const body = html`<div class="page-head row">
  <div>
    <h1>Reservations</h1>
    ${page ? html`<p class="muted summary" data-testid="reservations-summary">${title} · ${page.total} reservation${page.total === 1 ? '' : 's'} · ${page.guests} guest${page.guests === 1 ? '' : 's'} expected</p>` : html``}
  </div>
  ${day && isCalendarDate(day) ? html`<nav class="day-nav" aria-label="Days">${dayLink(addDays(day, -1), '← Previous day')}${day === today ? html`` : dayLink(today, 'Today')}${dayLink(addDays(day, 1), 'Next day →')}</nav>` : html``}
</div>
<form class="filters card" method="get" action="/dashboard/reservations" role="search">
  <label>Day <input type="date" name="date" value="${day ?? ''}"></label>
  <label>Status <select name="status">
    <option value="">Any</option>
    <option value="confirmed"${form.status === 'confirmed' ? html` selected` : html``}>Confirmed</option>
    <option value="cancelled"${form.status === 'cancelled' ? html` selected` : html``}>Cancelled</option>
  </select></label>
  ${options.profiles.length > 1
    ? html`<label>Assistant <select name="profile"><option value="">Any</option>${options.profiles.map((profile) => html`<option value="${profile.id}"${form.profile === profile.id ? html` selected` : html``}>${profile.name}</option>`)}</select></label>`
    : html``}
  <label class="grow">Name <input type="search" name="name" value="${form.name ?? ''}" placeholder="part of the name"></label>
  <label>Phone <input type="search" name="phone" inputmode="tel" value="${form.phone ?? ''}" placeholder="+1555…"></label>
  <div class="actions"><button type="submit" class="button">Show</button><a class="button button-ghost" href="/dashboard/reservations?date=">Every day</a></div>
</form>
${options.notice ? html`<p class="alert alert-ok" role="status" data-testid="notice">${options.notice}</p>` : html``}
${options.error ? html`<p class="alert alert-bad" role="alert" data-testid="error">${options.error}</p>` : html``}
${options.profiles.length === 0 ? html`<div class="card empty">No assistant profile takes reservations: add a <code>reservations</code> block (opening hours and capacity) to one.</div>` : html``}
${page
  ? page.reservations.length === 0
    ? html`<div class="card empty" data-testid="reservations-empty">No reservations ${day ? html`on ${longDate(day)}` : html`match`}.</div>`
    : html`<div class="card table-card"><table class="calls reservations" data-testid="reservations-table">
  <thead><tr>${day ? html`` : html`<th>Day</th>`}<th>Time</th><th>Name</th><th class="num">Guests</th><th>Phone</th><th>Notes</th><th>Status</th><th>Made by</th><th></th></tr></thead>
  <tbody>${page.reservations.map((reservation) => row(reservation, { showDay: !day, back, csrfToken: options.csrfToken, showProfile: options.profiles.length > 1 }))}</tbody>
</table></div>`
  : html``}`;
  return layout({ title: 'Reservations', section: 'reservations', principal: options.principal, csrfToken: options.csrfToken, body });
}

function row(reservation: ReservationView, options: { showDay: boolean; back: string; csrfToken: string; showProfile: boolean }): SafeHtml {
  const cancelled = reservation.status === 'cancelled';
  const hidden = html`<input type="hidden" name="_csrf" value="${options.csrfToken}"><input type="hidden" name="back" value="${options.back}">`;
  return html`<tr data-reservation-id="${reservation.id}" class="${cancelled ? 'cancelled' : ''}">
    ${options.showDay ? html`<td class="mono">${reservation.date}</td>` : html``}
    <td class="mono strong">${reservation.time}</td>
    <td>${reservation.name}${options.showProfile ? html`<span class="muted small block">${reservation.profileName}</span>` : html``}</td>
    <td class="num">${reservation.partySize}</td>
    <td class="mono">${reservation.phone ?? '–'}</td>
    <td class="notes">${reservation.notes ?? ''}</td>
    <td>${cancelled ? badge('Cancelled', 'muted') : badge('Confirmed', 'ok')}</td>
    <td>${reservation.callSid ? html`<a href="/dashboard/calls/${encodeURIComponent(reservation.callSid)}">${sourceLabels[reservation.source] ?? reservation.source}</a>` : sourceLabels[reservation.source] ?? reservation.source}</td>
    <td class="actions">${cancelled
      ? html``
      : html`<div class="row-actions"><details class="change">
        <summary class="button button-ghost">Change</summary>
        <form method="post" action="/dashboard/reservations/${reservation.id}" class="change-form" aria-label="Change reservation ${reservation.id}">${hidden}
          <label>Day <input type="date" name="date" value="${reservation.date}" required></label>
          <label>Time <input type="time" name="time" value="${reservation.time}" step="300" required></label>
          <label>Guests <input type="number" name="partySize" value="${reservation.partySize}" min="1" max="10000" required></label>
          <label class="check" title="Book even outside the opening hours or over capacity"><input type="checkbox" name="override"> Ignore hours and capacity</label>
          <button type="submit" class="button">Save</button>
        </form>
      </details>
      <form method="post" action="/dashboard/reservations/${reservation.id}/cancel" class="cancel-form">${hidden}<button type="submit" class="button button-danger">Cancel</button></form></div>`}</td>
  </tr>`;
}

/** The list's own address with these filters; an empty `date` means every day. */
export function filterUrl(form: ReservationFilterForm): string {
  const params = new URLSearchParams();
  params.set('date', form.date ?? '');
  for (const key of ['status', 'profile', 'name', 'phone'] as const) if (form[key]) params.set(key, form[key]!);
  return `/dashboard/reservations?${params.toString()}`;
}

/** "Friday 7 March 2025". */
function longDate(date: string): string {
  const time = Date.parse(`${date}T12:00:00Z`);
  // A date typed into the filter that is no date is shown as typed (the page also says why it was refused).
  if (Number.isNaN(time)) return date;
  return new Intl.DateTimeFormat('en-GB', { weekday: 'long', day: 'numeric', month: 'long', year: 'numeric', timeZone: 'UTC' }).format(time);
}

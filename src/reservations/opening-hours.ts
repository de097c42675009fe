import { timeOf, weekdays, type ReservationSettings, type Weekday } from './reservation-settings.js';

/** A moment on the business's own clock: its calendar day and minutes since midnight. */
export interface LocalMoment {
  date: string;
  minutes: number;
}

/**
 * One formatter per time zone: building an `Intl.DateTimeFormat` costs about
 * 100 µs, using one about 8 µs, and a turn asks for the local time several
 * times. Zones are the profiles' own (validated), so the map stays small.
 */
const clocks = new Map<string, Intl.DateTimeFormat>();

function clockIn(timeZone: string): Intl.DateTimeFormat {
  let clock = clocks.get(timeZone);
  if (!clock) {
    clock = new Intl.DateTimeFormat('en-CA', { timeZone, year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', hourCycle: 'h23' });
    clocks.set(timeZone, clock);
  }
  return clock;
}

/** What the business's clock says at `now` (dates and times are spoken in local time, never UTC). */
export function localNow(timeZone: string, now = new Date()): LocalMoment {
  const parts = Object.fromEntries(
    clockIn(timeZone)
      .formatToParts(now)
      .map((part) => [part.type, part.value]),
  );
  return { date: `${parts.year}-${parts.month}-${parts.day}`, minutes: Number(parts.hour) * 60 + Number(parts.minute) };
}

/** `"2025-03-07"` plus `days` (calendar arithmetic at noon UTC, so no daylight-saving edge moves the day). */
export function addDays(date: string, days: number): string {
  return new Date(Date.parse(`${date}T12:00:00Z`) + days * 86_400_000).toISOString().slice(0, 10);
}

export function weekdayOf(date: string): Weekday {
  return weekdays[new Date(`${date}T12:00:00Z`).getUTCDay()];
}

/** Whether `date` is a real calendar day written `YYYY-MM-DD`. */
export function isCalendarDate(date: string): boolean {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(date)) return false;
  // 2025-13-45 parses to NaN, and toISOString of an invalid date throws.
  const time = Date.parse(`${date}T12:00:00Z`);
  return !Number.isNaN(time) && new Date(time).toISOString().startsWith(date);
}

/** The start times (minutes since midnight) bookings may take on `date`; none on a closed day. */
export function slotsOn(settings: ReservationSettings, date: string): number[] {
  if (settings.closedDates.includes(date)) return [];
  const slots: number[] = [];
  for (const interval of settings.openingHours[weekdayOf(date)]) {
    const lastStart = Math.min(interval.close - settings.lastStartBeforeCloseMinutes, interval.close - 1);
    for (let start = interval.open; start <= lastStart; start += settings.slotMinutes) slots.push(start);
  }
  return [...new Set(slots)].sort((a, b) => a - b);
}

/** "12:00 to 15:00 and 18:00 to 22:30", or "closed". */
export function describeDay(settings: ReservationSettings, date: string): string {
  if (settings.closedDates.includes(date)) return 'closed';
  const intervals = settings.openingHours[weekdayOf(date)];
  if (intervals.length === 0) return 'closed';
  return intervals.map((interval) => `${timeOf(interval.open)} to ${timeOf(interval.close)}`).join(' and ');
}

/** The week's hours in one line, for the model: "Monday closed; Tuesday 12:00 to 22:30; …". */
export function describeWeek(settings: ReservationSettings): string {
  const order: Weekday[] = [...weekdays.slice(1), weekdays[0]];
  return order
    .map((weekday) => {
      const intervals = settings.openingHours[weekday];
      const hours = intervals.length ? intervals.map((interval) => `${timeOf(interval.open)} to ${timeOf(interval.close)}`).join(' and ') : 'closed';
      return `${weekday[0].toUpperCase()}${weekday.slice(1)} ${hours}`;
    })
    .join('; ');
}

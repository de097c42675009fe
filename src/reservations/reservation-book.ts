import type { AssistantProfile } from '../assistant/profile.js';
import type { Queryable } from '../storage/database.js';
import type { ReservationRepository, ReservationRow, ReservationSource } from '../storage/reservation-repository.js';
import { addDays, describeDay, isCalendarDate, localNow, slotsOn, weekdayOf } from './opening-hours.js';
import { minutesOf, timeOf, type ReservationSettings } from './reservation-settings.js';
import { parseSpokenDate, parseSpokenTime } from './spoken-date.js';

/** What a caller, the dashboard or the API asks for; dates and times may be spoken forms ("Friday", "7 pm"). */
export interface ReservationRequest {
  name?: string;
  date?: string;
  time?: string;
  partySize?: number;
  phone?: string;
  notes?: string;
}

/** A start time the business could offer instead. */
export interface Slot {
  date: string;
  time: string;
}

export type ReservationField = 'name' | 'date' | 'time' | 'party_size';

/** Why a booking (or a change) was not made, with what to offer instead. */
export type BookingRefusal =
  | { kind: 'missing'; fields: ReservationField[] }
  | { kind: 'invalid'; field: ReservationField; message: string }
  /** Closed that day or at that time, in the past, or too far ahead. */
  | { kind: 'closed'; date: string; time?: string; reason: string; hours: string; alternatives: Slot[] }
  | { kind: 'full'; date: string; time: string; alternatives: Slot[] }
  | { kind: 'too-large'; maxPartySize: number };

export type CreateResult = { kind: 'created'; reservation: ReservationRow } | BookingRefusal;
export type ChangeResult =
  | { kind: 'changed'; reservation: ReservationRow; previous: ReservationRow }
  | { kind: 'not-found' }
  | { kind: 'already-cancelled'; reservation: ReservationRow }
  | BookingRefusal;
export type CancelResult = { kind: 'cancelled'; reservation: ReservationRow } | { kind: 'not-found' } | { kind: 'already-cancelled'; reservation: ReservationRow };

/** Who is asking: the call (phone line) or staff. */
export interface BookingOrigin {
  source: ReservationSource;
  callId?: string;
  /** Staff may book outside the hours and over capacity; the phone line never. */
  override?: boolean;
}

export class ReservationsNotEnabledError extends Error {
  constructor(profileId: string) {
    super(`the assistant profile "${profileId}" takes no reservations (it has no "reservations" settings)`);
  }
}

/** How many alternatives a refusal offers. */
const alternativesOffered = 3;
/** Days after the asked one searched for alternatives. */
const daysSearched = 7;

/**
 * The reservation rules, shared by the phone line's tools, the scripted
 * assistant, the admin API and the dashboard: opening hours, capacity per
 * slot, alternatives when a time does not work. Checks and writes for a day
 * run under that day's lock, so two callers cannot both take the last table.
 */
export class ReservationBook {
  constructor(
    private readonly repository: ReservationRepository,
    private readonly now: () => Date = () => new Date(),
  ) {}

  /** The business's local date and time now. */
  today(profile: AssistantProfile): { date: string; minutes: number } {
    return localNow(settingsOf(profile).timeZone, this.now());
  }

  async create(profile: AssistantProfile, request: ReservationRequest, origin: BookingOrigin): Promise<CreateResult> {
    const settings = settingsOf(profile);
    const today = localNow(settings.timeZone, this.now());
    const missing: ReservationField[] = [];
    const name = request.name?.trim().slice(0, 100);
    if (!name) missing.push('name');
    if (!request.date?.trim()) missing.push('date');
    if (!request.time?.trim()) missing.push('time');
    if (request.partySize === undefined) missing.push('party_size');
    if (missing.length) return { kind: 'missing', fields: missing };
    const wanted = this.resolve(settings, today, request.date!, request.time!, request.partySize!);
    if ('kind' in wanted) return wanted;

    return this.repository.withDayLocked(profile.id, [wanted.date], async (tx) => {
      const bookings = await this.repository.confirmedOn(profile.id, wanted.date, tx);
      // The model sometimes books twice in one call: the same booking from the same call is the one already made.
      const again = bookings.find(
        (booking) => origin.callId && booking.call_id === origin.callId && booking.time === timeOf(wanted.minutes) && booking.name.toLowerCase() === name!.toLowerCase(),
      );
      if (again) return { kind: 'created', reservation: again };
      if (!origin.override) {
        const refusal = await this.check(profile, settings, today, wanted, bookings, tx);
        if (refusal) return refusal;
      }
      const reservation = await this.repository.create(
        {
          profileId: profile.id,
          callId: origin.callId,
          name: name!,
          phone: request.phone?.trim().slice(0, 32) || undefined,
          date: wanted.date,
          time: timeOf(wanted.minutes),
          partySize: wanted.partySize,
          notes: request.notes?.trim().slice(0, 500) || undefined,
          source: origin.source,
        },
        tx,
      );
      return { kind: 'created', reservation };
    });
  }

  /** Moves a booking to another date or time, or changes its party size (or name and notes, for staff). */
  async change(
    profile: AssistantProfile,
    reservationId: number,
    changes: Pick<ReservationRequest, 'date' | 'time' | 'partySize' | 'name' | 'notes'>,
    origin: BookingOrigin,
  ): Promise<ChangeResult> {
    const settings = settingsOf(profile);
    const today = localNow(settings.timeZone, this.now());
    const current = await this.repository.get(reservationId);
    if (!current || current.profile_id !== profile.id) return { kind: 'not-found' };
    if (current.status === 'cancelled') return { kind: 'already-cancelled', reservation: current };
    const wanted = this.resolve(settings, today, changes.date ?? current.date, changes.time ?? current.time, changes.partySize ?? current.party_size);
    if ('kind' in wanted) return wanted;
    const name = changes.name?.trim().slice(0, 100);
    if (changes.name !== undefined && !name) return { kind: 'invalid', field: 'name', message: 'a name cannot be empty' };

    return this.repository.withDayLocked(profile.id, [current.date, wanted.date], async (tx) => {
      const fresh = await this.repository.get(reservationId, tx);
      if (!fresh || fresh.status === 'cancelled') return fresh ? { kind: 'already-cancelled', reservation: fresh } : { kind: 'not-found' };
      const moved = wanted.date !== fresh.date || timeOf(wanted.minutes) !== fresh.time || wanted.partySize !== fresh.party_size;
      if (moved && !origin.override) {
        const bookings = (await this.repository.confirmedOn(profile.id, wanted.date, tx)).filter((booking) => booking.reservation_id !== reservationId);
        const refusal = await this.check(profile, settings, today, wanted, bookings, tx, reservationId);
        if (refusal) return refusal;
      }
      const reservation = await this.repository.update(
        reservationId,
        {
          date: wanted.date,
          time: timeOf(wanted.minutes),
          partySize: wanted.partySize,
          name: name || undefined,
          notes: changes.notes === undefined ? undefined : changes.notes.trim().slice(0, 500) || null,
          source: origin.source,
        },
        tx,
      );
      return { kind: 'changed', reservation: reservation!, previous: fresh };
    });
  }

  async cancel(profile: AssistantProfile, reservationId: number, origin: BookingOrigin): Promise<CancelResult> {
    const current = await this.repository.get(reservationId);
    if (!current || current.profile_id !== profile.id) return { kind: 'not-found' };
    if (current.status === 'cancelled') return { kind: 'already-cancelled', reservation: current };
    const reservation = await this.repository.update(reservationId, { status: 'cancelled', source: origin.source });
    return { kind: 'cancelled', reservation: reservation! };
  }

  /** Upcoming bookings made from this number, or else under this name. */
  async upcoming(profile: AssistantProfile, who: { phone?: string; name?: string }): Promise<{ by: 'phone' | 'name' | 'none'; reservations: ReservationRow[] }> {
    const today = this.today(profile).date;
    if (who.phone) {
      const byPhone = await this.repository.upcomingByPhone(profile.id, who.phone, today);
      if (byPhone.length) return { by: 'phone', reservations: byPhone };
    }
    if (who.name?.trim()) {
      const byName = await this.repository.upcomingByName(profile.id, who.name, today);
      if (byName.length) return { by: 'name', reservations: byName };
    }
    return { by: 'none', reservations: [] };
  }

  get(reservationId: number): Promise<ReservationRow | undefined> {
    return this.repository.get(reservationId);
  }

  /** Turns what was asked into a day, a time on the clock and a party size, or says what is wrong with it. */
  private resolve(
    settings: ReservationSettings,
    today: { date: string },
    dateText: string,
    timeText: string,
    partySize: number,
  ): { date: string; minutes: number; partySize: number } | BookingRefusal {
    const date = isCalendarDate(dateText.trim()) ? dateText.trim() : parseSpokenDate(dateText, today.date);
    if (!date) return { kind: 'invalid', field: 'date', message: `"${dateText}" is not a date I understand; give it as YYYY-MM-DD` };
    const exact = /^([01]?\d|2[0-3]):([0-5]\d)(:00)?$/.exec(timeText.trim());
    const spoken = exact ? { minutes: Number(exact[1]) * 60 + Number(exact[2]), ambiguous: false } : parseSpokenTime(timeText);
    if (!spoken) return { kind: 'invalid', field: 'time', message: `"${timeText}" is not a time I understand; give it as HH:MM (24-hour)` };
    let minutes = spoken.minutes;
    // "Seven" at a restaurant open in the evening means 19:00.
    if (spoken.ambiguous) {
      const slots = slotsOn(settings, date);
      if (!slots.includes(minutes) && slots.includes(minutes + 720)) minutes += 720;
    }
    if (!Number.isInteger(partySize) || partySize < 1) return { kind: 'invalid', field: 'party_size', message: 'the party size must be a whole number of at least 1' };
    return { date, minutes, partySize };
  }

  /** Whether the business can take this booking; a refusal carries alternatives. */
  private async check(
    profile: AssistantProfile,
    settings: ReservationSettings,
    today: { date: string; minutes: number },
    wanted: { date: string; minutes: number; partySize: number },
    bookings: ReservationRow[],
    tx: Queryable,
    excludeId?: number,
  ): Promise<BookingRefusal | undefined> {
    if (wanted.partySize > settings.maxPartySize) return { kind: 'too-large', maxPartySize: settings.maxPartySize };
    const time = timeOf(wanted.minutes);
    const closed = (reason: string) => async (): Promise<BookingRefusal> => ({
      kind: 'closed',
      date: wanted.date,
      time,
      reason,
      hours: describeDay(settings, wanted.date),
      alternatives: await this.alternatives(profile, settings, today, wanted, bookings, tx, excludeId),
    });
    const lastDay = addDays(today.date, settings.bookAheadDays);
    if (wanted.date < today.date || (wanted.date === today.date && wanted.minutes <= today.minutes)) return closed('that time has already passed')();
    if (wanted.date > lastDay) return { kind: 'closed', date: wanted.date, time, reason: `bookings are taken at most ${settings.bookAheadDays} days ahead, until ${lastDay}`, hours: describeDay(settings, wanted.date), alternatives: [] };
    const slots = slotsOn(settings, wanted.date);
    if (slots.length === 0) return closed(`closed on ${settings.closedDates.includes(wanted.date) ? wanted.date : capitalize(weekdayOf(wanted.date))}`)();
    if (!slots.includes(wanted.minutes)) {
      const inHours = wanted.minutes >= slots[0] && wanted.minutes <= slots.at(-1)!;
      return closed(inHours ? `bookings start every ${settings.slotMinutes} minutes` : 'outside the hours bookings are taken')();
    }
    if (!fits(settings, bookings, wanted.minutes, wanted.partySize)) {
      return { kind: 'full', date: wanted.date, time, alternatives: await this.alternatives(profile, settings, today, wanted, bookings, tx, excludeId) };
    }
    return undefined;
  }

  /** The nearest free slots the same day, then the same time (or nearest) on the following days. */
  private async alternatives(
    profile: AssistantProfile,
    settings: ReservationSettings,
    today: { date: string; minutes: number },
    wanted: { date: string; minutes: number; partySize: number },
    bookings: ReservationRow[],
    tx: Queryable,
    excludeId?: number,
  ): Promise<Slot[]> {
    const found: Slot[] = [];
    const lastDay = addDays(today.date, settings.bookAheadDays);
    const free = (date: string, dayBookings: ReservationRow[]) =>
      slotsOn(settings, date)
        .filter((slot) => date > today.date || slot > today.minutes)
        .filter((slot) => fits(settings, dayBookings, slot, wanted.partySize))
        .sort((a, b) => Math.abs(a - wanted.minutes) - Math.abs(b - wanted.minutes) || a - b);
    const firstDay = wanted.date < today.date ? today.date : wanted.date;
    if (firstDay === wanted.date) {
      for (const slot of free(wanted.date, bookings).slice(0, alternativesOffered)) found.push({ date: wanted.date, time: timeOf(slot) });
    }
    for (let offset = firstDay === wanted.date ? 1 : 0; offset <= daysSearched && found.length < alternativesOffered; offset += 1) {
      const date = addDays(firstDay, offset);
      if (date > lastDay) break;
      if (slotsOn(settings, date).length === 0) continue;
      const dayBookings = (await this.repository.confirmedOn(profile.id, date, tx)).filter((booking) => booking.reservation_id !== excludeId);
      const best = free(date, dayBookings)[0];
      if (best !== undefined) found.push({ date, time: timeOf(best) });
    }
    return found.sort((a, b) => (a.date === b.date ? minutesOf(a.time) - minutesOf(b.time) : a.date < b.date ? -1 : 1));
  }
}

/** Whether a booking of `partySize` starting at `start` keeps every moment of its stay within capacity. */
function fits(settings: ReservationSettings, bookings: ReservationRow[], start: number, partySize: number): boolean {
  const weight = (size: number) => (settings.capacityCounts === 'guests' ? size : 1);
  if (weight(partySize) > settings.capacity) return false;
  const end = start + settings.durationMinutes;
  const stays = bookings.map((booking) => ({ start: minutesOf(booking.time), weight: weight(booking.party_size) }));
  // Occupancy only rises where a stay begins: check the new stay's start and every start inside it.
  const moments = [start, ...stays.map((stay) => stay.start).filter((moment) => moment > start && moment < end)];
  return moments.every((moment) => {
    const occupied = stays
      .filter((stay) => stay.start <= moment && moment < stay.start + settings.durationMinutes)
      .reduce((sum, stay) => sum + stay.weight, 0);
    return occupied + weight(partySize) <= settings.capacity;
  });
}

function capitalize(word: string): string {
  return `${word[0].toUpperCase()}${word.slice(1)}`;
}

/** The profile's reservation settings; throws for a profile that takes none. */
export function settingsOf(profile: AssistantProfile): ReservationSettings {
  const settings = profile.reservations;
  if (!settings) throw new ReservationsNotEnabledError(profile.id);
  return settings;
}

import type { ReservationRow } from '../storage/reservation-repository.js';
import { weekdayOf } from './opening-hours.js';
import type { BookingRefusal, Slot } from './reservation-book.js';

/** "Friday 2025-03-07": the weekday helps the model speak the date naturally. */
export function describeDate(date: string): string {
  const weekday = weekdayOf(date);
  return `${weekday[0].toUpperCase()}${weekday.slice(1)} ${date}`;
}

/** "Friday 2025-03-07 at 19:00". */
export function describeSlot(slot: Slot): string {
  return `${describeDate(slot.date)} at ${slot.time}`;
}

/** "reservation 12: Anna, party of 4, Friday 2025-03-07 at 19:00". */
export function describeReservation(reservation: ReservationRow): string {
  const notes = reservation.notes ? ` (${reservation.notes})` : '';
  return `reservation ${reservation.reservation_id}: ${reservation.name}, party of ${reservation.party_size}, ${describeSlot(reservation)}${notes}`;
}

const fieldWords: Record<string, string> = { name: 'name', date: 'date', time: 'time', party_size: 'number of guests' };

/**
 * What the model is told when a booking was not made: always what to do next
 * (ask for what is missing, offer the alternatives), so it never says a
 * booking exists when it does not.
 */
export function refusalText(refusal: BookingRefusal, verb: 'booked' | 'changed'): string {
  switch (refusal.kind) {
    case 'missing': {
      const missing = refusal.fields.map((field) => fieldWords[field]).join(', ');
      return `not ${verb} yet: still missing the ${missing}. Ask the caller for ${refusal.fields.length > 1 ? 'them' : 'it'}, then call the tool again with every detail.`;
    }
    case 'invalid':
      return `not ${verb}: ${refusal.message}. Ask the caller again if needed.`;
    case 'too-large':
      return `not ${verb}: parties of more than ${refusal.maxPartySize} cannot be booked by phone. Tell the caller and offer to take a message.`;
    case 'closed':
      return `not ${verb}: ${refusal.reason} (on ${describeDate(refusal.date)} bookings are taken ${refusal.hours === 'closed' ? 'at no time: closed' : refusal.hours}). ${offer(refusal.alternatives)}`;
    case 'full':
      return `not ${verb}: ${describeSlot(refusal)} is fully booked. ${offer(refusal.alternatives)}`;
  }
}

function offer(alternatives: Slot[]): string {
  if (alternatives.length === 0) return 'There is no free time close to it: ask the caller for another day.';
  return `Offer these free times instead and ask which suits the caller: ${alternatives.map(describeSlot).join('; ')}.`;
}

import type { AssistantProfile } from '../assistant/profile.js';
import type { ReservationBook, Slot } from './reservation-book.js';

/** What the scripted assistant does with the details it collected. */
export type ScriptedBooking =
  /** Booked: these details (the day and time booked, the reservation's id) replace what was said. */
  | { kind: 'booked'; saved: Record<string, unknown> }
  /** Not booked: say `text`, forget the `clear`ed details, and ask for them again. */
  | { kind: 'retry'; text: string; clear: string[] };

/** Details that are the booking itself; any other collected detail (a specialty, a wish) goes into its notes. */
const bookingDetails = new Set(['name', 'date', 'time', 'party_size', 'phone', 'notes']);

/**
 * Books what the scripted assistant collected. The profile's details named
 * `name`, `date`, `time` and `party_size` (and `phone`, `notes`) are the
 * booking; a profile without `party_size` books one guest (an appointment).
 */
export async function bookCollectedDetails(
  book: ReservationBook,
  profile: AssistantProfile,
  call: { callId: string; callerNumber?: string },
  details: Record<string, unknown>,
): Promise<ScriptedBooking> {
  const settings = profile.reservations!;
  const value = (name: string) => (details[name] === undefined || details[name] === null ? undefined : String(details[name]));
  const extra = Object.entries(details)
    .filter(([name, detail]) => !bookingDetails.has(name) && name !== 'reservation_id' && detail !== null && detail !== undefined && detail !== '')
    .map(([name, detail]) => `${name.replace(/_/g, ' ')}: ${String(detail)}`);
  const notes = [value('notes'), ...extra].filter(Boolean).join('; ') || undefined;
  const result = await book.create(
    profile,
    {
      name: value('name'),
      date: value('date'),
      time: value('time'),
      partySize: details.party_size === undefined ? 1 : Number(details.party_size),
      phone: value('phone') ?? call.callerNumber,
      notes,
    },
    { source: 'phone', callId: call.callId },
  );
  const { phrases } = settings;
  switch (result.kind) {
    case 'created': {
      const { reservation } = result;
      // The day as it is read back ("Friday, March 7", in the profile's language) and the time it was booked for.
      const saved: Record<string, unknown> = { reservation_id: reservation.reservation_id, date: spokenSlot(profile, { date: reservation.date, time: '' }), time: reservation.time };
      if (profile.details.some((detail) => detail.name === 'party_size')) saved.party_size = reservation.party_size;
      return { kind: 'booked', saved };
    }
    case 'missing':
      return { kind: 'retry', text: '', clear: result.fields };
    case 'invalid':
      return { kind: 'retry', text: profile.phrases.unclear, clear: [result.field] };
    case 'too-large':
      return { kind: 'retry', text: phrases.tooLarge.replaceAll('{max}', String(result.maxPartySize)), clear: ['party_size'] };
    case 'closed':
    case 'full': {
      const when = spokenSlot(profile, { date: result.date, time: result.time ?? '' });
      const offered = result.alternatives.length
        ? ` ${phrases.alternatives.replaceAll('{alternatives}', result.alternatives.map((slot) => spokenSlot(profile, slot)).join(', '))}`
        : '';
      // A closed day needs another day; a full or closed time on an open day needs another time.
      const sameDayOffered = result.alternatives.some((slot) => slot.date === result.date);
      return {
        kind: 'retry',
        text: `${phrases.unavailable.replaceAll('{when}', when)}${offered}`,
        clear: sameDayOffered ? ['time'] : ['date', 'time'],
      };
    }
  }
}

/** "Friday, March 7 at 19:00" in the profile's language. */
function spokenSlot(profile: AssistantProfile, slot: Slot): string {
  const day = new Intl.DateTimeFormat(profile.language, { weekday: 'long', month: 'long', day: 'numeric', timeZone: 'UTC' }).format(new Date(`${slot.date}T12:00:00Z`));
  return slot.time ? `${day}, ${slot.time}` : day;
}

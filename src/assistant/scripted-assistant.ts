import { describeDetails, missingDetails, type Assistant, type AssistantEvent, type AssistantTurnInput } from './assistant.js';
import type { AssistantProfile, DetailSpec } from './profile.js';
import type { ReservationBook } from '../reservations/reservation-book.js';
import { bookCollectedDetails } from '../reservations/scripted-booking.js';

const numberWords: Record<string, number> = {
  one: 1, two: 2, three: 3, four: 4, five: 5, six: 6, seven: 7, eight: 8, nine: 9, ten: 10, eleven: 11, twelve: 12,
  unu: 1, una: 1, doi: 2, două: 2, trei: 3, patru: 4, cinci: 5, șase: 6, sase: 6, șapte: 7, sapte: 7, opt: 8, nouă: 9, noua: 9, zece: 10,
};

/**
 * The assistant that needs no model: it asks for the profile's details one by
 * one, reads them back and says goodbye. It keeps no state of its own: which
 * question is open is read from the last thing it said.
 */
export class ScriptedAssistant implements Assistant {
  readonly mode = 'scripted' as const;

  /** With `reservations`, profiles that take bookings have what was collected booked before the confirmation. */
  constructor(private readonly options: { reservations?: ReservationBook } = {}) {}

  async *respond(input: AssistantTurnInput): AsyncIterable<AssistantEvent> {
    const { profile } = input;
    const details = { ...input.details };
    const missing = missingDetails(profile, details);
    const lastSaid = [...input.history].reverse().find((line) => line.speaker === 'assistant')?.text ?? '';
    const asked = missing.find((detail) => lastSaid.includes(detail.question));

    let retry = false;
    if (asked) {
      const value = parseDetail(asked, input.callerText);
      if (value === undefined) retry = true;
      else {
        details[asked.name] = value;
        yield { type: 'details-saved', details: { [asked.name]: value } };
      }
    }

    const stillMissing = missingDetails(profile, details);
    if (stillMissing.length === 0 && profile.details.length > 0) {
      if (this.options.reservations && takesBookings(profile)) {
        const booking = await bookCollectedDetails(this.options.reservations, profile, { callId: input.callId, callerNumber: input.callerNumber }, details);
        if (booking.kind === 'retry') {
          // Forget what cannot be booked and ask for it again, after saying why.
          const cleared = Object.fromEntries(booking.clear.map((name) => [name, null]));
          Object.assign(details, cleared);
          yield { type: 'details-saved', details: cleared };
          const next = missingDetails(profile, details)[0];
          yield { type: 'reply-delta', text: [booking.text, next?.question].filter(Boolean).join(' ') };
          return;
        }
        Object.assign(details, booking.saved);
        yield { type: 'details-saved', details: booking.saved };
      }
      yield { type: 'reply-delta', text: profile.phrases.confirm.replace('{details}', describeDetails(profile, details)) };
      yield { type: 'call-action', action: { type: 'end-call' } };
      return;
    }
    if (stillMissing.length === 0) {
      yield { type: 'reply-delta', text: profile.phrases.goodbye };
      yield { type: 'call-action', action: { type: 'end-call' } };
      return;
    }
    const next = stillMissing[0];
    yield { type: 'reply-delta', text: retry ? `${profile.phrases.unclear} ${next.question}` : next.question };
  }
}

/** A profile books what it collects when it takes reservations and asks for a name, a date and a time. */
function takesBookings(profile: AssistantProfile): boolean {
  return Boolean(profile.reservations) && ['name', 'date', 'time'].every((name) => profile.details.some((detail) => detail.name === name));
}

function parseDetail(detail: DetailSpec, text: string): string | number | undefined {
  const cleaned = text.trim().replace(/[.!?]+$/, '');
  if (!cleaned) return undefined;
  if (detail.type !== 'integer') return cleaned;
  const digits = /\d+/.exec(cleaned);
  if (digits) return Number.parseInt(digits[0], 10);
  const word = cleaned.toLowerCase().split(/[^\p{L}]+/u).find((token) => token in numberWords);
  return word ? numberWords[word] : undefined;
}

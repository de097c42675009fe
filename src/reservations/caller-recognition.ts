import type { CallToolkit } from '../assistant/call-tool.js';
import type { AssistantProfile } from '../assistant/profile.js';
import type { ReservationRepository, ReservationRow } from '../storage/reservation-repository.js';
import { localNow } from './opening-hours.js';
import { describeReservation } from './reservation-text.js';

/** What the server remembers about a calling number. */
export interface KnownCaller {
  /** The name the number last gave (a reservation's, or a previous call's details). */
  name?: string;
  /** Its upcoming confirmed reservations with this profile, soonest first. */
  reservations: ReservationRow[];
}

/**
 * Recognises a caller by number: the name they gave before (for a personal
 * greeting) and their open reservations (for the model's prompt), so a
 * regular does not have to repeat who they are.
 */
export class CallerRecognition {
  constructor(private readonly repository: ReservationRepository) {}

  async recognise(profile: AssistantProfile, callerNumber: string | undefined, callId?: string): Promise<KnownCaller | undefined> {
    if (!callerNumber || !/\d{5,}/.test(callerNumber)) return undefined;
    const [name, reservations] = await Promise.all([
      this.repository.knownName(callerNumber, callId),
      profile.reservations
        ? this.repository.upcomingByPhone(profile.id, callerNumber, localNow(profile.reservations.timeZone).date)
        : Promise.resolve([]),
    ]);
    if (!name && reservations.length === 0) return undefined;
    return { name: name ? spokenName(name) : undefined, reservations };
  }

  /** The profile's `returningCallerGreeting` with the caller's name, or `undefined` for the usual greeting. */
  async greeting(profile: AssistantProfile, callerNumber: string | undefined, callId?: string): Promise<string | undefined> {
    if (!profile.returningCallerGreeting) return undefined;
    const known = await this.recognise(profile, callerNumber, callId);
    return known?.name ? profile.returningCallerGreeting.replaceAll('{name}', known.name) : undefined;
  }
}

/** Adds what is known about the caller to every turn's prompt (profiles with reservations or a returning-caller greeting). */
export function callerRecognitionToolkit(recognition: CallerRecognition): CallToolkit {
  return {
    tools: () => [],
    async instructions(context) {
      const { profile } = context;
      if (!profile.reservations && !profile.returningCallerGreeting) return undefined;
      const known = await recognition.recognise(profile, context.callerNumber, context.callId);
      if (!known) return context.callerNumber && profile.reservations ? 'This number has no upcoming reservations.' : undefined;
      const lines = [known.name ? `This caller has called before and gave the name ${known.name}.` : ''];
      if (profile.reservations) {
        lines.push(
          known.reservations.length
            ? `Their upcoming reservations (made from this number): ${known.reservations.map(describeReservation).join('; ')}.`
            : 'This number has no upcoming reservations.',
        );
      }
      return lines.filter(Boolean).join(' ');
    },
  };
}

/** A name fit to be spoken in a greeting: letters, spaces, hyphens and apostrophes, at most 40 characters. */
function spokenName(name: string): string | undefined {
  const cleaned = name.replace(/[^\p{L}\p{M}' -]/gu, '').replace(/\s+/g, ' ').trim().slice(0, 40);
  return cleaned || undefined;
}

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

/** How long one call may reuse what it learnt about its caller, when no reservation was written meanwhile. */
export const rememberCallerMs = 30_000;
const rememberedCalls = 2_000;

interface Remembered {
  at: number;
  generation: number;
  known: Promise<KnownCaller | undefined>;
}

/**
 * Recognises a caller by number: the name they gave before (for a personal
 * greeting) and their open reservations (for the model's prompt), so a
 * regular does not have to repeat who they are.
 *
 * Every turn's prompt needs it, and it costs two queries on the turn's path
 * to the model, so a call keeps what it learnt: until this process writes a
 * reservation (the call's own booking included), or for `rememberCallerMs`,
 * which bounds how stale it gets when another instance or an operator's
 * direct database edit changes it.
 */
export class CallerRecognition {
  private readonly remembered = new Map<string, Remembered>();

  constructor(
    private readonly repository: ReservationRepository,
    private readonly now: () => number = () => performance.now(),
  ) {}

  async recognise(profile: AssistantProfile, callerNumber: string | undefined, callId?: string): Promise<KnownCaller | undefined> {
    if (!callerNumber || !/\d{5,}/.test(callerNumber)) return undefined;
    if (callId === undefined) return this.lookUp(profile, callerNumber);
    const key = JSON.stringify([callId, profile.id, callerNumber]);
    const now = this.now();
    const generation = this.repository.writeGeneration;
    const entry = this.remembered.get(key);
    if (entry && entry.generation === generation && now - entry.at < rememberCallerMs) return entry.known;
    this.remembered.delete(key);
    if (this.remembered.size >= rememberedCalls) {
      for (const [oldKey, old] of this.remembered) if (now - old.at >= rememberCallerMs || old.generation !== generation) this.remembered.delete(oldKey);
      if (this.remembered.size >= rememberedCalls) this.remembered.delete(this.remembered.keys().next().value!);
    }
    const known = this.lookUp(profile, callerNumber, callId);
    const remembered: Remembered = { at: now, generation, known };
    this.remembered.set(key, remembered);
    // A failed lookup is not remembered: the next turn asks again.
    known.catch(() => {
      if (this.remembered.get(key) === remembered) this.remembered.delete(key);
    });
    return known;
  }

  private async lookUp(profile: AssistantProfile, callerNumber: string, callId?: string): Promise<KnownCaller | undefined> {
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

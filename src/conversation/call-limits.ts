import type { AssistantProfile } from '../assistant/profile.js';

/**
 * How long a call may last: the profile's `maxCallSeconds`, or else the
 * older `stream.maxCallSeconds` (so one setting drives every mode).
 */
export function maxCallSeconds(profile: AssistantProfile): number {
  return profile.maxCallSeconds ?? profile.stream.maxCallSeconds;
}

/** Whether a call that started at `startedAt` has run past its profile's maximum length. */
export function pastMaxCallLength(profile: AssistantProfile, startedAt: Date, now = new Date()): boolean {
  return now.getTime() - startedAt.getTime() >= maxCallSeconds(profile) * 1000;
}

/**
 * Whether the caller's turn number `callerTurns` (1 for their first words)
 * is the last one the profile allows: it is answered, then the call ends.
 */
export function isLastTurn(profile: AssistantProfile, callerTurns: number): boolean {
  return callerTurns >= profile.maxTurns;
}

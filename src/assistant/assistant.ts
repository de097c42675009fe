import type { CallAction } from './call-tool.js';
import type { AssistantProfile } from './profile.js';

/** One line of the conversation so far, as stored in `turns`. */
export interface ConversationLine {
  speaker: 'caller' | 'assistant';
  text: string;
}

export interface AssistantTurnInput {
  profile: AssistantProfile;
  callId: string;
  /** The call's current language (BCP 47). */
  language: string;
  /** Everything said before this turn, oldest first, loaded from the database. */
  history: ConversationLine[];
  /** What the caller just said (or keyed, for DTMF). */
  callerText: string;
  /** Details collected so far in this call. */
  details: Record<string, unknown>;
  callerNumber?: string;
  /** Aborted when the caller hangs up or the turn's deadline passes. */
  abortSignal: AbortSignal;
  /** What `prepare` returned for this turn, when the engine called it. */
  prepared?: Promise<string>;
}

/** A turn's input before its history is loaded. */
export type TurnPreparation = Omit<AssistantTurnInput, 'history' | 'prepared'>;

/** What an assistant produces during a turn, in order. */
export type AssistantEvent =
  | { type: 'model-first-token' }
  | { type: 'reply-delta'; text: string }
  | { type: 'details-saved'; details: Record<string, unknown> }
  /** A tool asked the call to end, transfer or change language once the reply is spoken. */
  | { type: 'call-action'; action: CallAction }
  | { type: 'tool-called'; name: string; arguments: unknown; result: string }
  | { type: 'usage-reported'; promptTokens: number; completionTokens: number };

/**
 * Decides what to say. The LLM assistant and the scripted one share this
 * interface, so the scripted one can take over a call mid-way.
 */
export interface Assistant {
  readonly mode: 'llm' | 'scripted';
  /**
   * Starts the lookups a reply needs that do not depend on the history (the
   * model's prompt additions: a knowledge search, what is known about the
   * caller), so they run while the engine loads the history. Never rejects.
   */
  prepare?(input: TurnPreparation): Promise<string>;
  respond(input: AssistantTurnInput): AsyncIterable<AssistantEvent>;
}

/** The details the profile asks for that are still missing. */
export function missingDetails(profile: AssistantProfile, details: Record<string, unknown>) {
  return profile.details.filter((detail) => {
    const value = details[detail.name];
    return value === undefined || value === null || String(value).trim() === '';
  });
}

/** "name Anna, date Friday, party size 4" — how collected details are read back. */
export function describeDetails(profile: AssistantProfile, details: Record<string, unknown>): string {
  return profile.details
    .filter((detail) => details[detail.name] !== undefined)
    .map((detail) => `${detail.name.replace(/_/g, ' ')} ${String(details[detail.name])}`)
    .join(', ');
}

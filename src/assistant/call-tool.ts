import type { ToolDefinition } from '../providers/chat-model.js';
import type { AssistantProfile } from './profile.js';

/** What a tool knows about the call it acts for. */
export interface CallToolContext {
  profile: AssistantProfile;
  callId: string;
  callerNumber?: string;
  /** The call's language (BCP 47, e.g. `en-US`), which a tool may switch. */
  language: string;
  /** Details collected so far in this call, including earlier tool calls of this turn. */
  details: Record<string, unknown>;
  abortSignal: AbortSignal;
}

/**
 * Something a tool asks the call to do once the reply is spoken. The
 * transport turns it into protocol: a hang-up, a `<Dial>`, a new
 * `<Gather>` language.
 */
export type CallAction =
  | { type: 'end-call'; reason?: string }
  | { type: 'transfer'; to: string; summary: string }
  | { type: 'switch-language'; language: string };

export interface CallToolResult {
  /** What the model reads back (short, factual; the model turns it into speech). */
  result: string;
  /** Details to merge into the call's collected details. */
  saved?: Record<string, unknown>;
  action?: CallAction;
}

/** One function the model may call during a turn. */
export interface CallTool {
  definition: ToolDefinition;
  /** `args` is the model's JSON, parsed but unchecked: validate it. */
  run(args: unknown, context: CallToolContext): Promise<CallToolResult>;
}

/**
 * A capability offered to assistants (details, reservations, knowledge,
 * transfers…). Built once at start-up with the services it needs; each
 * profile decides, through its settings, whether it takes part.
 */
export interface CallToolkit {
  /** The tools offered on this profile's calls; none when the profile does not use the capability. */
  tools(profile: AssistantProfile): CallTool[];
  /** Text added to the system prompt for a turn (the caller's reservations, retrieved knowledge…). */
  instructions?(context: CallToolContext & { callerText: string }): Promise<string | undefined>;
}

/** Parses a tool call's argument string; `undefined` when it is not JSON. */
export function parseToolArguments(text: string): { ok: true; value: unknown } | { ok: false } {
  try {
    return { ok: true, value: text.trim() ? JSON.parse(text) : {} };
  } catch {
    return { ok: false };
  }
}

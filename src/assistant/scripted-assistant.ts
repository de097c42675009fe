import { describeDetails, missingDetails, type Assistant, type AssistantEvent, type AssistantTurnInput } from './assistant.js';
import type { DetailSpec } from './profile.js';

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

function parseDetail(detail: DetailSpec, text: string): string | number | undefined {
  const cleaned = text.trim().replace(/[.!?]+$/, '');
  if (!cleaned) return undefined;
  if (detail.type !== 'integer') return cleaned;
  const digits = /\d+/.exec(cleaned);
  if (digits) return Number.parseInt(digits[0], 10);
  const word = cleaned.toLowerCase().split(/[^\p{L}]+/u).find((token) => token in numberWords);
  return word ? numberWords[word] : undefined;
}

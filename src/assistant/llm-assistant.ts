import type { ChatMessage, ChatModel, ToolCall, ToolDefinition } from '../providers/chat-model.js';
import { describeDetails, missingDetails, type Assistant, type AssistantEvent, type AssistantTurnInput } from './assistant.js';
import type { AssistantProfile } from './profile.js';

/** Model rounds one turn may take (a tool result needs a round to be spoken about). */
const maxRounds = 3;

export interface LlmAssistantOptions {
  chatModel: ChatModel;
  /** Used when the profile names none. */
  defaultModel: string;
  /** Clock for "today", so the model can resolve "tomorrow" or "Friday". */
  now?: () => Date;
}

/** The assistant driven by a chat model with two tools: `save_details` and `end_call`. */
export class LlmAssistant implements Assistant {
  readonly mode = 'llm' as const;

  constructor(private readonly options: LlmAssistantOptions) {}

  async *respond(input: AssistantTurnInput): AsyncIterable<AssistantEvent> {
    const { profile } = input;
    const details = { ...input.details };
    const messages: ChatMessage[] = [
      { role: 'system', content: systemPrompt(profile, details, input.callerNumber, (this.options.now ?? (() => new Date()))()) },
      ...input.history.map((line): ChatMessage =>
        line.speaker === 'caller' ? { role: 'user', content: line.text } : { role: 'assistant', content: line.text },
      ),
      { role: 'user', content: input.callerText },
    ];
    let firstToken = true;
    for (let round = 0; round < maxRounds; round += 1) {
      const toolCalls: ToolCall[] = [];
      let text = '';
      for await (const event of this.options.chatModel.stream({
        model: profile.chatModel ?? this.options.defaultModel,
        messages,
        tools: assistantTools(profile),
        temperature: 0.4,
        maxTokens: 300,
        abortSignal: input.abortSignal,
      })) {
        if (firstToken && event.type !== 'finish') {
          firstToken = false;
          yield { type: 'model-first-token' };
        }
        if (event.type === 'text-delta') {
          text += event.text;
          yield { type: 'reply-delta', text: event.text };
        } else if (event.type === 'tool-call') {
          toolCalls.push(event.toolCall);
        } else if (event.usage) {
          yield { type: 'usage-reported', ...event.usage };
        }
      }
      if (toolCalls.length === 0) return;

      messages.push({ role: 'assistant', content: text, toolCalls });
      let ending = false;
      for (const call of toolCalls) {
        const { result, saved, endCall, parsed } = runAssistantTool(profile, details, call);
        if (saved) {
          Object.assign(details, saved);
          yield { type: 'details-saved', details: saved };
        }
        yield { type: 'tool-called', name: call.name, arguments: parsed, result };
        messages.push({ role: 'tool', toolCallId: call.id, content: result });
        ending ||= endCall;
      }
      if (ending) {
        yield { type: 'call-ending' };
        return;
      }
      // Text spoken alongside a tool call ends the turn; otherwise the model gets a round to say something about the result.
      if (text.trim()) return;
    }
  }
}

/** The tools every assistant offers its model: `save_details` and `end_call`. */
export function assistantTools(profile: AssistantProfile): ToolDefinition[] {
  const properties = Object.fromEntries(
    profile.details.map((detail) => [
      detail.name,
      { type: detail.type === 'integer' ? 'integer' : 'string', description: detail.description },
    ]),
  );
  return [
    {
      name: 'save_details',
      description: 'Save details the caller has given. Call it as soon as you have any of them; later calls add to or correct earlier ones.',
      parameters: { type: 'object', properties, additionalProperties: false },
    },
    {
      name: 'end_call',
      description: 'Hang up after your goodbye. Put the goodbye in your reply text in the same message.',
      parameters: { type: 'object', properties: { reason: { type: 'string' } }, additionalProperties: false },
    },
  ];
}

/** Runs one tool call against the call's details; the result text goes back to the model. */
export function runAssistantTool(profile: AssistantProfile, details: Record<string, unknown>, call: ToolCall) {
  let parsed: unknown;
  try {
    parsed = call.arguments.trim() ? JSON.parse(call.arguments) : {};
  } catch {
    return { result: 'error: arguments were not valid JSON', parsed: call.arguments, endCall: false };
  }
  if (call.name === 'end_call') return { result: 'ok, the call ends after your goodbye', parsed, endCall: true };
  if (call.name !== 'save_details') return { result: `error: no tool named ${call.name}`, parsed, endCall: false };
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    return { result: 'error: expected an object of details', parsed, endCall: false };
  }
  const saved: Record<string, unknown> = {};
  for (const detail of profile.details) {
    const value = (parsed as Record<string, unknown>)[detail.name];
    if (value === undefined || value === null || String(value).trim() === '') continue;
    if (detail.type === 'integer') {
      const number = typeof value === 'number' ? value : Number.parseInt(String(value), 10);
      if (Number.isInteger(number) && number > 0) saved[detail.name] = number;
    } else saved[detail.name] = String(value).trim().slice(0, 200);
  }
  const merged = { ...details, ...saved };
  const missing = missingDetails(profile, merged).map((detail) => detail.name);
  const result = missing.length
    ? `saved. Still missing: ${missing.join(', ')}.`
    : `saved. All details collected: ${describeDetails(profile, merged)}.`;
  return { result, saved, parsed, endCall: false };
}

function systemPrompt(profile: AssistantProfile, details: Record<string, unknown>, callerNumber: string | undefined, now: Date): string {
  const missing = missingDetails(profile, details).map((detail) => `${detail.name} (${detail.description})`);
  const collected = describeDetails(profile, details);
  return [
    profile.systemPrompt,
    `Today is ${now.toISOString().slice(0, 10)} (${now.toLocaleDateString('en-US', { weekday: 'long' })}).`,
    callerNumber ? `The caller's number is ${callerNumber}.` : '',
    profile.knowledge ? `Knowledge:\n${profile.knowledge}` : '',
    profile.details.length
      ? `Collected so far: ${collected || 'nothing'}. Still needed: ${missing.join('; ') || 'nothing'}.`
      : '',
    'Your words are spoken aloud by a text-to-speech voice: write plain sentences only.',
  ]
    .filter(Boolean)
    .join('\n\n');
}

import type { ChatMessage, ChatModel, ToolCall } from '../providers/chat-model.js';
import { describeDetails, missingDetails, type Assistant, type AssistantEvent, type AssistantTurnInput, type TurnPreparation } from './assistant.js';
import type { CallAction } from './call-tool.js';
import type { AssistantProfile } from './profile.js';
import type { ToolBox } from './tool-box.js';

/** Model rounds one turn may take (a tool result needs a round to be spoken about). */
const maxRounds = 3;

export interface LlmAssistantOptions {
  chatModel: ChatModel;
  /** The tools offered to the model (details, end_call, and whatever else the server enables). */
  tools: ToolBox;
  /** Used when the profile names none. */
  defaultModel: string;
  /** Clock for "today", so the model can resolve "tomorrow" or "Friday". */
  now?: () => Date;
}

/** The assistant driven by a chat model and the server's tools. */
export class LlmAssistant implements Assistant {
  readonly mode = 'llm' as const;

  constructor(private readonly options: LlmAssistantOptions) {}

  /** The toolkits' additions to this turn's system prompt. */
  prepare(input: TurnPreparation): Promise<string> {
    return this.options.tools.instructions({
      profile: input.profile,
      callId: input.callId,
      callerNumber: input.callerNumber,
      language: input.language,
      details: { ...input.details },
      abortSignal: input.abortSignal,
      callerText: input.callerText,
    });
  }

  async *respond(input: AssistantTurnInput): AsyncIterable<AssistantEvent> {
    const { profile } = input;
    const { tools } = this.options;
    const details = { ...input.details };
    const context = () => ({
      profile,
      callId: input.callId,
      callerNumber: input.callerNumber,
      language: input.language,
      details,
      abortSignal: input.abortSignal,
    });
    const extra = await (input.prepared ?? this.prepare(input));
    const messages: ChatMessage[] = [
      { role: 'system', content: systemPrompt(profile, details, input.callerNumber, (this.options.now ?? (() => new Date()))(), extra) },
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
        tools: tools.definitions(profile),
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
        const outcome = await tools.run(call, context());
        if (outcome.saved) {
          Object.assign(details, outcome.saved);
          yield { type: 'details-saved', details: outcome.saved };
        }
        yield { type: 'tool-called', name: call.name, arguments: outcome.arguments, result: outcome.result };
        messages.push({ role: 'tool', toolCallId: call.id, content: outcome.result });
        if (outcome.action) {
          yield { type: 'call-action', action: outcome.action };
          ending ||= endsTurn(outcome.action);
        }
      }
      if (ending) return;
      // Text spoken alongside a tool call ends the turn; otherwise the model gets a round to say something about the result.
      if (text.trim()) return;
    }
  }
}

/** An end or a transfer closes the turn: the model's words so far are the last it says. */
function endsTurn(action: CallAction): boolean {
  return action.type === 'end-call' || action.type === 'transfer';
}

/** The day named with the date above it: both are UTC (`toLocaleDateString` used the host's zone, and built a formatter per turn). */
const weekdayNames = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'];

function systemPrompt(
  profile: AssistantProfile,
  details: Record<string, unknown>,
  callerNumber: string | undefined,
  now: Date,
  extra: string,
): string {
  const missing = missingDetails(profile, details).map((detail) => `${detail.name} (${detail.description})`);
  const collected = describeDetails(profile, details);
  return [
    profile.systemPrompt,
    `Today is ${now.toISOString().slice(0, 10)} (${weekdayNames[now.getUTCDay()]}).`,
    callerNumber ? `The caller's number is ${callerNumber}.` : '',
    profile.knowledge ? `Knowledge:\n${profile.knowledge}` : '',
    extra,
    profile.details.length
      ? `Collected so far: ${collected || 'nothing'}. Still needed: ${missing.join('; ') || 'nothing'}.`
      : '',
    'Your words are spoken aloud by a text-to-speech voice: write plain sentences only.',
  ]
    .filter(Boolean)
    .join('\n\n');
}

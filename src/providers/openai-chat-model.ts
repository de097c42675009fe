import type { OpenAI } from 'openai';
import type {
  ChatCompletionChunk,
  ChatCompletionFunctionTool,
  ChatCompletionMessageParam,
} from 'openai/resources/chat/completions';
import type { ChatMessage, ChatModel, ChatOptions, ChatStreamEvent, ToolCall, ToolDefinition } from './chat-model.js';
import { defaultIdleTimeoutMs, RequestGuard } from './openai-client.js';
import { ProviderError } from './provider-error.js';
import { noRetries, withRetries, type RetryPolicy } from './retry-policy.js';

export interface OpenAIChatModelOptions {
  client: OpenAI;
  /** Longest wait for the next chunk once the stream has started; see `RequestGuard`. */
  idleTimeoutMs?: number;
  /** Retries of a request that failed before its stream started; none by default. */
  retry?: RetryPolicy;
}

/** `ChatModel` over OpenAI's streamed Chat Completions (or any server that speaks it). */
export class OpenAIChatModel implements ChatModel {
  private readonly client: OpenAI;
  private readonly idleTimeoutMs: number;
  private readonly retry: RetryPolicy;

  constructor(options: OpenAIChatModelOptions) {
    this.client = options.client;
    this.idleTimeoutMs = options.idleTimeoutMs ?? defaultIdleTimeoutMs;
    this.retry = options.retry ?? noRetries;
  }

  async *stream(options: ChatOptions): AsyncGenerator<ChatStreamEvent> {
    const guard = new RequestGuard(options.abortSignal, this.idleTimeoutMs);
    const toolCalls = new ToolCallAssembler();
    let finishReason: string | undefined;
    let usage: { promptTokens: number; completionTokens: number } | undefined;
    try {
      // Only opening the stream is retried: once text has reached the caller, a second answer cannot be spliced in.
      const stream = await withRetries(() => this.client.chat.completions.create(
        {
          model: options.model,
          messages: options.messages.map(toOpenAIMessage),
          tools: options.tools?.length ? options.tools.map(toOpenAITool) : undefined,
          temperature: options.temperature,
          // `max_tokens` is refused by OpenAI's reasoning models; servers that
          // only know `max_tokens` ignore this one, which merely lifts the cap.
          max_completion_tokens: options.maxTokens,
          stream: true,
          stream_options: { include_usage: true },
        },
        { signal: guard.signal },
      ), { policy: this.retry, signal: options.abortSignal, toError: (error) => guard.toError(error) });
      for await (const chunk of guard.watch(stream)) {
        if (chunk.usage) {
          usage = { promptTokens: chunk.usage.prompt_tokens, completionTokens: chunk.usage.completion_tokens };
        }
        const choice = chunk.choices[0];
        if (!choice) continue;
        if (choice.delta?.content) yield { type: 'text-delta', text: choice.delta.content };
        toolCalls.add(choice.delta?.tool_calls);
        if (choice.finish_reason) {
          finishReason = choice.finish_reason;
          // The usage chunk may still follow, but the tool calls are complete
          // now and a caller can start acting on them.
          for (const toolCall of toolCalls.drain()) yield { type: 'tool-call', toolCall };
        }
      }
    } catch (error) {
      throw guard.toError(error);
    } finally {
      guard.release();
    }
    guard.throwIfStopped();
    if (finishReason === undefined) {
      throw new ProviderError('provider_bad_response', 'chat stream ended without a finish reason');
    }
    yield { type: 'finish', reason: finishReason, usage };
  }
}

type ToolCallDelta = NonNullable<ChatCompletionChunk.Choice.Delta['tool_calls']>[number];

/** Tool calls arrive as fragments keyed by index: id and name first, arguments in pieces. */
class ToolCallAssembler {
  private readonly pending = new Map<number, ToolCall>();

  add(fragments: ToolCallDelta[] | undefined): void {
    for (const fragment of fragments ?? []) {
      let toolCall = this.pending.get(fragment.index);
      if (!toolCall) {
        // Some compatible servers omit the id; the conversation still needs one
        // to pair the tool's result with the call.
        toolCall = { id: `call_${fragment.index}`, name: '', arguments: '' };
        this.pending.set(fragment.index, toolCall);
      }
      if (fragment.id) toolCall.id = fragment.id;
      // OpenAI sends the name whole once; some servers repeat it in every fragment.
      if (fragment.function?.name && !toolCall.name) toolCall.name = fragment.function.name;
      if (fragment.function?.arguments) toolCall.arguments += fragment.function.arguments;
    }
  }

  drain(): ToolCall[] {
    const toolCalls = [...this.pending.entries()].sort(([a], [b]) => a - b).map(([, toolCall]) => toolCall);
    this.pending.clear();
    return toolCalls;
  }
}

function toOpenAIMessage(message: ChatMessage): ChatCompletionMessageParam {
  switch (message.role) {
    case 'system':
    case 'user':
      return { role: message.role, content: message.content };
    case 'assistant':
      if (!message.toolCalls?.length) return { role: 'assistant', content: message.content };
      return {
        role: 'assistant',
        // OpenAI wants null rather than an empty string next to tool calls.
        content: message.content || null,
        tool_calls: message.toolCalls.map((toolCall) => ({
          id: toolCall.id,
          type: 'function',
          function: { name: toolCall.name, arguments: toolCall.arguments },
        })),
      };
    case 'tool':
      return { role: 'tool', tool_call_id: message.toolCallId, content: message.content };
  }
}

function toOpenAITool(tool: ToolDefinition): ChatCompletionFunctionTool {
  return {
    type: 'function',
    function: { name: tool.name, description: tool.description, parameters: tool.parameters },
  };
}

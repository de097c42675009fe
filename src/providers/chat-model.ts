/** A message in the conversation the chat model sees. */
export type ChatMessage =
  | { role: 'system'; content: string }
  | { role: 'user'; content: string }
  | { role: 'assistant'; content: string; toolCalls?: ToolCall[] }
  | { role: 'tool'; toolCallId: string; content: string };

export interface ToolCall {
  id: string;
  name: string;
  /** The arguments as the model wrote them: a JSON text, not yet validated. */
  arguments: string;
}

export interface ToolDefinition {
  name: string;
  description: string;
  /** JSON Schema of the arguments object. */
  parameters: Record<string, unknown>;
}

export interface ChatUsage {
  promptTokens: number;
  completionTokens: number;
}

/** What a streamed completion yields, in order. */
export type ChatStreamEvent =
  | { type: 'text-delta'; text: string }
  | { type: 'tool-call'; toolCall: ToolCall }
  | { type: 'finish'; reason: string; usage?: ChatUsage };

export interface ChatOptions {
  model: string;
  messages: ChatMessage[];
  tools?: ToolDefinition[];
  temperature?: number;
  maxTokens?: number;
  abortSignal?: AbortSignal;
}

/**
 * A chat completion, streamed. Text arrives as deltas; tool calls arrive
 * whole once their arguments are complete; `finish` comes last.
 */
export interface ChatModel {
  stream(options: ChatOptions): AsyncIterable<ChatStreamEvent>;
}

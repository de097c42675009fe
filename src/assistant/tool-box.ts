import type { ToolCall, ToolDefinition } from '../providers/chat-model.js';
import { parseToolArguments, type CallToolContext, type CallToolkit, type CallToolResult } from './call-tool.js';
import type { AssistantProfile } from './profile.js';

/** A tool call as run: what the model asked, what it was told, and what the call should do. */
export interface ToolOutcome extends CallToolResult {
  name: string;
  /** The parsed arguments (the raw text when they were not JSON). */
  arguments: unknown;
}

/** The toolkits one server offers, combined: tool definitions, dispatch and prompt additions. */
export class ToolBox {
  constructor(private readonly toolkits: CallToolkit[]) {}

  definitions(profile: AssistantProfile): ToolDefinition[] {
    return this.toolkits.flatMap((toolkit) => toolkit.tools(profile).map((tool) => tool.definition));
  }

  /** Runs one call; an unknown tool, bad JSON or a failing tool is reported to the model, never thrown. */
  async run(call: Pick<ToolCall, 'name' | 'arguments'>, context: CallToolContext): Promise<ToolOutcome> {
    const parsed = parseToolArguments(call.arguments);
    if (!parsed.ok) return { name: call.name, arguments: call.arguments, result: 'error: arguments were not valid JSON' };
    const tool = this.toolkits.flatMap((toolkit) => toolkit.tools(context.profile)).find((candidate) => candidate.definition.name === call.name);
    if (!tool) return { name: call.name, arguments: parsed.value, result: `error: no tool named ${call.name}` };
    try {
      return { name: call.name, arguments: parsed.value, ...(await tool.run(parsed.value, context)) };
    } catch (error) {
      if (context.abortSignal.aborted) throw error;
      return { name: call.name, arguments: parsed.value, result: `error: ${error instanceof Error ? error.message : String(error)}` };
    }
  }

  /**
   * Every toolkit's additions to this turn's system prompt, joined. One that
   * fails (its storage unreachable, say) is left out rather than failing the
   * turn: the caller is better served by a reply without it than by an apology.
   */
  async instructions(context: CallToolContext & { callerText: string }): Promise<string> {
    const parts = await Promise.all(this.toolkits.map((toolkit) => toolkit.instructions?.(context).catch(() => undefined)));
    return parts.filter((part): part is string => Boolean(part?.trim())).join('\n\n');
  }
}

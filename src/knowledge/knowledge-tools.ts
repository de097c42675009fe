import type { CallTool, CallToolkit } from '../assistant/call-tool.js';
import { isAbortError } from '../providers/provider-error.js';
import type { KnowledgeBase } from './knowledge-base.js';
import { chunkText } from './markdown-chunks.js';

/** What keeps the assistant from inventing a price or an opening time. */
export const knowledgePolicy =
  'Answer questions about the business only from the knowledge given to you. When it does not cover a question, say that you do not know and offer to take a message; never guess prices, times, ingredients or rules.';

/**
 * Knowledge for the model: small knowledge goes into every turn's prompt
 * whole; larger knowledge is searched with the caller's words each turn (the
 * best chunks join the prompt; by full text unless the profile asks for
 * embeddings, so no extra round trip delays the reply), and the model may look
 * up more with `search_knowledge`.
 */
export function knowledgeTools(knowledge: KnowledgeBase): CallToolkit {
  return {
    tools(profile) {
      return knowledge.has(profile.id) && knowledge.wholeText(profile.id) === undefined ? [searchKnowledgeTool(knowledge)] : [];
    },

    async instructions(context) {
      const { profile } = context;
      if (!knowledge.has(profile.id)) return profile.knowledge ? knowledgePolicy : undefined;
      const whole = knowledge.wholeText(profile.id);
      if (whole !== undefined) return `${knowledgePolicy}\n\nKnowledge (${profile.name}):\n${whole}`;
      try {
        const { hits } = await knowledge.search(profile.id, context.callerText, {
          limit: profile.knowledgeRetrieval.topK,
          abortSignal: context.abortSignal,
          method: profile.knowledgeRetrieval.everyTurn === 'embeddings' ? 'best' : 'full-text',
        });
        const excerpts = hits.length ? hits.map((hit) => `- ${chunkText(hit)}`).join('\n') : "- (nothing in the knowledge matches the caller's words)";
        return `${knowledgePolicy}\n\nKnowledge excerpts that may answer the caller (from a longer menu and policies; call search_knowledge to look up anything else):\n${excerpts}`;
      } catch (error) {
        if (context.abortSignal.aborted || isAbortError(error)) throw error;
        // Without its excerpts the turn still goes on; the model can search, or say it does not know.
        return `${knowledgePolicy}\n\nThe knowledge could not be searched just now; call search_knowledge if the caller asks about the business.`;
      }
    },
  };
}

function searchKnowledgeTool(knowledge: KnowledgeBase): CallTool {
  return {
    definition: {
      name: 'search_knowledge',
      description: "Search the business's knowledge (menu, opening hours, address, policies) for what the caller asks about.",
      parameters: {
        type: 'object',
        properties: { query: { type: 'string', description: 'What to look for, in a few words, e.g. "vegan desserts" or "parking".' } },
        required: ['query'],
        additionalProperties: false,
      },
    },
    async run(args, context) {
      const query = typeof args === 'object' && args !== null ? (args as { query?: unknown }).query : undefined;
      if (typeof query !== 'string' || !query.trim()) return { result: 'error: expected a query' };
      const { hits } = await knowledge.search(context.profile.id, query.slice(0, 300), { limit: context.profile.knowledgeRetrieval.topK, abortSignal: context.abortSignal });
      if (hits.length === 0) return { result: 'nothing found: tell the caller you do not know, and offer to take a message' };
      return { result: hits.map((hit) => chunkText(hit)).join('\n') };
    },
  };
}

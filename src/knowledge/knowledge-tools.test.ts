import { describe, expect, it } from 'vitest';
import { profileSchema } from '../assistant/profile.js';
import type { KnowledgeBase } from './knowledge-base.js';
import { knowledgeTools } from './knowledge-tools.js';

/** A knowledge base too large for the prompt, recording how each search was asked for. */
function recordingKnowledge() {
  const searches: Array<{ question: string; method: string | undefined }> = [];
  const knowledge = {
    has: () => true,
    wholeText: () => undefined,
    async search(_profileId: string, question: string, options: { method?: string }) {
      searches.push({ question, method: options.method });
      return { hits: [{ source: 'menu.md', heading: 'Menu › Pizza', content: 'Pizza tartufata. 19', score: 1 }], method: 'full-text' as const };
    },
  } as unknown as KnowledgeBase;
  return { knowledge, searches };
}

function context(everyTurn?: 'full-text' | 'embeddings') {
  const profile = profileSchema.parse({
    id: 'restaurant',
    name: 'Bella Vista',
    language: 'en-US',
    greeting: 'Hello',
    systemPrompt: 'You are a receptionist.',
    phrases: { repeat: 'r', unclear: 'u', apology: 'a', noInputGoodbye: 'n', goodbye: 'g', confirm: 'c {details}' },
    ...(everyTurn ? { knowledgeRetrieval: { everyTurn } } : {}),
  });
  return { profile, callId: 'call-1', callerNumber: '+15550100', language: 'en', details: {}, abortSignal: new AbortController().signal, callerText: 'truffles?' };
}

describe('knowledge excerpts in every turn', () => {
  it('are found by full text unless the profile asks for embeddings, and the tool always asks for the best', async () => {
    const { knowledge, searches } = recordingKnowledge();
    const toolkit = knowledgeTools(knowledge);
    const defaults = await toolkit.instructions!(context());
    expect(defaults).toContain('Pizza tartufata');
    await toolkit.instructions!(context('embeddings'));
    const [tool] = toolkit.tools(context().profile);
    await tool.run({ query: 'parking' }, context());
    expect(searches).toEqual([
      { question: 'truffles?', method: 'full-text' },
      { question: 'truffles?', method: 'best' },
      { question: 'parking', method: undefined },
    ]);
  });
});

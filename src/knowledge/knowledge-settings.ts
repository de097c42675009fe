import { z } from 'zod';

/** How a profile's knowledge sources reach the model. */
export const knowledgeRetrievalSchema = z
  .object({
    /** Knowledge up to this many characters goes into the prompt whole; more is retrieved per turn. */
    promptMaxChars: z.number().int().min(0).max(100_000).default(6_000),
    /** Chunks retrieved for a turn (and returned by `search_knowledge`). */
    topK: z.number().int().min(1).max(20).default(6),
    /**
     * How the excerpts joining every turn's prompt are found. `full-text` is
     * a local query of a few milliseconds; `embeddings` first sends the
     * caller's words to the embedding model, a round trip (100–400 ms to
     * OpenAI) that then comes before every reply's first word. The model's
     * own `search_knowledge` lookups use embeddings either way.
     */
    everyTurn: z.enum(['full-text', 'embeddings']).default('full-text'),
  })
  .default({ promptMaxChars: 6_000, topK: 6, everyTurn: 'full-text' });

export type KnowledgeRetrieval = z.infer<typeof knowledgeRetrievalSchema>;

/**
 * Markdown files, or folders of them, the assistant answers from (menu, hours,
 * address, policies). Relative paths are resolved against the profile file's folder.
 */
export const knowledgeSourcesSchema = z.array(z.string().min(1)).default([]);

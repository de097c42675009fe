export interface EmbeddingOptions {
  /** e.g. `text-embedding-3-small`. */
  model: string;
  /** The texts to embed, in order; one vector comes back for each. */
  texts: string[];
  abortSignal?: AbortSignal;
}

export interface Embeddings {
  /** One vector per text, in the order given. */
  vectors: Float32Array[];
  /** Input tokens billed, when the provider reports them. */
  tokens?: number;
}

/**
 * Text to vectors whose cosine similarity says how close two texts are in
 * meaning. The knowledge base embeds its chunks once (and again only when a
 * chunk's text changes) and each caller question as it comes.
 */
export interface EmbeddingModel {
  embed(options: EmbeddingOptions): Promise<Embeddings>;
}

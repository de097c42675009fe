import type { OpenAI } from 'openai';
import type { EmbeddingModel, EmbeddingOptions, Embeddings } from './embedding-model.js';
import { RequestGuard } from './openai-client.js';
import { ProviderError } from './provider-error.js';

/** `EmbeddingModel` over OpenAI's `/embeddings` (text-embedding-3-small, …, or any compatible server). */
export class OpenAIEmbeddingModel implements EmbeddingModel {
  constructor(private readonly options: { client: OpenAI }) {}

  async embed(options: EmbeddingOptions): Promise<Embeddings> {
    if (options.texts.length === 0) return { vectors: [] };
    const guard = new RequestGuard(options.abortSignal);
    let result: Awaited<ReturnType<OpenAI['embeddings']['create']>>;
    try {
      // The SDK asks for base64 and decodes it: a quarter of the bytes of JSON floats.
      result = await this.options.client.embeddings.create({ model: options.model, input: options.texts }, { signal: guard.signal });
    } catch (error) {
      throw guard.toError(error);
    } finally {
      guard.release();
    }
    const data = Array.isArray(result?.data) ? result.data : [];
    const vectors: Float32Array[] = new Array(options.texts.length);
    for (const item of data) {
      if (!Number.isInteger(item.index) || !Array.isArray(item.embedding)) continue;
      vectors[item.index] = Float32Array.from(item.embedding);
    }
    if (data.length !== options.texts.length || vectors.some((vector) => !vector || vector.length === 0)) {
      throw new ProviderError('provider_bad_response', `embeddings response has ${data.length} vectors for ${options.texts.length} texts`);
    }
    return { vectors, tokens: typeof result.usage?.prompt_tokens === 'number' ? result.usage.prompt_tokens : undefined };
  }
}

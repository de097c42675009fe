import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeOpenAI, type FakeOpenAI } from '../testing/fake-openai-server.js';
import { ngramEmbedding } from '../testing/ngram-embedding.js';
import { createOpenAIClient } from './openai-client.js';
import { OpenAIEmbeddingModel } from './openai-embedding-model.js';
import { isAbortError } from './provider-error.js';

describe('OpenAIEmbeddingModel against the fake /v1/embeddings', () => {
  let fake: FakeOpenAI;
  let model: OpenAIEmbeddingModel;
  beforeAll(async () => {
    fake = await startFakeOpenAI();
    model = new OpenAIEmbeddingModel({
      client: createOpenAIClient({ apiKey: 'sk-test', baseURL: fake.url, timeoutMs: 2_000, maxRetries: 0, logLevel: 'off' }),
    });
  });
  afterAll(async () => {
    await fake.close();
  });

  it('returns one vector per text, in order, decoded from base64', async () => {
    const texts = ['Truffle tagliatelle', 'Opening hours', 'truffles'];
    const { vectors, tokens } = await model.embed({ model: 'text-embedding-3-small', texts });
    expect(vectors).toHaveLength(3);
    vectors.forEach((vector, index) => expect(Array.from(vector)).toEqual(Array.from(ngramEmbedding(texts[index]))));
    expect(tokens).toBeGreaterThan(0);
    expect(fake.requests.at(-1)?.body).toMatchObject({ model: 'text-embedding-3-small', input: texts, encoding_format: 'base64' });
  });

  it('makes similar texts similar and unrelated texts not', () => {
    const cosine = (a: Float32Array, b: Float32Array) => a.reduce((sum, value, index) => sum + value * b[index], 0);
    const query = ngramEmbedding('anything with truffles?');
    expect(cosine(query, ngramEmbedding('Tagliatelle with shaved black truffle'))).toBeGreaterThan(cosine(query, ngramEmbedding('Grilled sea bass with lemon')));
  });

  it('sends nothing for no texts, and stops on abort', async () => {
    const before = fake.requests.length;
    await expect(model.embed({ model: 'm', texts: [] })).resolves.toEqual({ vectors: [] });
    expect(fake.requests.length).toBe(before);
    fake.failNext('embeddings', { stallMs: 1_000 });
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 20);
    const error = await model.embed({ model: 'm', texts: ['x'], abortSignal: controller.signal }).catch((caught: unknown) => caught);
    expect(isAbortError(error)).toBe(true);
  });
});

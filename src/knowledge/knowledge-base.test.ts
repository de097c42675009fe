import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadProfiles, type AssistantProfile } from '../assistant/profile.js';
import type { EmbeddingModel } from '../providers/embedding-model.js';
import { ngramEmbedding } from '../testing/ngram-embedding.js';
import { availableDatabaseKinds, openTestDatabase, type TestDatabase } from '../testing/test-databases.js';
import { KnowledgeBase } from './knowledge-base.js';
import { KnowledgeRepository } from './knowledge-repository.js';

/** The fake server's vectors, without the HTTP: counts what it is asked to embed. */
function countingEmbeddings() {
  const calls: string[][] = [];
  const model: EmbeddingModel = {
    async embed({ texts }) {
      calls.push(texts);
      return { vectors: texts.map((text) => ngramEmbedding(text)) };
    },
  };
  return { model, calls, embeddedTexts: () => calls.flat() };
}

const truffleDishes = [
  'Carpaccio di manzo al tartufo',
  'Pizza tartufata',
  'Tagliatelle al tartufo nero',
  'Risotto ai porcini e tartufo',
  'Patate al tartufo',
  'Frittata al tartufo',
];

const logger = pino({ level: 'silent' });
const names = (hits: Array<{ content: string }>) => hits.map((hit) => hit.content.split(' — ')[0]);

describe.each(await availableDatabaseKinds())('knowledge retrieval on the restaurant menu, on %s', (kind) => {
  let database: TestDatabase;
  let restaurant: AssistantProfile;
  let repository: KnowledgeRepository;
  beforeAll(async () => {
    database = await openTestDatabase(kind);
    restaurant = (await loadProfiles('profiles', 'restaurant')).defaultProfile;
    repository = new KnowledgeRepository(database.db);
  }, 60_000);
  afterAll(async () => {
    await database?.cleanup();
  });

  it('stores a few hundred chunks; a question about truffles finds the truffle dishes by embedding', async () => {
    const embeddings = countingEmbeddings();
    const knowledge = new KnowledgeBase({ repository, embeddingModel: embeddings.model, embeddingModelName: 'text-embedding-3-small', logger });
    const [report] = await knowledge.load([restaurant]);
    expect(report).toMatchObject({ profileId: 'restaurant', use: 'embeddings', removed: 0 });
    expect(report.chunks).toBeGreaterThan(350);
    expect(report.added).toBe(report.chunks);
    expect(report.embedded).toBe(report.chunks);
    expect(knowledge.wholeText('restaurant')).toBeUndefined();

    const { hits, method } = await knowledge.search('restaurant', 'Do you have anything with truffles?', { limit: 6 });
    expect(method).toBe('embeddings');
    expect(names(hits).sort()).toEqual([...truffleDishes].sort());
    expect(hits[0].heading).toMatch(/^Menu › /);

    const hours = await knowledge.search('restaurant', 'When do you open for lunch on Sunday?', { limit: 3 });
    expect(hours.hits.map((hit) => hit.source)).toContain('hours.md');
    const parking = await knowledge.search('restaurant', 'Is there parking?', { limit: 3 });
    expect(parking.hits.map((hit) => hit.content)).toContainEqual(expect.stringMatching(/^Parking: free car park/));
  });

  it('re-embeds only the chunks whose text changed', async () => {
    const embeddings = countingEmbeddings();
    const knowledge = new KnowledgeBase({ repository, embeddingModel: embeddings.model, embeddingModelName: 'text-embedding-3-small', logger });
    const [unchanged] = await knowledge.load([restaurant]);
    expect(unchanged).toMatchObject({ added: 0, removed: 0, embedded: 0 });
    expect(embeddings.calls).toEqual([]);

    // One price changes: one chunk is replaced, one embedding computed.
    const edited = structuredClone(restaurant);
    const directory = await import('node:fs/promises').then((fs) => fs.mkdtemp('/tmp/callme-knowledge-'));
    const fs = await import('node:fs/promises');
    for (const name of await fs.readdir('profiles/knowledge/restaurant')) {
      const text = await fs.readFile(`profiles/knowledge/restaurant/${name}`, 'utf8');
      await fs.writeFile(`${directory}/${name}`, text.replace('Tiramisu — mascarpone, espresso-soaked savoiardi, cocoa. 8', 'Tiramisu — mascarpone, espresso-soaked savoiardi, cocoa. 9'));
    }
    edited.knowledgeSources = [directory];
    try {
      const [changed] = await knowledge.load([edited]);
      expect(changed).toMatchObject({ added: 1, removed: 1, embedded: 1, use: 'embeddings' });
      expect(embeddings.embeddedTexts()).toEqual(['Menu › Desserts: Tiramisu — mascarpone, espresso-soaked savoiardi, cocoa. 9 (V)']);
      const { hits } = await knowledge.search('restaurant', 'tiramisu with mascarpone and cocoa', { limit: 1 });
      expect(hits[0].content).toContain('cocoa. 9');
    } finally {
      await fs.rm(directory, { recursive: true, force: true });
    }
  });

  it('finds the truffle dishes by full-text search when no embedding model is configured', async () => {
    const knowledge = new KnowledgeBase({ repository, logger });
    const [report] = await knowledge.load([restaurant]);
    expect(report.use).toBe('full-text');
    const { hits, method } = await knowledge.search('restaurant', 'Do you have anything with truffles?', { limit: 6 });
    expect(method).toBe('full-text');
    expect(names(hits).sort()).toEqual([...truffleDishes].sort());
    const vegan = await knowledge.search('restaurant', 'can I get a vegan pizza?', { limit: 3 });
    expect(vegan.hits.length).toBeGreaterThan(0);
    expect(vegan.hits.map((hit) => hit.content).join(' ')).toMatch(/vegan/i);
    await expect(knowledge.search('restaurant', 'the of and', { limit: 3 })).resolves.toEqual({ hits: [], method: 'full-text' });
  });

  it('falls back to full-text search when the question cannot be embedded in time', async () => {
    const embeddings = countingEmbeddings();
    const seeded = new KnowledgeBase({ repository, embeddingModel: embeddings.model, embeddingModelName: 'text-embedding-3-small', logger });
    await seeded.load([restaurant]);
    const broken: EmbeddingModel = {
      embed: async (options) => {
        if (options.texts.length === 1) throw new Error('provider down');
        return embeddings.model.embed(options);
      },
    };
    const knowledge = new KnowledgeBase({ repository, embeddingModel: broken, embeddingModelName: 'text-embedding-3-small', logger });
    await knowledge.load([restaurant]);
    const { hits, method } = await knowledge.search('restaurant', 'anything with truffles?', { limit: 6 });
    expect(method).toBe('full-text');
    expect(names(hits)).toContain('Pizza tartufata');
  });

  it('leaves out a source that does not exist, and says so', async () => {
    const lost = { ...restaurant, id: 'lost', knowledgeSources: ['/nonexistent/menu.md'] };
    const knowledge = new KnowledgeBase({ repository, logger });
    const [report] = await knowledge.load([lost]);
    expect(report).toMatchObject({ chunks: 0, missing: ['/nonexistent/menu.md'] });
    expect(knowledge.has('lost')).toBe(false);
  });

  it('keeps small knowledge whole, for the prompt', async () => {
    const small = { ...restaurant, id: 'small', knowledgeSources: ['profiles/knowledge/restaurant/hours.md'] };
    const knowledge = new KnowledgeBase({ repository, logger });
    const [report] = await knowledge.load([small]);
    expect(report.use).toBe('prompt');
    expect(knowledge.wholeText('small')).toContain('last seating at 21:30');
  });
});

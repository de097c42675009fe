import { pino } from 'pino';
import { loadProfiles } from './src/assistant/profile.js';
import { KnowledgeBase } from './src/knowledge/knowledge-base.js';
import { KnowledgeRepository } from './src/knowledge/knowledge-repository.js';
import { createOpenAIClient } from './src/providers/openai-client.js';
import { OpenAIEmbeddingModel } from './src/providers/openai-embedding-model.js';
import { migrate } from './src/storage/migrations.js';
import { startFakeOpenAI } from './src/testing/fake-openai-server.js';
import { openTestDatabase } from './src/testing/test-databases.js';

const fake = await startFakeOpenAI();
const embeddingModel = new OpenAIEmbeddingModel({ client: createOpenAIClient({ apiKey: 'sk', baseURL: fake.url, timeoutMs: 5000, maxRetries: 0, logLevel: 'off' }) });
const restaurant = (await loadProfiles('profiles', 'restaurant')).defaultProfile;
const questions = ['Do you have anything with truffles?', 'When are you open on Sunday?', 'Is there parking?', 'Can I bring my dog?', 'Do you have vegan desserts?', 'How much is the lobster linguine?'];
for (const kind of ['pglite', 'postgres'] as const) {
  const db = await openTestDatabase(kind);
  await migrate(db.db);
  const repository = new KnowledgeRepository(db.db);
  for (const [label, options] of [['embeddings', { embeddingModel, embeddingModelName: 'text-embedding-3-small' }], ['full-text', {}]] as const) {
    const knowledge = new KnowledgeBase({ repository, logger: pino({ level: 'silent' }), ...options });
    let t = performance.now();
    const [report] = await knowledge.load([restaurant]);
    const loadMs = performance.now() - t;
    t = performance.now();
    const again = await knowledge.load([restaurant]);
    const reloadMs = performance.now() - t;
    const times: number[] = [];
    for (let round = 0; round < 5; round++) for (const question of questions) {
      t = performance.now();
      await knowledge.search('restaurant', question, { limit: 6 });
      times.push(performance.now() - t);
    }
    times.sort((a, b) => a - b);
    console.log(kind, label, `chunks=${report.chunks} first load ${loadMs.toFixed(0)} ms (embedded ${report.embedded}), restart ${reloadMs.toFixed(0)} ms (embedded ${again[0].embedded}); search median ${times[Math.floor(times.length / 2)].toFixed(2)} ms, p90 ${times[Math.floor(times.length * 0.9)].toFixed(2)} ms`);
  }
  await db.cleanup();
}
await fake.close();

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { simulateCall, type CallerReply, type GatherPrompt } from '../src/simulator/twilio-simulator.js';
import { startFakeOpenAI, type FakeOpenAI } from '../src/testing/fake-openai-server.js';
import { startTestApp, type TestApp } from '../src/testing/test-app.js';
import { availableDatabaseKinds } from '../src/testing/test-databases.js';

const databaseKind = (await availableDatabaseKinds()).includes('postgres') ? 'postgres' : 'pglite';

function scriptedCaller(lines: CallerReply[]) {
  const queue = [...lines];
  return async (_prompt: GatherPrompt) => (queue.length ? queue.shift()! : null);
}

type Message = { role: string; content: string | null; tool_calls?: unknown[] };

/** A call to Bella Vista (the shipped restaurant profile, with its menu of a few hundred dishes). */
describe.each([
  ['embeddings', {}],
  ['full-text search', { OPENAI_EMBEDDING_MODEL: 'none' }],
] as const)('a menu question answered from the knowledge (%s)', (method, env) => {
  let openai: FakeOpenAI;
  let server: TestApp;
  beforeAll(async () => {
    openai = await startFakeOpenAI();
    server = await startTestApp(databaseKind, { OPENAI_API_KEY: 'sk-test', OPENAI_BASE_URL: openai.url, ...env });
  }, 60_000);
  afterAll(async () => {
    await server?.close();
    await openai?.close();
  });

  const chats = () => openai.requests.filter((request) => request.endpoint === 'chat').map((request) => (request.body?.messages ?? []) as Message[]);

  it("puts the menu's truffle dishes in the model's prompt, with the rule to say when it does not know", async () => {
    const embeddingsAtStart = openai.requests.filter((request) => request.endpoint === 'embeddings').length;
    // At start-up every chunk was embedded, a batch at a time (or nothing, without an embedding model).
    const embeddedAtStart = openai.requests.filter((request) => request.endpoint === 'embeddings').reduce((sum, request) => sum + (request.body?.input as string[]).length, 0);
    const { rows: stored } = await server.db.query<{ count: number }>("SELECT count(*)::int AS count FROM knowledge_chunks WHERE profile_id = 'restaurant'");
    expect(embeddedAtStart).toBe(method === 'embeddings' ? stored[0].count : 0);
    openai.queueChatReplies(
      { text: 'Yes: the tagliatelle with black truffle, the truffle pizza and the porcini and truffle risotto, among others.' },
      { text: 'Thank you for calling Bella Vista. Goodbye!', toolCalls: [{ name: 'end_call', arguments: { reason: 'done' } }] },
    );
    const result = await simulateCall({
      baseUrl: server.baseUrl, publicUrl: server.publicUrl, authToken: server.authToken,
      caller: scriptedCaller(['Do you have anything with truffles?', "That's all, bye"]),
    });
    expect(result.applicationErrors).toEqual([]);
    expect(result.endedBy).toBe('hangup');

    const system = chats()[0][0];
    expect(system.role).toBe('system');
    expect(system.content).toContain('say that you do not know');
    for (const dish of ['Tagliatelle al tartufo nero — egg tagliatelle, butter, parmesan, shaved black truffle. 24', 'Pizza tartufata', 'Risotto ai porcini e tartufo', 'Patate al tartufo']) {
      expect(system.content).toContain(dish);
    }
    // Retrieved, not the whole menu.
    expect(system.content).not.toContain('Bistecca alla fiorentina');
    expect(system.content!.length).toBeLessThan(8_000);
    // Every turn's excerpts come from the local full-text search: no embedding round trip before the reply.
    const questions = openai.requests.filter((request) => request.endpoint === 'embeddings').slice(embeddingsAtStart);
    expect(questions).toEqual([]);
  }, 30_000);

  it('lets the model look up more with search_knowledge', async () => {
    const embeddingsBefore = openai.requests.filter((request) => request.endpoint === 'embeddings').length;
    openai.queueChatReplies(
      { toolCalls: [{ name: 'search_knowledge', arguments: { query: 'parking' } }] },
      { text: 'Yes, there is a free car park behind the restaurant. Anything else?' },
    );
    const result = await simulateCall({
      baseUrl: server.baseUrl, publicUrl: server.publicUrl, authToken: server.authToken,
      caller: scriptedCaller(['Where can I leave the car?']),
    });
    expect(result.applicationErrors).toEqual([]);
    const messages = chats().at(-1)!;
    const toolMessage = messages.find((message) => message.role === 'tool');
    expect(toolMessage?.content).toContain('Parking: free car park behind the restaurant with 20 spaces');
    // The model's own lookup is ranked by embedding when there is an embedding model.
    const lookups = openai.requests.filter((request) => request.endpoint === 'embeddings').slice(embeddingsBefore);
    expect(lookups.map((request) => request.body?.input)).toEqual(method === 'embeddings' ? [['parking']] : []);
    const offered = (openai.requests.filter((request) => request.endpoint === 'chat').at(-1)?.body?.tools ?? []) as Array<{ function: { name: string } }>;
    expect(offered.map((tool) => tool.function.name)).toEqual(expect.arrayContaining(['save_details', 'end_call', 'search_knowledge', 'switch_language']));
    const { rows } = await server.db.query<{ count: number }>("SELECT count(*)::int AS count FROM knowledge_chunks WHERE profile_id = 'restaurant'");
    expect(rows[0].count).toBeGreaterThan(350);
  }, 30_000);
});

import { parseArgs } from 'node:util';
import { OpenAI, type ClientOptions } from 'openai';
import { createOpenAIClient, createProviderAgent } from '../src/providers/openai-client.js';
import { OpenAIChatModel } from '../src/providers/openai-chat-model.js';
import { OpenAISpeechModel } from '../src/providers/openai-speech-model.js';
import { startFakeProcess } from './fake-openai-handle.js';

/**
 * The CPU the server's own process spends on its provider requests, per
 * turn: a streamed chat reply and the speech of each of its sentences, as a
 * webhook or stream turn asks for them, sent through Node's `fetch` (as
 * before) and through `providerFetch` (undici's `request`), both on the same
 * kind of connection pool. The fake OpenAI server runs in a process of its
 * own on the realistic profile (tokens spread over a second or two, speech
 * in chunks), so its work is not counted; the two ways alternate round by
 * round, on the same machine in the same run.
 *
 *   npx tsx bench/provider-fetch-bench.ts [--turns 120] [--concurrency 20] [--rounds 3]
 */

const { values } = parseArgs({
  options: {
    turns: { type: 'string', default: '120' },
    concurrency: { type: 'string', default: '20' },
    rounds: { type: 'string', default: '3' },
  },
});
const turns = Number(values.turns);
const concurrency = Number(values.concurrency);
const rounds = Number(values.rounds);

const fake = await startFakeProcess('realistic', 1);
const agent = createProviderAgent();
const clients: Record<string, OpenAI> = {
  'Node fetch': new OpenAI({
    apiKey: 'sk-bench',
    baseURL: fake.url,
    maxRetries: 0,
    // As the server sent them before: Node's fetch, on the server's pool.
    fetchOptions: { dispatcher: agent } as ClientOptions['fetchOptions'],
  }),
  providerFetch: createOpenAIClient({ apiKey: 'sk-bench', baseURL: fake.url, timeoutMs: 30_000, maxRetries: 0, dispatcher: agent }),
};

/** One turn's requests: the reply streamed, then each sentence's speech read to the end. */
async function turn(client: OpenAI, index: number): Promise<{ requests: number; bytes: number }> {
  const chat = new OpenAIChatModel({ client });
  const speech = new OpenAISpeechModel({ client });
  let text = '';
  const stream = await chat.stream({
    model: 'gpt-4o-mini',
    messages: [
      { role: 'system', content: `The caller's number is +1555${String(index).padStart(7, '0')}.` },
      { role: 'user', content: 'A table for two on Friday, please.' },
    ],
  });
  for await (const event of stream) if (event.type === 'text-delta') text += event.text;
  const sentences = text.split(/(?<=[.!?])\s+/).filter(Boolean);
  let bytes = 0;
  await Promise.all(
    sentences.map(async (sentence) => {
      const audio = await speech.synthesize({ text: sentence, voice: 'alloy', model: 'gpt-4o-mini-tts', format: 'pcm', speed: 1 });
      for await (const chunk of audio) bytes += chunk.byteLength;
    }),
  );
  return { requests: 1 + sentences.length, bytes };
}

async function run(client: OpenAI, offset: number): Promise<{ cpuUsPerTurn: number; cpuUsPerRequest: number; requests: number }> {
  let next = 0;
  let requests = 0;
  const started = process.cpuUsage();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < turns) {
        const index = offset + next++;
        const done = await turn(client, index);
        requests += done.requests;
      }
    }),
  );
  const used = process.cpuUsage(started);
  const cpuUs = used.user + used.system;
  return { cpuUsPerTurn: cpuUs / turns, cpuUsPerRequest: cpuUs / requests, requests };
}

// A warm-up round for each, so both are measured compiled.
for (const client of Object.values(clients)) await run(client, 0);
const results: Record<string, number[]> = Object.fromEntries(Object.keys(clients).map((name) => [name, []]));
const perRequest: Record<string, number[]> = Object.fromEntries(Object.keys(clients).map((name) => [name, []]));
for (let round = 0; round < rounds; round++) {
  for (const [name, client] of Object.entries(clients)) {
    const result = await run(client, 10_000 * (round + 1));
    results[name].push(result.cpuUsPerTurn);
    perRequest[name].push(result.cpuUsPerRequest);
    process.stdout.write(`  round ${round + 1} ${name.padEnd(14)} ${(result.cpuUsPerTurn / 1000).toFixed(2)} ms CPU per turn, ${result.cpuUsPerRequest.toFixed(0)} µs per request (${result.requests} requests)\n`);
  }
}
const median = (list: number[]) => [...list].sort((a, b) => a - b)[Math.floor(list.length / 2)];
const before = median(results['Node fetch']);
const after = median(results.providerFetch);
process.stdout.write(
  `\nprovider requests, CPU of the requesting process per turn (median of ${rounds} rounds, ${turns} turns each, ${concurrency} at a time):\n` +
    `  Node fetch     ${(before / 1000).toFixed(2)} ms (${median(perRequest['Node fetch']).toFixed(0)} µs per request)\n` +
    `  providerFetch  ${(after / 1000).toFixed(2)} ms (${median(perRequest.providerFetch).toFixed(0)} µs per request)\n` +
    `  saved          ${((before - after) / 1000).toFixed(2)} ms per turn (${(100 * (1 - after / before)).toFixed(0)} %)\n`,
);
await agent.close();
await fake.close();

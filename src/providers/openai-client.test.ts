import { getEventListeners } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { OpenAI } from 'openai';
import type { Agent } from 'undici';
import { describe, expect, it } from 'vitest';
import { OpenAIChatModel } from './openai-chat-model.js';
import { OpenAISpeechModel } from './openai-speech-model.js';
import { createOpenAIClient, createProviderAgent } from './openai-client.js';

// A garbage collection on demand, to see what a finished request leaves behind.
setFlagsFromString('--expose-gc');
const collectGarbage = runInNewContext('gc') as () => void;

/**
 * A client whose requests never leave the process. Each request's own
 * signal (the SDK's, which its abort listener on our signal points to) is
 * tracked weakly: if our signal stays in memory, so does this one.
 */
function fakeClient(answer: () => Response) {
  const signals: Array<WeakRef<AbortSignal>> = [];
  const client = new OpenAI({
    apiKey: 'sk-test',
    baseURL: 'http://openai.invalid/v1',
    maxRetries: 0,
    logLevel: 'off',
    fetch: async (_url, init) => {
      if (init?.signal) signals.push(new WeakRef(init.signal));
      return answer();
    },
  });
  return { client, signals };
}

function chatAnswer(): Response {
  const chunk = (delta: object, finish: string | null) =>
    `data: ${JSON.stringify({ id: 'chatcmpl-1', object: 'chat.completion.chunk', created: 0, model: 'gpt-4o-mini', choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`;
  const body = chunk({ role: 'assistant', content: 'We open at nine.' }, null) + chunk({}, 'stop') + 'data: [DONE]\n\n';
  return new Response(body, { headers: { 'content-type': 'text/event-stream' } });
}

function speechAnswer(): Response {
  return new Response(new Uint8Array(4_800), { headers: { 'content-type': 'application/octet-stream' } });
}

/** Signals still in memory once nothing refers to them (WeakRefs are only cleared after the current job). */
async function survivors(signals: Array<WeakRef<AbortSignal>>): Promise<number> {
  for (let round = 0; round < 3; round += 1) {
    await new Promise((resolve) => setTimeout(resolve, 0));
    collectGarbage();
  }
  return signals.filter((signal) => signal.deref() !== undefined).length;
}

describe('RequestGuard', () => {
  // A turn's signal lives through every request of the turn, and the SDK never
  // removes the listener it adds: a request must leave nothing on it or behind it.
  it('leaves nothing in memory after chat streams that ended normally', async () => {
    const { client, signals } = fakeClient(chatAnswer);
    const chat = new OpenAIChatModel({ client, idleTimeoutMs: 5_000 });
    const turn = new AbortController();
    // In a function of its own, so no local of the test still holds the last request.
    const ask = async () => {
      for await (const _event of chat.stream({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'When do you open?' }], abortSignal: turn.signal }));
    };
    for (let request = 0; request < 20; request += 1) await ask();
    expect(signals).toHaveLength(20);
    expect(await survivors(signals)).toBe(0);
    expect(getEventListeners(turn.signal, 'abort')).toHaveLength(0);
  });

  it('leaves nothing in memory after speech read to the end or stopped early', async () => {
    const { client, signals } = fakeClient(speechAnswer);
    const speech = new OpenAISpeechModel({ client, idleTimeoutMs: 5_000 });
    const turn = new AbortController();
    const speak = async (stopEarly: boolean) => {
      const audio = await speech.synthesize({ text: 'Hello', voice: 'alloy', model: 'tts-1', format: 'pcm', speed: 1, abortSignal: turn.signal });
      for await (const _chunk of audio) if (stopEarly) break;
    };
    for (let request = 0; request < 20; request += 1) await speak(request % 2 === 1);
    expect(signals).toHaveLength(20);
    expect(await survivors(signals)).toBe(0);
    expect(getEventListeners(turn.signal, 'abort')).toHaveLength(0);
  });

  it("still passes the caller's abort on to the request", async () => {
    const { client, signals } = fakeClient(speechAnswer);
    const turn = new AbortController();
    const audio = await new OpenAISpeechModel({ client }).synthesize({ text: 'Hello', voice: 'alloy', model: 'tts-1', format: 'pcm', speed: 1, abortSignal: turn.signal });
    turn.abort(new Error('caller hung up'));
    // The request is still being read, so its signal is still in memory.
    expect(signals.at(-1)?.deref()?.aborted).toBe(true);
    await expect((async () => {
      for await (const _chunk of audio);
    })()).rejects.toThrow();
  });
});

describe('provider connections', () => {
  /** A provider that answers /v1/models, sends no keep-alive hint, and counts the connections it accepted. */
  async function provider(): Promise<{ url: string; connections: () => number; close: () => Promise<void> }> {
    let connections = 0;
    const server = createServer((_request, response) => {
      response.writeHead(200, { 'content-type': 'application/json' });
      response.end(JSON.stringify({ object: 'list', data: [] }));
    });
    // 0: the server itself never closes an idle connection, and so names no timeout to the client.
    server.keepAliveTimeout = 0;
    server.on('connection', () => (connections += 1));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    return {
      url: `http://127.0.0.1:${port}/v1`,
      connections: () => connections,
      close: () => new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
    };
  }

  const client = (baseURL: string, dispatcher?: Agent) =>
    createOpenAIClient({ apiKey: 'test', baseURL, timeoutMs: 5_000, maxRetries: 0, dispatcher });

  it('reuses a connection left idle longer than a caller thinks between turns', { timeout: 20_000 }, async () => {
    const withPool = await provider();
    const withoutPool = await provider();
    const agent = createProviderAgent();
    try {
      const pooled = client(withPool.url, agent);
      const plain = client(withoutPool.url);
      await Promise.all([pooled.models.list(), plain.models.list()]);
      // Past the 4 s Node's own fetch keeps an idle connection.
      await new Promise((resolve) => setTimeout(resolve, 4_500));
      await Promise.all([pooled.models.list(), plain.models.list()]);
      expect(withPool.connections()).toBe(1);
      expect(withoutPool.connections()).toBe(2);
    } finally {
      await agent.destroy();
      await withPool.close();
      await withoutPool.close();
    }
  });
});

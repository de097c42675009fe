import { getEventListeners } from 'node:events';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { OpenAI } from 'openai';
import { describe, expect, it } from 'vitest';
import { OpenAIChatModel } from './openai-chat-model.js';
import { OpenAISpeechModel } from './openai-speech-model.js';

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

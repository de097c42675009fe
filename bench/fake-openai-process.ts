import { monitorEventLoopDelay } from 'node:perf_hooks';
import {
  latencyProfiles,
  startFakeOpenAI,
  type FakeInjectedDelays,
  type FakeRecordedRequest,
} from '../src/testing/fake-openai-server.js';
import { chatRequestOwner, receptionistReply } from './receptionist-replies.js';

/**
 * The fake OpenAI server in a process of its own, started by the bench with
 * `fork`: its timers and streaming then never wait on the bench's HTTP client
 * (or the other way round), so the delays it injects are the delays the
 * server under test sees. Arguments: the latency profile and the seed.
 */

/** One request the fake served, reduced to what the bench needs; times are epoch milliseconds. */
export interface FakeRequestSummary {
  endpoint: FakeRecordedRequest['endpoint'];
  receivedAt: number;
  finishedAt?: number;
  status?: number;
  /** Chat: whose call, and which caller turn (user messages so far). */
  callerNumber?: string;
  turn?: number;
  /** Speech: the text synthesized. */
  input?: string;
  injected?: FakeInjectedDelays;
}

export type FakeProcessRequest = { type: 'take-log' } | { type: 'status' };

export type FakeProcessMessage =
  | { type: 'ready'; url: string }
  | { type: 'log'; requests: FakeRequestSummary[]; loopDelayMs: { p50: number; p99: number; max: number } }
  | { type: 'status'; inFlight: number; finished: number };

const profileName = (process.argv[2] ?? 'realistic') as keyof typeof latencyProfiles;
const seed = Number(process.argv[3] ?? 1);
const profile = latencyProfiles[profileName];
if (!profile) throw new Error(`unknown latency profile ${profileName}`);

const fake = await startFakeOpenAI({ profile, seed, respond: receptionistReply, reuseSpeechSignal: true });
// 5 ms resolution: fine enough to see the fake falling behind its own schedule, cheap enough not to.
const loopDelay = monitorEventLoopDelay({ resolution: 5 });
loopDelay.enable();
let finishedTotal = 0;

const send = (message: FakeProcessMessage) => process.send?.(message);

process.on('message', (message: FakeProcessRequest) => {
  if (message.type === 'status') {
    const inFlight = fake.requests.filter((request) => request.finishedAt === undefined).length;
    send({ type: 'status', inFlight, finished: finishedTotal + fake.requests.length - inFlight });
    return;
  }
  // Requests still being answered stay for the next take.
  const done = fake.requests.filter((request) => request.finishedAt !== undefined);
  const pending = fake.requests.filter((request) => request.finishedAt === undefined);
  fake.requests.splice(0, fake.requests.length, ...pending);
  finishedTotal += done.length;
  send({
    type: 'log',
    requests: done.map(summarize),
    loopDelayMs: { p50: loopDelay.percentile(50) / 1e6, p99: loopDelay.percentile(99) / 1e6, max: loopDelay.max / 1e6 },
  });
  loopDelay.reset();
});

process.on('disconnect', () => {
  void fake.close().finally(() => process.exit(0));
});

send({ type: 'ready', url: fake.url });

function summarize(request: FakeRecordedRequest): FakeRequestSummary {
  const origin = performance.timeOrigin;
  const summary: FakeRequestSummary = {
    endpoint: request.endpoint,
    receivedAt: origin + request.receivedAt,
    finishedAt: request.finishedAt === undefined ? undefined : origin + request.finishedAt,
    status: request.status,
    injected: request.injected,
  };
  if (request.endpoint === 'chat' && Array.isArray(request.body?.messages)) {
    Object.assign(summary, chatRequestOwner(request.body.messages as Parameters<typeof chatRequestOwner>[0]));
  }
  if (request.endpoint === 'speech' && typeof request.body?.input === 'string') summary.input = request.body.input;
  return summary;
}

import { ServerResponse, type IncomingHttpHeaders } from 'node:http';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { latencyProfiles, startFakeOpenAI, type FakeLatencyProfile, type FakeRecordedRequest } from '../../src/testing/fake-openai-server.js';
import { callerLines, chatRequestOwner, receptionistReply } from '../receptionist-replies.js';
import { mulberry32 } from '../stats.js';

/**
 * The fake OpenAI for the stream bench, in a process of its own (started with
 * `fork`, like `../fake-openai-process.ts` for the webhook bench), so its
 * timers never wait on the simulated callers or the other way round.
 * Arguments: latency profile, seed, transcription delay in ms.
 *
 * Two additions over the webhook bench's fake process, both here rather than
 * in the fake itself:
 * - transcription takes time: the fake answers transcriptions at once, so
 *   the transcriber given to it sleeps a jittered delay first (recorded) and
 *   returns a caller line tagged with a number, which lets the bench find the
 *   turn a transcription belonged to in the chat request that follows it;
 * - the moment each speech response's first bytes are written, to the
 *   microsecond: the fake writes its headers together with the first audio,
 *   so `writeHead` is wrapped (in this process only) to stamp it. The
 *   injected delay alone would be off by the fake's timer lateness (~1 ms),
 *   too coarse to measure a server path whose goal is 2 ms.
 */

/** One request the fake served; times are epoch milliseconds (sub-millisecond). */
export interface StreamFakeRequest {
  endpoint: 'chat' | 'speech' | 'transcription';
  receivedAt: number;
  finishedAt?: number;
  /** Chat: whose call (caller's number from the system prompt), and the last thing the caller said. */
  callerNumber?: string;
  lastUserText?: string;
  /** Chat: the streamed text pieces and when each chunk was due, ms after the fake started answering. */
  textPieces?: string[];
  chunkDueMs?: number[];
  /** Speech: the text, the injected first-byte delay, and when the first bytes were really written. */
  input?: string;
  firstByteMs?: number;
  firstByteAt?: number;
  /** Transcription: the text returned and the delay injected before it. */
  text?: string;
  delayMs?: number;
}

export type StreamFakeRequestMessage =
  | { type: 'take-log' }
  | { type: 'status' }
  /** Switches the latency profile (and the transcription delay) for the requests that follow. */
  | { type: 'set-profile'; profile: keyof typeof latencyProfiles; transcriptionMs: number };

export type StreamFakeMessage =
  | { type: 'ready'; url: string }
  | { type: 'log'; requests: StreamFakeRequest[]; loopDelayMs: { p50: number; p99: number; max: number } }
  | { type: 'status'; inFlight: number; finished: number }
  | { type: 'profile-set' };

const profileName = (process.argv[2] ?? 'realistic') as keyof typeof latencyProfiles;
const seed = Number(process.argv[3] ?? 1);
let transcriptionMs = Number(process.argv[4] ?? 0);
let profile: FakeLatencyProfile = latencyProfiles[profileName];
if (!profile) throw new Error(`unknown latency profile ${profileName}`);

const firstWrites = new WeakMap<IncomingHttpHeaders, number>();
const writeHead = ServerResponse.prototype.writeHead;
ServerResponse.prototype.writeHead = function (this: ServerResponse, ...args: Parameters<typeof writeHead>) {
  if (this.req?.url?.startsWith('/v1/audio/speech')) firstWrites.set(this.req.headers, performance.now());
  return writeHead.apply(this, args);
} as typeof writeHead;

const transcriptions: StreamFakeRequest[] = [];
const random = mulberry32(seed * 7919);
let transcribed = 0;

const fake = await startFakeOpenAI({
  profile,
  seed,
  respond: receptionistReply,
  reuseSpeechSignal: true,
  transcribe: async () => {
    const receivedAt = epochNow();
    const delayMs = transcriptionMs > 0 ? transcriptionMs * (1 + profile.jitter * (2 * random() - 1)) : 0;
    if (delayMs > 0) await new Promise((resolve) => setTimeout(resolve, delayMs));
    transcribed += 1;
    const text = `${callerLines[transcribed % callerLines.length]} (${transcribed})`;
    transcriptions.push({ endpoint: 'transcription', receivedAt, finishedAt: epochNow(), text, delayMs });
    return text;
  },
});
const loopDelay = monitorEventLoopDelay({ resolution: 5 });
loopDelay.enable();
let finishedTotal = 0;

const send = (message: StreamFakeMessage) => process.send?.(message);

process.on('message', (message: StreamFakeRequestMessage) => {
  if (message.type === 'set-profile') {
    profile = latencyProfiles[message.profile];
    transcriptionMs = message.transcriptionMs;
    fake.setProfile(profile);
    send({ type: 'profile-set' });
    return;
  }
  if (message.type === 'status') {
    const inFlight = fake.requests.filter((request) => request.finishedAt === undefined).length;
    send({ type: 'status', inFlight, finished: finishedTotal + fake.requests.length - inFlight });
    return;
  }
  // Every request so far, answered or not: a caller hanging up aborts the
  // server's requests, and an aborted response never finishes. The bench
  // takes the log once a phase's callers are done, so all of it is theirs.
  const taken = fake.requests.splice(0);
  finishedTotal += taken.length;
  const requests = [...taken.flatMap(summarize), ...transcriptions.splice(0)];
  send({
    type: 'log',
    requests,
    loopDelayMs: { p50: loopDelay.percentile(50) / 1e6, p99: loopDelay.percentile(99) / 1e6, max: loopDelay.max / 1e6 },
  });
  loopDelay.reset();
});

process.on('disconnect', () => {
  void fake.close().finally(() => process.exit(0));
});

send({ type: 'ready', url: fake.url });

function epochNow(): number {
  return performance.timeOrigin + performance.now();
}

function summarize(request: FakeRecordedRequest): StreamFakeRequest[] {
  const origin = performance.timeOrigin;
  const base = { receivedAt: origin + request.receivedAt, finishedAt: request.finishedAt === undefined ? undefined : origin + request.finishedAt };
  if (request.endpoint === 'chat' && request.injected?.endpoint === 'chat') {
    const messages = (request.body?.messages ?? []) as Parameters<typeof chatRequestOwner>[0];
    const lastUser = [...messages].reverse().find((message) => message.role === 'user');
    return [{
      endpoint: 'chat',
      ...base,
      callerNumber: chatRequestOwner(messages).callerNumber,
      lastUserText: typeof lastUser?.content === 'string' ? lastUser.content : undefined,
      textPieces: request.injected.textPieces,
      chunkDueMs: request.injected.chunkDueMs,
    }];
  }
  if (request.endpoint === 'speech' && request.injected?.endpoint === 'speech') {
    const firstWrite = firstWrites.get(request.headers);
    return [{
      endpoint: 'speech',
      ...base,
      input: typeof request.body?.input === 'string' ? request.body.input : undefined,
      firstByteMs: request.injected.firstByteMs,
      firstByteAt: firstWrite === undefined ? undefined : origin + firstWrite,
    }];
  }
  return [];
}

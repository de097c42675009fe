import { randomBytes } from 'node:crypto';
import { connectMediaStream, type MediaStreamCall, type StreamTimelineEvent } from '../../src/simulator/media-stream-simulator.js';
import { signTwilioRequest } from '../../src/simulator/twilio-simulator.js';
import { request } from '../http-client.js';
import { epochNow, mulberry32 } from '../stats.js';
import { addTimeline, emptyJitter, type JitterStats } from './frame-jitter.js';
import { frameMs, frameSamples, phaseOf, type FixtureAnalysis } from './speech-fixtures.js';

/**
 * One simulated caller on a media stream, the way Twilio and a person would
 * do it: the incoming webhook (signed), the stream it asks for, the greeting
 * heard to its end, then turns. Each utterance is a speech fixture spoken in
 * real time; the caller either waits for the reply to finish or (the
 * `latency` script, some turns) talks over it after a second or two. Times
 * are epoch milliseconds, so they compare with the fake's and the other
 * caller processes'.
 *
 * The moments that matter are taken from the simulator itself: an utterance
 * is queued as up to three consecutive `say`s, cut at the frame that
 * completes `minSpeechMs` of voice and at the last voiced frame, and each
 * `say` settles as its last frame leaves. No gap is added: all three are
 * queued at once on the simulator's 20 ms microphone clock.
 */

export type CallScript = 'latency' | 'load';

export interface CallPlan {
  index: number;
  callerNumber: string;
  script: CallScript;
  /** Epoch ms: when to place the call. */
  startAt: number;
  /** Epoch ms: no turn starts after this; `load` callers hang up at it. */
  stopAt: number;
  maxTurns: number;
  seed: number;
}

export interface CallEnvironment {
  baseUrl: string;
  authToken: string;
  streamNumber: string;
  /** By fixture name. */
  fixtures: Record<string, FixtureAnalysis>;
  /** Fixtures any turn may say, and those that always interrupt (at every phase). */
  turnFixtures: string[];
  bargeInFixtures: string[];
  minSpeechMs: number;
  /** `latency` script: share of turns after the first spoken over the reply. */
  bargeInShare: number;
  /** Silence (and every mark echoed) that tells the caller a reply has ended. */
  replyQuietMs: number;
  /** Epoch ms window in which outbound frames count towards jitter. */
  jitterWindow: { from: number; to: number };
}

/** One caller turn, as the caller saw it. */
export interface TurnSample {
  call: number;
  callerNumber: string;
  turn: number;
  fixture: string;
  /** Spoken over the previous reply (a barge-in was intended). */
  bargeIn: boolean;
  /** Where on the detector's 32 ms grid the utterance fell (0–7). */
  phase: number;
  /** The microphone clock's lateness on the last voiced frame, ms (the caller's own error). */
  micLateMs: number;
  /** The frame completing `minSpeechMs` of voice left. */
  crossAt?: number;
  /** The last voiced frame left. */
  lastVoicedAt: number;
  /** A `clear` arrived (barge-in). */
  clearAt?: number;
  /** The reply's first audio frame arrived. */
  firstFrameAt?: number;
  /** No reply audio came within the wait. */
  noReply?: boolean;
}

export interface CallResult {
  index: number;
  callSid: string;
  turns: TurnSample[];
  /** `clear`s in turns that were not spoken over a reply. */
  unexpectedClears: number;
  framesReceived: number;
  jitter: JitterStats;
  errors: string[];
}

const replyWaitMs = 20_000;

export async function runCall(plan: CallPlan, environment: CallEnvironment): Promise<CallResult> {
  const random = mulberry32(plan.seed);
  const callSid = `CA${randomBytes(16).toString('hex')}`;
  const result: CallResult = { index: plan.index, callSid, turns: [], unexpectedClears: 0, framesReceived: 0, jitter: emptyJitter(), errors: [] };
  const replyStarts: number[] = [];
  await sleep(plan.startAt - epochNow());
  let call: MediaStreamCall | undefined;
  let microphone: Microphone | undefined;
  let openedAt = 0;
  let openedAtPerf = 0;
  try {
    const params = { CallSid: callSid, AccountSid: `AC${'b'.repeat(32)}`, From: plan.callerNumber, To: environment.streamNumber, CallStatus: 'ringing', Direction: 'inbound' };
    const incomingUrl = `${environment.baseUrl}/twilio/incoming`;
    const answer = await request('POST', incomingUrl, { form: params, headers: { 'x-twilio-signature': signTwilioRequest(environment.authToken, incomingUrl, params) } });
    const streamUrl = /<Stream url="([^"]+)"/.exec(answer.body.toString('utf8'))?.[1];
    if (answer.status !== 200 || !streamUrl) throw new Error(`incoming webhook answered ${answer.status} without a <Stream>`);
    // The line stays mute until the greeting starts (see `Microphone`).
    call = await connectMediaStream({ url: streamUrl, authToken: environment.authToken, callSid, idleAudio: 'none', connectTimeoutMs: 15_000 });
    const live = call;
    // The simulator's clock (timeline `atMs`) starts as the socket opens, and
    // its microphone sends frame k at that moment + 20 k ms. The moment is
    // taken from the timeline itself: a waiter runs synchronously as an event
    // is recorded, so performance.now() − atMs there is the clock's origin
    // (plus the few microseconds of parsing the message; the smallest over the
    // greeting's events is kept). Taking performance.now() after
    // `connectMediaStream` resolves could be milliseconds late on a busy loop.
    let originPerf = performance.now();
    const noteOrigin = (event: StreamTimelineEvent) => {
      originPerf = Math.min(originPerf, performance.now() - event.atMs);
    };
    await live.waitFor((event) => (noteOrigin(event), event.type === 'audio-received'), 20_000);
    microphone = new Microphone(live);
    microphone.start();
    await live.waitFor((event) => (noteOrigin(event), event.type === 'mark-echoed' && !event.cleared), 20_000);
    openedAtPerf = originPerf;
    openedAt = performance.timeOrigin + originPerf;
    const epochOf = (event: StreamTimelineEvent) => openedAt + event.atMs;
    // `load` callers hang up at `stopAt` whatever they are doing; `latency` callers finish the turn they are in.
    const hardStop = (waitMs: number) => (plan.script === 'load' ? Math.min(plan.stopAt, epochNow() + waitMs) : epochNow() + waitMs);

    /** Where the previous reply started, in the simulator's played-audio count. */
    let replyStartPlayed = live.playedAudioMs;
    const watch: ReplyWatch = { seen: 0, marks: 0, echoes: 0, lastActivityMs: 0, playEndMs: 0 };
    for (let turn = 1; turn <= plan.maxTurns && epochNow() < plan.stopAt; turn++) {
      const bargeIn = plan.script === 'latency' && turn > 1 && random() < environment.bargeInShare;
      if (bargeIn) {
        // Talk over the reply once 0.8–2 s of it has played.
        const playFor = 800 + random() * 1200;
        const until = hardStop(replyWaitMs);
        while (live.playedAudioMs - replyStartPlayed < playFor && epochNow() < until) await sleep(10);
      } else {
        await waitForReplyEnd(live, watch, environment.replyQuietMs, openedAtPerf, hardStop(60_000));
        await sleep(200 + random() * 400);
      }
      if (epochNow() >= plan.stopAt) break;
      const names = bargeIn ? environment.bargeInFixtures : environment.turnFixtures;
      const analysis = environment.fixtures[names[Math.floor(random() * names.length)]];
      const sample = await speak(microphone, analysis, environment.minSpeechMs, openedAtPerf);
      const turnSample: TurnSample = { call: plan.index, callerNumber: plan.callerNumber, turn, fixture: analysis.fixture.name, bargeIn, ...sample };
      result.turns.push(turnSample);
      const sayStartedAt = turnSample.lastVoicedAt - (analysis.fixture.lastVoicedFrame + 1) * frameMs;
      const clear = live.timeline.find((event) => event.type === 'playback-cleared' && epochOf(event) > sayStartedAt);
      if (clear) {
        turnSample.clearAt = epochOf(clear);
        if (!bargeIn) result.unexpectedClears += 1;
      }
      const after = Math.max(turnSample.lastVoicedAt, turnSample.clearAt ?? 0);
      const first = await live
        .waitFor((event) => event.type === 'audio-received' && epochOf(event) > after, Math.max(1, hardStop(replyWaitMs) - epochNow()))
        .catch(() => undefined);
      if (first) turnSample.firstFrameAt = epochOf(first);
      else if (epochNow() < plan.stopAt) turnSample.noReply = true;
      replyStartPlayed = live.playedAudioMs;
      replyStarts.push(after);
    }
    if (plan.script === 'load') await sleep(plan.stopAt - epochNow());
  } catch (error) {
    result.errors.push((error as Error).message);
  } finally {
    microphone?.stop();
    if (call) {
      await call.stop();
      result.framesReceived = call.timeline.filter((event) => event.type === 'audio-received').length;
      addTimeline(result.jitter, call.timeline, openedAt, replyStarts, environment.jitterWindow);
      const statusUrl = `${environment.baseUrl}/twilio/status`;
      const params = { CallSid: callSid, AccountSid: `AC${'b'.repeat(32)}`, From: plan.callerNumber, To: environment.streamNumber, CallStatus: 'completed', Direction: 'inbound' };
      await request('POST', statusUrl, { form: params, headers: { 'x-twilio-signature': signTwilioRequest(environment.authToken, statusUrl, params) } }).catch(() => undefined);
    }
  }
  return result;
}

/**
 * The caller's line. Twilio streams audio all call long, silence included,
 * and so does this, but only from the moment the greeting starts: the server
 * drops media that arrives while it is still opening the call, and its turn
 * detector counts samples from the first frame it keeps. Every frame sent
 * after the greeting started reaches the detector, so the position of each
 * utterance in the stream, and with it the detector's phase, is exact.
 * Silence is queued 100 ms at a time, so an utterance waits at most that long
 * for its turn on the microphone clock.
 */
class Microphone {
  private queued = 0;
  private feeding = false;
  private readonly silence = new Uint8Array(5 * frameSamples).fill(0xff);

  constructor(private readonly call: MediaStreamCall) {
    // A closed stream settles every `say` at once; the feeder must not spin on them.
    void call.closed.then(() => this.stop());
  }

  start(): void {
    this.feeding = true;
    void (async () => {
      while (this.feeding) await this.queue(this.silence).sent;
    })();
  }

  stop(): void {
    this.feeding = false;
  }

  /** Queues μ-law after everything queued so far; `sent` settles (with performance.now()) as its last frame leaves. */
  queue(mulaw: Uint8Array): { firstFrame: number; sent: Promise<number> } {
    const firstFrame = this.queued;
    this.queued += Math.ceil(mulaw.length / frameSamples);
    return { firstFrame, sent: this.call.say(mulaw).then(() => performance.now()) };
  }
}

/** Says a fixture in real time and returns when its key frames left. */
async function speak(
  microphone: Microphone,
  analysis: FixtureAnalysis,
  minSpeechMs: number,
  openedAtPerf: number,
): Promise<Pick<TurnSample, 'phase' | 'micLateMs' | 'crossAt' | 'lastVoicedAt'>> {
  const { mulaw, lastVoicedFrame } = analysis.fixture;
  const crossFrame = Math.ceil(minSpeechMs / frameMs) - 1;
  const cuts = [...new Set([crossFrame < lastVoicedFrame ? crossFrame + 1 : undefined, lastVoicedFrame + 1])]
    .filter((cut): cut is number => cut !== undefined)
    .map((frame) => frame * frameSamples);
  const parts: Uint8Array[] = [];
  let from = 0;
  for (const cut of [...cuts, mulaw.length]) {
    if (cut > from) parts.push(mulaw.subarray(from, cut));
    from = cut;
  }
  // Queued together, so the frames leave back to back on the microphone clock.
  const queued = parts.map((part) => microphone.queue(part));
  const times = await Promise.all(queued.map((part) => part.sent));
  const lastVoicedPerf = times[cuts.length - 1];
  return {
    phase: phaseOf(queued[0].firstFrame),
    // Frames are due every 20 ms from the clock's origin; how far past its slot the last voiced one left.
    micLateMs: (lastVoicedPerf - openedAtPerf) % frameMs,
    crossAt: cuts.length > 1 ? performance.timeOrigin + times[0] : undefined,
    lastVoicedAt: performance.timeOrigin + lastVoicedPerf,
  };
}

/**
 * The reply is over: nothing left to play, every mark echoed, and no audio or
 * mark for `quietMs`. The timeline is read from where the last look stopped:
 * a long call holds thousands of events and hundreds of callers poll.
 */
async function waitForReplyEnd(call: MediaStreamCall, watch: ReplyWatch, quietMs: number, openedAtPerf: number, deadline: number): Promise<void> {
  while (epochNow() < deadline) {
    const timeline = call.timeline;
    for (; watch.seen < timeline.length; watch.seen++) {
      const event = timeline[watch.seen];
      if (event.type === 'mark-received') watch.marks++;
      if (event.type === 'mark-echoed') watch.echoes++;
      if (event.type === 'audio-received' || event.type === 'mark-received') watch.lastActivityMs = event.atMs;
      if (event.type === 'audio-received') watch.playEndMs = event.playsAtMs + event.bytes / 8;
      if (event.type === 'playback-cleared') watch.playEndMs = event.atMs;
    }
    const nowMs = performance.now() - openedAtPerf;
    if (watch.marks === watch.echoes && nowMs >= watch.playEndMs && nowMs - watch.lastActivityMs >= quietMs) return;
    await sleep(50);
  }
}

interface ReplyWatch {
  seen: number;
  marks: number;
  echoes: number;
  lastActivityMs: number;
  /** When the audio received so far has played, on the simulator's clock. */
  playEndMs: number;
}

function sleep(ms: number): Promise<void> {
  return ms > 0 ? new Promise((resolve) => setTimeout(resolve, ms)) : Promise.resolve();
}

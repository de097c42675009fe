import { signTwilioRequest } from '../src/simulator/twilio-simulator.js';
import { callerLineFor, callerNumberFor } from './receptionist-replies.js';
import { request, type HttpAnswer } from './http-client.js';
import type { BenchServer } from './server-process.js';
import { epochNow } from './stats.js';

/**
 * A lean Twilio for the bench: signs each webhook as Twilio does, follows the
 * TwiML it gets back (`<Play>` is downloaded whole, as Twilio does before
 * playing; `<Redirect>` is followed; `<Pause>` is waited out; `<Gather>` ends
 * the turn) and times every step. Unlike the simulator it keeps no
 * transcript and parses TwiML with a few regular expressions, so the caller
 * side stays cheap next to the server it measures. Audio is not "played":
 * the next request goes out as soon as the previous answer is in.
 */

export type WebhookRoute = 'incoming' | 'voice' | 'continue' | 'status';

export interface WebhookSample {
  route: WebhookRoute;
  ms: number;
  /** Epoch milliseconds when it was sent. */
  at: number;
}

export interface AudioSample {
  ms: number;
  bytes: number;
}

/** One caller turn: from the caller's words to the next `<Gather>`. */
export interface TurnSample {
  server: string;
  callIndex: number;
  callerNumber: string;
  /** 1 for the caller's first turn (the greeting is not a turn here). */
  turn: number;
  /** Epoch milliseconds when the turn's webhook was sent. */
  t0: number;
  /** The turn's own webhook (`/twilio/voice`). */
  firstWebhookMs: number;
  /** From `t0` until the first `<Play>` of the turn is downloaded. */
  firstAudioMs?: number;
  /** The download of that first `<Play>`. */
  firstAudioFetchMs?: number;
  /** From `t0` until the next `<Gather>` (or hang-up) arrived. */
  completeMs: number;
  plays: number;
  redirects: number;
  /** TwiML asked Twilio to speak (`<Say>`): a fallback voice or an apology. */
  said: boolean;
  /** The caller gave up: no `<Gather>` came within the turn's limit (the server kept answering `<Pause>` + `<Redirect>`). */
  abandoned: boolean;
  error?: string;
}

/** Collects what a level's calls measure. */
export interface CallRecorder {
  turn(sample: TurnSample): void;
  webhook(sample: WebhookSample): void;
  audio(sample: AudioSample): void;
  error(message: string): void;
  /** What a call is waiting on now, for a progress report when a level stalls. */
  step(callIndex: number, what: string): void;
}

export interface CallOptions {
  server: BenchServer;
  callIndex: number;
  turns: number;
  /** Milliseconds between a `<Gather>` arriving and the caller's answer. */
  thinkMs: () => number;
  recorder: CallRecorder;
  /** A caller hangs up after waiting this long in one turn (default 30 s). */
  maxTurnMs?: number;
  /** Asked before each turn: false ends the call (the level's time is up). */
  keepGoing?: () => boolean;
}

interface Verb {
  name: string;
  attributes: Record<string, string>;
  text: string;
}

interface DocumentOutcome {
  gatherAction?: string;
  ended: boolean;
  firstAudioAt?: number;
  firstAudioFetchMs?: number;
  plays: number;
  redirects: number;
  said: boolean;
  abandoned: boolean;
}

/** The CallSid of call `index`: unique per call, so the server's rows can be found again. */
export function callSidFor(index: number): string {
  return `CA${index.toString(16).padStart(32, '0')}`;
}

/** Places one call: greeting, `turns` caller turns, then the `completed` status callback. */
export async function placeCall(options: CallOptions): Promise<void> {
  const { server, callIndex, recorder } = options;
  const callSid = callSidFor(callIndex);
  const callerNumber = callerNumberFor(callIndex);
  const base = {
    CallSid: callSid,
    AccountSid: `AC${'0'.repeat(31)}1`,
    From: callerNumber,
    To: '+15005550001',
    Direction: 'inbound',
    ApiVersion: '2010-04-01',
  };
  const startedAt = Date.now();
  try {
    let outcome = await runDocument(options, 'incoming', `${server.baseUrl}/twilio/incoming`, { ...base, CallStatus: 'ringing' });
    if (outcome.abandoned) recorder.error(`call ${callIndex}: hung up during the greeting (no <Gather> within the limit)`);
    for (let turn = 1; turn <= options.turns && outcome.gatherAction && !outcome.ended && (options.keepGoing?.() ?? true); turn++) {
      const think = options.thinkMs();
      recorder.step(callIndex, 'thinking');
      if (think > 0) await sleep(think);
      const params = { ...base, CallStatus: 'in-progress', SpeechResult: callerLineFor(callIndex, turn), Confidence: '0.93' };
      let firstWebhookMs = Number.NaN;
      let t0 = epochNow();
      outcome = await runDocument(options, 'voice', outcome.gatherAction, params, (ms, at) => {
        firstWebhookMs = ms;
        t0 = at;
      });
      const sample: TurnSample = {
        server: server.name,
        callIndex,
        callerNumber,
        turn,
        t0,
        firstWebhookMs,
        firstAudioMs: outcome.firstAudioAt === undefined ? undefined : outcome.firstAudioAt - t0,
        firstAudioFetchMs: outcome.firstAudioFetchMs,
        completeMs: epochNow() - t0,
        plays: outcome.plays,
        redirects: outcome.redirects,
        said: outcome.said,
        abandoned: outcome.abandoned,
      };
      if (outcome.abandoned) sample.error = `hung up after ${Math.round(sample.completeMs / 1000)} s without a <Gather> (${outcome.redirects} redirects, ${outcome.plays} plays)`;
      else if (outcome.firstAudioAt === undefined) sample.error = 'no audio in the turn';
      else if (!outcome.gatherAction && !outcome.ended) sample.error = 'the turn ended without a <Gather>';
      recorder.turn(sample);
    }
  } catch (error) {
    recorder.error(`call ${callIndex}: ${(error as Error).message}`);
  } finally {
    recorder.step(callIndex, 'status callback');
    const duration = String(Math.round((Date.now() - startedAt) / 1000));
    await post(options, 'status', `${server.baseUrl}/twilio/status`, { ...base, CallStatus: 'completed', CallDuration: duration, SequenceNumber: '3' }).catch(
      (error: Error) => recorder.error(`status callback of call ${callIndex}: ${error.message}`),
    );
  }
}

/** Fetches a TwiML document and everything it leads to, until a `<Gather>`, a hang-up or the end. */
async function runDocument(
  options: CallOptions,
  route: WebhookRoute,
  url: string,
  params: Record<string, string>,
  onFirstWebhook?: (ms: number, at: number) => void,
): Promise<DocumentOutcome> {
  const outcome: DocumentOutcome = { ended: false, plays: 0, redirects: 0, said: false, abandoned: false };
  const deadline = performance.now() + (options.maxTurnMs ?? 30_000);
  let next: { route: WebhookRoute; url: string; params: Record<string, string> } | undefined = { route, url, params };
  while (next) {
    if (performance.now() > deadline) {
      outcome.abandoned = true;
      outcome.ended = true;
      return outcome;
    }
    options.recorder.step(options.callIndex, `${next.route} ${next.url.replace(/^https?:\/\/[^/]+/, '')}`);
    const { answer, ms, at } = await post(options, next.route, next.url, next.params);
    onFirstWebhook?.(ms, at);
    onFirstWebhook = undefined;
    if (answer.status !== 200) throw new Error(`${next.route} webhook answered HTTP ${answer.status}: ${answer.body.toString('utf8').slice(0, 200)}`);
    const current: { route: WebhookRoute; url: string; params: Record<string, string> } = next;
    next = undefined;
    for (const verb of parseVerbs(answer.body.toString('utf8'))) {
      if (verb.name === 'Play') {
        options.recorder.step(options.callIndex, 'audio download');
        const audioStarted = performance.now();
        const audio = await request('GET', verb.text);
        const fetchMs = performance.now() - audioStarted;
        if (audio.status !== 200 || !audio.contentType.startsWith('audio/')) throw new Error(`audio ${verb.text} answered HTTP ${audio.status}`);
        options.recorder.audio({ ms: fetchMs, bytes: audio.body.length });
        if (outcome.firstAudioAt === undefined) {
          outcome.firstAudioAt = epochNow();
          outcome.firstAudioFetchMs = fetchMs;
        }
        outcome.plays += 1;
      } else if (verb.name === 'Say') {
        outcome.said = true;
      } else if (verb.name === 'Pause') {
        options.recorder.step(options.callIndex, 'pause');
        await sleep(Number(verb.attributes.length ?? 1) * 1000);
      } else if (verb.name === 'Redirect') {
        outcome.redirects += 1;
        next = { route: 'continue', url: verb.text, params: { ...current.params, CallStatus: 'in-progress' } };
        delete next.params.SpeechResult;
        delete next.params.Confidence;
        break;
      } else if (verb.name === 'Gather') {
        outcome.gatherAction = verb.attributes.action;
        return outcome;
      } else if (verb.name === 'Hangup') {
        outcome.ended = true;
        return outcome;
      }
    }
  }
  return outcome;
}

async function post(options: CallOptions, route: WebhookRoute, url: string, params: Record<string, string>): Promise<{ answer: HttpAnswer; ms: number; at: number }> {
  // Signed before the clock starts: Twilio's signing happens on Twilio's side.
  const headers = { 'x-twilio-signature': signTwilioRequest(options.server.authToken, url, params) };
  const at = epochNow();
  const started = performance.now();
  // Twilio gives up on a webhook after 15 s (error 11200) and the caller hears an application error.
  const answer = await request('POST', url, { form: params, headers, timeoutMs: 15_000 });
  const ms = performance.now() - started;
  options.recorder.webhook({ route, ms, at });
  return { answer, ms, at };
}

const verbPattern = /<(Play|Say|Pause|Gather|Redirect|Hangup)\b([^>]*?)(?:\/>|>([\s\S]*?)<\/\1>)/g;
const attributePattern = /([\w:-]+)="([^"]*)"/g;

function parseVerbs(twiml: string): Verb[] {
  const verbs: Verb[] = [];
  for (const match of twiml.matchAll(verbPattern)) {
    const attributes: Record<string, string> = {};
    for (const attribute of match[2].matchAll(attributePattern)) attributes[attribute[1]] = unescapeXml(attribute[2]);
    verbs.push({ name: match[1], attributes, text: unescapeXml((match[3] ?? '').trim()) });
  }
  return verbs;
}

function unescapeXml(text: string): string {
  return text.replace(/&(amp|lt|gt|quot|apos);/g, (_, name: string) => ({ amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" })[name] ?? '');
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

import { randomBytes, randomUUID } from 'node:crypto';
import twilio from 'twilio';
import { parseTwiml, TwimlParseError, type DialVerb, type GatherVerb, type PauseVerb, type PlayVerb, type SayVerb, type StartVerb, type TwimlVerb } from './twiml.js';

/**
 * What the simulated caller does when a `<Gather>` listens: a string is speech
 * (`''` is silence until the gather times out), `{ digits }` is keypad input,
 * `null` hangs up.
 */
export type CallerReply = string | { speech: string; confidence?: number } | { digits: string } | null;

/** Something the caller heard from the assistant. */
export type HeardItem = { kind: 'say'; text: string } | { kind: 'play'; url: string; durationMs?: number };

/** Audio the caller heard, as fetched from a `<Play>` URL. */
export interface PlayedAudio {
  url: string;
  /** 0 when audio fetching is turned off. */
  bytes: number;
  /** Empty when audio fetching is turned off. */
  contentType: string;
  durationMs?: number;
}

/** One line of the conversation, `atMs` on the call's clock (0 = answered). */
export interface TranscriptEntry {
  speaker: 'assistant' | 'caller';
  text?: string;
  digits?: string;
  audio?: PlayedAudio;
  atMs: number;
}

/** Handed to the caller each time a `<Gather>` starts listening. */
export interface GatherPrompt {
  callSid: string;
  /** The `<Gather>` with its attributes (input, action, timeouts, hints, …). */
  gather: GatherVerb;
  /** What the caller heard since their previous turn, in order. */
  heard: HeardItem[];
  /** The spoken text in `heard`, joined: enough for most scripted callers. */
  text: string;
  /** 1 for the first gather of the call. */
  turn: number;
  atMs: number;
  transcript: readonly TranscriptEntry[];
  signal: AbortSignal;
}

/** How a simulated `<Dial>` ends, as its action callback reports it. */
export interface DialOutcome {
  /** `DialCallStatus`: `completed` when the person answered and hung up later. */
  status: 'completed' | 'answered' | 'busy' | 'no-answer' | 'failed' | 'canceled';
  /** How long the two talked (answered calls). */
  durationSeconds?: number;
}

/** A recording Twilio started on the call, as reported to its status callback. */
export interface SimulatedRecording {
  recordingSid: string;
  /** `RecordingUrl`: the recording resource, without a media extension. */
  recordingUrl: string;
}

/** How a simulated call ended. */
export type CallEnd =
  | 'hangup'
  | 'rejected'
  | 'caller-hangup'
  | 'end-of-document'
  | 'application-error'
  | 'max-requests'
  | 'aborted';

/** Everything the simulator saw, as a tagged union. `atMs` is on the call's clock. */
export type SimulatorEvent =
  | { type: 'webhook-sent'; method: string; url: string; params: Record<string, string>; atMs: number }
  | { type: 'webhook-answered'; method: string; url: string; status: number; contentType: string; body: string; ms: number; atMs: number }
  | { type: 'webhook-duplicated'; url: string; identical: boolean; statuses: [number, number]; atMs: number }
  | { type: 'say-spoken'; text: string; voice?: string; language?: string; inGather: boolean; atMs: number }
  | { type: 'audio-played'; url: string; fetched: boolean; status?: number; contentType: string; bytes: number; durationMs?: number; inGather: boolean; atMs: number }
  | { type: 'audio-failed'; url: string; code: number; reason: string; status?: number; atMs: number }
  | { type: 'digits-played'; digits: string; atMs: number }
  | { type: 'pause-elapsed'; seconds: number; atMs: number }
  | { type: 'gather-started'; gather: GatherVerb; turn: number; atMs: number }
  | { type: 'gather-timed-out'; turn: number; atMs: number }
  | { type: 'caller-spoke'; speech: string; confidence: number; turn: number; atMs: number }
  | { type: 'caller-pressed'; digits: string; turn: number; atMs: number }
  | { type: 'caller-hung-up'; turn: number; atMs: number }
  | { type: 'dial-attempted'; number?: string; action?: string; atMs: number }
  | { type: 'dial-ended'; number?: string; status: DialOutcome['status']; durationSeconds: number; atMs: number }
  | { type: 'recording-started'; recordingSid: string; statusCallback?: string; channels?: string; atMs: number }
  | { type: 'recording-callback-sent'; recordingSid: string; recordingStatus: string; status?: number; error?: string; atMs: number }
  | { type: 'verb-skipped'; name: string; reason: string; atMs: number }
  | { type: 'warning-logged'; code: number; message: string; atMs: number }
  | { type: 'application-error'; code: number; message: string; url?: string; atMs: number }
  | { type: 'call-ended'; endedBy: CallEnd; durationSeconds: number; atMs: number }
  | { type: 'status-sent'; url: string; callStatus: string; status?: number; error?: string; atMs: number };

/** Options of {@link simulateCall}. */
export interface SimulateCallOptions {
  /** Where requests actually go, e.g. `http://127.0.0.1:8000`. */
  baseUrl: string;
  /** The base URL the server believes Twilio uses; signatures are computed over it. Defaults to `baseUrl`. */
  publicUrl?: string;
  /** The key webhooks are signed with (the account's auth token). */
  authToken: string;
  /** Defaults to `/twilio/incoming`. */
  entryPath?: string;
  /** Defaults to `/twilio/status`; `null` sends no status callback. */
  statusPath?: string | null;
  from?: string;
  to?: string;
  callSid?: string;
  accountSid?: string;
  caller: (prompt: GatherPrompt) => Promise<CallerReply>;
  /** Confidence sent with speech that does not carry its own. Defaults to 0.92. */
  defaultConfidence?: number;
  onEvent?: (event: SimulatorEvent) => void;
  /** TwiML documents fetched before the call is cut. Defaults to 200. */
  maxRequests?: number;
  signal?: AbortSignal;
  /** Fetch `<Play>` URLs (default true); without it audio has no size or duration. */
  fetchAudio?: boolean;
  /** Extra request headers. */
  headers?: Record<string, string>;
  /** Send every webhook twice at once, as Twilio's retries can arrive, and compare the answers. */
  duplicateWebhooks?: boolean;
  /** Twilio waits 15 s for a webhook before giving up (error 11200). */
  webhookTimeoutMs?: number;
  /** `Direction` of every webhook: `inbound` (the default), or `outbound-api` for a call placed through the REST API. */
  direction?: string;
  /** Extra parameters of the first webhook only, such as `AnsweredBy` after answering-machine detection. */
  entryParams?: Record<string, string>;
  /** How each `<Dial>` ends. Without it nobody answers: it rings for its `timeout` and reports `no-answer`. */
  dial?: (verb: DialVerb) => DialOutcome | Promise<DialOutcome>;
  /**
   * Called when `<Start><Recording>` runs; returns the recording's SID and URL
   * (e.g. from a fake REST API that can serve its media). Without it a SID is
   * made up. The `completed` callback is sent after the call's status callback.
   */
  onRecordingStarted?: (info: { callSid: string; accountSid: string }) => SimulatedRecording | Promise<SimulatedRecording>;
}

/** The outcome of {@link simulateCall}. */
export interface SimulatedCall {
  callSid: string;
  transcript: TranscriptEntry[];
  events: SimulatorEvent[];
  endedBy: CallEnd;
  durationSeconds: number;
  /** Errors after which Twilio would say "an application error has occurred". */
  applicationErrors: string[];
  /** Problems Twilio logs in its debugger without ending the call. */
  warnings: string[];
  /** Time each TwiML webhook took to answer (the silence the caller sat through). */
  webhookTimings: Array<{ url: string; ms: number }>;
}

/** The `X-Twilio-Signature` Twilio sends for a request to `url` with these form parameters. */
export function signTwilioRequest(authToken: string, url: string, params: Record<string, string>): string {
  return twilio.getExpectedTwilioSignature(authToken, url, params);
}

/** Plays Twilio against a running server for one inbound call. Never throws for server faults: they end up in the result. */
export async function simulateCall(options: SimulateCallOptions): Promise<SimulatedCall> {
  return new CallSimulation(options).run();
}

const applicationErrorMessage = "We're sorry, an application error has occurred. Goodbye.";
const twimlContentTypes = new Set(['text/xml', 'application/xml', 'text/html']);
const maxTwimlBytes = 64 * 1024;
const sayMsPerCharacter = 60;
const speechMsPerCharacter = 70;
const digitMs = 300;

type Step = { kind: 'fetch'; method: string; url: string; params: Record<string, string> } | { kind: 'end'; endedBy: CallEnd };

interface HttpAnswer {
  status: number;
  contentType: string;
  body: Buffer;
  ms: number;
}

class CallSimulation {
  private readonly callSid: string;
  private readonly accountSid: string;
  private readonly from: string;
  private readonly to: string;
  private readonly baseUrl: string;
  private readonly publicUrl: string;
  private readonly controller = new AbortController();
  private readonly startedAt = Date.now();
  private readonly cookies = new Map<string, string>();
  private readonly result: SimulatedCall;
  private clockMs = 0;
  private answered = false;
  private rejectReason: string | undefined;
  private heard: HeardItem[] = [];
  private turn = 0;
  private documentRequests = 0;
  private readonly recordings: Array<SimulatedRecording & { verb: NonNullable<StartVerb['recording']>; startedAtMs: number; documentUrl: string }> = [];

  constructor(private readonly options: SimulateCallOptions) {
    this.callSid = options.callSid ?? `CA${randomBytes(16).toString('hex')}`;
    this.accountSid = options.accountSid ?? `AC${randomBytes(16).toString('hex')}`;
    this.from = options.from ?? '+15005550006';
    this.to = options.to ?? '+15005550001';
    this.baseUrl = options.baseUrl.replace(/\/+$/, '');
    this.publicUrl = (options.publicUrl ?? options.baseUrl).replace(/\/+$/, '');
    this.result = {
      callSid: this.callSid,
      transcript: [],
      events: [],
      endedBy: 'end-of-document',
      durationSeconds: 0,
      applicationErrors: [],
      warnings: [],
      webhookTimings: [],
    };
    const outer = options.signal;
    if (outer?.aborted) this.controller.abort();
    outer?.addEventListener('abort', () => this.controller.abort(), { once: true });
  }

  async run(): Promise<SimulatedCall> {
    let step: Step = {
      kind: 'fetch',
      method: 'POST',
      url: this.publicUrl + (this.options.entryPath ?? '/twilio/incoming'),
      params: { ...this.baseParams(this.options.direction?.startsWith('outbound') ? 'in-progress' : 'ringing'), ...this.options.entryParams },
    };
    let failure: unknown;
    try {
      while (step.kind === 'fetch') {
        if (this.controller.signal.aborted) step = { kind: 'end', endedBy: 'aborted' };
        else if (this.documentRequests >= (this.options.maxRequests ?? 200)) step = { kind: 'end', endedBy: 'max-requests' };
        else step = await this.fetchAndRun(step);
      }
    } catch (error) {
      if (this.controller.signal.aborted) step = { kind: 'end', endedBy: 'aborted' };
      else failure = error;
    }
    const endedBy = step.kind === 'end' ? step.endedBy : 'aborted';
    this.result.endedBy = endedBy;
    this.result.durationSeconds = this.answered ? Math.round(this.clockMs / 1000) : 0;
    this.emit({ type: 'call-ended', endedBy, durationSeconds: this.result.durationSeconds, atMs: this.clockMs });
    await this.sendStatusCallback();
    await this.sendRecordingCallbacks('completed');
    if (failure !== undefined) throw failure;
    return this.result;
  }

  // --- documents -----------------------------------------------------------

  private async fetchAndRun(step: Extract<Step, { kind: 'fetch' }>): Promise<Step> {
    this.documentRequests += 1;
    let answer: HttpAnswer;
    try {
      answer = await this.request(step.method, step.url, step.params);
    } catch (error) {
      if (this.controller.signal.aborted) throw error;
      return this.applicationError(...describeRequestFailure(error), step.url);
    }
    this.result.webhookTimings.push({ url: step.url, ms: answer.ms });
    // The caller hears silence while the server thinks.
    this.clockMs += answer.ms;

    if (answer.status < 200 || answer.status > 299) {
      return this.applicationError(11200, `HTTP retrieval failure: ${step.method} ${step.url} answered HTTP ${answer.status}`, step.url);
    }
    if (answer.body.length > maxTwimlBytes) {
      return this.applicationError(11750, `TwiML response body too large: ${answer.body.length} bytes (limit 64 kB)`, step.url);
    }
    const mime = answer.contentType.split(';')[0].trim().toLowerCase();
    if (twimlContentTypes.has(mime)) {
      let verbs: TwimlVerb[];
      try {
        verbs = parseTwiml(answer.body.toString('utf8'));
      } catch (error) {
        if (error instanceof TwimlParseError) return this.applicationError(error.twilioErrorCode, error.message, step.url);
        throw error;
      }
      return this.runDocument(verbs, withoutFragment(step.url));
    }
    // Twilio plays an audio response, or reads a text/plain one aloud, and then hangs up.
    if (mime.startsWith('audio/')) {
      this.answered = true;
      this.warn(12300, `${step.url} answered with ${mime} instead of TwiML: Twilio plays it and hangs up`);
      this.recordAudio(step.url, answer.status, mime, answer.body, 1, false);
      return { kind: 'end', endedBy: 'end-of-document' };
    }
    if (mime === 'text/plain') {
      this.answered = true;
      this.warn(12300, `${step.url} answered with text/plain instead of TwiML: Twilio reads it aloud and hangs up`);
      this.say({ kind: 'say', text: answer.body.toString('utf8').replace(/\s+/g, ' ').trim() }, false);
      return { kind: 'end', endedBy: 'end-of-document' };
    }
    return this.applicationError(12300, `Invalid Content-Type ${JSON.stringify(answer.contentType)} from ${step.url}`, step.url);
  }

  private async runDocument(verbs: TwimlVerb[], url: string): Promise<Step> {
    for (const verb of verbs) {
      if (this.controller.signal.aborted) return { kind: 'end', endedBy: 'aborted' };
      if (verb.kind === 'reject') {
        if (!this.answered) this.rejectReason = verb.reason ?? 'rejected';
        return { kind: 'end', endedBy: this.answered ? 'hangup' : 'rejected' };
      }
      this.answered = true;
      switch (verb.kind) {
        case 'say':
          this.say(verb, false);
          break;
        case 'play':
          await this.play(verb, url, false);
          break;
        case 'pause':
          this.pause(verb);
          break;
        case 'gather': {
          const next = await this.gather(verb, url);
          if (next) return next;
          break;
        }
        case 'redirect':
          return { kind: 'fetch', method: verb.method ?? 'POST', url: resolveUrl(verb.url, url), params: this.baseParams('in-progress') };
        case 'hangup':
          return { kind: 'end', endedBy: 'hangup' };
        case 'dial': {
          this.emit({ type: 'dial-attempted', number: verb.number, action: verb.action, atMs: this.clockMs });
          // Without a `dial` option nobody answers: it rings for `timeout` seconds (Twilio's default 30).
          const outcome = (await this.options.dial?.(verb)) ?? { status: 'no-answer' as const };
          const talked = outcome.status === 'completed' || outcome.status === 'answered' ? (outcome.durationSeconds ?? 0) : 0;
          this.clockMs += talked > 0 ? 3000 + talked * 1000 : outcome.status === 'no-answer' ? (verb.timeout ?? 30) * 1000 : 2000;
          this.emit({ type: 'dial-ended', number: verb.number, status: outcome.status, durationSeconds: talked, atMs: this.clockMs });
          if (verb.action !== undefined) {
            return {
              kind: 'fetch',
              method: verb.method ?? 'POST',
              url: resolveUrl(verb.action, url),
              params: {
                ...this.baseParams('in-progress'),
                DialCallStatus: outcome.status,
                DialCallDuration: String(talked),
                ...(outcome.status === 'no-answer' || outcome.status === 'busy' || outcome.status === 'failed' ? {} : { DialCallSid: `CA${randomBytes(16).toString('hex')}` }),
              },
            };
          }
          // Without an action the call goes on with the next verb once the other party hangs up.
          break;
        }
        case 'start':
          await this.start(verb, url);
          break;
        case 'connect':
          this.skip('Connect', 'Media Streams are not simulated; Twilio continues with the next verb once the stream ends');
          break;
        case 'record':
          this.skip('Record', 'recording is not simulated');
          break;
        case 'unknown':
          this.warn(12200, `Schema validation warning: unknown element <${verb.name}> (TwiML element names are case sensitive)`);
          this.skip(verb.name, 'not a TwiML verb');
          break;
      }
    }
    // Twilio hangs up when it runs out of verbs.
    return { kind: 'end', endedBy: 'end-of-document' };
  }

  // --- verbs -------------------------------------------------------------------

  private say(verb: SayVerb, inGather: boolean): void {
    this.emit({ type: 'say-spoken', text: verb.text, voice: verb.voice, language: verb.language, inGather, atMs: this.clockMs });
    this.result.transcript.push({ speaker: 'assistant', text: verb.text, atMs: this.clockMs });
    this.heard.push({ kind: 'say', text: verb.text });
    this.clockMs += verb.text.length * sayMsPerCharacter * loops(verb.loop);
  }

  private pause(verb: PauseVerb): void {
    this.emit({ type: 'pause-elapsed', seconds: verb.length, atMs: this.clockMs });
    this.clockMs += verb.length * 1000;
  }

  private async play(verb: PlayVerb, documentUrl: string, inGather: boolean): Promise<void> {
    if (!verb.url) {
      if (verb.digits) {
        this.emit({ type: 'digits-played', digits: verb.digits, atMs: this.clockMs });
        // A `w` is a half-second wait between tones.
        this.clockMs += [...verb.digits].length * 500;
      } else {
        this.warn(13221, '<Play> without a URL');
      }
      return;
    }
    const url = resolveUrl(verb.url, documentUrl);
    if (this.options.fetchAudio === false) {
      this.emit({ type: 'audio-played', url, fetched: false, contentType: '', bytes: 0, inGather, atMs: this.clockMs });
      this.result.transcript.push({ speaker: 'assistant', audio: { url, bytes: 0, contentType: '' }, atMs: this.clockMs });
      this.heard.push({ kind: 'play', url });
      return;
    }
    let answer: HttpAnswer;
    try {
      // Twilio signs media requests too, but sends none of its call parameters with them.
      answer = await this.send('GET', url, {}, 'media');
    } catch (error) {
      if (this.controller.signal.aborted) throw error;
      this.audioFailed(url, 11200, `could not fetch audio: ${describeRequestFailure(error)[1]}`);
      return;
    }
    const mime = answer.contentType.split(';')[0].trim().toLowerCase();
    if (answer.status < 200 || answer.status > 299) return this.audioFailed(url, 11200, `answered HTTP ${answer.status}`, answer.status);
    if (!mime.startsWith('audio/')) return this.audioFailed(url, 13420, `Content-Type ${JSON.stringify(answer.contentType)} is not audio`, answer.status);
    if (answer.body.length === 0) return this.audioFailed(url, 11200, 'empty audio body', answer.status);
    const mismatch = contentMismatch(mime, answer.body);
    if (mismatch) return this.audioFailed(url, 11200, mismatch, answer.status);
    this.recordAudio(url, answer.status, mime, answer.body, loops(verb.loop), inGather);
  }

  private recordAudio(url: string, status: number, contentType: string, body: Buffer, times: number, inGather: boolean): void {
    const durationMs = audioDurationMs(contentType, body);
    this.emit({ type: 'audio-played', url, fetched: true, status, contentType, bytes: body.length, durationMs, inGather, atMs: this.clockMs });
    this.result.transcript.push({ speaker: 'assistant', audio: { url, bytes: body.length, contentType, durationMs }, atMs: this.clockMs });
    this.heard.push({ kind: 'play', url, durationMs });
    this.clockMs += (durationMs ?? 0) * times;
  }

  private audioFailed(url: string, code: number, reason: string, status?: number): void {
    // Twilio logs the failure and moves on: the caller hears nothing.
    this.emit({ type: 'audio-failed', url, code, reason, status, atMs: this.clockMs });
    this.warn(code, `<Play> ${url}: ${reason}`);
  }

  private async gather(verb: GatherVerb, documentUrl: string): Promise<Step | undefined> {
    for (const nested of verb.nested) {
      if (nested.kind === 'say') this.say(nested, true);
      else if (nested.kind === 'play') await this.play(nested, documentUrl, true);
      else this.pause(nested);
    }
    for (const name of verb.ignored ?? []) this.warn(13320, `Gather: invalid nested verb <${name}> skipped`);
    this.turn += 1;
    const turn = this.turn;
    this.emit({ type: 'gather-started', gather: verb, turn, atMs: this.clockMs });
    const prompt: GatherPrompt = {
      callSid: this.callSid,
      gather: verb,
      heard: this.heard,
      text: this.heard.flatMap((item) => (item.kind === 'say' ? [item.text] : [])).join(' '),
      turn,
      atMs: this.clockMs,
      transcript: this.result.transcript,
      signal: this.controller.signal,
    };
    this.heard = [];
    const reply = normalizeReply(await this.untilAborted(this.options.caller(prompt)), this.options.defaultConfidence ?? 0.92);
    const timeoutMs = (verb.timeout ?? 5) * 1000;
    const action = () => resolveUrl(verb.action ?? '', documentUrl);
    const method = verb.method ?? 'POST';

    if (reply.kind === 'hangup') {
      this.emit({ type: 'caller-hung-up', turn, atMs: this.clockMs });
      return { kind: 'end', endedBy: 'caller-hangup' };
    }
    if (reply.kind === 'speech' && !verb.input.includes('speech')) {
      this.warn(0, `turn ${turn}: the caller spoke but the <Gather> only listens for ${verb.input.join(' ')}; Twilio ignores it`);
    } else if (reply.kind === 'digits' && !verb.input.includes('dtmf')) {
      this.warn(0, `turn ${turn}: the caller pressed keys but the <Gather> only listens for ${verb.input.join(' ')}; Twilio ignores them`);
    } else if (reply.kind === 'speech') {
      this.emit({ type: 'caller-spoke', speech: reply.speech, confidence: reply.confidence, turn, atMs: this.clockMs });
      this.result.transcript.push({ speaker: 'caller', text: reply.speech, atMs: this.clockMs });
      this.clockMs += reply.speech.length * speechMsPerCharacter + speechEndMs(verb, timeoutMs);
      return {
        kind: 'fetch',
        method,
        url: action(),
        params: { ...this.baseParams('in-progress'), SpeechResult: reply.speech, Confidence: String(reply.confidence) },
      };
    } else if (reply.kind === 'digits') {
      const { digits, finishedOnKey } = collectDigits(reply.digits, verb);
      this.emit({ type: 'caller-pressed', digits, turn, atMs: this.clockMs });
      this.result.transcript.push({ speaker: 'caller', digits, atMs: this.clockMs });
      const complete = finishedOnKey !== '' || (verb.numDigits !== undefined && digits.length >= verb.numDigits);
      this.clockMs += reply.digits.length * digitMs + (complete ? 0 : timeoutMs);
      if (digits !== '' || finishedOnKey !== '') {
        return { kind: 'fetch', method, url: action(), params: { ...this.baseParams('in-progress'), Digits: digits, FinishedOnKey: finishedOnKey } };
      }
    }

    this.clockMs += timeoutMs;
    this.emit({ type: 'gather-timed-out', turn, atMs: this.clockMs });
    // Without actionOnEmptyResult Twilio falls through to the verb after <Gather>.
    if (verb.actionOnEmptyResult) return { kind: 'fetch', method, url: action(), params: this.baseParams('in-progress') };
    return undefined;
  }

  private async start(verb: StartVerb, documentUrl: string): Promise<void> {
    for (const name of verb.others ?? []) this.skip(`Start/${name}`, 'only <Recording> is simulated under <Start>');
    if (!verb.recording) return;
    const recording = (await this.options.onRecordingStarted?.({ callSid: this.callSid, accountSid: this.accountSid })) ?? {
      recordingSid: `RE${randomBytes(16).toString('hex')}`,
      recordingUrl: '',
    };
    if (!recording.recordingUrl) {
      recording.recordingUrl = `https://api.twilio.com/2010-04-01/Accounts/${this.accountSid}/Recordings/${recording.recordingSid}`;
    }
    this.recordings.push({ ...recording, verb: verb.recording, startedAtMs: this.clockMs, documentUrl });
    this.emit({ type: 'recording-started', recordingSid: recording.recordingSid, statusCallback: verb.recording.statusCallback, channels: verb.recording.channels, atMs: this.clockMs });
    await this.sendRecordingCallbacks('in-progress');
  }

  /** Posts each recording's status to its callback, when the `<Recording>` asked for that event. */
  private async sendRecordingCallbacks(recordingStatus: 'in-progress' | 'completed'): Promise<void> {
    for (const recording of this.recordings) {
      const { verb } = recording;
      if (!verb.statusCallback || !verb.events.includes(recordingStatus)) continue;
      if (recordingStatus === 'in-progress' && recording.startedAtMs !== this.clockMs) continue;
      const url = resolveUrl(verb.statusCallback, recording.documentUrl);
      const durationSeconds = Math.max(0, Math.round((this.clockMs - recording.startedAtMs) / 1000));
      const params: Record<string, string> = {
        AccountSid: this.accountSid,
        CallSid: this.callSid,
        RecordingSid: recording.recordingSid,
        RecordingUrl: recording.recordingUrl,
        RecordingStatus: recordingStatus,
        RecordingDuration: recordingStatus === 'completed' ? String(durationSeconds) : '-1',
        RecordingChannels: verb.channels === 'dual' ? '2' : '1',
        RecordingStartTime: rfc2822(new Date(this.startedAt + recording.startedAtMs)),
        RecordingSource: 'StartCallRecordingTwiML',
        RecordingTrack: 'both',
      };
      try {
        const answer = await this.send(verb.method ?? 'POST', url, params, 'webhook', new AbortController().signal);
        this.emit({ type: 'recording-callback-sent', recordingSid: recording.recordingSid, recordingStatus, status: answer.status, atMs: this.clockMs });
        if (answer.status < 200 || answer.status > 299) this.warn(11200, `recording status callback ${url} answered HTTP ${answer.status}`);
      } catch (error) {
        const message = describeRequestFailure(error)[1];
        this.emit({ type: 'recording-callback-sent', recordingSid: recording.recordingSid, recordingStatus, error: message, atMs: this.clockMs });
        this.warn(11200, `recording status callback ${url}: ${message}`);
      }
    }
  }

  private skip(name: string, reason: string): void {
    this.emit({ type: 'verb-skipped', name, reason, atMs: this.clockMs });
  }

  // --- HTTP ------------------------------------------------------------------------

  private async request(method: string, url: string, params: Record<string, string>): Promise<HttpAnswer> {
    this.emit({ type: 'webhook-sent', method, url, params, atMs: this.clockMs });
    const answer = await this.send(method, url, params, 'webhook');
    this.emit({
      type: 'webhook-answered',
      method,
      url,
      status: answer.status,
      contentType: answer.contentType,
      body: answer.body.toString('utf8'),
      ms: answer.ms,
      atMs: this.clockMs,
    });
    return answer;
  }

  /**
   * Sends a request as Twilio does: form-encoded POST (or params in the query
   * for GET), signed over the public URL, with a fresh idempotency token and
   * the call's cookies.
   */
  private async send(method: string, publicUrl: string, params: Record<string, string>, purpose: 'webhook' | 'media', signal?: AbortSignal): Promise<HttpAnswer> {
    const target = new URL(publicUrl);
    // Fragments carry Twilio connection overrides (#rc=2&rt=1000); they never reach the server.
    target.hash = '';
    const isPost = method.toUpperCase() === 'POST';
    if (!isPost) for (const [key, value] of Object.entries(params)) target.searchParams.append(key, value);
    const signedUrl = target.toString();
    const headers: Record<string, string> = {
      Accept: '*/*',
      'User-Agent': 'TwilioProxy/1.1',
      'X-Twilio-Signature': signTwilioRequest(this.options.authToken, signedUrl, isPost ? params : {}),
      'I-Twilio-Idempotency-Token': randomUUID(),
      ...this.forwardedHeaders(),
      ...(this.cookies.size > 0 ? { Cookie: [...this.cookies].map(([name, value]) => `${name}=${value}`).join('; ') } : {}),
      ...(isPost ? { 'Content-Type': 'application/x-www-form-urlencoded' } : {}),
      ...this.options.headers,
    };
    const init = {
      method: method.toUpperCase(),
      headers,
      body: isPost ? new URLSearchParams(params).toString() : undefined,
      signal: AbortSignal.any([signal ?? this.controller.signal, AbortSignal.timeout(this.options.webhookTimeoutMs ?? 15_000)]),
    };
    const transportUrl = this.toTransportUrl(signedUrl);
    const started = performance.now();
    const fetchOnce = async () => {
      const response = await fetch(transportUrl, init);
      const body = Buffer.from(await response.arrayBuffer());
      this.keepCookies(response.headers.getSetCookie());
      return { status: response.status, contentType: response.headers.get('content-type') ?? '', body };
    };
    if (purpose === 'webhook' && this.options.duplicateWebhooks) {
      // A retry reuses the idempotency token of the request it repeats.
      const [first, second] = await Promise.all([fetchOnce(), fetchOnce()]);
      const identical = first.status === second.status && first.body.equals(second.body);
      this.emit({ type: 'webhook-duplicated', url: signedUrl, identical, statuses: [first.status, second.status], atMs: this.clockMs });
      return { ...first, ms: Math.round(performance.now() - started) };
    }
    const answer = await fetchOnce();
    return { ...answer, ms: Math.round(performance.now() - started) };
  }

  private async sendStatusCallback(): Promise<void> {
    const statusPath = this.options.statusPath === undefined ? '/twilio/status' : this.options.statusPath;
    if (statusPath === null) return;
    const url = this.publicUrl + statusPath;
    const callStatus = this.answered ? 'completed' : this.rejectReason === 'busy' ? 'busy' : 'no-answer';
    const seconds = this.result.durationSeconds;
    const params = {
      ...this.baseParams(callStatus),
      CallDuration: String(seconds),
      // Billed minutes: any answered call is at least one.
      Duration: String(this.answered ? Math.max(1, Math.ceil(seconds / 60)) : 0),
      Timestamp: rfc2822(new Date(this.startedAt + this.clockMs)),
      SequenceNumber: '0',
      CallbackSource: 'call-progress-events',
    };
    this.emit({ type: 'webhook-sent', method: 'POST', url, params, atMs: this.clockMs });
    try {
      // The call is over, so an abort of the call does not stop its status callback.
      const answer = await this.send('POST', url, params, 'webhook', new AbortController().signal);
      this.emit({ type: 'status-sent', url, callStatus, status: answer.status, atMs: this.clockMs });
      if (answer.status < 200 || answer.status > 299) this.warn(11200, `status callback ${url} answered HTTP ${answer.status}`);
    } catch (error) {
      const message = describeRequestFailure(error)[1];
      this.emit({ type: 'status-sent', url, callStatus, error: message, atMs: this.clockMs });
      this.warn(11200, `status callback ${url}: ${message}`);
    }
  }

  private forwardedHeaders(): Record<string, string> {
    // Behind a tunnel (ngrok, a reverse proxy) the server sees the public host only in these headers.
    const pub = new URL(this.publicUrl);
    if (pub.origin === new URL(this.baseUrl).origin) return {};
    return { 'X-Forwarded-Proto': pub.protocol.replace(':', ''), 'X-Forwarded-Host': pub.host };
  }

  private toTransportUrl(url: string): string {
    if (url === this.publicUrl || url.startsWith(`${this.publicUrl}/`) || url.startsWith(`${this.publicUrl}?`)) {
      return this.baseUrl + url.slice(this.publicUrl.length);
    }
    return url;
  }

  private keepCookies(setCookies: string[]): void {
    // Twilio keeps cookies for the length of a call, like a browser session.
    for (const header of setCookies) {
      const [pair, ...attributes] = header.split(';');
      const separator = pair.indexOf('=');
      if (separator <= 0) continue;
      const name = pair.slice(0, separator).trim();
      const expired = attributes.some((attribute) => /^\s*max-age\s*=\s*(0|-\d+)\s*$/i.test(attribute));
      if (expired) this.cookies.delete(name);
      else this.cookies.set(name, pair.slice(separator + 1).trim());
    }
  }

  // --- bookkeeping ---------------------------------------------------------------

  private baseParams(callStatus: string): Record<string, string> {
    const fromCountry = countryOf(this.from);
    const toCountry = countryOf(this.to);
    return {
      AccountSid: this.accountSid,
      ApiVersion: '2010-04-01',
      CallSid: this.callSid,
      CallStatus: callStatus,
      Called: this.to,
      CalledCity: '',
      CalledCountry: toCountry,
      CalledState: '',
      CalledZip: '',
      Caller: this.from,
      CallerCity: '',
      CallerCountry: fromCountry,
      CallerState: '',
      CallerZip: '',
      Direction: this.options.direction ?? 'inbound',
      From: this.from,
      FromCity: '',
      FromCountry: fromCountry,
      FromState: '',
      FromZip: '',
      To: this.to,
      ToCity: '',
      ToCountry: toCountry,
      ToState: '',
      ToZip: '',
    };
  }

  private applicationError(code: number, message: string, url?: string): Step {
    this.answered = true;
    this.emit({ type: 'application-error', code, message, url, atMs: this.clockMs });
    this.result.applicationErrors.push(`${code}: ${message}`);
    this.clockMs += applicationErrorMessage.length * sayMsPerCharacter;
    return { kind: 'end', endedBy: 'application-error' };
  }

  private warn(code: number, message: string): void {
    this.emit({ type: 'warning-logged', code, message, atMs: this.clockMs });
    this.result.warnings.push(code ? `${code}: ${message}` : message);
  }

  private emit(event: SimulatorEvent): void {
    this.result.events.push(event);
    this.options.onEvent?.(event);
  }

  private untilAborted<T>(promise: Promise<T>): Promise<T> {
    const signal = this.controller.signal;
    if (signal.aborted) return Promise.reject(signal.reason);
    return new Promise<T>((resolve, reject) => {
      const onAbort = () => reject(signal.reason);
      signal.addEventListener('abort', onAbort, { once: true });
      promise.then(
        (value) => {
          signal.removeEventListener('abort', onAbort);
          resolve(value);
        },
        (error: unknown) => {
          signal.removeEventListener('abort', onAbort);
          reject(error);
        },
      );
    });
  }
}

// --- helpers -------------------------------------------------------------------------

type NormalizedReply =
  | { kind: 'hangup' }
  | { kind: 'silence' }
  | { kind: 'speech'; speech: string; confidence: number }
  | { kind: 'digits'; digits: string };

function normalizeReply(reply: CallerReply, defaultConfidence: number): NormalizedReply {
  if (reply === null) return { kind: 'hangup' };
  if (typeof reply === 'string') {
    return reply.trim() === '' ? { kind: 'silence' } : { kind: 'speech', speech: reply.trim(), confidence: defaultConfidence };
  }
  if ('digits' in reply) return reply.digits === '' ? { kind: 'silence' } : { kind: 'digits', digits: reply.digits };
  const speech = reply.speech.trim();
  return speech === '' ? { kind: 'silence' } : { kind: 'speech', speech, confidence: reply.confidence ?? defaultConfidence };
}

/** Twilio stops at the first `finishOnKey` (default `#`, which it does not send) or after `numDigits`. */
function collectDigits(pressed: string, verb: GatherVerb): { digits: string; finishedOnKey: string } {
  const finishOnKey = verb.finishOnKey ?? '#';
  let digits = '';
  for (const key of pressed) {
    if (finishOnKey !== '' && finishOnKey.includes(key)) return { digits, finishedOnKey: key };
    digits += key;
    if (verb.numDigits !== undefined && digits.length >= verb.numDigits) break;
  }
  return { digits, finishedOnKey: '' };
}

/** How long Twilio waits after the caller stops talking: `speechTimeout`, else `timeout`. */
function speechEndMs(verb: GatherVerb, timeoutMs: number): number {
  if (verb.speechTimeout === undefined) return timeoutMs;
  if (verb.speechTimeout === 'auto') return 1000;
  const seconds = Number(verb.speechTimeout);
  return Number.isFinite(seconds) ? seconds * 1000 : timeoutMs;
}

function loops(loop: number | undefined): number {
  // loop="0" repeats until something interrupts it; counting it once keeps the clock meaningful.
  return loop === undefined || loop < 1 ? 1 : loop;
}

function withoutFragment(address: string): string {
  const url = new URL(address);
  url.hash = '';
  return url.toString();
}

function resolveUrl(reference: string, base: string): string {
  return new URL(reference.trim(), base).toString();
}

function describeRequestFailure(error: unknown): [number, string] {
  const cause = (error as { cause?: { code?: string; message?: string } })?.cause;
  if (error instanceof Error && (error.name === 'TimeoutError' || error.name === 'AbortError')) {
    return [11200, 'HTTP retrieval failure: no answer before the timeout'];
  }
  if (cause?.code === 'ECONNREFUSED' || cause?.code === 'ECONNRESET' || cause?.code === 'EHOSTUNREACH') {
    return [11205, `HTTP connection failure: ${cause.code}`];
  }
  if (cause?.code === 'ENOTFOUND') return [11210, 'HTTP bad host name'];
  return [11200, `HTTP retrieval failure: ${cause?.message ?? (error instanceof Error ? error.message : String(error))}`];
}

const countryPrefixes: Array<[string, string]> = [
  ['+1', 'US'], ['+44', 'GB'], ['+33', 'FR'], ['+49', 'DE'], ['+34', 'ES'], ['+39', 'IT'], ['+31', 'NL'], ['+32', 'BE'],
  ['+41', 'CH'], ['+43', 'AT'], ['+45', 'DK'], ['+46', 'SE'], ['+47', 'NO'], ['+351', 'PT'], ['+353', 'IE'], ['+61', 'AU'],
  ['+64', 'NZ'], ['+81', 'JP'], ['+91', 'IN'], ['+55', 'BR'], ['+52', 'MX'],
];

function countryOf(number: string): string {
  let best: [string, string] | undefined;
  for (const entry of countryPrefixes) if (number.startsWith(entry[0]) && (!best || entry[0].length > best[0].length)) best = entry;
  return best?.[1] ?? '';
}

function rfc2822(date: Date): string {
  return date.toUTCString().replace('GMT', '+0000');
}

// --- audio --------------------------------------------------------------------------

const wavTypes = new Set(['audio/wav', 'audio/wave', 'audio/x-wav', 'audio/vnd.wave']);
const mpegTypes = new Set(['audio/mpeg', 'audio/mp3', 'audio/mpeg3']);
const mulawTypes = new Set(['audio/basic', 'audio/ulaw', 'audio/x-mulaw', 'audio/mulaw']);

/** Twilio refuses audio whose bytes do not match its Content-Type (error 11200). */
function contentMismatch(mime: string, body: Buffer): string | undefined {
  if (wavTypes.has(mime) && body.subarray(0, 4).toString('latin1') !== 'RIFF') return `${mime} body is not a RIFF/WAVE file`;
  if (mpegTypes.has(mime) && !(body.subarray(0, 3).toString('latin1') === 'ID3' || (body[0] === 0xff && (body[1] & 0xe0) === 0xe0))) {
    return `${mime} body is not MP3 data`;
  }
  return undefined;
}

/** Duration from the WAV header, an MP3 frame header (constant bit rate) or 8 kHz μ-law size; else unknown. */
export function audioDurationMs(contentType: string, body: Buffer): number | undefined {
  const mime = contentType.split(';')[0].trim().toLowerCase();
  if (wavTypes.has(mime)) return wavDurationMs(body);
  if (mpegTypes.has(mime)) return mp3DurationMs(body);
  if (mulawTypes.has(mime)) return Math.round(body.length / 8);
  return undefined;
}

function wavDurationMs(body: Buffer): number | undefined {
  if (body.length < 12 || body.toString('latin1', 0, 4) !== 'RIFF' || body.toString('latin1', 8, 12) !== 'WAVE') return undefined;
  let byteRate: number | undefined;
  let offset = 12;
  while (offset + 8 <= body.length) {
    const id = body.toString('latin1', offset, offset + 4);
    const size = body.readUInt32LE(offset + 4);
    if (id === 'fmt ' && offset + 16 <= body.length) byteRate = body.readUInt32LE(offset + 16);
    if (id === 'data') {
      if (!byteRate) return undefined;
      // Streamed WAVs carry a placeholder size; what was received is the truth.
      const dataBytes = Math.min(size, body.length - offset - 8);
      return Math.round((dataBytes / byteRate) * 1000);
    }
    offset += 8 + size + (size % 2);
  }
  return undefined;
}

const mp3Bitrates: Record<string, number[]> = {
  // MPEG-1 layer III and MPEG-2/2.5 layer III, kbit/s by index.
  v1: [0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320],
  v2: [0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160],
};

function mp3DurationMs(body: Buffer): number | undefined {
  let offset = 0;
  if (body.toString('latin1', 0, 3) === 'ID3' && body.length >= 10) {
    offset = 10 + (((body[6] & 0x7f) << 21) | ((body[7] & 0x7f) << 14) | ((body[8] & 0x7f) << 7) | (body[9] & 0x7f));
  }
  for (; offset + 4 <= body.length; offset += 1) {
    if (body[offset] !== 0xff || (body[offset + 1] & 0xe0) !== 0xe0) continue;
    const version = (body[offset + 1] >> 3) & 0x03;
    const layer = (body[offset + 1] >> 1) & 0x03;
    const bitrateIndex = body[offset + 2] >> 4;
    if (version === 1 || layer !== 1 || bitrateIndex === 0 || bitrateIndex === 15) continue;
    const kbps = (version === 3 ? mp3Bitrates.v1 : mp3Bitrates.v2)[bitrateIndex];
    return Math.round(((body.length - offset) * 8) / kbps);
  }
  return undefined;
}

import type { Logger } from 'pino';
import type { Assistant, ConversationLine } from '../assistant/assistant.js';
import { missingDetails } from '../assistant/assistant.js';
import type { AssistantProfile, ProfileSet } from '../assistant/profile.js';
import { isAbortError } from '../providers/provider-error.js';
import type { CallRepository, CallRow, ClaimedTurnRow, NewCall, SegmentRow, TurnAction, TurnKind, TurnRow } from '../storage/call-repository.js';
import type { ReplyOutput, ReplyOutputContext } from './reply-output.js';
import { ReplyWriter } from './reply-writer.js';
import type { SpeechRenderer } from './speech-renderer.js';
import type { TurnProgress } from './turn-progress.js';
import { LiveReplies } from './live-replies.js';
import { followCallerLanguage } from '../languages/follow-caller-language.js';
import { profileInLanguage } from '../languages/profile-in-language.js';
import type { Metrics } from '../observability/metrics.js';
import type { CallerRecognition } from '../reservations/caller-recognition.js';
import { isLastTurn, pastMaxCallLength } from './call-limits.js';

/** Who is calling whom, as every webhook tells. */
export interface CallInfo {
  callSid: string;
  accountSid?: string;
  from?: string;
  to?: string;
  direction?: string;
  status?: string;
  /** The profile that answers, when the called number does not decide it (calls this server placed). */
  profileId?: string;
}

/** What the caller did this turn. */
export type CallerInput =
  | { kind: 'speech'; text: string; confidence?: number }
  | { kind: 'silence' }
  | { kind: 'dtmf'; digits: string }
  /** Something was said but could not be understood (e.g. transcription failed). */
  | { kind: 'unclear'; reason: string; /** Set when a provider failed (transcription): stored on the turn. */ errorCode?: string }
  /** The call reached its maximum length. */
  | { kind: 'limit' };

/** A turn as a webhook claimed it: the call it belongs to, and whether this request created it. */
export interface ClaimedTurn {
  turn: TurnRow;
  call: CallRow;
  /** False when Twilio retried the webhook and the turn already existed. */
  created: boolean;
}

export interface ReplyProgress {
  turn: TurnRow;
  /** Pieces playable now, from the one asked for on. */
  segments: SegmentRow[];
  /** The turn is complete: `turn.action` says whether to listen or hang up. */
  done: boolean;
}

export interface CallEngineSettings {
  minSpeechConfidence: number;
  maxSilentPrompts: number;
  maxLlmFailures: number;
  /** A turn's model work is abandoned (and apologised for) after this long. */
  turnTimeoutMs: number;
  pipelinedReplies: boolean;
}

export interface CallEngineDeps {
  repository: CallRepository;
  profiles: ProfileSet;
  llmAssistant?: Assistant;
  scriptedAssistant: Assistant;
  renderer: SpeechRenderer;
  progress: TurnProgress;
  settings: CallEngineSettings;
  logger: Logger;
  metrics?: Metrics;
  /** What a call opens with instead of the profile's greeting (a call this server placed says why it calls). */
  openingLine?: (call: CallRow) => Promise<string | undefined>;
  /** Where hand-offs to a person are recorded; without it a `transfer` action is ignored. */
  transfers?: { start(transfer: { callId: string; turnId: number; toNumber: string; summary: string }): Promise<unknown> };
  /** Greets a caller recognised by number by name (profiles with `returningCallerGreeting`). */
  callerRecognition?: Pick<CallerRecognition, 'greeting'>;
}

/** How often a waiting request rereads the database when no local notification comes (another instance is producing). */
const pollIntervalMs = 200;
/** How long a reply with pieces ready waits for its turn to complete before answering without it. */
const completionGraceMs = 30;
/** Past its deadline by this much, a turn still `processing` has lost its producer (the instance died). */
const orphanGraceMs = 5_000;

/**
 * The conversation, independent of how audio reaches the caller. A transport
 * (Twilio webhooks today) starts a call, hands each caller input to
 * `takeTurn`, and reads the reply as it becomes playable with `readReply`.
 * All state is in the database, so any instance can serve any request.
 */
export class CallEngine {
  private readonly turnsInFlight = new Map<string, Set<AbortController>>();
  private readonly producing = new Set<Promise<unknown>>();
  private readonly live = new LiveReplies();

  constructor(private readonly deps: CallEngineDeps) {}

  /** The call's profile, speaking the call's current language. */
  profileFor(call: Pick<CallRow, 'profile_id' | 'language'> | undefined, calledNumber?: string): AssistantProfile {
    const profile = (call && this.deps.profiles.byId(call.profile_id)) ?? this.deps.profiles.forNumber(calledNumber);
    return call ? profileInLanguage(profile, call.language) : profile;
  }

  /** Registers the call (once) and starts its greeting, turn 0. */
  async startCall(info: CallInfo): Promise<ClaimedTurn> {
    const receivedAt = new Date();
    const call = await this.ensureCall(info);
    return this.claim(call, 0, 'greeting', undefined, receivedAt);
  }

  /**
   * Starts turn `seq` (or the next one) with the caller's input. A retried
   * webhook for a turn already claimed gets that turn back, not a new one.
   */
  async takeTurn(info: CallInfo, seq: number | undefined, input: CallerInput): Promise<ClaimedTurn> {
    const receivedAt = new Date();
    const call = await this.ensureCall(info);
    await this.followLanguage(call, input);
    const turnSeq = seq ?? (await this.deps.repository.nextTurnSeq(call.call_id));
    const kind = kindOf(input, this.deps.settings.minSpeechConfidence);
    return this.claim(call, turnSeq, kind, input, receivedAt, this.prepareEarly(call, kind, input));
  }

  /**
   * Waits up to `timeoutMs` for reply piece `fromSeq` (or the turn's end) and
   * returns every piece playable from there.
   */
  async readReply(turnId: number, fromSeq: number, timeoutMs: number): Promise<ReplyProgress | undefined> {
    const deadline = Date.now() + timeoutMs;
    let graced = false;
    for (;;) {
      const ticket = this.deps.progress.listen(turnId);
      const live = this.live.get(turnId);
      let turn = live ? live.turn : await this.deps.repository.getTurn(turnId);
      if (turn && !live && turn.status === 'processing' && Date.now() - turn.received_at.getTime() > this.deps.settings.turnTimeoutMs + orphanGraceMs) {
        // Any producer would have hit its deadline by now: the instance producing it is gone.
        turn = await this.deps.repository.failOrphanedTurn(turnId, 'the instance producing this turn stopped before finishing it');
      }
      if (!turn) {
        ticket.cancel();
        return undefined;
      }
      const done = live ? live.done : turn.status !== 'processing';
      // Pieces are playable in order: one stored ahead of a piece still being written waits for it.
      const segments = inOrderFrom(fromSeq, live ? live.segments.filter((segment) => segment.seq >= fromSeq) : await this.deps.repository.listSegments(turnId, fromSeq));
      const remaining = deadline - Date.now();
      // The turn often completes right after its last piece: a moment's wait lets the answer end with the
      // <Gather> instead of a <Redirect>, which Twilio would follow only after the audio (a gap before listening).
      // A continuation can wait, audio is playing; a first answer waits only when its last piece is stored
      // (the completion is one write away): more pieces to come need a <Redirect> anyway.
      if (segments.length > 0 && !done && !graced && (fromSeq > 0 || live?.lastStored)) {
        graced = true;
        await ticket.wait(completionGraceMs);
        ticket.cancel();
        continue;
      }
      if (segments.length > 0 || done || remaining <= 0) {
        ticket.cancel();
        return { turn, segments, done };
      }
      await ticket.wait(Math.min(remaining, pollIntervalMs));
      ticket.cancel();
    }
  }

  /** Stops the model and synthesis for a call that has ended. */
  abortCall(callSid: string): void {
    for (const controller of this.turnsInFlight.get(callSid) ?? []) controller.abort(new Error('call ended'));
  }

  /** Resolves when every turn this instance is producing has finished (for shutdown). */
  async drain(): Promise<void> {
    while (this.producing.size > 0) await Promise.allSettled([...this.producing]);
  }

  /** Creates the call's row if it has none yet; returns it either way. */
  registerCall(info: CallInfo): Promise<CallRow> {
    return this.ensureCall(info);
  }

  /**
   * Stores a new call unless its caller's number already made `limit` calls
   * in the last hour (counted across every instance sharing the database);
   * `undefined` when it is over. A call already stored is admitted.
   */
  admitCall(info: CallInfo, limit: number): Promise<CallRow | undefined> {
    return this.deps.repository.insertCallWithinLimit(this.newCall(info), new Date(Date.now() - 3_600_000), limit);
  }

  /** Before the turn starts, so its reply, voice and next <Gather> are already in the language the caller spoke. */
  private async followLanguage(call: CallRow, input: CallerInput): Promise<void> {
    if (input.kind !== 'speech' || kindOf(input, this.deps.settings.minSpeechConfidence) !== 'speech') return;
    await followCallerLanguage(this.deps.repository, this.profileFor(call), call, input.text);
  }

  private async ensureCall(info: CallInfo): Promise<CallRow> {
    const existing = await this.deps.repository.getCall(info.callSid);
    if (existing) return existing;
    return this.deps.repository.upsertCall(this.newCall(info));
  }

  private newCall(info: CallInfo): NewCall {
    const profile = (info.profileId && this.deps.profiles.byId(info.profileId)) || this.deps.profiles.forNumber(info.to);
    return {
      callId: info.callSid,
      accountSid: info.accountSid,
      from: info.from,
      to: info.to,
      direction: info.direction,
      profileId: profile.id,
      language: profile.language,
      status: info.status ?? 'in-progress',
    };
  }

  /**
   * Keeps the answer a webhook gets from piece `fromSeq` of a turn, so that a
   * delivery Twilio repeats gets the same TwiML, and returns the TwiML to
   * send. Keeping is first-writer-wins across instances. The turn's first
   * answer (piece 0) comes from the request that claimed the turn, so the
   * instance producing it is the first to answer: it sends that answer
   * without waiting for the write. A duplicate delivered to it gets the same
   * answer from memory, and Twilio repeats a delivery elsewhere only after
   * this one failed, long after the write. A continuation may reach another
   * instance first, so it always waits for the kept answer.
   */
  async keepAnswer(turnId: number, fromSeq: number, twiml: string): Promise<string> {
    if (fromSeq !== 0 || !this.live.get(turnId)) return this.deps.repository.keepResponse(turnId, fromSeq, twiml);
    const given = this.live.firstAnswerGiven(turnId, twiml);
    if (given !== undefined) return given;
    const keeping = this.deps.repository.keepResponse(turnId, fromSeq, twiml).then(
      (kept) => {
        if (kept !== twiml) this.deps.logger.warn({ turnId, fromSeq }, 'another instance kept a different answer for this webhook first');
      },
      (error: unknown) => this.deps.logger.error({ err: error, turnId, fromSeq }, 'could not keep the answer given'),
    );
    // Shutdown waits for it, as for a turn in production.
    this.producing.add(keeping);
    void keeping.finally(() => this.producing.delete(keeping));
    return twiml;
  }

  /** The turn and its call when this instance is producing it (or just did): no need to read them back. */
  liveTurn(turnId: number): { turn: TurnRow; call: CallRow } | undefined {
    return this.live.get(turnId);
  }

  private async claim(
    call: CallRow,
    seq: number,
    kind: TurnKind,
    input: CallerInput | undefined,
    receivedAt: Date,
    early?: EarlyPreparation,
  ): Promise<ClaimedTurn> {
    const { turn, created, earlier } = await this.claimAlongside(early, call, seq, kind, input, receivedAt);
    if (created) {
      this.live.started(call, turn);
      const production = this.produce(call, turn, earlier, input, (context) => this.webhookOutput(context, call, turn), undefined, early).catch((error) => {
        this.deps.logger.error({ err: error, callSid: call.call_id, turnId: turn.turn_id }, 'turn production failed');
      });
      this.producing.add(production);
      void production.finally(() => this.producing.delete(production));
    }
    return { turn, call, created };
  }

  /** Claims the turn's row while `early` runs; stops it when the claim fails or the turn was claimed before. */
  private async claimAlongside(early: EarlyPreparation | undefined, ...args: Parameters<CallEngine['claimRow']>): Promise<ClaimedTurnRow> {
    try {
      const claimed = await this.claimRow(...args);
      if (!claimed.created) early?.controller.abort(new Error('the turn was claimed before'));
      return claimed;
    } catch (error) {
      early?.controller.abort(error);
      throw error;
    }
  }

  /** Claims the turn's row; the call's earlier turns come with it. */
  private claimRow(
    call: CallRow,
    seq: number,
    kind: TurnKind,
    input: CallerInput | undefined,
    /** When the request for the turn reached the engine, before the call was looked up: the turn's "webhook received". */
    receivedAt: Date,
  ): Promise<ClaimedTurnRow> {
    const mode = call.assistant_mode === 'llm' && this.deps.llmAssistant ? 'llm' : 'scripted';
    return this.deps.repository.claimTurn({
      callId: call.call_id,
      seq,
      kind,
      userText: input?.kind === 'speech' ? input.text : input?.kind === 'dtmf' ? input.digits : undefined,
      confidence: input?.kind === 'speech' ? input.confidence : undefined,
      assistantMode: mode,
      receivedAt,
    });
  }

  /**
   * Takes turn `seq` (the greeting when `input` is undefined) and produces its
   * reply into the output the transport supplies, resolving when the reply is
   * delivered. `interrupt` aborts it (the caller spoke over it): not an error;
   * the turn keeps what the caller heard.
   */
  async runTurn(
    info: CallInfo,
    seq: number,
    input: CallerInput | undefined,
    createOutput: (context: ReplyOutputContext) => ReplyOutput,
    interrupt?: AbortSignal,
  ): Promise<{ turn: TurnRow; call: CallRow }> {
    const receivedAt = new Date();
    const call = await this.ensureCall(info);
    if (input) await this.followLanguage(call, input);
    const kind = input ? kindOf(input, this.deps.settings.minSpeechConfidence) : 'greeting';
    const early = this.prepareEarly(call, kind, input);
    const claimed = await this.claimAlongside(early, call, seq, kind, input, receivedAt);
    let finished: TurnRow | undefined;
    if (claimed.created) {
      const production = this.produce(call, claimed.turn, claimed.earlier, input, createOutput, interrupt, early);
      this.producing.add(production);
      try {
        finished = await production;
      } finally {
        this.producing.delete(production);
      }
    }
    // The finished row came back from the statement that stored it; only a turn produced elsewhere is read again.
    const turn = finished ?? (await this.deps.repository.getTurn(claimed.turn.turn_id)) ?? claimed.turn;
    return { turn, call: (await this.deps.repository.getCall(call.call_id)) ?? call };
  }

  private webhookOutput(context: ReplyOutputContext, call: CallRow, turn: TurnRow): ReplyOutput {
    return new ReplyWriter(
      {
        repository: this.deps.repository,
        renderer: this.deps.renderer,
        progress: this.deps.progress,
        pipelined: this.deps.settings.pipelinedReplies,
        onRenderError: context.onRenderError,
        onSegmentStored: (segment, last) => this.live.segmentStored(segment, last),
      },
      { callId: call.call_id, turnId: turn.turn_id },
      this.profileFor(call),
      context.abortSignal,
    );
  }

  private async produce(
    call: CallRow,
    turn: TurnRow,
    /** The call's other turns when this one was claimed: the conversation so far. */
    earlier: TurnRow[],
    input: CallerInput | undefined,
    createOutput: (context: ReplyOutputContext) => ReplyOutput,
    interrupt?: AbortSignal,
    /** The prompt additions, started alongside the claim. */
    early?: EarlyPreparation,
  ): Promise<TurnRow | undefined> {
    const { repository, settings, logger } = this.deps;
    const profile = this.profileFor(call);
    // Two ways a turn stops: an interruption or hang-up (nothing more is said), and
    // the deadline (the model and synthesis in flight stop, and the apology is said).
    // `work` follows `controller` by a listener rather than AbortSignal.any: Node keeps a
    // combined signal with abort listeners in memory until they are removed or it aborts
    // (nodejs/node#55328), and a turn that ends normally never aborts, so a reply output
    // listening to it would stay in memory for good.
    const controller = new AbortController();
    const workController = new AbortController();
    const timer = setTimeout(() => workController.abort(new Error('turn timed out')), settings.turnTimeoutMs);
    controller.signal.addEventListener('abort', () => workController.abort(controller.signal.reason), { once: true });
    const work = workController.signal;
    const stopEarly = () => early?.controller.abort(work.reason);
    work.addEventListener('abort', stopEarly, { once: true });
    const onInterrupt = () => controller.abort(interrupt?.reason ?? new Error('interrupted'));
    if (interrupt?.aborted) onInterrupt();
    else interrupt?.addEventListener('abort', onInterrupt, { once: true });
    let inFlight = this.turnsInFlight.get(call.call_id);
    if (!inFlight) this.turnsInFlight.set(call.call_id, (inFlight = new Set()));
    inFlight.add(controller);

    const errors: Array<{ code: string; message: string }> = [];
    const writer = createOutput({
      callId: call.call_id,
      turnId: turn.turn_id,
      abortSignal: work,
      stopSignal: controller.signal,
      onRenderError: (error, text) => {
        errors.push({ code: 'tts_failed', message: `speech synthesis failed: ${errorMessage(error)}` });
        logger.warn({ err: error, callSid: call.call_id, text }, 'speech synthesis failed; the piece is spoken another way');
      },
    });
    const usage = { promptTokens: 0, completionTokens: 0, firstTokenAt: undefined as Date | undefined };
    const toolCalls: unknown[] = [];
    let action: TurnAction = 'listen';

    try {
      if (turn.kind === 'greeting') {
        // A recorded call is announced before anything else is said (the recording starts with the first TwiML).
        if (profile.recording.enabled) writer.say(profile.recording.disclosure);
        // A call this server placed opens with why it calls. A lookup that fails costs the caller only the personal touch, never the greeting.
        const personal = (await this.deps.openingLine?.(call)) ?? await this.deps.callerRecognition?.greeting(profile, call.from_number ?? undefined, call.call_id).catch((error: unknown) => {
          logger.warn({ err: error, callSid: call.call_id }, 'could not look up the caller; greeting as usual');
          return undefined;
        });
        if (personal) {
          // Not the shared phrase cache: this audio carries the caller's name, and goes with the call's own audio.
          writer.append(personal);
          writer.flushText();
        } else writer.say(profile.greeting);
      } else if (turn.kind === 'limit' || pastMaxCallLength(profile, call.started_at)) {
        writer.say(profile.phrases.limitReached);
        action = 'hangup';
        await this.noteLimitReached(call.call_id);
      } else if (turn.kind === 'silence' || turn.kind === 'unclear') {
        if (input?.kind === 'unclear' && input.errorCode) errors.push({ code: input.errorCode, message: input.reason });
        const silences = call.silent_prompts + 1;
        await repository.updateCallState(call.call_id, { silent_prompts: silences });
        if (silences >= settings.maxSilentPrompts) {
          writer.say(profile.phrases.noInputGoodbye);
          action = 'hangup';
          await repository.updateCallState(call.call_id, { outcome: 'no-input' });
        } else {
          writer.say(turn.kind === 'silence' ? profile.phrases.repeat : profile.phrases.unclear);
        }
      } else {
        const callerText = callerTextOf(input, turn.user_text);
        // The model's prompt additions (a knowledge search, what is known about the caller); the history came with the claim.
        const prepared = early?.prepared ?? this.startPreparation(call, profile, callerText, work);
        const history = conversationBefore(earlier, turn.seq);
        const callerTurns = history.filter((line) => line.speaker === 'caller').length + 1;
        if (callerTurns > profile.maxTurns) {
          writer.say(profile.phrases.limitReached);
          action = 'hangup';
          await this.noteLimitReached(call.call_id);
        } else {
          action = await this.converse(call, turn, profile, history, callerText, writer, work, usage, toolCalls, errors, interrupt, prepared);
          // The last turn allowed is answered, then closed politely (VoiceHunte's MAX_TURNS).
          if (action === 'listen' && isLastTurn(profile, callerTurns) && !interrupt?.aborted) {
            writer.say(profile.phrases.limitReached);
            action = 'hangup';
            await this.noteLimitReached(call.call_id);
          }
        }
        if (call.silent_prompts > 0) await repository.updateCallState(call.call_id, { silent_prompts: 0 });
      }
      const { spokenText, ttsCharacters, interruptedAtMs } = await writer.finish();
      const status = errors.some((error) => error.code !== 'tts_failed') ? 'failed' : 'completed';
      const completedAt = new Date();
      const finished = await repository.finishTurn(turn.turn_id, {
        assistantText: spokenText,
        action,
        status,
        errorCode: errors[0]?.code,
        errorMessage: errors.map((error) => error.message).join('; ') || undefined,
        toolCalls,
        promptTokens: usage.promptTokens,
        completionTokens: usage.completionTokens,
        ttsCharacters,
        completedAt,
        interruptedAtMs,
        timings: { llm_first_token_at: usage.firstTokenAt, first_text_at: writer.firstTextAt, first_audio_at: writer.firstAudioAt },
      });
      if (finished) this.live.finished(finished);
      else this.live.abandoned(turn.turn_id);
      const since = (at: Date | undefined) => (at ? at.getTime() - turn.received_at.getTime() : undefined);
      this.deps.metrics?.turnFinished({
        kind: turn.kind,
        status,
        mode: turn.assistant_mode ?? 'scripted',
        llmFirstTokenMs: since(usage.firstTokenAt),
        firstTextMs: since(writer.firstTextAt),
        firstAudioMs: since(writer.firstAudioAt),
        completeMs: since(completedAt) ?? 0,
        promptTokens: usage.promptTokens,
        completionTokens: usage.completionTokens,
        ttsCharacters,
        errorCodes: errors.map((error) => error.code),
      });
      return finished;
    } catch (error) {
      // Storage itself failed: record what can be recorded; the webhook answers with its own fallback.
      logger.error({ err: error, callSid: call.call_id, turnId: turn.turn_id }, 'turn could not be completed');
      this.live.abandoned(turn.turn_id);
      return repository
        .finishTurn(turn.turn_id, {
          assistantText: '',
          action: 'listen',
          status: 'failed',
          errorCode: 'internal_error',
          errorMessage: errorMessage(error),
          toolCalls,
          promptTokens: usage.promptTokens,
          completionTokens: usage.completionTokens,
          ttsCharacters: 0,
          completedAt: new Date(),
        })
        .catch(() => undefined);
    } finally {
      clearTimeout(timer);
      work.removeEventListener('abort', stopEarly);
      // Unused (another branch was taken) or finished: either way nothing more is wanted of it.
      early?.controller.abort(new Error('turn finished'));
      interrupt?.removeEventListener('abort', onInterrupt);
      inFlight.delete(controller);
      if (inFlight.size === 0) this.turnsInFlight.delete(call.call_id);
      this.deps.progress.notify(turn.turn_id);
    }
  }

  /** Runs the assistant for a caller's words; falls back to the scripted one after repeated model failures. */
  private async converse(
    call: CallRow,
    turn: TurnRow,
    profile: AssistantProfile,
    history: ConversationLine[],
    callerText: string,
    writer: ReplyOutput,
    abortSignal: AbortSignal,
    usage: { promptTokens: number; completionTokens: number; firstTokenAt?: Date },
    toolCalls: unknown[],
    errors: Array<{ code: string; message: string }>,
    interrupt?: AbortSignal,
    prepared?: Promise<string>,
  ): Promise<TurnAction> {
    const { repository, logger, settings } = this.deps;
    let details = call.details;
    const llm = this.assistantFor(call);
    const attempt = async (assistant: Assistant): Promise<TurnAction> => {
      let ending = false;
      let transfer: { to: string; summary: string } | undefined;
      for await (const event of assistant.respond({
        profile,
        callId: call.call_id,
        language: call.language,
        history,
        callerText,
        details,
        callerNumber: call.from_number ?? undefined,
        abortSignal,
        // Only the assistant that prepared it takes it (not the scripted one after the model failed).
        prepared: assistant === llm ? prepared : undefined,
      })) {
        switch (event.type) {
          case 'model-first-token':
            usage.firstTokenAt = new Date();
            break;
          case 'reply-delta':
            writer.append(event.text);
            break;
          case 'details-saved':
            details = await repository.mergeDetails(call.call_id, event.details);
            if (profile.details.length > 0 && missingDetails(profile, details).length === 0) {
              await repository.updateCallState(call.call_id, { outcome: 'details-collected' });
            }
            break;
          case 'tool-called':
            toolCalls.push({ name: event.name, arguments: event.arguments, result: event.result });
            break;
          case 'usage-reported':
            usage.promptTokens += event.promptTokens;
            usage.completionTokens += event.completionTokens;
            break;
          case 'call-action':
            if (event.action.type === 'end-call') ending = true;
            else if (event.action.type === 'transfer') transfer = event.action;
            else if (event.action.type === 'switch-language') {
              await repository.updateCallState(call.call_id, { language: event.action.language });
              call.language = event.action.language;
            }
            break;
        }
      }
      if (transfer && this.deps.transfers) {
        writer.flushText();
        // The model's own hand-off words, or the profile's line: then the transport dials.
        if (!writer.hasSpoken) writer.say(profile.transfer?.handoffLine ?? profile.phrases.goodbye);
        await this.deps.transfers.start({ callId: call.call_id, turnId: turn.turn_id, toNumber: transfer.to, summary: transfer.summary });
        return 'transfer';
      }
      if (ending) {
        writer.flushText();
        // end_call with no words of its own still says goodbye before the hang-up.
        if (!writer.hasSpoken) writer.say(profile.phrases.goodbye);
        return 'hangup';
      }
      if (!writer.hasSpoken) writer.flushText();
      return 'listen';
    };

    if (!llm) return attempt(this.deps.scriptedAssistant);
    try {
      const action = await attempt(llm);
      if (!writer.hasSpoken) throw new Error('the model returned no reply');
      if (call.llm_failures > 0) await repository.updateCallState(call.call_id, { llm_failures: 0 });
      return action;
    } catch (error) {
      // The caller spoke over the reply: nothing failed, the turn keeps what was heard.
      if (interrupt?.aborted) return 'listen';
      const timedOut = abortSignal.aborted;
      if (isAbortError(error) && !timedOut) throw error;
      const code = timedOut ? 'llm_timeout' : ((error as { code?: string }).code ?? 'llm_failed');
      errors.push({ code, message: errorMessage(error) });
      const failures = call.llm_failures + 1;
      logger.warn({ err: error, callSid: call.call_id, failures }, 'assistant model failed');
      if (failures >= settings.maxLlmFailures) {
        await repository.updateCallState(call.call_id, { llm_failures: failures, assistant_mode: 'scripted' });
        writer.flushText();
        return attempt(this.deps.scriptedAssistant);
      }
      await repository.updateCallState(call.call_id, { llm_failures: failures });
      writer.say(profile.phrases.apology);
      return 'listen';
    }
  }

  /**
   * The prompt additions of a caller's turn (a knowledge search, what is
   * known about the caller: statements of their own) need the call, not the
   * turn's row, so they start alongside the claim instead of after it: one
   * database round trip less before the model is asked.
   */
  private prepareEarly(call: CallRow, kind: TurnKind, input: CallerInput | undefined): EarlyPreparation | undefined {
    if ((kind !== 'speech' && kind !== 'dtmf') || !input) return undefined;
    const profile = this.profileFor(call);
    if (pastMaxCallLength(profile, call.started_at)) return undefined;
    const controller = new AbortController();
    const prepared = this.startPreparation(call, profile, callerTextOf(input, undefined), controller.signal);
    if (!prepared) return undefined;
    // A turn claimed before (a retried webhook) never reads it.
    prepared.catch(() => undefined);
    return { prepared, controller };
  }

  private startPreparation(call: CallRow, profile: AssistantProfile, callerText: string, abortSignal: AbortSignal): Promise<string> | undefined {
    return this.assistantFor(call)?.prepare?.({
      profile,
      callId: call.call_id,
      language: call.language,
      callerText,
      details: call.details,
      callerNumber: call.from_number ?? undefined,
      abortSignal,
    });
  }

  /** The model assistant, for a call still in `llm` mode. */
  private assistantFor(call: CallRow): Assistant | undefined {
    return call.assistant_mode === 'llm' ? this.deps.llmAssistant : undefined;
  }

  /** A call ended by its turn or length limit says so, unless it already has an outcome (details collected, say). */
  private async noteLimitReached(callId: string): Promise<void> {
    const current = await this.deps.repository.getCall(callId);
    if (current && !current.outcome) await this.deps.repository.updateCallState(callId, { outcome: 'limit-reached' });
  }
}

/** What was said before turn `beforeSeq`, caller and assistant, from the call's turns in order. */
function conversationBefore(turns: readonly TurnRow[], beforeSeq: number): ConversationLine[] {
  const lines: ConversationLine[] = [];
  for (const turn of turns) {
    if (turn.seq >= beforeSeq) continue;
    if ((turn.kind === 'speech' || turn.kind === 'dtmf') && turn.user_text) lines.push({ speaker: 'caller', text: turn.user_text });
    if (turn.assistant_text) lines.push({ speaker: 'assistant', text: turn.assistant_text });
  }
  return lines;
}

/** The run of pieces numbered `fromSeq`, `fromSeq + 1`, … with no gap. */
function inOrderFrom(fromSeq: number, segments: SegmentRow[]): SegmentRow[] {
  let count = 0;
  while (count < segments.length && segments[count].seq === fromSeq + count) count++;
  return count === segments.length ? segments : segments.slice(0, count);
}

/** The prompt additions of a turn, started before its claim, and how to stop them. */
interface EarlyPreparation {
  prepared: Promise<string>;
  controller: AbortController;
}

/** What the model is told the caller said: their words, or the keys they pressed. */
function callerTextOf(input: CallerInput | undefined, userText: string | null | undefined): string {
  if (input?.kind === 'dtmf') return `(keyed on the phone keypad: ${input.digits})`;
  return userText ?? (input?.kind === 'speech' ? input.text : '');
}

function kindOf(input: CallerInput, minConfidence: number): TurnKind {
  if (input.kind === 'dtmf' || input.kind === 'unclear' || input.kind === 'limit') return input.kind;
  if (input.kind === 'silence' || !input.text.trim()) return 'silence';
  if (input.confidence !== undefined && input.confidence < minConfidence) return 'unclear';
  return 'speech';
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

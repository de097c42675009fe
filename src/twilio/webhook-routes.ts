import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { AssistantProfile } from '../assistant/profile.js';
import type { CallerInput, CallInfo } from '../conversation/call-engine.js';
import type { Services } from '../services.js';
import type { TurnRow } from '../storage/call-repository.js';
import { connectStreamTwiml, emptyTwiml, fallbackTwiml, replyTwiml, type ReplyTwimlOptions } from './reply-twiml.js';
import { newStreamToken, streamTokenLifetimeMs } from './stream-tokens.js';
import { twilioSignatureGuard } from './signature-guard.js';
import { recordingStatusPath } from '../recordings/recording-routes.js';
import { transferDial, transferEndedPath } from '../transfer/transfer-routes.js';
import {
  callParamsSchema,
  continueQuerySchema,
  gatherParamsSchema,
  statusParamsSchema,
  turnQuerySchema,
  type CallParams,
  type GatherParams,
} from './webhook-params.js';

/**
 * How long a webhook waits for the first playable piece before answering with
 * a short pause and coming back: Twilio gives up on a webhook after 15 s and
 * the caller would hear an application error.
 */
const firstPieceWaitMs = 8_000;

/** The two route sets the product answers: VoiceHunte's `/twilio/*` and CallMe's `/voice` + `/status`. */
const routeSets = [
  { entry: '/twilio/incoming', turn: '/twilio/voice', status: '/twilio/status', continuation: '/twilio/continue', streamEnded: '/twilio/stream-ended' },
  { entry: '/voice', turn: '/voice', status: '/status', continuation: '/voice/continue', streamEnded: '/voice/stream-ended' },
] as const;
type RouteSet = (typeof routeSets)[number];

/** Twilio's voice webhooks: the protocol ends here; the engine sees calls and turns. */
export async function registerWebhookRoutes(app: FastifyInstance, services: Services): Promise<void> {
  const { config, engine, logger } = services;
  const guard = twilioSignatureGuard({
    authToken: services.twilioAuthToken,
    publicUrl: config.publicUrl,
    enabled: config.twilio.validateSignature,
  });
  const url = (path: string) => `${config.publicUrl}${path}`;

  const sendTwiml = (reply: FastifyReply, twiml: string) => reply.code(200).type('text/xml; charset=utf-8').send(twiml);

  /**
   * Answers with whatever of the turn's reply is ready, then tells Twilio what
   * comes next. A retried webhook gets the answer kept from its first attempt:
   * keeping is first-writer-wins, so the retry composes an answer and is handed
   * the kept one instead (composing again is cheap once the pieces are there).
   */
  const answerTurn = async (reply: FastifyReply, routes: RouteSet, turn: TurnRow, fromSeq: number, profile: AssistantProfile) => {
    const answer = await composeAnswer(routes, turn, fromSeq, profile);
    // Only answers that say something final are kept: a "still thinking" pause must not be replayed once the reply is ready.
    if (!answer.final) return sendTwiml(reply, answer.twiml);
    return sendTwiml(reply, await engine.keepAnswer(turn.turn_id, fromSeq, answer.twiml));
  };

  const composeAnswer = async (
    routes: RouteSet,
    turn: TurnRow,
    fromSeq: number,
    profile: AssistantProfile,
  ): Promise<{ twiml: string; final: boolean }> => {
    const progress = await engine.readReply(turn.turn_id, fromSeq, firstPieceWaitMs);
    if (!progress) return { twiml: fallbackTwiml(profile, profile.phrases.apology, listen(routes, turn.seq + 1)), final: true };
    const { segments, done } = progress;
    // A switch_language during this turn: the caller answers in the new language, so the <Gather> must listen for it.
    const live = done ? engine.liveTurn(turn.turn_id) : undefined;
    if (live) profile = engine.profileFor(live.call);
    if (done && segments.length === 0 && fromSeq === 0) {
      // Nothing could be said (storage failed mid-turn): apologise with Twilio's voice, keep listening.
      return { twiml: fallbackTwiml(profile, profile.phrases.apology, listen(routes, turn.seq + 1)), final: true };
    }
    let next: ReplyTwimlOptions['next'];
    if (!done) {
      next = {
        kind: 'continue',
        url: url(`${routes.continuation}?turn=${turn.turn_id}&from=${fromSeq + segments.length}`),
        pauseSeconds: segments.length === 0 ? 1 : undefined,
      };
    } else if (progress.turn.action === 'hangup') next = { kind: 'hangup' };
    else if (progress.turn.action === 'transfer' && profile.transfer) next = transferDial(profile.transfer, url(transferEndedPath(turn.turn_id)));
    else next = listen(routes, turn.seq + 1);
    // The greeting's first real answer starts the recording, so the disclosure is on it too.
    const startRecording =
      turn.seq === 0 && fromSeq === 0 && profile.recording.enabled && (segments.length > 0 || done)
        ? { statusCallbackUrl: url(recordingStatusPath), channels: profile.recording.channels }
        : undefined;
    return {
      twiml: replyTwiml({ profile, segments, audioUrl: (filename) => url(`/audio/${filename}`), next, startRecording }),
      final: segments.length > 0 || done,
    };
  };

  const listen = (routes: RouteSet, seq: number): ReplyTwimlOptions['next'] => ({
    kind: 'listen',
    actionUrl: url(`${routes.turn}?turn=${seq}`),
  });

  /**
   * A new call: profiles in `stream` or `realtime` mode get a media stream
   * (admitted by a one-time token); the rest, and any call when the stream
   * transport cannot serve it, start with the webhook greeting.
   */
  const answerNewCall = async (reply: FastifyReply, routes: RouteSet, info: CallInfo, profile: AssistantProfile) => {
    // Per-number rate limit, counted and admitted atomically in the shared database so it holds across instances.
    if (info.from && !(await engine.admitCall(info, config.assistant.maxCallsPerNumberPerHour))) {
      reply.request.log.warn({ callSid: info.callSid }, 'caller number over its hourly call limit');
      return sendTwiml(reply, fallbackTwiml(profile, profile.phrases.tooManyCalls, { kind: 'hangup' }));
    }
    if (profile.mode !== 'webhook' && services.streams?.canServe(profile)) {
      const call = await engine.registerCall(info);
      const { token, hash } = newStreamToken();
      await services.repository.createStreamToken(call.call_id, hash, new Date(Date.now() + streamTokenLifetimeMs));
      await services.repository.setCallMode(call.call_id, profile.mode);
      const streamBase = config.publicUrl.replace(/^http/, 'ws');
      return sendTwiml(
        reply,
        connectStreamTwiml({
          streamUrl: `${streamBase}/twilio/media/${token}`,
          actionUrl: url(routes.streamEnded),
          parameters: { callSid: call.call_id, profile: profile.id },
        }),
      );
    }
    const { turn } = await engine.startCall(info);
    return answerTurn(reply, routes, turn, 0, profile);
  };

  /** Whatever goes wrong, Twilio gets valid TwiML and the caller hears words, never "an application error". */
  const safely = (routes: RouteSet, handler: (request: FastifyRequest, reply: FastifyReply) => Promise<unknown>) =>
    async (request: FastifyRequest, reply: FastifyReply) => {
      try {
        return await handler(request, reply);
      } catch (error) {
        request.log.error({ err: error }, 'webhook failed; answering with a spoken apology');
        const profile = services.profiles.forNumber(readTo(request.body));
        const seq = Number((request.query as Record<string, string>)?.turn ?? 0);
        return sendTwiml(reply, fallbackTwiml(profile, profile.phrases.apology, listen(routes, Number.isFinite(seq) ? seq + 1 : 1)));
      }
    };

  const invalid = (reply: FastifyReply, request: FastifyRequest, message: string) =>
    reply.code(400).type('application/json').send({ error: { code: 'invalid_request', message, requestId: request.id } });

  for (const routes of routeSets) {
    const isCallMe = routes.entry === routes.turn;

    if (!isCallMe) {
      app.post(routes.entry, { preHandler: guard }, safely(routes, async (request, reply) => {
        const params = callParamsSchema.safeParse(request.body ?? {});
        if (!params.success) return invalid(reply, request, firstIssue(params.error));
        return answerNewCall(reply, routes, callInfo(params.data), await profileOf(services, params.data));
      }));
    }

    app.post(routes.turn, { preHandler: guard }, safely(routes, async (request, reply) => {
      const params = gatherParamsSchema.safeParse(request.body ?? {});
      if (!params.success) return invalid(reply, request, firstIssue(params.error));
      const { turn: seq } = turnQuerySchema.parse(request.query ?? {});
      const info = callInfo(params.data);
      if (isCallMe && seq === undefined && params.data.SpeechResult === undefined && params.data.Digits === undefined) {
        // CallMe's single webhook: the first request of a call is the greeting.
        return answerNewCall(reply, routes, info, await profileOf(services, params.data));
      }
      const { turn, call } = await engine.takeTurn(info, seq, callerInput(params.data));
      return answerTurn(reply, routes, turn, 0, engine.profileFor(call, params.data.To));
    }));

    app.post(routes.continuation, { preHandler: guard }, safely(routes, async (request, reply) => {
      const params = callParamsSchema.safeParse(request.body ?? {});
      const query = continueQuerySchema.safeParse(request.query ?? {});
      if (!params.success) return invalid(reply, request, firstIssue(params.error));
      if (!query.success) return invalid(reply, request, 'turn and from must be whole numbers');
      // The turn and call are in memory when this instance produces the reply (the usual case).
      const live = engine.liveTurn(query.data.turn);
      const turn = live?.turn ?? (await services.repository.getTurn(query.data.turn));
      if (!turn || turn.call_id !== params.data.CallSid) {
        return reply.code(404).send({ error: { code: 'not_found', message: 'no such turn for this call', requestId: request.id } });
      }
      const profile = live ? engine.profileFor(live.call, params.data.To) : await profileOf(services, params.data);
      return answerTurn(reply, routes, turn, query.data.from, profile);
    }));

    app.post(routes.streamEnded, { preHandler: guard }, safely(routes, async (request, reply) => {
      const params = callParamsSchema.safeParse(request.body ?? {});
      if (!params.success) return invalid(reply, request, firstIssue(params.error));
      const profile = await profileOf(services, params.data);
      const turns = await services.repository.listTurns(params.data.CallSid);
      const last = turns.at(-1);
      if (last?.action === 'hangup') return sendTwiml(reply, replyTwiml({ profile, segments: [], audioUrl: url, next: { kind: 'hangup' } }));
      // The stream ended before the conversation did (it broke, or never opened): carry on over webhooks.
      request.log.warn({ callSid: params.data.CallSid }, 'media stream ended early; continuing the call over webhooks');
      const nextSeq = (last?.seq ?? -1) + 1;
      if (!last) return answerTurn(reply, routes, (await engine.startCall(callInfo(params.data))).turn, 0, profile);
      // The stream may have apologised already before it closed; then the call just listens.
      if (last.assistant_text?.includes(profile.phrases.apology)) {
        return sendTwiml(reply, replyTwiml({ profile, segments: [], audioUrl: url, next: listen(routes, nextSeq) }));
      }
      return sendTwiml(reply, fallbackTwiml(profile, profile.phrases.apology, listen(routes, nextSeq)));
    }));

    app.post(routes.status, { preHandler: guard }, async (request, reply) => {
      const params = statusParamsSchema.safeParse(request.body ?? {});
      if (!params.success) return invalid(reply, request, firstIssue(params.error));
      if (!params.data.CallStatus) return invalid(reply, request, 'CallStatus is required');
      const result = await services.statusRecorder.record({
        callSid: params.data.CallSid,
        status: params.data.CallStatus,
        sequenceNumber: params.data.SequenceNumber,
        durationSeconds: params.data.CallDuration,
        timestamp: params.data.Timestamp,
        from: params.data.From,
        to: params.data.To,
        accountSid: params.data.AccountSid,
        direction: params.data.Direction,
        payload: flatten(request.body),
      });
      logger.info({ callSid: params.data.CallSid, status: params.data.CallStatus, duplicate: result.duplicate }, 'call status');
      return sendTwiml(reply, emptyTwiml());
    });
  }
}

function callInfo(params: CallParams): CallInfo {
  return {
    callSid: params.CallSid,
    accountSid: params.AccountSid,
    from: params.From,
    to: params.To,
    direction: params.Direction,
    status: params.CallStatus,
  };
}

function callerInput(params: GatherParams): CallerInput {
  if (params.Digits) return { kind: 'dtmf', digits: params.Digits };
  const text = params.SpeechResult?.trim();
  if (!text) return { kind: 'silence' };
  return { kind: 'speech', text, confidence: params.Confidence };
}

async function profileOf(services: Services, params: CallParams): Promise<AssistantProfile> {
  const call = await services.repository.getCall(params.CallSid);
  return services.engine.profileFor(call, params.To);
}

function readTo(body: unknown): string | undefined {
  const to = (body as Record<string, unknown> | undefined)?.To;
  return typeof to === 'string' ? to : undefined;
}

function flatten(body: unknown): Record<string, string> {
  const result: Record<string, string> = {};
  for (const [key, value] of Object.entries((body as Record<string, unknown>) ?? {})) {
    result[key] = Array.isArray(value) ? String(value[0]) : String(value);
  }
  return result;
}

function firstIssue(error: { issues: Array<{ path: PropertyKey[]; message: string }> }): string {
  const issue = error.issues[0];
  return issue ? `${String(issue.path[0] ?? 'body')}: ${issue.message}` : 'invalid request';
}

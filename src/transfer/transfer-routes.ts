import type { FastifyInstance, FastifyReply } from 'fastify';
import { z } from 'zod';
import type { TransferSettings } from '../assistant/telephony-settings.js';
import type { Services } from '../services.js';
import { replyTwiml, type DialNext } from '../twilio/reply-twiml.js';
import { twilioSignatureGuard } from '../twilio/signature-guard.js';
import { spokenLine } from '../twilio/spoken-twiml.js';
import { callParamsSchema, gatherParamsSchema } from '../twilio/webhook-params.js';

const transferEndedRoute = '/twilio/transfer-ended';
const transferMessageRoute = '/twilio/transfer-message';

/** The `<Dial action>` of the hand-off made in turn `turnId`. */
export function transferEndedPath(turnId: number): string {
  return `${transferEndedRoute}?turn=${turnId}`;
}

/** The `<Dial>` that hands a call to the profile's number. */
export function transferDial(settings: TransferSettings, actionUrl: string): DialNext {
  return { kind: 'dial', number: settings.number, actionUrl, timeoutSeconds: settings.timeoutSeconds, callerId: settings.callerId };
}

const first = (value: unknown) => (Array.isArray(value) ? value[0] : value);
const dialParamsSchema = callParamsSchema.extend({
  DialCallStatus: z.preprocess(first, z.string().max(32).optional().catch(undefined)),
  DialCallSid: z.preprocess(first, z.string().max(64).optional().catch(undefined)),
  DialCallDuration: z.preprocess(first, z.coerce.number().int().min(0).optional().catch(undefined)),
});
const turnQuery = z.object({ turn: z.coerce.number().int().min(1) });
const transferQuery = z.object({ transfer: z.coerce.number().int().min(1) });

/** A `<Dial>` that reached the person: the call is theirs now, and ends when they hang up. */
const connectedStatuses = new Set(['completed', 'answered']);

/**
 * After a hand-off: Twilio posts the `<Dial>`'s outcome. Answered → the
 * call is over for the assistant. Busy, no answer, failed → the assistant
 * says nobody is available and listens once more; what the caller says is
 * kept as their message (on the transfer, and in the call's details).
 */
export async function registerTransferRoutes(app: FastifyInstance, services: Services): Promise<void> {
  const { config, engine, transfers, repository } = services;
  const guard = twilioSignatureGuard({ authToken: services.twilioAuthToken, publicUrl: config.publicUrl, enabled: config.twilio.validateSignature });
  const url = (path: string) => `${config.publicUrl}${path}`;
  const sendTwiml = (reply: FastifyReply, twiml: string) => reply.code(200).type('text/xml; charset=utf-8').send(twiml);
  const hangup = (reply: FastifyReply, profile: Parameters<typeof replyTwiml>[0]['profile']) =>
    sendTwiml(reply, replyTwiml({ profile, segments: [], audioUrl: url, next: { kind: 'hangup' } }));

  app.post(transferEndedRoute, { preHandler: guard }, async (request, reply) => {
    const params = dialParamsSchema.safeParse(request.body ?? {});
    const query = turnQuery.safeParse(request.query ?? {});
    if (!params.success || !query.success) return reply.code(400).send({ error: { code: 'invalid_request', message: 'CallSid and turn are required', requestId: request.id } });
    const call = await repository.getCall(params.data.CallSid);
    const profile = engine.profileFor(call, params.data.To);
    const transfer = await transfers.forTurn(query.data.turn);
    if (!transfer || transfer.call_id !== params.data.CallSid) {
      request.log.warn({ callSid: params.data.CallSid, turn: query.data.turn }, 'a dial ended for no known transfer of this call');
      return hangup(reply, profile);
    }
    const status = (params.data.DialCallStatus ?? 'failed').toLowerCase();
    await transfers.finishDial(transfer.transfer_id, { status, dialCallSid: params.data.DialCallSid, durationSeconds: params.data.DialCallDuration });
    request.log.info({ callSid: transfer.call_id, transferId: transfer.transfer_id, status }, 'transfer ended');
    if (connectedStatuses.has(status) || !profile.transfer) return hangup(reply, profile);
    const line = await spokenLine(services.renderer, profile, profile.transfer.unavailableLine);
    return sendTwiml(
      reply,
      replyTwiml({
        profile,
        segments: [line],
        audioUrl: (filename) => url(`/audio/${filename}`),
        next: { kind: 'listen', actionUrl: url(`${transferMessageRoute}?transfer=${transfer.transfer_id}`) },
      }),
    );
  });

  app.post(transferMessageRoute, { preHandler: guard }, async (request, reply) => {
    const params = gatherParamsSchema.safeParse(request.body ?? {});
    const query = transferQuery.safeParse(request.query ?? {});
    if (!params.success || !query.success) return reply.code(400).send({ error: { code: 'invalid_request', message: 'CallSid and transfer are required', requestId: request.id } });
    const call = await repository.getCall(params.data.CallSid);
    const profile = engine.profileFor(call, params.data.To);
    const transfer = await transfers.get(query.data.transfer);
    if (!call || !transfer || transfer.call_id !== call.call_id) return hangup(reply, profile);
    const message = (params.data.SpeechResult ?? params.data.Digits ?? '').trim();
    const closing = message && profile.transfer ? profile.transfer.messageTakenLine : profile.phrases.goodbye;
    if (message) {
      await transfers.takeMessage(transfer.transfer_id, message);
      await repository.mergeDetails(call.call_id, { message });
    }
    // Kept as a turn, so the message and the goodbye are in the conversation like any other exchange.
    const { turn, created } = await repository.claimTurn({
      callId: call.call_id,
      seq: await repository.nextTurnSeq(call.call_id),
      kind: message ? 'speech' : 'silence',
      userText: message || undefined,
      confidence: params.data.Confidence,
      assistantMode: call.assistant_mode,
      receivedAt: new Date(),
    });
    const line = await spokenLine(services.renderer, profile, closing);
    if (created) {
      await repository.finishTurn(turn.turn_id, {
        assistantText: closing,
        action: 'hangup',
        status: 'completed',
        toolCalls: [],
        promptTokens: 0,
        completionTokens: 0,
        ttsCharacters: 0,
        completedAt: new Date(),
      });
    }
    return sendTwiml(reply, replyTwiml({ profile, segments: [line], audioUrl: (filename) => url(`/audio/${filename}`), next: { kind: 'hangup' } }));
  });
}

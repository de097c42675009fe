import type { FastifyInstance, FastifyReply } from 'fastify';
import { z } from 'zod';
import type { Services } from '../services.js';
import { replyTwiml } from '../twilio/reply-twiml.js';
import { twilioSignatureGuard } from '../twilio/signature-guard.js';
import { spokenLine } from '../twilio/spoken-twiml.js';
import { callParamsSchema } from '../twilio/webhook-params.js';
import { outboundAnswerRoute } from './outbound-dialer.js';

const first = (value: unknown) => (Array.isArray(value) ? value[0] : value);
const answerParamsSchema = callParamsSchema.extend({
  AnsweredBy: z.preprocess(first, z.string().max(32).optional().catch(undefined)),
});

/** `AnsweredBy` values after which a message is left (with `DetectMessageEnd`, Twilio has waited for the beep). */
const machineAnswers = new Set(['machine_end_beep', 'machine_end_silence', 'machine_end_other', 'machine_start']);

/**
 * The answer webhook of a call this server placed. A machine gets the
 * purpose's voicemail message, then a hang-up; a fax is hung up on; a person
 * (or `unknown`, which is mostly a person who said nothing yet) gets the
 * conversation, opened with the purpose's greeting: the call is stored with
 * its profile and handed to the usual incoming route.
 */
export async function registerOutboundRoutes(app: FastifyInstance, services: Services): Promise<void> {
  const { config, engine, repository } = services;
  const guard = twilioSignatureGuard({ authToken: services.twilioAuthToken, publicUrl: config.publicUrl, enabled: config.twilio.validateSignature });
  const url = (path: string) => `${config.publicUrl}${path}`;
  const sendTwiml = (reply: FastifyReply, twiml: string) => reply.code(200).type('text/xml; charset=utf-8').send(twiml);

  app.post<{ Params: { outboundId: string } }>(outboundAnswerRoute, { preHandler: guard }, async (request, reply) => {
    const params = answerParamsSchema.safeParse(request.body ?? {});
    if (!params.success) return reply.code(400).send({ error: { code: 'invalid_request', message: 'CallSid is required', requestId: request.id } });
    const outbound = /^[A-Za-z0-9_-]{16,64}$/.test(request.params.outboundId) ? await services.outboundCalls.get(request.params.outboundId) : undefined;
    const fallbackProfile = services.profiles.defaultProfile;
    if (!outbound || (outbound.call_id && outbound.call_id !== params.data.CallSid)) {
      request.log.warn({ callSid: params.data.CallSid }, 'answer webhook for no known outbound call');
      return sendTwiml(reply, replyTwiml({ profile: fallbackProfile, segments: [], audioUrl: url, next: { kind: 'hangup' } }));
    }
    const answeredBy = params.data.AnsweredBy?.toLowerCase();
    const kind = answeredBy === 'fax' ? 'fax' : answeredBy && machineAnswers.has(answeredBy) ? 'machine' : 'human';
    await services.outboundCalls.markAnswered(outbound.outbound_id, params.data.CallSid, kind, answeredBy);
    const call = await engine.registerCall({
      callSid: params.data.CallSid,
      accountSid: params.data.AccountSid,
      from: params.data.From,
      to: params.data.To,
      direction: params.data.Direction ?? 'outbound-api',
      status: params.data.CallStatus,
      profileId: outbound.profile_id,
    });
    const profile = engine.profileFor(call);
    request.log.info({ callSid: call.call_id, outboundId: outbound.outbound_id, answeredBy }, 'outbound call answered');

    if (kind === 'human') {
      // The usual entry runs the greeting turn; the call is stored already, so it keeps this profile and its purpose.
      const twiml = replyTwiml({ profile, segments: [], audioUrl: url, next: { kind: 'continue', url: url('/twilio/incoming') } });
      return sendTwiml(reply, twiml);
    }
    if (kind === 'fax') {
      await repository.updateCallState(call.call_id, { outcome: 'fax' });
      return sendTwiml(reply, replyTwiml({ profile, segments: [], audioUrl: url, next: { kind: 'hangup' } }));
    }
    // The message is the call's one turn, so it shows in the conversation and its audio follows the call's retention.
    const { turn, created } = await repository.claimTurn({ callId: call.call_id, seq: 0, kind: 'greeting', assistantMode: 'scripted', receivedAt: new Date() });
    const line = await spokenLine(services.renderer, profile, outbound.voicemail, { callId: call.call_id, turnId: turn.turn_id });
    if (created) {
      await repository.finishTurn(turn.turn_id, {
        assistantText: outbound.voicemail,
        action: 'hangup',
        status: 'completed',
        toolCalls: [],
        promptTokens: 0,
        completionTokens: 0,
        ttsCharacters: line.filename ? outbound.voicemail.length : 0,
        completedAt: new Date(),
      });
      await repository.updateCallState(call.call_id, { outcome: 'voicemail' });
    }
    return sendTwiml(reply, replyTwiml({ profile, segments: [line], audioUrl: (filename) => url(`/audio/${filename}`), next: { kind: 'hangup' } }));
  });
}

import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { Services } from '../services.js';
import { emptyTwiml } from '../twilio/reply-twiml.js';
import { twilioSignatureGuard } from '../twilio/signature-guard.js';

/** Where Twilio reports each step of a call recording (`recordingStatusCallback`). */
export const recordingStatusPath = '/twilio/recording-status';

const first = (value: unknown) => (Array.isArray(value) ? value[0] : value);
const text = (max: number) => z.preprocess(first, z.string().max(max).optional().catch(undefined));
const number = z.preprocess(first, z.coerce.number().int().optional().catch(undefined));

const recordingCallbackSchema = z.object({
  AccountSid: text(64),
  CallSid: z.preprocess(first, z.string().regex(/^CA[0-9a-fA-F]{32}$/, 'CallSid must be CA followed by 32 hexadecimal characters')),
  RecordingSid: z.preprocess(first, z.string().regex(/^RE[0-9a-fA-F]{32}$/, 'RecordingSid must be RE followed by 32 hexadecimal characters')),
  RecordingStatus: z.preprocess(first, z.enum(['in-progress', 'completed', 'absent', 'failed', 'paused', 'stopped'])),
  RecordingUrl: text(1000),
  RecordingDuration: number,
  RecordingChannels: number,
  RecordingSource: text(64),
  RecordingStartTime: text(64),
});

/** Twilio's recording status callbacks: signed like every webhook, stored, and the finished audio fetched. */
export async function registerRecordingRoutes(app: FastifyInstance, services: Services): Promise<void> {
  const guard = twilioSignatureGuard({
    authToken: services.twilioAuthToken,
    publicUrl: services.config.publicUrl,
    enabled: services.config.twilio.validateSignature,
  });

  app.post(recordingStatusPath, { preHandler: guard }, async (request, reply) => {
    const parsed = recordingCallbackSchema.safeParse(request.body ?? {});
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      return reply.code(400).send({ error: { code: 'invalid_request', message: `${String(issue?.path[0] ?? 'body')}: ${issue?.message}`, requestId: request.id } });
    }
    const params = parsed.data;
    const startedAt = params.RecordingStartTime ? new Date(params.RecordingStartTime) : undefined;
    const known = await services.recordings.record({
      accountSid: params.AccountSid,
      callSid: params.CallSid,
      recordingSid: params.RecordingSid,
      status: params.RecordingStatus,
      recordingUrl: params.RecordingUrl,
      durationSeconds: params.RecordingDuration,
      channels: params.RecordingChannels,
      source: params.RecordingSource,
      startedAt: startedAt && !Number.isNaN(startedAt.getTime()) ? startedAt : undefined,
    });
    request.log.info({ callSid: params.CallSid, recordingSid: params.RecordingSid, status: params.RecordingStatus, known }, 'recording status');
    return reply.code(200).type('text/xml; charset=utf-8').send(emptyTwiml());
  });
}

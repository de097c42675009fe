import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { HttpError } from '../errors.js';
import type { Services } from '../services.js';
import { OutboundCallError } from './outbound-dialer.js';

const outboundBodySchema = z.object({
  to: z.string().max(20),
  profile: z.string().max(64).optional(),
  purpose: z.string().max(40),
  details: z.string().max(300).optional(),
  from: z.string().max(20).optional(),
});

/**
 * `POST /api/calls`: places a call (admin-authenticated like the rest of
 * `/api`). Answers 201 with the stored call once Twilio accepted it; the
 * conversation or the voicemail happens after, over the usual webhooks.
 */
export async function registerOutboundApiRoutes(app: FastifyInstance, services: Services): Promise<void> {
  app.post('/api/calls', async (request, reply) => {
    const body = outboundBodySchema.safeParse(request.body ?? {});
    if (!body.success) {
      const issue = body.error.issues[0];
      const field = String(issue?.path[0] ?? 'body');
      throw new HttpError('invalid_request', `${field}: ${issue?.message ?? 'invalid'}`, { field });
    }
    try {
      const placed = await services.outboundDialer.place(body.data);
      return reply.code(201).send({
        outboundId: placed.outbound_id,
        callSid: placed.call_id,
        status: placed.status,
        to: placed.to_number,
        from: placed.from_number,
        profile: placed.profile_id,
        purpose: placed.purpose,
        greeting: placed.greeting,
        voicemail: placed.voicemail,
      });
    } catch (error) {
      if (error instanceof OutboundCallError) throw new HttpError(error.code, error.message, error.field ? { field: error.field } : undefined);
      throw error;
    }
  });
}

import { LogController, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';

const callSidPattern = /^CA[0-9a-fA-F]{32}$/;
const mediaStreamRoute = '/twilio/media/:token';

/** Twilio's routes: the webhooks of both route sets and the media-stream upgrade. */
export function isTwilioRoute(route: string | undefined): boolean {
  return route !== undefined && (route.startsWith('/twilio/') || route === '/voice' || route.startsWith('/voice/') || route === '/status');
}

/**
 * Request log lines that belong to a call carry its CallSid. Twilio puts the
 * CallSid in the form body, which is parsed after Fastify's "incoming
 * request" line, so for Twilio's routes that line is left out and the one
 * "request completed" line (method, URL, status, time) is written with the
 * request's logger once the CallSid is bound to it. A media stream's URL
 * carries its one-time token, which is not logged.
 */
export class CallLogController extends LogController {
  override incomingRequest(request: FastifyRequest, reply: FastifyReply): void {
    if (!isTwilioRoute(request.routeOptions.url)) super.incomingRequest(request, reply);
  }

  override requestCompleted(error: Error | null | undefined, request: FastifyRequest, reply: FastifyReply): void {
    const route = request.routeOptions.url;
    if (!isTwilioRoute(route)) return super.requestCompleted(error, request, reply);
    const req = { method: request.method, url: route === mediaStreamRoute ? '/twilio/media/[token]' : request.url, remoteAddress: request.ip };
    const line = { req, res: { statusCode: reply.statusCode }, responseTime: reply.elapsedTime };
    if (error) reply.log.error({ ...line, err: error }, 'request errored');
    else reply.log.info(line, 'request completed');
  }
}

/**
 * Binds the CallSid Twilio sent (when it is one) to the request's logger, so
 * everything logged while answering — a refused signature included — says
 * which call it was about.
 */
export function registerCallSidBinding(app: FastifyInstance): void {
  app.addHook('preHandler', async (request, reply) => {
    if (!isTwilioRoute(request.routeOptions.url)) return;
    const body = request.body as Record<string, unknown> | undefined;
    const callSid = body && typeof body === 'object' ? body.CallSid : undefined;
    if (typeof callSid !== 'string' || !callSidPattern.test(callSid)) return;
    const log = request.log.child({ callSid });
    request.log = log;
    reply.log = log;
  });
}

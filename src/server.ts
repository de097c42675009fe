import formbody from '@fastify/formbody';
import websocket from '@fastify/websocket';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import { randomUUID } from 'node:crypto';
import { registerAdminRoutes } from './admin/admin-routes.js';
import { registerAudioRoutes } from './http/audio-routes.js';
import { CallLogController, isTwilioRoute, registerCallSidBinding } from './http/call-log-controller.js';
import { registerErrorHandler } from './http/error-handler.js';
import { registerHealthRoutes } from './http/health-routes.js';
import { registerRateLimits } from './http/rate-limits.js';
import { registerSecurityHeaders } from './http/security-headers.js';
import { registerTtsRoutes } from './http/tts-routes.js';
import type { Services } from './services.js';
import { registerWebhookRoutes } from './twilio/webhook-routes.js';
import { registerTelephonyRoutes } from './twilio/telephony-routes.js';
import { registerMediaStreamRoute } from './twilio/media-stream-route.js';

/** How long a media stream's peer has to answer the close handshake at shutdown. */
const websocketCloseGraceMs = 2_000;

/** Builds the HTTP server with every route; it does not listen. */
export async function buildServer(services: Services): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: services.logger as FastifyBaseLogger,
    bodyLimit: 256 * 1024,
    genReqId: (request) => {
      const given = request.headers['x-request-id'];
      return typeof given === 'string' && /^[\w-]{1,64}$/.test(given) ? given : randomUUID();
    },
    return503OnClosing: true,
    logController: new CallLogController(),
  });
  registerSecurityHeaders(app, { publicUrl: services.config.publicUrl });
  await registerRateLimits(app, services.config.rateLimits);
  registerCallSidBinding(app);
  // Twilio posts its webhooks as forms; a repeated field becomes an array, which the schemas handle.
  await app.register(formbody, { bodyLimit: 64 * 1024 });
  // Twilio's media messages are small JSON texts; anything bigger is not Twilio.
  await app.register(websocket, {
    options: { maxPayload: 64 * 1024 },
    // A socket error is the peer's (an oversized or broken frame): ws has already begun the close handshake
    // with the code that says why (1009, 1007…); the default handler would cut the connection before it is sent.
    errorHandler: (error, socket, request) => {
      request.log.warn({ err: error }, 'websocket error');
      if (socket.readyState === socket.OPEN) socket.close(1011, 'server error');
    },
    // At shutdown every socket still open is asked to close; one whose peer never answers the close
    // handshake is cut after a moment, instead of holding the shutdown for ws's 30 s close timeout.
    preClose(done) {
      const clients = [...this.websocketServer.clients];
      for (const client of clients) client.close(1001, 'server shutting down');
      setTimeout(() => {
        for (const client of clients) client.terminate();
      }, websocketCloseGraceMs).unref();
      done();
    },
  });
  app.addHook('onResponse', async (request, reply) => {
    const route = request.routeOptions.url;
    if (route && isTwilioRoute(route)) {
      services.metrics.webhookAnswered(route, reply.statusCode, reply.elapsedTime / 1000);
    }
  });
  registerErrorHandler(app);
  await registerHealthRoutes(app, services);
  await registerWebhookRoutes(app, services);
  await registerTelephonyRoutes(app, services);
  await registerTtsRoutes(app, services);
  await registerAudioRoutes(app, services);
  await registerAdminRoutes(app, services);
  await registerMediaStreamRoute(app, services);
  return app;
}

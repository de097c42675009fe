import formbody from '@fastify/formbody';
import websocket from '@fastify/websocket';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import { randomUUID } from 'node:crypto';
import { registerAdminRoutes } from './admin/admin-routes.js';
import { registerAudioRoutes } from './http/audio-routes.js';
import { registerErrorHandler } from './http/error-handler.js';
import { registerHealthRoutes } from './http/health-routes.js';
import { registerTtsRoutes } from './http/tts-routes.js';
import type { Services } from './services.js';
import { registerWebhookRoutes } from './twilio/webhook-routes.js';
import { registerMediaStreamRoute } from './twilio/media-stream-route.js';

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
  });
  // Twilio posts its webhooks as forms; a repeated field becomes an array, which the schemas handle.
  await app.register(formbody, { bodyLimit: 64 * 1024 });
  // Twilio's media messages are small JSON texts; anything bigger is not Twilio.
  await app.register(websocket, { options: { maxPayload: 64 * 1024 } });
  app.addHook('onSend', async (_request, reply, payload) => {
    reply.header('X-Content-Type-Options', 'nosniff');
    reply.header('Referrer-Policy', 'no-referrer');
    return payload;
  });
  app.addHook('onResponse', async (request, reply) => {
    const route = request.routeOptions.url;
    if (route && (route.startsWith('/twilio/') || route.startsWith('/voice') || route === '/status')) {
      services.metrics.webhookAnswered(route, reply.statusCode, reply.elapsedTime / 1000);
    }
  });
  registerErrorHandler(app);
  await registerHealthRoutes(app, services);
  await registerWebhookRoutes(app, services);
  await registerTtsRoutes(app, services);
  await registerAudioRoutes(app, services);
  await registerAdminRoutes(app, services);
  await registerMediaStreamRoute(app, services);
  return app;
}

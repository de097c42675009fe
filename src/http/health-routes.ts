import type { FastifyInstance } from 'fastify';
import type { Services } from '../services.js';
import { metricsAccessGuard } from './metrics-access.js';

/**
 * `/healthz`: the process answers. `/readyz`: it can also reach its database.
 * `/metrics`: Prometheus metrics, for the admin token or `API_TOKEN` (see metrics-access.ts).
 */
export async function registerHealthRoutes(app: FastifyInstance, services: Services): Promise<void> {
  app.get('/healthz', async () => ({ status: 'ok' }));
  app.get('/readyz', async (request, reply) => {
    try {
      await services.database.ping();
      return { status: 'ready', database: services.database.kind };
    } catch (error) {
      request.log.warn({ err: error }, 'database is not reachable');
      return reply.code(503).send({ status: 'not-ready', database: services.database.kind, error: { code: 'not_ready', message: 'the database is not reachable' } });
    }
  });
  app.get('/metrics', { preHandler: metricsAccessGuard(services.config) }, async (_request, reply) => {
    const { contentType, body } = await services.metrics.render();
    return reply.type(contentType).send(body);
  });
}

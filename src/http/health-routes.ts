import type { FastifyInstance } from 'fastify';
import type { Services } from '../services.js';

/** `/healthz`: the process answers. `/readyz`: it can also reach its database. */
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
}

import type { FastifyInstance } from 'fastify';
import { registerOutboundRoutes } from '../outbound/outbound-routes.js';
import { registerRecordingRoutes } from '../recordings/recording-routes.js';
import type { Services } from '../services.js';
import { registerTransferRoutes } from '../transfer/transfer-routes.js';

/** Twilio's callbacks beyond the conversation itself: recordings, hand-offs to a person, and calls this server placed. */
export async function registerTelephonyRoutes(app: FastifyInstance, services: Services): Promise<void> {
  await registerRecordingRoutes(app, services);
  await registerTransferRoutes(app, services);
  await registerOutboundRoutes(app, services);
}

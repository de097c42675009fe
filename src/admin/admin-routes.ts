import cookie from '@fastify/cookie';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { registerDashboardRoutes } from '../dashboard/dashboard-routes.js';
import { LiveFeed } from '../dashboard/live-feed.js';
import { refusalPage } from '../dashboard/login-page.js';
import { HttpError } from '../errors.js';
import type { Services } from '../services.js';
import { AdminAccess, type AdminPrincipal } from './admin-access.js';
import { registerAdminApiRoutes } from './admin-api-routes.js';
import { registerTelephonyAdminRoutes } from './telephony-views.js';
import { registerReservationApiRoutes } from './reservation-api-routes.js';
import { registerReservationDashboardRoutes } from '../dashboard/reservation-dashboard-routes.js';
import { registerStaffTestRoutes } from '../staff/staff-test-routes.js';
import { liveWindowHours, type AdminContext } from './admin-context.js';
import { AdminRepository } from './admin-repository.js';
import { cookieSigningKey, CookieSigner } from './admin-session.js';
import { CallViews } from './call-views.js';
import { LoginThrottle } from './login-throttle.js';
import { loadPriceTable } from './pricing.js';

/** Routes anyone may reach: the login form and the static files it needs. */
const publicRoutes = new Set(['/dashboard/login', '/dashboard/assets/:file']);

/**
 * Only this server's own scripts, styles, images and media; no framing; forms
 * post only here. `Referrer-Policy: same-origin` (instead of the server-wide
 * no-referrer) lets the browser send a real `Origin` with the dashboard's own
 * POSTs: under no-referrer it sends `Origin: null`.
 */
const securityHeaders = {
  'Content-Security-Policy':
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; media-src 'self'; connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'",
  'X-Frame-Options': 'DENY',
  'Referrer-Policy': 'same-origin',
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Resource-Policy': 'same-origin',
  'Permissions-Policy': 'camera=(), microphone=(), geolocation=()',
};

/**
 * The operator's dashboard (`/dashboard/*`) and its JSON API (`/api/*`,
 * described by `/api/openapi.json`), behind one access check: a session from
 * the login page or `ADMIN_TOKEN` in a header; without credentials
 * configured, this machine only. Every state-changing request carries a CSRF
 * token and comes from this server's own pages.
 */
export async function registerAdminRoutes(app: FastifyInstance, services: Services): Promise<void> {
  const { config } = services;
  const prices = await loadPriceTable(config.admin.pricingFile);
  const access = new AdminAccess(config.admin, config.publicUrl, new CookieSigner(await cookieSigningKey(config.admin, config.dataDir)));
  const repository = new AdminRepository(services.database);
  const views = new CallViews({ profiles: services.profiles, defaultChatModel: config.openai.chatModel, prices, maskPhoneNumbers: config.admin.maskPhoneNumbers });
  const principals = new WeakMap<FastifyRequest, AdminPrincipal>();
  const context: AdminContext = {
    services,
    access,
    repository,
    views,
    prices,
    liveFeed: new LiveFeed({
      load: async () => (await repository.listLiveCalls(liveWindowHours)).map((row) => views.live(row)),
      intervalMs: 1_000,
      logger: services.logger,
    }),
    liveStreams: new Set(),
    loginThrottle: new LoginThrottle({ maxFailures: 10, windowMs: 10 * 60_000 }),
    principal: (request) => principals.get(request),
  };

  // Event streams never end on their own: close them, or closing the server would wait for them forever.
  app.addHook('preClose', async () => {
    context.liveFeed.close();
    for (const stop of [...context.liveStreams]) stop();
  });

  await app.register(async (scope) => {
    await scope.register(cookie);

    scope.addHook('onRequest', async (request, reply) => {
      if (publicRoutes.has(request.routeOptions.url ?? '')) return;
      const result = access.authenticate(request);
      if (typeof result !== 'string') {
        principals.set(request, result);
        return;
      }
      return refuse(request, reply, result);
    });

    scope.addHook('preHandler', async (request, reply) => {
      if (['GET', 'HEAD', 'OPTIONS'].includes(request.method)) return;
      try {
        access.checkStateChange(request, principals.get(request));
      } catch (error) {
        if (!(error instanceof HttpError) || answersJson(request.url)) throw error;
        return reply.code(error.status).type('text/html; charset=utf-8').send(refusalPage(error.message, 'Request refused'));
      }
    });

    scope.addHook('onSend', async (request, reply, payload) => {
      for (const [name, value] of Object.entries(securityHeaders)) reply.header(name, value);
      if (request.routeOptions.url !== '/dashboard/assets/:file') reply.header('Cache-Control', 'no-store');
      return payload;
    });

    await registerAdminApiRoutes(scope, context);
    await registerTelephonyAdminRoutes(scope, context);
    await registerDashboardRoutes(scope, context);
    await registerReservationApiRoutes(scope, context);
    await registerReservationDashboardRoutes(scope, context);
    await registerStaffTestRoutes(scope, context);
  });
}

/** The admin API and the staff test endpoints answer refusals in JSON; dashboard pages in HTML. */
function answersJson(url: string): boolean {
  return url.startsWith('/api/') || url.startsWith('/mvp/');
}

async function refuse(request: FastifyRequest, reply: FastifyReply, reason: 'unauthenticated' | 'not-local' | 'bad-credentials') {
  const api = answersJson(request.url);
  if (reason === 'not-local') {
    const message = 'ADMIN_TOKEN (or ADMIN_USERNAME and ADMIN_PASSWORD) is not set, so the dashboard only answers requests from this machine';
    if (api) throw new HttpError('forbidden', message);
    return reply.code(403).type('text/html; charset=utf-8').send(refusalPage(message));
  }
  if (api || request.method !== 'GET') {
    reply.header('WWW-Authenticate', 'Bearer realm="callme admin"');
    throw new HttpError('unauthorized', reason === 'bad-credentials' ? 'the credentials in the Authorization header are wrong' : 'sign in at /dashboard/login, or send "Authorization: Bearer <ADMIN_TOKEN>"');
  }
  const next = request.url.startsWith('/dashboard') ? request.url : '/dashboard';
  return reply.redirect(`/dashboard/login?next=${encodeURIComponent(next)}`, 303);
}

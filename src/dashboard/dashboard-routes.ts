import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { loadAnalytics, loadAssistants, loadCallDetail, loadCallPage } from '../admin/admin-api-routes.js';
import type { AdminContext } from '../admin/admin-context.js';
import { HttpError } from '../errors.js';
import { analyticsPage } from './analytics-page.js';
import { assistantsPage } from './assistants-page.js';
import { callPage } from './call-page.js';
import { callsPage, type CallFilterForm } from './calls-page.js';
import { livePage } from './live-page.js';
import { talkPage } from './talk-page.js';
import { loginPage, refusalPage } from './login-page.js';

interface Asset {
  body: Buffer;
  type: string;
  etag: string;
}

const assetsDirectory = path.join(path.dirname(fileURLToPath(import.meta.url)), 'assets');
const ownAssets: Record<string, string> = {
  'dashboard.css': 'text/css; charset=utf-8',
  'dashboard.js': 'text/javascript; charset=utf-8',
  'calls.js': 'text/javascript; charset=utf-8',
  'analytics.js': 'text/javascript; charset=utf-8',
  'live.js': 'text/javascript; charset=utf-8',
  'talk.js': 'text/javascript; charset=utf-8',
  'favicon.svg': 'image/svg+xml',
};

/** The dashboard's files, read once: its own, and Chart.js's UMD build from node_modules (no CDN: the server works offline). */
async function loadAssets(): Promise<Map<string, Asset>> {
  const assets = new Map<string, Asset>();
  const add = (name: string, body: Buffer, type: string) =>
    assets.set(name, { body, type, etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"` });
  for (const [name, type] of Object.entries(ownAssets)) add(name, await readFile(path.join(assetsDirectory, name)), type);
  const chartEntry = createRequire(import.meta.url).resolve('chart.js');
  add('chart.umd.min.js', await readFile(path.join(path.dirname(chartEntry), 'chart.umd.min.js')), 'text/javascript; charset=utf-8');
  return assets;
}

/** Only a dashboard path is a place to go after signing in: never another site. */
function safeNext(next: unknown): string {
  return typeof next === 'string' && /^\/dashboard(\/[\w\-/.%?=&]*)?$/.test(next) && !next.includes('//') && !next.includes('..') ? next : '/dashboard/calls';
}

function sendPage(reply: FastifyReply, page: string, status = 200) {
  return reply.code(status).type('text/html; charset=utf-8').send(page);
}

/** The dashboard's pages under `/dashboard`; every one but the login form needs the access the admin hook grants. */
export async function registerDashboardRoutes(app: FastifyInstance, context: AdminContext): Promise<void> {
  const { access } = context;
  const assets = await loadAssets();
  const pageOptions = (request: FastifyRequest, reply: FastifyReply) => {
    const principal = context.principal(request);
    return { principal, csrfToken: principal?.via === 'session' ? access.csrfToken(request, reply, principal) : undefined };
  };

  app.get('/dashboard', async (_request, reply) => reply.redirect('/dashboard/calls', 302));

  app.get<{ Params: { file: string } }>('/dashboard/assets/:file', async (request, reply) => {
    const asset = assets.get(request.params.file);
    if (!asset) throw new HttpError('not_found', 'no such file');
    reply.header('ETag', asset.etag).header('Cache-Control', 'no-cache');
    if (request.headers['if-none-match'] === asset.etag) return reply.code(304).send();
    return reply.type(asset.type).send(asset.body);
  });

  app.get<{ Querystring: { next?: string } }>('/dashboard/login', async (request, reply) => {
    if (!access.configured) {
      const local = access.authenticate(request);
      if (typeof local !== 'string') return reply.redirect(safeNext(request.query.next), 303);
      return sendPage(reply, refusalPage('No ADMIN_TOKEN (or ADMIN_USERNAME and ADMIN_PASSWORD) is set, so there is nothing to sign in with: the dashboard answers only requests from this machine.'), 403);
    }
    if (typeof access.authenticate(request) !== 'string') return reply.redirect(safeNext(request.query.next), 303);
    return sendPage(reply, loginPage({ acceptsToken: access.acceptsToken, acceptsPassword: access.acceptsPassword, csrfToken: access.csrfToken(request, reply), next: safeNext(request.query.next) }));
  });


  app.post<{ Body: Record<string, string | undefined> }>('/dashboard/login', async (request, reply) => {
    if (!access.configured) return sendPage(reply, refusalPage('No credentials are configured: the dashboard answers only this machine.'), 403);
    const waitMs = context.loginThrottle.retryAfterMs(request.ip);
    if (waitMs > 0) {
      reply.header('Retry-After', String(Math.ceil(waitMs / 1000)));
      return sendPage(reply, refusalPage(`Too many failed sign-ins from this address. Try again in ${Math.ceil(waitMs / 60_000)} minutes.`, 'Slow down'), 429);
    }
    const body = request.body && typeof request.body === 'object' ? request.body : {};
    const subject = access.checkLogin({ token: body.token, username: body.username, password: body.password });
    if (!subject) {
      context.loginThrottle.recordFailure(request.ip);
      request.log.warn({ ip: request.ip }, 'dashboard sign-in refused');
      const page = loginPage({
        acceptsToken: access.acceptsToken,
        acceptsPassword: access.acceptsPassword,
        csrfToken: access.csrfToken(request, reply),
        next: safeNext(body.next),
        error: access.acceptsPassword ? 'Wrong username, password or token.' : 'Wrong token.',
      });
      return sendPage(reply, page, 401);
    }
    access.startSession(reply, subject);
    return reply.redirect(safeNext(body.next), 303);
  });

  app.post('/dashboard/logout', async (_request, reply) => {
    access.endSession(reply);
    return reply.redirect('/dashboard/login', 303);
  });

  app.get<{ Querystring: CallFilterForm & { page?: string } }>('/dashboard/calls', async (request, reply) => {
    const { page: _page, ...form } = request.query;
    try {
      return sendPage(reply, callsPage({ page: await loadCallPage(context, request.query), form, ...pageOptions(request, reply) }));
    } catch (error) {
      if (!(error instanceof HttpError) || error.code !== 'invalid_request') throw error;
      return sendPage(reply, callsPage({ form, error: error.message, ...pageOptions(request, reply) }), 400);
    }
  });

  app.get<{ Params: { callSid: string } }>('/dashboard/calls/:callSid', async (request, reply) => {
    try {
      return sendPage(reply, callPage(await loadCallDetail(context, request.params.callSid), pageOptions(request, reply)));
    } catch (error) {
      if (!(error instanceof HttpError) || error.code !== 'not_found') throw error;
      return sendPage(reply, refusalPage(`There is no call ${request.params.callSid}.`, 'No such call'), 404);
    }
  });

  app.get('/dashboard/analytics', async (request, reply) => {
    const today = new Date().toISOString().slice(0, 10);
    try {
      return sendPage(reply, analyticsPage(await loadAnalytics(context, request.query), { today, ...pageOptions(request, reply) }));
    } catch (error) {
      if (!(error instanceof HttpError) || error.code !== 'invalid_request') throw error;
      return sendPage(reply, refusalPage(error.message, 'Analytics: not a valid range'), 400);
    }
  });

  app.get('/dashboard/live', async (request, reply) => sendPage(reply, livePage(pageOptions(request, reply))));

  app.get<{ Querystring: { profile?: string } }>('/dashboard/talk', async (request, reply) => {
    // The staff endpoints check a CSRF token on every POST, also for local access (which has no session).
    const principal = context.principal(request);
    const csrfToken = access.csrfToken(request, reply, principal);
    const { profiles } = context.services;
    const ordered = [profiles.defaultProfile, ...profiles.all.filter((profile) => profile !== profiles.defaultProfile)];
    return sendPage(reply, talkPage({ principal, csrfToken, profiles: ordered, selected: request.query.profile, canTranscribe: Boolean(context.services.transcriptionModel) }));
  });

  app.get('/dashboard/assistants', async (request, reply) => sendPage(reply, assistantsPage(await loadAssistants(context), pageOptions(request, reply))));
}

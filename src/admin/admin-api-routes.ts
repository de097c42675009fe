import type { FastifyInstance } from 'fastify';
import { HttpError } from '../errors.js';
import type { AdminContext } from './admin-context.js';
import { callSidPattern, parseAnalyticsQuery, parseCallListQuery } from './admin-queries.js';
import { buildAnalyticsReport } from './analytics.js';
import type { CallDetail, CallSummary } from './call-views.js';
import { openApiDocument } from './openapi.js';
import { addCosts, type Cost } from './pricing.js';
import { loadTelephonyDetail } from './telephony-views.js';

/** A page of the calls list. */
export interface CallPage {
  calls: CallSummary[];
  page: number;
  pageSize: number;
  total: number;
  /** What every call the filter matches cost, not only this page's. */
  totalCost: Cost;
}

/** Loads a page of calls (shared by `GET /api/calls` and the calls page). */
export async function loadCallPage(context: AdminContext, query: unknown): Promise<CallPage & { filter: ReturnType<typeof parseCallListQuery>['filter'] }> {
  const { filter, page, pageSize } = parseCallListQuery(query);
  const [{ rows, total }, usage] = await Promise.all([
    context.repository.listCalls(filter, { limit: pageSize, offset: (page - 1) * pageSize }),
    context.repository.usageForFilter(filter),
  ]);
  return {
    filter,
    calls: rows.map((row) => context.views.summary(row)),
    page,
    pageSize,
    total,
    totalCost: addCosts(usage.map((row) => context.views.cost(context.views.usage(row, row.billed_minutes)))),
  };
}

/** Loads one call with its conversation, audio and events; 404 when there is no such call. */
export async function loadCallDetail(context: AdminContext, callSid: string): Promise<CallDetail> {
  if (!callSidPattern.test(callSid)) throw new HttpError('not_found', 'no such call');
  const row = await context.repository.getCall(callSid);
  if (!row) throw new HttpError('not_found', 'no such call');
  const [turns, audio, events] = await Promise.all([
    context.services.repository.listTurns(callSid),
    context.repository.listCallAudio(callSid),
    context.repository.listCallEvents(callSid),
  ]);
  const telephony = await loadTelephonyDetail(context.services, callSid, context.services.config.admin.maskPhoneNumbers);
  return { ...context.views.detail(row, turns, audio, events), ...telephony };
}

export async function loadAnalytics(context: AdminContext, query: unknown) {
  const range = parseAnalyticsQuery(query);
  return buildAnalyticsReport(await context.repository.analytics(range), range, context.views);
}

/** The profiles this server answers with, and how much each was used lately. */
export async function loadAssistants(context: AdminContext) {
  const { profiles, config } = context.services;
  const activity = new Map((await context.repository.profileActivity(30)).map((row) => [row.profile_id, row]));
  const ordered = [profiles.defaultProfile, ...profiles.all.filter((profile) => profile !== profiles.defaultProfile)];
  return ordered.map((profile) => {
    const models = context.views.models(profile.id, profile.mode);
    return {
      id: profile.id,
      name: profile.name,
      isDefault: profile.id === profiles.defaultProfile.id,
      language: profile.language,
      mode: profile.mode,
      speech: profile.speech,
      voice: profile.speech === 'openai' ? profile.voice : profile.pollyVoice ?? null,
      chatModel: profile.chatModel ?? config.openai.chatModel,
      speechModel: models.speechModel ?? null,
      transcriptionModel: models.transcriptionModel ?? null,
      phoneNumbers: profile.phoneNumbers,
      greeting: profile.greeting,
      details: profile.details.map((detail) => ({ name: detail.name, type: detail.type, description: detail.description })),
      maxTurns: profile.maxTurns,
      callsLast30Days: activity.get(profile.id)?.calls ?? 0,
      lastCallAt: activity.get(profile.id)?.last_call_at?.toISOString() ?? null,
    };
  });
}

/** The JSON API under `/api`: the dashboard's data for scripts and other tools. */
export async function registerAdminApiRoutes(app: FastifyInstance, context: AdminContext): Promise<void> {
  app.get('/api/calls', async (request) => {
    const { filter: _filter, ...page } = await loadCallPage(context, request.query);
    return page;
  });

  app.get<{ Params: { callSid: string } }>('/api/calls/:callSid', async (request) => loadCallDetail(context, request.params.callSid));

  app.get('/api/analytics', async (request) => loadAnalytics(context, request.query));

  app.get('/api/live', async () => context.liveFeed.snapshot());

  // No HEAD twin: a HEAD request would hold an event stream open with nothing to send.
  app.get('/api/live/events', { exposeHeadRoute: false }, async (request, reply) => {
    reply.hijack();
    const response = reply.raw;
    response.writeHead(200, {
      'Content-Type': 'text/event-stream; charset=utf-8',
      'Cache-Control': 'no-store',
      'X-Content-Type-Options': 'nosniff',
      // Proxies such as nginx would otherwise hold events back until their buffer fills.
      'X-Accel-Buffering': 'no',
      Connection: 'keep-alive',
    });
    response.write('retry: 3000\n\n');
    const unsubscribe = context.liveFeed.subscribe((snapshot) => {
      response.write(`event: calls\ndata: ${JSON.stringify(snapshot)}\n\n`);
    });
    // A comment line now and then keeps idle connections from being cut by proxies.
    const heartbeat = setInterval(() => response.write(': keep-alive\n\n'), 15_000);
    heartbeat.unref();
    const stop = () => {
      clearInterval(heartbeat);
      unsubscribe();
      if (!response.writableEnded) response.end();
    };
    request.raw.on('close', stop);
    context.liveStreams.add(stop);
    response.on('close', () => context.liveStreams.delete(stop));
  });

  app.get('/api/assistants', async () => ({ assistants: await loadAssistants(context) }));

  app.get('/api/pricing', async () => context.prices);

  app.get('/api/session', async (request, reply) => {
    const principal = context.principal(request);
    return {
      via: principal?.via ?? null,
      subject: principal && 'subject' in principal ? principal.subject : null,
      csrfToken: context.access.csrfToken(request, reply, principal),
      maskPhoneNumbers: context.services.config.admin.maskPhoneNumbers,
    };
  });

  app.get('/api/openapi.json', async () => openApiDocument(context.services.config.publicUrl));
}

import Fastify from 'fastify';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../src/app.js';
import { loadConfig } from '../src/config.js';
import { registerAdminRoutes } from '../src/admin/admin-routes.js';
import { openApiDocument } from '../src/admin/openapi.js';
import { defaultPriceTable, PricingError } from '../src/admin/pricing.js';
import { placeSampleCalls, seededNumbers, writeSeedProfiles, type SampleCalls } from '../src/dashboard/testing/seed-calls.js';
import { startFakeOpenAI, type FakeOpenAI } from '../src/testing/fake-openai-server.js';
import { startTestApp, type TestApp } from '../src/testing/test-app.js';
import { availableDatabaseKinds, openTestDatabase } from '../src/testing/test-databases.js';

/** The server runs on PostgreSQL when it is there (it starts in a tenth of PGlite's time); the queries are tested on both in src/admin. */
const databaseKind = (await availableDatabaseKinds()).includes('postgres') ? 'postgres' : 'pglite';

const adminToken = 'api-test-admin-token-0123456789';

describe('the admin API', () => {
  let openai: FakeOpenAI;
  let server: TestApp;
  let profilesDir: string;
  let calls: SampleCalls;

  beforeAll(async () => {
    profilesDir = await mkdtemp(path.join(tmpdir(), 'callme-profiles-'));
    await writeSeedProfiles(profilesDir);
    openai = await startFakeOpenAI();
    server = await startTestApp(databaseKind, {
      OPENAI_API_KEY: 'sk-test',
      OPENAI_BASE_URL: openai.url,
      AUDIO_RETENTION: 'forever',
      ADMIN_TOKEN: adminToken,
      PROFILES_DIR: profilesDir,
    });
    calls = await placeSampleCalls(server, openai);
  }, 60_000);
  afterAll(async () => {
    await server?.close();
    await openai?.close();
    await rm(profilesDir, { recursive: true, force: true });
  });

  const api = async (url: string) => {
    const response = await fetch(`${server.baseUrl}${url}`, { headers: { authorization: `Bearer ${adminToken}` } });
    return { status: response.status, headers: response.headers, body: (await response.json()) as any };
  };

  describe('happy paths', () => {
    it('lists the calls newest first, each with its outcome, turns and cost, and what they all cost', async () => {
      const { status, body } = await api('/api/calls');
      expect(status).toBe(200);
      expect(body.total).toBe(4);
      expect(body.calls.map((call: any) => call.callSid)[0]).toBe(calls.troubled.callSid);
      const reservation = body.calls.find((call: any) => call.callSid === calls.reservation.callSid);
      expect(reservation).toMatchObject({
        status: 'completed',
        from: '+14155550132',
        to: seededNumbers.restaurant,
        profileId: 'restaurant',
        turns: 3,
        errors: 0,
        outcome: 'details-collected',
        outcomeLabel: 'Details collected',
        usage: { chatModel: 'gpt-4o-mini', speechModel: 'tts-1', billedMinutes: 1 },
      });
      expect(reservation.usage.promptTokens).toBeGreaterThan(0);
      expect(reservation.cost.total).toBeGreaterThan(0);
      expect(reservation.cost.telephony).toBe(defaultPriceTable.telephony.perMinute);
      const sum = body.calls.reduce((total: number, call: any) => total + call.cost.total, 0);
      expect(body.totalCost.total).toBeCloseTo(sum, 5);
    });

    it('pages through the calls', async () => {
      const first = await api('/api/calls?pageSize=3');
      const second = await api('/api/calls?pageSize=3&page=2');
      expect(first.body.calls).toHaveLength(3);
      expect(second.body).toMatchObject({ page: 2, pageSize: 3, total: 4 });
      expect(second.body.calls).toHaveLength(1);
      expect(first.body.calls.map((call: any) => call.callSid)).not.toContain(second.body.calls[0].callSid);
    });

    it('filters by transcript text, number, status, outcome and assistant', async () => {
      const sids = async (query: string) => (await api(`/api/calls?${query}`)).body.calls.map((call: any) => call.callSid).sort();
      expect(await sids('q=VEGAN')).toEqual([calls.question.callSid]);
      expect(await sids('q=programare')).toEqual([calls.clinic.callSid]);
      expect(await sids('number=40721')).toEqual([calls.clinic.callSid]);
      expect(await sids('outcome=details-collected')).toEqual([calls.reservation.callSid, calls.clinic.callSid].sort());
      expect(await sids('status=busy')).toEqual([]);
      expect(await sids('profile=clinica-ro')).toEqual([calls.clinic.callSid]);
      const today = new Date().toISOString().slice(0, 10);
      expect(await sids(`from=${today}&to=${today}`)).toHaveLength(4);
      expect(await sids('to=2020-01-01')).toEqual([]);
    });

    it('gives one call with its conversation, audio, latency, details and status callbacks', async () => {
      const { status, body } = await api(`/api/calls/${calls.reservation.callSid}`);
      expect(status).toBe(200);
      expect(body.details).toEqual({ name: 'Anna', date: 'Friday', time: '19:00', party_size: 4 });
      expect(body.conversation.map((turn: any) => turn.caller?.text ?? null)).toEqual([
        null,
        "Hi, I'd like to book a table for Friday evening",
        'Seven o’clock, four people, under the name Anna',
        "No, that's all, thanks. Bye!",
      ]);
      const second = body.conversation[2];
      expect(second.caller.confidence).toBeCloseTo(0.92, 5);
      expect(second.toolCalls).toEqual([expect.objectContaining({ name: 'save_details' })]);
      expect(second.latency.stages.map((stage: any) => stage.name)).toEqual(['model', 'first-sentence', 'first-audio', 'complete']);
      expect(second.latency.timeToFirstAudioMs).toBeGreaterThanOrEqual(0);
      expect(second.audio.length).toBeGreaterThan(0);
      for (const audio of body.conversation.flatMap((turn: any) => turn.audio)) {
        expect(audio.available).toBe(true);
        const file = await fetch(`${server.baseUrl}${audio.url}`);
        expect(file.status).toBe(200);
        expect(Buffer.from(await file.arrayBuffer()).subarray(0, 4).toString()).toBe('RIFF');
      }
      expect(body.conversation[0].audio[0].shared).toBe(true);
      expect(body.events.map((event: any) => event.status)).toContain('completed');
      expect(body.audioRetention).toEqual({ applied: 'forever', expiresAt: null, deletedAt: null });
    });

    it('shows unclear speech and model failures on the turns they happened in', async () => {
      const { body } = await api(`/api/calls/${calls.troubled.callSid}`);
      expect(body.conversation[1]).toMatchObject({ kind: 'unclear', caller: { text: 'uh… table… maybe' } });
      expect(body.conversation[1].caller.confidence).toBeCloseTo(0.12, 5);
      expect(body.conversation[2]).toMatchObject({ status: 'failed', error: { code: 'provider_unavailable' } });
      expect(body).toMatchObject({ errors: 1, outcome: 'hung-up' });
    });

    it('sums the analytics over the range', async () => {
      const { status, body } = await api('/api/analytics');
      expect(status).toBe(200);
      expect(body.days).toHaveLength(30);
      expect(body.totals).toMatchObject({ calls: 4, endedCalls: 4, failedCalls: 0, billedMinutes: 4 });
      expect(body.callsPerDay.at(-1)).toBe(4);
      expect(body.outcomes.reduce((sum: number, outcome: any) => sum + outcome.calls, 0)).toBe(4);
      expect(body.failureReasons).toEqual([expect.objectContaining({ reason: 'provider_unavailable', count: 1 })]);
      expect(body.confidenceDistribution[1].turns).toBe(1);
      expect(body.totals.timeToFirstAudio.turns).toBeGreaterThanOrEqual(6);
      const list = await api('/api/calls');
      expect(body.totals.cost.total).toBeCloseTo(list.body.totalCost.total, 5);
      expect(body.costPerDay.openai.at(-1) + body.costPerDay.twilio.at(-1)).toBeCloseTo(body.totals.cost.total, 5);
    });

    it('lists calls in progress (none now), the assistants with their numbers, and the prices', async () => {
      expect((await api('/api/live')).body.calls).toEqual([]);
      const assistants = (await api('/api/assistants')).body.assistants;
      expect(assistants.map((assistant: any) => [assistant.id, assistant.isDefault, assistant.phoneNumbers, assistant.callsLast30Days])).toEqual([
        ['restaurant', true, [seededNumbers.restaurant], 3],
        ['clinica-ro', false, [seededNumbers.clinic], 1],
      ]);
      expect((await api('/api/pricing')).body).toEqual(defaultPriceTable);
      expect((await api('/api/session')).body).toMatchObject({ via: 'header', subject: 'token', maskPhoneNumbers: false });
    });

    it('streams calls in progress as server-sent events', async () => {
      const controller = new AbortController();
      const response = await fetch(`${server.baseUrl}/api/live/events`, { headers: { authorization: `Bearer ${adminToken}` }, signal: controller.signal });
      expect(response.headers.get('content-type')).toMatch(/^text\/event-stream/);
      const reader = response.body!.getReader();
      let text = '';
      while (!text.includes('event: calls')) text += new TextDecoder().decode((await reader.read()).value);
      while (!/data: .*\n\n/.test(text)) text += new TextDecoder().decode((await reader.read()).value);
      expect(JSON.parse(/data: (.*)\n/.exec(text)![1])).toMatchObject({ calls: [] });
      controller.abort();
    });

    it('describes every /api route in its OpenAPI document, and nothing else', async () => {
      const { body } = await api('/api/openapi.json');
      expect(body.openapi).toBe('3.1.0');
      const probe = Fastify();
      const routes: string[] = [];
      probe.addHook('onRoute', (route) => {
        if (route.url.startsWith('/api/') && route.method !== 'HEAD') routes.push(route.url.replace(/:(\w+)/g, '{$1}'));
      });
      await registerAdminRoutes(probe, server.app.services);
      await probe.ready();
      await probe.close();
      expect(Object.keys(body.paths).sort()).toEqual([...new Set(routes)].sort());
      expect(body).toEqual(JSON.parse(JSON.stringify(openApiDocument(server.publicUrl))));
    });
  });

  describe('errors', () => {
    it.each([
      ['/api/calls?page=0', 'page'],
      ['/api/calls?page=abc', 'page'],
      ['/api/calls?pageSize=1000', 'pageSize'],
      ['/api/calls?status=weird', 'status'],
      ['/api/calls?from=yesterday', 'from'],
      ['/api/calls?from=2025-02-30', 'from'],
      ['/api/calls?from=2025-03-02&to=2025-03-01', 'from'],
      [`/api/calls?q=${'x'.repeat(201)}`, 'q'],
      ['/api/analytics?from=2020-01-01&to=2025-01-01', 'range'],
      ['/api/analytics?to=2025-13-01', 'to'],
    ])('%s is a 400 naming %s', async (url, field) => {
      const { status, body } = await api(url);
      expect(status).toBe(400);
      expect(body.error).toMatchObject({ code: 'invalid_request', requestId: expect.any(String) });
      expect(body.error.field).toBe(field === 'range' ? 'from' : field);
      expect(body.error.message).toMatch(new RegExp(field));
    });

    it('answers 404 for a call that does not exist', async () => {
      for (const sid of ['CA00000000000000000000000000000000', '..%2F..%2Fetc', 'x'.repeat(65)]) {
        const { status, body } = await api(`/api/calls/${sid}`);
        expect(status).toBe(404);
        expect(body.error.code).toBe('not_found');
      }
    });
  });
});

describe('the admin API with masked numbers and a price table', () => {
  let openai: FakeOpenAI;
  let server: TestApp;
  let directory: string;
  let calls: SampleCalls;

  beforeAll(async () => {
    directory = await mkdtemp(path.join(tmpdir(), 'callme-admin-'));
    await writeSeedProfiles(path.join(directory, 'profiles'));
    await writeFile(path.join(directory, 'prices.json'), JSON.stringify({ chat: { 'gpt-4o-mini': { inputPerMillionTokens: 1000, outputPerMillionTokens: 0 } }, telephony: { perMinute: 1 } }));
    openai = await startFakeOpenAI();
    server = await startTestApp(databaseKind, {
      OPENAI_API_KEY: 'sk-test',
      OPENAI_BASE_URL: openai.url,
      ADMIN_TOKEN: adminToken,
      MASK_PHONE_NUMBERS: 'true',
      PRICING: path.join(directory, 'prices.json'),
      PROFILES_DIR: path.join(directory, 'profiles'),
    });
    calls = await placeSampleCalls(server, openai);
  }, 60_000);
  afterAll(async () => {
    await server?.close();
    await openai?.close();
    await rm(directory, { recursive: true, force: true });
  });

  const api = async (url: string) =>
    (await fetch(`${server.baseUrl}${url}`, { headers: { authorization: `Bearer ${adminToken}` } })).json() as Promise<any>;

  it('masks the numbers everywhere, and still finds calls by the full number', async () => {
    const list = await api('/api/calls?number=%2B14155550132');
    expect(list.calls).toHaveLength(1);
    expect(list.calls[0]).toMatchObject({ from: '+1415****132', to: '+1415****100' });
    const detail = await api(`/api/calls/${calls.reservation.callSid}`);
    expect(detail.from).toBe('+1415****132');
    expect(JSON.stringify(detail)).not.toContain('4155550132');
    expect((await api('/api/session')).maskPhoneNumbers).toBe(true);
  });

  it('prices calls from the PRICING file', async () => {
    const detail = await api(`/api/calls/${calls.reservation.callSid}`);
    expect(detail.cost.telephony).toBe(1);
    expect(detail.cost.llm).toBeCloseTo(detail.usage.promptTokens / 1000, 6);
    expect((await api('/api/pricing')).chat['gpt-4o-mini'].inputPerMillionTokens).toBe(1000);
  });

  it('refuses to start with a PRICING file it cannot use', async () => {
    await writeFile(path.join(directory, 'bad.json'), JSON.stringify({ speech: { 'tts-1': { perMinute: 1 } } }));
    const database = await openTestDatabase(databaseKind);
    try {
      const config = loadConfig({ DATA_DIR: directory, PRICING: path.join(directory, 'bad.json'), LOG_LEVEL: 'silent' });
      const starting = createApp(config, { database: database.db, logger: pino({ level: 'silent' }) });
      await expect(starting).rejects.toBeInstanceOf(PricingError);
      await expect(starting).rejects.toThrow(/speech\.tts-1/);
    } finally {
      await database.cleanup();
    }
  });
});

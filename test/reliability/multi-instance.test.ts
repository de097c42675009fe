import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type BenchServer } from '../../bench/server-process.js';
import { latencyProfiles, startFakeOpenAI, type FakeOpenAI } from '../../src/testing/fake-openai-server.js';
import { freePort } from '../../src/testing/free-port.js';
import { findNginx, startNginxBalancer, type NginxBalancer } from '../../src/testing/nginx-balancer.js';
import { createTestPostgres } from '../../src/testing/test-databases.js';
import { signTwilioRequest, simulateCall, type SimulatedCall } from '../../src/simulator/twilio-simulator.js';
import { recordFigure } from './figures.js';

/**
 * Several callme processes behind Debian's nginx, sharing one PostgreSQL
 * database and one audio folder, as the README's "Running several instances"
 * describes. nginx takes the instances in turn, so every call's webhooks land
 * on both; the calls must still go as if one server answered them all, and
 * the per-number hourly limit must hold whichever instance counts.
 */

const nginxBinary = findNginx();
const instanceCount = 2;
const callCount = 6;
const perNumberLimit = 3;
const callerLines = [
  'I would like a table for four on Friday.',
  'Around half past seven, please.',
  'The name is Rossi.',
  'Is there parking nearby?',
];
const goodbyeLine = 'That is all, thank you, bye.';
/** Greeting, the caller's lines, and the goodbye turn. */
const expectedTurns = 1 + callerLines.length + 1;

if (!nginxBinary) {
  console.warn('multi-instance: SKIPPED — nginx is not installed (apt-get install nginx; .ci/run installs it).');
}

describe.skipIf(!nginxBinary)(`${instanceCount} instances behind nginx, one PostgreSQL`, () => {
  let database: { url: string; drop(): Promise<void> };
  let audioDir: string;
  let fake: FakeOpenAI;
  let servers: BenchServer[] = [];
  let balancer: NginxBalancer;
  let publicUrl: string;

  beforeAll(async () => {
    database = await createTestPostgres();
    audioDir = await mkdtemp(path.join(tmpdir(), 'callme-shared-audio-'));
    fake = await startFakeOpenAI({ profile: latencyProfiles.realistic, seed: 7, reuseSpeechSignal: true });
    // Instances sign and check webhooks against PUBLIC_URL, the balancer's address, so its port comes first.
    const port = await freePort();
    publicUrl = `http://127.0.0.1:${port}`;
    servers = await Promise.all(
      Array.from({ length: instanceCount }, (_, index) =>
        startServer({
          name: `instance${index + 1}`,
          pipelined: true,
          openaiBaseUrl: fake.url,
          serverDir: process.cwd(),
          env: {
            DATABASE_URL: database.url,
            PUBLIC_URL: publicUrl,
            AUDIO_DIR: audioDir,
            // Kept (not deleted at hang-up), so the test can fetch every file from every instance afterwards.
            AUDIO_RETENTION: '7d',
            MAX_CALLS_PER_NUMBER_PER_HOUR: String(perNumberLimit),
          },
        }),
      ),
    );
    balancer = await startNginxBalancer({ upstreams: servers.map((server) => new URL(server.baseUrl).host), port });
  }, 300_000);

  afterAll(async () => {
    await balancer?.stop();
    await Promise.all(servers.map((server) => server.stop()));
    await fake?.close();
    if (audioDir) await rm(audioDir, { recursive: true, force: true });
    await database?.drop();
  });

  it('alternates a call\'s webhooks between the instances, one webhook each in turn', async () => {
    const callSid = `CA${'a'.repeat(24)}00000001`;
    const [call] = await placeCalls([callSid], '+15550300000');
    expectCompleted(call);
    await settle();
    const webhooks = (await balancer.requests()).filter((line) => line.testCall === callSid && line.method === 'POST');
    const switches = webhooks.filter((line, index) => index > 0 && line.upstream !== webhooks[index - 1].upstream).length;
    recordFigure({ section: 'instances', name: 'one call alone: consecutive webhooks on different instances', value: `${switches}/${webhooks.length - 1}`, expected: 'all' });
    expect(webhooks.length).toBeGreaterThan(expectedTurns);
    expect(switches).toBe(webhooks.length - 1);
    // Reply audio is named before it is synthesized: downloads that land on the other instance wait for it there.
    const downloads = (await balancer.requests()).filter((line) => line.testCall === callSid && line.method === 'GET' && line.uri.startsWith('/audio/'));
    expect(new Set(downloads.map((line) => line.upstream)).size).toBe(2);
    expect(downloads.every((line) => line.status === 200)).toBe(true);
    await expectStored([callSid]);
  });

  it('completes calls in flight at once whose webhooks land on every instance', async () => {
    const callSids = Array.from({ length: callCount }, (_, index) => `CA${'e'.repeat(24)}${String(index).padStart(8, '0')}`);
    const calls = await placeCalls(callSids, '+15550100000');
    for (const call of calls) expectCompleted(call);

    // Which instance answered each of a call's webhooks, from nginx's log.
    await settle();
    const log = await balancer.requests();
    const webhooksOf = (callSid: string) => log.filter((line) => line.testCall === callSid && line.method === 'POST');
    let switches = 0;
    let pairs = 0;
    for (const callSid of callSids) {
      const webhooks = webhooksOf(callSid);
      expect(webhooks.every((line) => line.status === 200), callSid).toBe(true);
      for (let index = 1; index < webhooks.length; index++) {
        pairs += 1;
        if (webhooks[index].upstream !== webhooks[index - 1].upstream) switches += 1;
      }
    }
    const mixed = callSids.filter((sid) => new Set(webhooksOf(sid).map((line) => line.upstream)).size === instanceCount).length;
    expect(mixed).toBeGreaterThan(0);
    const rows = await expectStored(callSids);

    // Whichever instance wrote a turn, the next one (often on the other instance) gave the model the whole conversation.
    for (const [index, callSid] of callSids.entries()) {
      const number = numberOf('+15550100000', index);
      const lastChat = fake.requests
        .filter((request) => request.endpoint === 'chat' && JSON.stringify(request.body?.messages ?? []).includes(number))
        .map((request) => (request.body?.messages as Array<{ role: string; content: unknown }>).filter((message) => message.role === 'user'))
        .sort((a, b) => b.length - a.length)[0];
      expect(lastChat?.map((message) => String(message.content)), callSid).toEqual([...callerLines, goodbyeLine]);
    }

    // Every audio file is served by every instance, not only the one that synthesized it.
    const audio = await query<{ filename: string }>(database.url, 'SELECT filename FROM audio_files WHERE deleted_at IS NULL');
    let served = 0;
    for (const { filename } of audio) {
      const answers = await Promise.all(servers.map((server) => fetch(`${server.baseUrl}/audio/${filename}`).then((answer) => answer.status)));
      if (answers.every((status) => status === 200)) served += 1;
    }
    expect(served).toBe(audio.length);

    const perInstance = countBy(log, (line) => line.upstream);
    recordFigure({ section: 'instances', name: 'instances behind nginx (round robin, one PostgreSQL, one AUDIO_DIR)', value: instanceCount });
    recordFigure({ section: 'instances', name: `calls in flight at once completed through nginx`, value: `${calls.filter((call) => call.endedBy === 'hangup' && call.applicationErrors.length === 0).length}/${callCount}`, expected: `${callCount}/${callCount}` });
    recordFigure({ section: 'instances', name: 'of those, calls served by every instance', value: `${mixed}/${callCount}` });
    recordFigure({ section: 'instances', name: 'of those, consecutive webhooks on different instances', value: `${switches}/${pairs}` });
    recordFigure({ section: 'instances', name: 'requests per instance (webhooks and audio)', value: [...perInstance.values()].join(' / ') });
    recordFigure({ section: 'instances', name: 'turns stored (lost, duplicated, failed)', value: `${rows.reduce((sum, row) => sum + row.turns, 0)} (0, 0, ${rows.reduce((sum, row) => sum + row.failed, 0)})`, expected: `${callCount * expectedTurns} (0, 0, 0)` });
    recordFigure({ section: 'instances', name: 'audio files fetched from every instance', value: `${served}/${audio.length}`, expected: 'all' });
  });

  /** Places calls through the balancer at once, each from its own number, saying the caller's lines and then goodbye. */
  function placeCalls(callSids: string[], firstNumber: string): Promise<SimulatedCall[]> {
    return Promise.all(
      callSids.map((callSid, index) =>
        simulateCall({
          baseUrl: balancer.url,
          authToken: servers[0].authToken,
          callSid,
          from: numberOf(firstNumber, index),
          to: '+15005550001',
          headers: { 'X-Test-Call': callSid },
          caller: async ({ turn }) => callerLines[turn - 1] ?? goodbyeLine,
        }),
      ),
    );
  }

  /** The database holds each call once, with every turn once and none failed. */
  async function expectStored(callSids: string[]): Promise<Array<{ call_id: string; turns: number; failed: number }>> {
    const rows = await query<{ call_id: string; status: string; turns: number; seqs: number; failed: number }>(
      database.url,
      `SELECT c.call_id, c.status, count(t.turn_id)::int AS turns, count(DISTINCT t.seq)::int AS seqs,
              count(*) FILTER (WHERE t.status <> 'completed' OR t.error_code IS NOT NULL)::int AS failed
         FROM calls c LEFT JOIN turns t ON t.call_id = c.call_id
        WHERE c.call_id = ANY($1) GROUP BY c.call_id, c.status`,
      [callSids],
    );
    expect(rows).toHaveLength(callSids.length);
    for (const row of rows) expect(row, row.call_id).toMatchObject({ status: 'completed', turns: expectedTurns, seqs: expectedTurns, failed: 0 });
    return rows;
  }
  it('holds the per-number hourly limit across instances, one call after another', async () => {
    const from = '+15550209999';
    const answers: Array<{ admitted: boolean; refusedPolitely: boolean }> = [];
    for (let index = 0; index < perNumberLimit + 2; index++) {
      const twiml = await incoming(`CA${'f'.repeat(24)}${String(index).padStart(8, '0')}`, from);
      answers.push(classify(twiml));
    }
    expect(answers.map((answer) => answer.admitted)).toEqual([...Array(perNumberLimit).fill(true), false, false]);
    expect(answers.slice(perNumberLimit).every((answer) => answer.refusedPolitely)).toBe(true);
    // Round robin: the refusals (like the admissions) came from different instances.
    const refusedBy = (await balancer.requests()).filter((line) => line.testCall.startsWith(`CA${'f'.repeat(24)}`) && line.uri === '/twilio/incoming').slice(perNumberLimit);
    expect(new Set(refusedBy.map((line) => line.upstream)).size).toBe(Math.min(2, instanceCount));
    recordFigure({ section: 'instances', name: `calls admitted from one number, one after another (limit ${perNumberLimit})`, value: answers.filter((answer) => answer.admitted).length, expected: String(perNumberLimit) });
  });

  it('holds the per-number hourly limit when calls from one number arrive at once on every instance', async () => {
    const from = '+15550208888';
    const burst = 4 * perNumberLimit;
    const answers = await Promise.all(
      Array.from({ length: burst }, (_, index) => incoming(`CA${'d'.repeat(24)}${String(index).padStart(8, '0')}`, from).then(classify)),
    );
    const admitted = answers.filter((answer) => answer.admitted).length;
    recordFigure({ section: 'instances', name: `calls admitted from one number, ${burst} at once (limit ${perNumberLimit})`, value: admitted, expected: String(perNumberLimit) });
    expect(answers.filter((answer) => !answer.admitted).every((answer) => answer.refusedPolitely)).toBe(true);
    expect(admitted).toBe(perNumberLimit);
  });

  /** Posts `/twilio/incoming` through the balancer, signed as Twilio signs it, and returns the TwiML. */
  async function incoming(callSid: string, from: string): Promise<string> {
    const params = { CallSid: callSid, AccountSid: `AC${'0'.repeat(32)}`, From: from, To: '+15005550001', CallStatus: 'ringing', Direction: 'inbound' };
    const answer = await fetch(`${balancer.url}/twilio/incoming`, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        'x-twilio-signature': signTwilioRequest(servers[0].authToken, `${publicUrl}/twilio/incoming`, params),
        'x-test-call': callSid,
      },
      body: new URLSearchParams(params),
    });
    expect(answer.status).toBe(200);
    return answer.text();
  }
});

/** An admitted call gets its greeting and goes on (`<Gather>`, or `<Redirect>` while the greeting is produced); a refused one hears why and is hung up. */
/** The simulated caller heard the whole call: no application error, no failed download, and the assistant hung up after its goodbye. */
function expectCompleted(call: SimulatedCall): void {
  expect(call.applicationErrors, call.callSid).toEqual([]);
  expect(call.warnings, call.callSid).toEqual([]);
  expect(call.endedBy, call.callSid).toBe('hangup');
  expect(call.events.filter((event) => event.type === 'audio-failed'), call.callSid).toEqual([]);
}

/** nginx writes a request's log line just after its answer is sent: a moment for the last one to land. */
function settle(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 200));
}

function numberOf(firstNumber: string, index: number): string {
  return `+${BigInt(firstNumber.slice(1)) + BigInt(index)}`;
}

function classify(twiml: string): { admitted: boolean; refusedPolitely: boolean } {
  const admitted = /<(Gather|Redirect)\b/.test(twiml);
  return { admitted, refusedPolitely: !admitted && /<(Say|Play)\b/.test(twiml) && twiml.includes('<Hangup/>') };
}

function countBy<T>(items: T[], key: (item: T) => string): Map<string, number> {
  const counts = new Map<string, number>();
  for (const item of items) counts.set(key(item), (counts.get(key(item)) ?? 0) + 1);
  return new Map([...counts.entries()].sort(([a], [b]) => a.localeCompare(b)));
}

async function query<T extends pg.QueryResultRow>(url: string, sql: string, values: unknown[] = []): Promise<T[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<T>(sql, values)).rows;
  } finally {
    await client.end();
  }
}

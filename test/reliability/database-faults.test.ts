import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import pg from 'pg';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp, type App } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';
import { simulateCall, type CallerReply, type SimulatedCall } from '../../src/simulator/twilio-simulator.js';
import { ResilientCallRepository } from '../../src/storage/resilient-call-repository.js';
import { latencyProfiles, startFakeOpenAI, type FakeOpenAI } from '../../src/testing/fake-openai-server.js';
import { testAuthToken, testPublicUrl } from '../../src/testing/test-app.js';
import { startThrowawayPostgres, type ThrowawayPostgres } from '../../src/testing/throwaway-postgres.js';
import { recordFigure } from './figures.js';

/** A point every caller of a phase reaches before the test lets them all go on together. */
function gate(expected: number) {
  let arrived = 0;
  let everyone!: () => void;
  let open!: () => void;
  const everyoneHere = new Promise<void>((resolve) => (everyone = resolve));
  const opened = new Promise<void>((resolve) => (open = resolve));
  return {
    everyoneHere,
    open: () => open(),
    async pass() {
      arrived += 1;
      if (arrived === expected) everyone();
      await opened;
    },
  };
}
type Gate = ReturnType<typeof gate>;

/** A caller saying its lines in order, stopping at each gate until the test opens it. */
function scriptedCaller(steps: Array<string | Gate>) {
  const queue = [...steps];
  return async (): Promise<CallerReply> => {
    for (let step = queue.shift(); step !== undefined; step = queue.shift()) {
      if (typeof step === 'string') return step;
      await step.pass();
    }
    return null;
  };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
/** The least time PostgreSQL stays down. */
const outageMs = 3_000;

interface TurnRecord {
  call_id: string;
  seq: number;
  kind: string;
  user_text: string | null;
  assistant_text: string | null;
  status: string;
  action: string | null;
  received_at: Date;
  completed_at: Date | null;
  segments: number;
  answers: number;
}

describe('PostgreSQL stopped in the middle of calls, then started again', () => {
  let postgres: ThrowawayPostgres;
  let openai: FakeOpenAI;
  let app: App;
  let baseUrl: string;
  let dataDir: string;
  const logs: Array<{ level: number; msg: string }> = [];

  beforeAll(async () => {
    postgres = await startThrowawayPostgres();
    openai = await startFakeOpenAI();
    dataDir = await mkdtemp(path.join(tmpdir(), 'callme-dbfaults-'));
    const config = loadConfig({
      PUBLIC_URL: testPublicUrl,
      TWILIO_AUTH_TOKEN: testAuthToken,
      DATA_DIR: dataDir,
      DATABASE_URL: postgres.url,
      AUDIO_RETENTION: 'delete',
      OPENAI_API_KEY: 'sk-test',
      OPENAI_BASE_URL: openai.url,
      OPENAI_TIMEOUT_MS: '5000',
      LOG_LEVEL: 'warn',
    });
    const captured = new Writable({
      write(chunk, _encoding, done) {
        for (const line of String(chunk).split('\n').filter(Boolean)) logs.push(JSON.parse(line));
        done();
      },
    });
    app = await createApp(config, { logger: pino({ level: 'warn' }, captured) });
    baseUrl = await app.server.listen({ port: 0, host: '127.0.0.1' });
  });

  afterAll(async () => {
    await app?.close().catch(() => {});
    await openai?.close();
    await postgres?.destroy();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  it('keeps every call going, and writes every turn once, in order, when the database is back', async () => {
    const repository = app.services.repository;
    expect(repository).toBeInstanceOf(ResilientCallRepository);
    const journal = (repository as ResilientCallRepository).journal;
    const call = (caller: () => Promise<CallerReply>) =>
      simulateCall({ baseUrl, publicUrl: testPublicUrl, authToken: testAuthToken, caller });

    const inProgress = [1, 2, 3, 4];
    const down = gate(inProgress.length);
    const up = gate(inProgress.length);
    const expected = new Map<number, string[]>();
    const running: Array<Promise<SimulatedCall>> = [];
    for (const n of inProgress) {
      const lines = [
        `call ${n}: a table for ${n + 1} please`,
        `call ${n}: on Friday`,
        `call ${n}: at eight in the evening`,
        `call ${n}: the name is Guest ${n}`,
        `call ${n}: thank you`,
        `call ${n}: that is all, bye`,
      ];
      expected.set(n, lines);
      running.push(call(scriptedCaller([lines[0]!, lines[1]!, down, lines[2]!, lines[3]!, up, lines[4]!, lines[5]!])));
    }

    // Every call has taken two turns. The next ones start with a slow model, and the database stops under them.
    await down.everyoneHere;
    openai.setProfile({ ...latencyProfiles.zero, chatFirstTokenMs: 400 });
    down.open();
    await sleep(100);
    const stopping = Date.now();
    await postgres.stop();
    const stoppedAt = Date.now();
    openai.setProfile(latencyProfiles.zero);

    // A call that starts, and ends (status callback included), while the database is down.
    const newLines = ['call 5: hello, is this the restaurant', 'call 5: a table for two', 'call 5: no thanks, bye'];
    expected.set(5, newLines);
    const whileDown = call(scriptedCaller(newLines));
    running.push(whileDown);
    await whileDown;

    await up.everyoneHere;
    // Down long enough for the queued writes to be retried several times over.
    await sleep(outageMs - (Date.now() - stoppedAt));
    const downForMs = Date.now() - stoppedAt;
    await postgres.start();
    const startedAt = Date.now();
    up.open();
    expect(await journal.whenDrained(60_000)).toBe(true);
    const drainMs = Date.now() - startedAt;
    const outage = journal.lastOutage;

    const results = await Promise.all(running);
    // The calls' last writes (their final turns and status callbacks) went straight to the database.
    expect(await journal.whenDrained(30_000)).toBe(true);

    for (const result of results) {
      expect(result.applicationErrors, result.callSid).toEqual([]);
      expect(result.warnings, result.callSid).toEqual([]);
      expect(result.endedBy, result.callSid).toBe('hangup');
      // Every webhook was answered with TwiML, and every <Play> could be fetched.
      const answers = result.events.filter((event) => event.type === 'webhook-answered');
      for (const answer of answers) {
        expect(answer.status).toBe(200);
        expect(answer.contentType).toMatch(/xml/);
        expect(answer.body).toMatch(/^<\?xml[^>]*>\s*<Response>/);
      }
      expect(result.events.filter((event) => event.type === 'audio-failed')).toEqual([]);
      expect(result.events.filter((event) => event.type === 'status-sent').map((event) => event.status)).toEqual([200]);
    }

    const client = new pg.Client({ connectionString: postgres.url });
    await client.connect();
    let turns: TurnRecord[];
    let callRows: Array<{ call_id: string; status: string; ended_at: Date | null }>;
    try {
      turns = (
        await client.query<TurnRecord>(
          `SELECT t.call_id, t.seq, t.kind, t.user_text, t.assistant_text, t.status, t.action, t.received_at, t.completed_at,
                  (SELECT count(*)::int FROM reply_segments s WHERE s.turn_id = t.turn_id) AS segments,
                  (SELECT count(*)::int FROM webhook_responses w WHERE w.turn_id = t.turn_id) AS answers
             FROM turns t ORDER BY t.call_id, t.seq`,
        )
      ).rows;
      callRows = (await client.query('SELECT call_id, status, ended_at FROM calls')).rows;
    } finally {
      await client.end();
    }

    let lost = 0;
    let duplicated = 0;
    const apology = app.services.profiles.defaultProfile.phrases.apology;
    results.forEach((result, index) => {
      const lines = expected.get(index + 1)!;
      const rows = turns.filter((turn) => turn.call_id === result.callSid);
      const said = rows.filter((turn) => turn.kind === 'speech').map((turn) => turn.user_text!);
      lost += lines.filter((line) => !said.includes(line)).length;
      duplicated += said.length - new Set(said).size + said.filter((line) => !lines.includes(line)).length;

      // Greeting, then each line once, in the order said; each answered by the model (never the apology) and stored whole.
      expect(rows.map((turn) => turn.seq)).toEqual(lines.map((_, seq) => seq).concat(lines.length));
      expect(rows[0]!.kind).toBe('greeting');
      expect(said).toEqual(lines);
      for (const turn of rows) {
        expect(turn.status, `${result.callSid} turn ${turn.seq}`).toBe('completed');
        expect(turn.assistant_text).toBeTruthy();
        expect(turn.assistant_text).not.toContain(apology);
        expect(turn.segments).toBeGreaterThan(0);
        expect(turn.answers).toBeGreaterThan(0);
        // The fake model repeats what it heard, except to a goodbye.
        if (turn.kind === 'speech' && !/\bbye\b/.test(turn.user_text!)) expect(turn.assistant_text).toContain(turn.user_text!);
      }
      expect(rows.at(-1)!.action).toBe('hangup');
      expect(callRows.find((row) => row.call_id === result.callSid)).toMatchObject({ status: 'completed', ended_at: expect.any(Date) });
    });
    expect(lost).toBe(0);
    expect(duplicated).toBe(0);

    // The model saw each conversation whole after the outage: turns taken while down were in the history.
    const chats = openai.requests.filter((request) => request.endpoint === 'chat');
    for (const [n, lines] of expected) {
      const last = chats.filter((request) => JSON.stringify(request.body?.messages).includes(lines.at(-1)!)).at(-1);
      const contents = ((last?.body?.messages ?? []) as Array<{ content: string }>).map((message) => message.content);
      expect(contents, `call ${n}`).toEqual(expect.arrayContaining(lines));
    }

    // Nothing failed on the way: no turn fell back to an apology, no webhook to its error path.
    const errors = logs.filter((line) => line.level >= 50 && line.msg !== 'database connection error').map((line) => line.msg);
    expect(errors).toEqual([]);
    // Nor did a turn trip over the missing database on its way to the model or the voice (optional look-ups may warn and go on).
    expect(logs.filter((line) => /assistant model failed|speech synthesis failed/.test(line.msg)).map((line) => line.msg)).toEqual([]);
    const messages = logs.filter((line) => line.level === 40).map((line) => line.msg);
    expect(messages.some((msg) => msg.startsWith('database unreachable'))).toBe(true);
    expect(messages.some((msg) => msg.startsWith('database reachable again'))).toBe(true);

    const takenWhileDown = turns.filter((turn) => turn.received_at.getTime() >= stopping && turn.received_at.getTime() <= startedAt).length;
    const inFlight = turns.filter(
      (turn) => turn.received_at.getTime() < stopping && (turn.completed_at?.getTime() ?? 0) > stopping,
    ).length;
    expect(takenWhileDown).toBeGreaterThanOrEqual(inProgress.length + 3);
    recordFigure({ section: 'database', name: 'calls through the outage (one started during it)', value: results.length });
    recordFigure({ section: 'database', name: 'database down for', value: downForMs, unit: 'ms' });
    recordFigure({ section: 'database', name: 'turns in flight when PostgreSQL stopped', value: inFlight });
    recordFigure({ section: 'database', name: 'turns taken while down', value: takenWhileDown });
    recordFigure({ section: 'database', name: 'writes queued', value: outage?.queued ?? 0 });
    recordFigure({ section: 'database', name: 'writes refused on replay', value: outage?.dropped ?? 0, expected: '0' });
    recordFigure({ section: 'database', name: 'turn rows lost', value: lost, expected: '0' });
    recordFigure({ section: 'database', name: 'turn rows duplicated', value: duplicated, expected: '0' });
    recordFigure({ section: 'database', name: 'time to drain after restart', value: drainMs, unit: 'ms' });
    expect(outage?.dropped ?? 0).toBe(0);
  });
});

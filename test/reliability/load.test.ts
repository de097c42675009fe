import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { callSidFor } from '../../bench/bench-caller.js';
import { startFakeProcess, type FakeOpenAIHandle } from '../../bench/fake-openai-handle.js';
import { levelFigures } from '../../bench/figures.js';
import { runLevel } from '../../bench/load-level.js';
import { startServer, type BenchServer } from '../../bench/server-process.js';
import { recordFigure } from './figures.js';

/**
 * 200 calls of 10 caller turns each, all in flight at once, against one
 * callme process on PostgreSQL, with the fake OpenAI in its own process on
 * the realistic latency profile (the bench's modules: its lean Twilio, its
 * fake, its floors). The number of calls and turns is the real one; the
 * pause before each answer (`thinkMs`) is shorter than a real caller's.
 *
 * Then: no turn failed, and the database holds exactly every call and every
 * turn once. "Added latency" is the bench's measured − floor: per turn, the
 * time until the first `<Play>` file was downloaded, less the earliest it
 * could have been given the delays the fake injected into that turn's own
 * model and speech requests.
 */

const calls = 200;
const turnsPerCall = 10;
/**
 * Mean pause (±50 %) between a `<Gather>` and the caller's answer; `LOAD_THINK_MS` overrides it.
 * A real caller first hears the reply (150–250 characters: 10–15 s of audio, which the lean
 * Twilio downloads but does not play), then speaks, so 12 s is shorter than a real turn's cycle.
 */
const thinkMs = Number(process.env.LOAD_THINK_MS ?? 12_000);
const firstCallIndex = 10_001;
const adminUrl = process.env.TEST_DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/postgres';

describe(`load: ${calls} concurrent calls × ${turnsPerCall} turns, one process`, () => {
  let fake: FakeOpenAIHandle;
  let server: BenchServer;

  beforeAll(async () => {
    fake = await startFakeProcess('realistic', 1);
    server = await startServer({ name: 'load', pipelined: true, openaiBaseUrl: fake.url, serverDir: process.cwd(), databaseUrl: adminUrl });
    // The server synthesizes its fixed phrases at start; then a few calls warm it up (JIT, connections).
    await fake.waitQuiet(1000, 60_000);
    await runLevel({ server, concurrency: 4, turns: 8, turnsPerCall: 2, thinkMs: 0, firstCallIndex: 1, seed: 1, label: 'warm-up', ownPids: [fake.pid] });
  }, 300_000);

  afterAll(async () => {
    await server?.stop();
    await fake?.close();
  });

  it('answers every turn, stores every turn once, and reports the added latency', { timeout: 600_000 }, async () => {
    await fake.takeLog();
    const run = await runLevel({
      server,
      concurrency: calls,
      turns: calls * turnsPerCall,
      turnsPerCall,
      thinkMs,
      firstCallIndex,
      seed: 2,
      label: `load ×${calls}`,
      ownPids: [fake.pid],
    });
    const log = await fake.takeLog();
    const figures = levelFigures(run, 'realistic', true, log.requests, log.loopDelayMs.p99);

    // What the database holds for exactly these calls.
    const sids = Array.from({ length: calls }, (_, index) => callSidFor(firstCallIndex + index));
    const client = new pg.Client({ connectionString: server.databaseUrl });
    await client.connect();
    const stored = await client
      .query<{ calls: number; completed_calls: number; turns: number; distinct_turns: number; failed_turns: number; caller_turns: number }>(
        `SELECT count(DISTINCT c.call_id)::int AS calls,
                count(DISTINCT c.call_id) FILTER (WHERE c.status = 'completed')::int AS completed_calls,
                count(t.turn_id)::int AS turns,
                count(DISTINCT (t.call_id, t.seq))::int AS distinct_turns,
                count(t.turn_id) FILTER (WHERE t.status <> 'completed' OR t.error_code IS NOT NULL)::int AS failed_turns,
                count(t.turn_id) FILTER (WHERE t.seq > 0)::int AS caller_turns
           FROM calls c LEFT JOIN turns t ON t.call_id = c.call_id
          WHERE c.call_id = ANY($1)`,
        [sids],
      )
      .finally(() => client.end());
    const row = stored.rows[0];
    // Each call: the greeting turn, then one turn per caller answer.
    const expectedTurns = calls * (turnsPerCall + 1);

    const failedTurns = figures.errors + figures.turnsWithSay + figures.abandonedTurns + row.failed_turns;
    const wall = `${figures.wallSeconds.toFixed(0)} s, ${figures.turnsPerSecond.toFixed(1)} turns/s`;
    recordFigure({ section: 'load', name: `calls × turns in flight at once (realistic fake, think ${thinkMs} ms ±50 %)`, value: `${figures.calls} × ${turnsPerCall}`, expected: `${calls} × ${turnsPerCall}` });
    recordFigure({ section: 'load', name: 'wall time of the level', value: wall });
    recordFigure({ section: 'load', name: 'failed turns (errors, spoken fallbacks, abandoned, failed rows)', value: `${failedTurns} (${figures.errors}, ${figures.turnsWithSay}, ${figures.abandonedTurns}, ${row.failed_turns})`, expected: '0' });
    recordFigure({ section: 'load', name: 'turns stored / distinct (greetings included)', value: `${row.turns} / ${row.distinct_turns}`, expected: `${expectedTurns} / ${expectedTurns}` });
    recordFigure({ section: 'load', name: 'calls stored / completed', value: `${row.calls} / ${row.completed_calls}`, expected: `${calls} / ${calls}` });
    recordFigure({ section: 'load', name: 'time to first audio p50 / p99', value: `${figures.firstAudioMs.p50.toFixed(0)} / ${figures.firstAudioMs.p99.toFixed(0)}`, unit: 'ms' });
    recordFigure({ section: 'load', name: 'added latency per turn (measured − floor) p50 / p99', value: `${figures.overFloorMs.p50.toFixed(1)} / ${figures.overFloorMs.p99.toFixed(1)}`, unit: 'ms' });
    recordFigure({ section: 'load', name: 'webhook response, every route, p50 / p99', value: `${figures.webhookMs.all.p50.toFixed(1)} / ${figures.webhookMs.all.p99.toFixed(1)}`, unit: 'ms' });
    recordFigure({ section: 'load', name: 'turns matched to their floor', value: `${figures.overFloorMs.count}/${figures.turns}` });
    recordFigure({ section: 'load', name: 'machine: cores busy, of which by other processes', value: `${figures.machine.busyCores.toFixed(2)}, ${figures.machine.otherCores.toFixed(2)}` });
    recordFigure({ section: 'load', name: 'server event-loop delay p99 / max', value: `${figures.server.eventLoopDelayP99Ms.toFixed(0)} / ${figures.server.eventLoopMaxMs.toFixed(0)}`, unit: 'ms' });
    recordFigure({ section: 'load', name: "fake's own lateness p99, chat / speech", value: `${figures.fake.chatLatenessMs.p99.toFixed(0)} / ${figures.fake.speechLatenessMs.p99.toFixed(0)}`, unit: 'ms' });
    recordFigure({ section: 'load', name: 'server CPU, peak RSS', value: `${(figures.server.cpuUtilisation * 100).toFixed(0)} % of a core, ${(run.peakResidentBytes / 1048576).toFixed(0)} MB` });

    expect(figures.errorSamples).toEqual([]);
    expect(run.calls).toBe(calls);
    expect(figures.turns).toBe(calls * turnsPerCall);
    expect(failedTurns).toBe(0);
    expect(row).toEqual({
      calls,
      completed_calls: calls,
      turns: expectedTurns,
      distinct_turns: expectedTurns,
      failed_turns: 0,
      caller_turns: calls * turnsPerCall,
    });
  });
});

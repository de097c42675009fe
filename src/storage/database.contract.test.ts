import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestPostgres, openTestDatabase, postgresSkipReason } from '../testing/test-databases.js';
import { CallRepository } from './call-repository.js';
import type { Database } from './database.js';
import { isDatabaseUnreachable } from './database-unreachable.js';
import { migrate, migrations } from './migrations.js';
import { openDatabase } from './open-database.js';
import { openPgliteDatabase } from './pglite-database.js';
import { openPostgresDatabase } from './postgres-database.js';
import { openThreadedPgliteDatabase } from './threaded-pglite-database.js';

interface OpenedDatabase {
  db: Database;
  cleanup(): Promise<void>;
}

const SLOW_SETUP_MS = 30_000;
const postgresSkip = await postgresSkipReason();
if (postgresSkip) console.warn(`Skipping PostgreSQL storage tests: ${postgresSkip}`);

async function openEmptyPglite(): Promise<OpenedDatabase> {
  const db = await openPgliteDatabase(undefined);
  return { db, cleanup: () => db.close() };
}

async function openEmptyThreadedPglite(): Promise<OpenedDatabase> {
  const db = await openThreadedPgliteDatabase(undefined);
  return { db, cleanup: () => db.close() };
}

async function openEmptyPostgres(): Promise<OpenedDatabase> {
  const server = await createTestPostgres();
  const db = await openPostgresDatabase(server.url);
  return {
    db,
    async cleanup() {
      await db.close();
      await server.drop();
    },
  };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function insertCall(db: Pick<Database, 'query'>, callId: string): Promise<void> {
  await db.query('INSERT INTO calls (call_id, profile_id, language, status) VALUES ($1, $2, $3, $4)', [
    callId,
    'default',
    'en',
    'in-progress',
  ]);
}

/**
 * The behaviour every `Database` must share, so repositories can be written
 * once. `open` yields an empty, unmigrated database of its own.
 */
function runDatabaseContract(name: string, open: () => Promise<OpenedDatabase>): void {
  describe(`Database contract: ${name}`, () => {
    let db: Database;
    let cleanup: (() => Promise<void>) | undefined;
    let firstMigration: number[];

    beforeAll(async () => {
      ({ db, cleanup } = await open());
      firstMigration = await migrate(db);
    }, SLOW_SETUP_MS);
    afterAll(async () => {
      await cleanup?.();
    }, SLOW_SETUP_MS);

    describe('migrations', () => {
      it('applies every migration once, then nothing', async () => {
        expect(firstMigration).toEqual(migrations.map((migration) => migration.version));
        expect(await migrate(db)).toEqual([]);
        const { rows } = await db.query('SELECT version, name, applied_at FROM schema_migrations ORDER BY version');
        expect(rows).toEqual(
          migrations.map((migration) => ({ version: migration.version, name: migration.name, applied_at: expect.any(Date) })),
        );
      });

      it('creates every table', async () => {
        const { rows } = await db.query<{ table_name: string }>(
          `SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY table_name`,
        );
        expect(rows.map((row) => row.table_name)).toEqual([
          'audio_files',
          'call_events',
          'calls',
          'knowledge_chunks',
          'outbound_calls',
          'recordings',
          'reply_segments',
          'reservations',
          'schema_migrations',
          'stream_tokens',
          'transfers',
          'turns',
          'webhook_responses',
        ]);
      });

      it('lets two concurrent migrations of a fresh database both succeed, applying each version once', async () => {
        const fresh = await open();
        try {
          const results = await Promise.all([migrate(fresh.db), migrate(fresh.db)]);
          expect(results.flat().sort()).toEqual(migrations.map((migration) => migration.version));
          const { rows } = await fresh.db.query('SELECT count(*) AS count FROM schema_migrations');
          expect(rows).toEqual([{ count: migrations.length }]);
        } finally {
          await fresh.cleanup();
        }
      }, SLOW_SETUP_MS);
    });

    describe('column types', () => {
      it('reads back a call with exact JS values: Date, object, number, null', async () => {
        const startedAt = new Date('2025-03-04T05:06:07.891Z');
        await db.query(
          `INSERT INTO calls (call_id, account_sid, profile_id, language, status, status_sequence, details, started_at, updated_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)`,
          ['CA-types', 'AC1', 'dentist', 'en', 'ringing', 2, { name: 'Ada', nested: { list: [1, 'two'] } }, startedAt],
        );
        const { rows } = await db.query('SELECT * FROM calls WHERE call_id = $1', ['CA-types']);
        expect(rows).toEqual([
          {
            call_id: 'CA-types',
            account_sid: 'AC1',
            from_number: null,
            to_number: null,
            direction: null,
            profile_id: 'dentist',
            language: 'en',
            status: 'ringing',
            status_sequence: 2,
            assistant_mode: 'llm',
            llm_failures: 0,
            silent_prompts: 0,
            details: { name: 'Ada', nested: { list: [1, 'two'] } },
            outcome: null,
            started_at: startedAt,
            ended_at: null,
            duration_seconds: null,
            audio_retention: null,
            audio_expires_at: null,
            audio_deleted_at: null,
            updated_at: startedAt,
            mode: 'webhook',
          },
        ]);
      });

      it('reads back turns: number for BIGSERIAL and REAL, array for JSONB, Date for defaults', async () => {
        await insertCall(db, 'CA-turns');
        const inserted = await db.query<{ turn_id: number }>(
          `INSERT INTO turns (call_id, seq, kind, user_text, confidence, tool_calls)
           VALUES ($1, 0, 'greeting', NULL, NULL, DEFAULT), ($1, 1, 'speech', $2, $3, $4)
           RETURNING turn_id`,
          // pg turns a JS array into a PostgreSQL array literal, so JSONB arrays go in as JSON text.
          ['CA-turns', 'I need an appointment', 0.87, JSON.stringify([{ name: 'save_details', arguments: { day: 'Monday' } }])],
        );
        expect(inserted.rows).toHaveLength(2);
        for (const row of inserted.rows) expect(typeof row.turn_id).toBe('number');

        const { rows } = await db.query('SELECT * FROM turns WHERE call_id = $1 ORDER BY turn_id', ['CA-turns']);
        expect(rows.map((row) => row.turn_id)).toEqual(inserted.rows.map((row) => row.turn_id));
        expect(rows[1]).toMatchObject({
          seq: 1,
          kind: 'speech',
          user_text: 'I need an appointment',
          confidence: 0.87,
          status: 'processing',
          tool_calls: [{ name: 'save_details', arguments: { day: 'Monday' } }],
          prompt_tokens: 0,
          completed_at: null,
        });
        expect(rows[0]).toMatchObject({ seq: 0, confidence: null, tool_calls: [] });
        expect(rows[1].received_at).toBeInstanceOf(Date);
      });

      it('returns BIGINT as a number, and refuses one a number cannot hold exactly', async () => {
        const { rows } = await db.query('SELECT count(*) AS count, $1::bigint AS id, ARRAY[1, 2]::bigint[] AS ids', [
          Number.MAX_SAFE_INTEGER,
        ]);
        expect(rows).toEqual([{ count: 1, id: Number.MAX_SAFE_INTEGER, ids: [1, 2] }]);
        await expect(db.query('SELECT 9007199254740993::bigint AS id')).rejects.toThrow(RangeError);
        await db.ping();
      });

      it('returns DATE and INTERVAL as their text, whatever the time zone', async () => {
        const { rows } = await db.query(`SELECT DATE '2025-01-02' AS day, INTERVAL '90 minutes' AS span`);
        expect(rows).toEqual([{ day: '2025-01-02', span: '01:30:00' }]);
      });
    });

    describe('queries', () => {
      it('answers ping', async () => {
        await expect(db.ping()).resolves.toBeUndefined();
      });

      it('returns no row from INSERT … ON CONFLICT DO NOTHING RETURNING when the row exists', async () => {
        await insertCall(db, 'CA-events');
        const insert = `INSERT INTO call_events (call_id, status, sequence_number, payload)
                        VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING RETURNING event_id`;
        const params = ['CA-events', 'ringing', 0, { CallStatus: 'ringing' }];
        const first = await db.query(insert, params);
        expect(first.rows).toEqual([{ event_id: expect.any(Number) }]);
        expect((await db.query(insert, params)).rows).toEqual([]);
      });

      it('reports a unique violation with its SQLSTATE code', async () => {
        await insertCall(db, 'CA-duplicate');
        await expect(insertCall(db, 'CA-duplicate')).rejects.toMatchObject({ code: '23505' });
      });

      it("claims a turn and reads the call's earlier turns in one statement; a retried claim gets the same turn", async () => {
        await insertCall(db, 'CA-claims');
        const repository = new CallRepository(db);
        const turn = (seq: number, text?: string) => ({ callId: 'CA-claims', seq, kind: text ? 'speech' as const : 'greeting' as const, userText: text, receivedAt: new Date() });
        const greeting = await repository.claimTurn(turn(0));
        expect(greeting).toMatchObject({ created: true, turn: { seq: 0, kind: 'greeting' }, earlier: [] });
        await repository.finishTurn(greeting.turn.turn_id, {
          assistantText: 'Hello.', action: 'listen', status: 'completed', toolCalls: [], promptTokens: 0, completionTokens: 0, ttsCharacters: 6, completedAt: new Date(),
        });
        const first = await repository.claimTurn(turn(1, 'a table for two'));
        expect(first).toMatchObject({ created: true, turn: { seq: 1, user_text: 'a table for two', status: 'processing' } });
        // The new row has no helper column, and the earlier turns are as stored, in order.
        expect(Object.keys(first.turn)).not.toContain('claimed_now');
        expect(first.earlier).toEqual([await repository.getTurn(greeting.turn.turn_id)]);
        const retried = await repository.claimTurn(turn(1, 'a table for two'));
        expect(retried.created).toBe(false);
        expect(retried.turn).toEqual(first.turn);
        expect(retried.earlier.map((row) => row.seq)).toEqual([0]);
        const second = await repository.claimTurn(turn(2, 'at eight'));
        expect(second.earlier.map((row) => [row.seq, row.assistant_text])).toEqual([[0, 'Hello.'], [1, null]]);
        expect(await repository.listTurns('CA-claims')).toHaveLength(3);
      });

      it('runs several statements when there are no parameters, returning the last one’s rows', async () => {
        const { rows } = await db.query('SELECT 1 AS a; SELECT 2 AS b');
        expect(rows).toEqual([{ b: 2 }]);
      });
    });

    describe('transactions', () => {
      it('commits when the work resolves, and returns its value', async () => {
        const value = await db.transaction(async (tx) => {
          await insertCall(tx, 'CA-commit');
          return 'done';
        });
        expect(value).toBe('done');
        expect((await db.query('SELECT call_id FROM calls WHERE call_id = $1', ['CA-commit'])).rows).toHaveLength(1);
      });

      it('rolls back when the work throws, rethrowing the same error', async () => {
        const failure = new Error('work failed');
        await expect(
          db.transaction(async (tx) => {
            await insertCall(tx, 'CA-rollback');
            throw failure;
          }),
        ).rejects.toBe(failure);
        expect((await db.query('SELECT call_id FROM calls WHERE call_id = $1', ['CA-rollback'])).rows).toEqual([]);
      });

      it('refuses to commit when a statement failed, even if the work caught the error', async () => {
        await expect(
          db.transaction(async (tx) => {
            await insertCall(tx, 'CA-swallowed');
            await tx.query('SELECT 1 / 0').catch(() => {});
          }),
        ).rejects.toThrow();
        expect((await db.query('SELECT call_id FROM calls WHERE call_id = $1', ['CA-swallowed'])).rows).toEqual([]);
      });

      it('rejects queries through a transaction that has ended', async () => {
        let leaked: Pick<Database, 'query'> | undefined;
        await db.transaction(async (tx) => {
          leaked = tx;
        });
        await expect(async () => leaked!.query('SELECT 1')).rejects.toThrow(/already ended/);
      });

      it('gives the right total for 20 concurrent read-modify-write transactions', async () => {
        await insertCall(db, 'CA-counter');
        await Promise.all(
          Array.from({ length: 20 }, () =>
            db.transaction(async (tx) => {
              const { rows } = await tx.query<{ llm_failures: number }>(
                'SELECT llm_failures FROM calls WHERE call_id = $1 FOR UPDATE',
                ['CA-counter'],
              );
              // Yield so that transactions would interleave here if they could.
              await sleep(1);
              await tx.query('UPDATE calls SET llm_failures = $2 WHERE call_id = $1', [
                'CA-counter',
                rows[0].llm_failures + 1,
              ]);
            }),
          ),
        );
        const { rows } = await db.query('SELECT llm_failures FROM calls WHERE call_id = $1', ['CA-counter']);
        expect(rows).toEqual([{ llm_failures: 20 }]);
      });

      it('keeps a plain query issued during a transaction out of it', async () => {
        let transactionStarted!: () => void;
        const started = new Promise<void>((resolve) => (transactionStarted = resolve));
        const transaction = db.transaction(async (tx) => {
          await insertCall(tx, 'CA-inside');
          transactionStarted();
          await sleep(50);
          throw new Error('roll back');
        });
        // Handled from the start: the transaction may fail before the plain query below is answered.
        const failed = transaction.then(() => undefined, (error: unknown) => error);
        await started;
        // Would be rolled back with the transaction if it ran on its connection.
        await insertCall(db, 'CA-outside');
        expect(await failed).toMatchObject({ message: 'roll back' });
        const { rows } = await db.query<{ call_id: string }>(
          `SELECT call_id FROM calls WHERE call_id IN ('CA-inside', 'CA-outside')`,
        );
        expect(rows).toEqual([{ call_id: 'CA-outside' }]);
      });
    });
  });
}

runDatabaseContract('pglite', openEmptyPglite);
runDatabaseContract('pglite on a worker thread', openEmptyThreadedPglite);

describe('PGlite on a worker thread, when the thread dies', () => {
  it('fails the requests in flight, then opens the same folder on a new thread and carries on', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'callme-threaded-pglite-'));
    const restarts: Error[] = [];
    const db = await openThreadedPgliteDatabase(dataDir, {
      workerUrl: new URL('../testing/crashing-pglite-worker.ts', import.meta.url),
      onRestart: (error) => restarts.push(error),
    });
    try {
      await migrate(db);
      await insertCall(db, 'CA-before-crash');
      const crash = await db.query('SELECT 1 /* crash the thread */').then(() => undefined, (error: unknown) => error);
      expect(crash).toMatchObject({ message: 'the database thread stopped (exit code 7)', code: '08006' });
      // What the repositories wait out and replay, rather than give up on.
      expect(isDatabaseUnreachable(crash)).toBe(true);
      expect(restarts).toHaveLength(1);
      // The next query waits for the new thread, which finds what the old one committed.
      const { rows } = await db.query('SELECT call_id FROM calls');
      expect(rows).toEqual([{ call_id: 'CA-before-crash' }]);
      await insertCall(db, 'CA-after-crash');
      expect((await db.query('SELECT count(*) AS count FROM calls')).rows).toEqual([{ count: 2 }]);
    } finally {
      await db.close();
      await rm(dataDir, { recursive: true, force: true });
    }
  }, SLOW_SETUP_MS);
});

describe.skipIf(postgresSkip !== undefined)('postgres', () => {
  runDatabaseContract('postgres', openEmptyPostgres);

  it('lets two server processes migrate one database at once', async () => {
    const server = await createTestPostgres();
    // Separate pools stand in for separate processes.
    const first = await openPostgresDatabase(server.url);
    const second = await openPostgresDatabase(server.url);
    try {
      const results = await Promise.all([migrate(first), migrate(second)]);
      expect(results.flat().sort()).toEqual(migrations.map((migration) => migration.version));
      expect(await migrate(first)).toEqual([]);
    } finally {
      await first.close();
      await second.close();
      await server.drop();
    }
  }, SLOW_SETUP_MS);

  it('returns the same JS values as PGlite for the same query', async () => {
    const sql = `SELECT $1::bigint AS id, $2::real AS confidence, $3::timestamptz AS at, $4::jsonb AS details,
                        ARRAY[1, NULL]::bigint[] AS ids, 12.50::numeric AS amount, true AS flag, 'x'::text AS text,
                        NULL::integer AS nothing, DATE '2025-06-07' AS day, ARRAY[DATE '2025-06-07'] AS days,
                        INTERVAL '1 day 02:03:04' AS span, now() - now() AS zero, 7::integer AS seven`;
    const params = [42, 0.1, new Date('2025-06-07T08:09:10.111Z'), JSON.stringify({ list: [1, { a: null }] })];
    const pglite = await openPgliteDatabase(undefined);
    const postgres = await openTestDatabase('postgres');
    try {
      const fromPglite = (await pglite.query(sql, params)).rows;
      const fromPostgres = (await postgres.db.query(sql, params)).rows;
      expect(fromPostgres).toEqual(fromPglite);
      expect(fromPglite[0]).toMatchObject({ id: 42, confidence: 0.1, ids: [1, null], amount: '12.50', day: '2025-06-07' });
    } finally {
      await pglite.close();
      await postgres.cleanup();
    }
  }, SLOW_SETUP_MS);

  it('opens PostgreSQL through openDatabase when a URL is given, migrated', async () => {
    const server = await createTestPostgres();
    const db = await openDatabase({ databaseUrl: server.url, dataDir: '/nonexistent/never-created' });
    try {
      expect(db.kind).toBe('postgres');
      expect(await migrate(db)).toEqual([]);
    } finally {
      await db.close();
      await server.drop();
    }
  }, SLOW_SETUP_MS);

  it('keeps a turn\'s worth of connections open through a pause, and closes the rest', async () => {
    const server = await createTestPostgres();
    const db = await openPostgresDatabase(server.url, { idleTimeoutMs: 300 });
    const admin = await openPostgresDatabase(server.url.replace(/\/[^/]*$/, '/postgres'));
    const name = new URL(server.url).pathname.slice(1);
    const open = async () =>
      Number((await admin.query<{ n: number }>('SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = $1', [name])).rows[0].n);
    try {
      // Six queries at once open six connections; a pause longer than the idle limit leaves four.
      await Promise.all(Array.from({ length: 6 }, () => db.query('SELECT pg_sleep(0.05)')));
      expect(await open()).toBe(6);
      await sleep(900);
      expect(await open()).toBe(4);
    } finally {
      await db.close();
      await admin.close();
      await server.drop();
    }
  }, SLOW_SETUP_MS);

  it('fails to open when the server does not answer', async () => {
    await expect(openPostgresDatabase('postgres://postgres@127.0.0.1:1/postgres')).rejects.toThrow();
  });
});

describe('openDatabase with PGlite', () => {
  let dataDir: string;
  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'callme-db-'));
  });
  afterAll(async () => {
    await rm(dataDir, { recursive: true, force: true });
  });

  it('keeps the data in <dataDir>/db across restarts, migrated once', async () => {
    const first = await openDatabase({ dataDir });
    expect(first.kind).toBe('pglite');
    await insertCall(first, 'CA-persisted');
    await first.close();
    expect((await stat(join(dataDir, 'db'))).isDirectory()).toBe(true);

    const second = await openDatabase({ dataDir });
    try {
      expect(await migrate(second)).toEqual([]);
      const { rows } = await second.query('SELECT call_id FROM calls WHERE call_id = $1', ['CA-persisted']);
      expect(rows).toEqual([{ call_id: 'CA-persisted' }]);
    } finally {
      await second.close();
    }
  }, SLOW_SETUP_MS);

  it('gives a migrated test database for each kind the tests run against', async () => {
    const { db, cleanup } = await openTestDatabase('pglite');
    try {
      expect(await migrate(db)).toEqual([]);
    } finally {
      await cleanup();
    }
  }, SLOW_SETUP_MS);
});

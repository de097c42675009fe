import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { isDatabaseUnreachable } from './database-unreachable.js';
import { JournalFullError, WriteJournal } from './write-journal.js';

const refused = () => Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' });

/** A database that is down until `up()`; writes record what reached it. */
function flakyDatabase() {
  let reachable = false;
  const written: string[] = [];
  return {
    written,
    up: () => (reachable = true),
    down: () => (reachable = false),
    write: (name: string) => ({
      description: name,
      run: async () => {
        if (!reachable) throw refused();
        written.push(name);
      },
    }),
    probe: async () => {
      if (!reachable) throw refused();
    },
  };
}

const journalFor = (database: ReturnType<typeof flakyDatabase>, maxPending?: number) =>
  new WriteJournal({
    logger: pino({ level: 'silent' }),
    isUnreachable: isDatabaseUnreachable,
    probe: database.probe,
    maxPending,
    initialBackoffMs: 5,
    maxBackoffMs: 20,
  });

describe('WriteJournal', () => {
  it('keeps writes while the database is unreachable and writes them in order once it is back', async () => {
    const database = flakyDatabase();
    const journal = journalFor(database);
    for (const name of ['call', 'turn 1', 'piece 0', 'outcome']) journal.enqueue(database.write(name));
    await new Promise((resolve) => setTimeout(resolve, 60));
    expect(journal.pending).toBe(4);
    expect(journal.degraded).toBe(true);
    expect(database.written).toEqual([]);

    database.up();
    expect(await journal.whenDrained(2_000)).toBe(true);
    expect(database.written).toEqual(['call', 'turn 1', 'piece 0', 'outcome']);
    expect(journal.degraded).toBe(false);
    expect(journal.lastOutage).toMatchObject({ queued: 4, dropped: 0 });
  });

  it('drops a write the database refuses for another reason, and goes on with the rest', async () => {
    const database = flakyDatabase();
    database.up();
    const journal = journalFor(database);
    journal.enqueue({ description: 'bad', run: async () => Promise.reject(Object.assign(new Error('violates foreign key'), { code: '23503' })) });
    journal.enqueue(database.write('good'));
    expect(await journal.whenDrained(2_000)).toBe(true);
    expect(database.written).toEqual(['good']);
    expect(journal.lastOutage).toMatchObject({ queued: 2, dropped: 1 });
  });

  it('stays degraded after a failed read until a probe reaches the database', async () => {
    const database = flakyDatabase();
    const journal = journalFor(database);
    journal.reportUnreachable();
    await new Promise((resolve) => setTimeout(resolve, 30));
    expect(journal.degraded).toBe(true);
    database.up();
    expect(await journal.whenDrained(2_000)).toBe(true);
    expect(journal.degraded).toBe(false);
  });

  it('refuses writes past its limit, and says when it gave up waiting', async () => {
    const database = flakyDatabase();
    const journal = journalFor(database, 2);
    journal.enqueue(database.write('one'));
    journal.enqueue(database.write('two'));
    expect(() => journal.enqueue(database.write('three'))).toThrow(JournalFullError);
    expect(await journal.whenDrained(30)).toBe(false);
    journal.close();
  });
});

describe('isDatabaseUnreachable', () => {
  it('tells an unreachable or restarting database from a refused statement', () => {
    expect(isDatabaseUnreachable(refused())).toBe(true);
    expect(isDatabaseUnreachable(Object.assign(new Error('terminating connection due to administrator command'), { code: '57P01' }))).toBe(true);
    expect(isDatabaseUnreachable(Object.assign(new Error('the database system is starting up'), { code: '57P03' }))).toBe(true);
    expect(isDatabaseUnreachable(new Error('Connection terminated unexpectedly'))).toBe(true);
    expect(isDatabaseUnreachable(Object.assign(new AggregateError([refused()]), { code: undefined }))).toBe(true);
    expect(isDatabaseUnreachable(Object.assign(new Error('duplicate key value'), { code: '23505' }))).toBe(false);
    expect(isDatabaseUnreachable(new Error('syntax error at or near "SELEC"'))).toBe(false);
    expect(isDatabaseUnreachable(undefined)).toBe(false);
  });
});

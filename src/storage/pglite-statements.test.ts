import { PGlite } from '@electric-sql/pglite';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openPgliteDatabase } from './pglite-database.js';
import { PgliteStatements } from './pglite-statements.js';
import type { Database } from './database.js';

describe('PGlite prepared statements', () => {
  let pglite: PGlite;

  beforeEach(async () => {
    pglite = await PGlite.create();
    await pglite.exec(`CREATE TABLE things (
      id BIGSERIAL PRIMARY KEY, name TEXT NOT NULL, tags TEXT[], meta JSONB, at TIMESTAMPTZ,
      ok BOOLEAN, blob BYTEA, score DOUBLE PRECISION)`);
  });
  afterEach(async () => {
    await pglite.close();
  });

  it('gives the same values and rows as PGlite.query', async () => {
    const statements = new PgliteStatements(pglite);
    const insert = 'INSERT INTO things (name, tags, meta, at, ok, blob, score) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING *';
    const at = new Date('2026-01-02T03:04:05.678Z');
    const values = ['a "quoted", name', ['x', 'y,z', null], { nested: [1, 'two'], none: null }, at, true, new Uint8Array([0, 1, 255]), 1.5];
    const viaStatement = await statements.query<Record<string, unknown>>(insert, values, false);
    const viaQuery = (await pglite.query<Record<string, unknown>>(insert, values)).rows;
    expect(viaStatement).toHaveLength(1);
    expect({ ...viaStatement[0], id: undefined }).toEqual({ ...viaQuery[0], id: undefined });
    expect(viaStatement[0]).toMatchObject({ name: 'a "quoted", name', tags: ['x', 'y,z', null], meta: { nested: [1, 'two'], none: null }, at, ok: true, score: 1.5 });

    const select = 'SELECT name, tags, meta, at, ok, blob, score FROM things WHERE name = $1 AND ok = $2 ORDER BY id';
    expect(await statements.query(select, ['a "quoted", name', true], false)).toEqual((await pglite.query(select, ['a "quoted", name', true])).rows);
    // Nulls, and a statement that returns no rows.
    expect(await statements.query('UPDATE things SET meta = $1 WHERE id = $2', [null, -1], false)).toEqual([]);
  });

  it('parses a statement once and runs it again under its name', async () => {
    const statements = new PgliteStatements(pglite);
    const sql = 'SELECT $1::int + 1 AS next';
    for (let i = 0; i < 3; i++) expect(await statements.query(sql, [i], false)).toEqual([{ next: i + 1 }]);
    const { rows } = await pglite.query<{ statement: string }>('SELECT statement FROM pg_prepared_statements');
    expect(rows.map((row) => row.statement)).toEqual([sql]);
  });

  it('reports a bad statement with its code and the SQL, keeps nothing of it, and carries on', async () => {
    const statements = new PgliteStatements(pglite);
    await expect(statements.query('SELEC $1', [1], false)).rejects.toMatchObject({ code: '42601', query: 'SELEC $1' });
    await expect(statements.query('INSERT INTO things (name) VALUES ($1)', [null], false)).rejects.toMatchObject({ code: '23502' });
    expect(await statements.query('SELECT count(*)::int AS n FROM things WHERE name <> $1', [''], false)).toEqual([{ n: 0 }]);
    const { rows } = await pglite.query<{ n: number }>('SELECT count(*)::int AS n FROM pg_prepared_statements');
    expect(rows[0].n).toBe(2);
  });

  it('prepares a statement anew when the table under it changed shape', async () => {
    const statements = new PgliteStatements(pglite);
    await pglite.query("INSERT INTO things (name) VALUES ('one')");
    const sql = 'SELECT * FROM things WHERE name = $1';
    expect(Object.keys((await statements.query<object>(sql, ['one'], false))[0])).not.toContain('added');
    await pglite.exec('ALTER TABLE things ADD COLUMN added TEXT DEFAULT $$new$$');
    expect((await statements.query<{ added: string }>(sql, ['one'], false))[0].added).toBe('new');
  });

  it('keeps at most its capacity of statements prepared', async () => {
    const statements = new PgliteStatements(pglite, 2);
    for (const n of [1, 2, 3, 1]) expect(await statements.query(`SELECT $1::int * ${n} AS v`, [2], false)).toEqual([{ v: 2 * n }]);
    const { rows } = await pglite.query<{ n: number }>('SELECT count(*)::int AS n FROM pg_prepared_statements');
    expect(rows[0].n).toBe(2);
  });
});

describe('PGlite database with prepared statements', () => {
  let db: Database;

  beforeEach(async () => {
    db = await openPgliteDatabase(undefined);
    await db.query('CREATE TABLE notes (id SERIAL PRIMARY KEY, body TEXT NOT NULL)');
  });
  afterEach(async () => {
    await db.close();
  });

  it('runs a statement from outside a transaction after it ends, never inside it', async () => {
    let inserted!: () => void;
    const insertedInTransaction = new Promise<void>((resolve) => (inserted = resolve));
    const transaction = db.transaction(async (tx) => {
      await tx.query('INSERT INTO notes (body) VALUES ($1)', ['rolled back']);
      inserted();
      await new Promise((resolve) => setTimeout(resolve, 50));
      throw new Error('roll it back');
    });
    await insertedInTransaction;
    // Issued while the transaction is open: it must see neither the row nor the transaction.
    const outside = db.query<{ n: number }>('SELECT count(*)::int AS n FROM notes WHERE body <> $1', ['']);
    await expect(transaction).rejects.toThrow('roll it back');
    expect((await outside).rows).toEqual([{ n: 0 }]);
  });

  it('commits what a transaction wrote with prepared statements', async () => {
    await db.transaction(async (tx) => {
      await tx.query('INSERT INTO notes (body) VALUES ($1)', ['kept']);
      await tx.query('INSERT INTO notes (body) VALUES ($1)', ['kept too']);
    });
    expect((await db.query('SELECT body FROM notes WHERE id > $1 ORDER BY id', [0])).rows).toEqual([{ body: 'kept' }, { body: 'kept too' }]);
  });
});

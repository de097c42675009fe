import { mkdir } from 'node:fs/promises';
import { PGlite, types, type Transaction } from '@electric-sql/pglite';
import type { Database, Queryable } from './database.js';
import { PgliteStatements } from './pglite-statements.js';

/**
 * Opens the embedded PostgreSQL (PGlite) in `dataDir`, creating the folder
 * if needed, or in memory when `dataDir` is undefined (tests).
 *
 * PGlite is a single connection. Its own locking already keeps a plain
 * `query` from another caller waiting until an open transaction ends, so no
 * extra mutex is needed; the flip side is that calling `db.query` from inside
 * `db.transaction(...)` would wait for itself forever: use the `tx` handed in.
 */
export async function openPgliteDatabase(dataDir: string | undefined): Promise<Database> {
  if (dataDir !== undefined) await mkdir(dataDir, { recursive: true });
  const pglite = await PGlite.create({
    dataDir: dataDir ?? 'memory://',
    // Same JS values as the pg driver is configured to return (see
    // postgres-database.ts); PGlite derives array parsers from these too.
    parsers: {
      // PGlite's default gives a number or, past 2^53, a bigint: one column
      // whose JS type depends on its value.
      [types.INT8]: parseInt8,
      // A calendar date has no time zone; a Date would invent one.
      [types.DATE]: (text: string) => text,
    },
  });

  const statements = new PgliteStatements(pglite);
  return {
    kind: 'pglite',
    query: (sql, params) => run(pglite, statements, false, sql, params),
    async transaction(work) {
      return pglite.transaction(async (tx) => {
        let open = true;
        const scoped: Queryable = {
          query: (sql, params) => {
            if (!open) throw new Error('The transaction this query belongs to has already ended');
            return run(tx, statements, true, sql, params);
          },
        };
        try {
          return await work(scoped);
        } finally {
          open = false;
        }
      });
    },
    async ping() {
      await pglite.query('SELECT 1');
    },
    async close() {
      if (!pglite.closed) await pglite.close();
    },
  };
}

async function run<Row>(
  target: PGlite | Transaction,
  statements: PgliteStatements,
  inTransaction: boolean,
  sql: string,
  params: readonly unknown[] | undefined,
): Promise<{ rows: Row[] }> {
  if (params === undefined || params.length === 0) {
    // pg sends parameterless queries over the simple protocol, which accepts
    // several statements (a migration); do the same so both behave alike.
    const results = await target.exec(sql);
    return { rows: (results.at(-1)?.rows ?? []) as Row[] };
  }
  return { rows: await statements.query<Row>(sql, params, inTransaction) };
}

/** BIGSERIAL ids and counts stay far below 2^53; past it, fail rather than round. */
function parseInt8(text: string): number {
  const value = Number(text);
  if (!Number.isSafeInteger(value)) {
    throw new RangeError(`BIGINT value ${text} does not fit a JavaScript number exactly`);
  }
  return value;
}

import pg from 'pg';
import type { Database, Queryable } from './database.js';

/** Connections kept open while idle, enough for one turn's overlapping queries. */
const idleConnectionsKept = 4;

/** Options for {@link openPostgresDatabase}. */
export interface PostgresDatabaseOptions {
  /** Most connections the pool opens at once; pg's default is 10. */
  max?: number;
  /** How long a connection beyond the few always kept may sit idle before it is closed (default a minute). */
  idleTimeoutMs?: number;
  /**
   * Told about connection errors that happen outside any query (the server
   * restarting, an idle connection cut by a proxy). They never reject a
   * caller's promise and never crash the process; queries that follow fail
   * or reconnect on their own.
   */
  onError?: (error: Error) => void;
}

/**
 * Connects to PostgreSQL at `url` through a `pg` pool and checks that it
 * answers, so a wrong URL stops start-up rather than the first call.
 *
 * Rows come back with the same JS values PGlite gives (see
 * pglite-database.ts): BIGINT as number, TIMESTAMPTZ as Date, JSONB parsed,
 * DATE and INTERVAL as their text.
 */
export async function openPostgresDatabase(url: string, options: PostgresDatabaseOptions = {}): Promise<Database> {
  const onError = options.onError ?? (() => {});
  const pool = new pg.Pool({
    connectionString: url,
    max: options.max,
    // A new connection costs a turn ~30 ms on loopback (more with TLS), and pg
    // closes idle ones after 10 s: less than a caller's pause on a quiet line,
    // so every turn reopened its connections. A few stay open; the rest go
    // after a minute idle, and TCP keepalive stops a NAT dropping them unseen.
    min: Math.min(idleConnectionsKept, options.max ?? 10),
    idleTimeoutMillis: options.idleTimeoutMs ?? 60_000,
    keepAlive: true,
    // pg waits forever for a connection by default; a readiness probe must not.
    connectionTimeoutMillis: 10_000,
    types: { getTypeParser: getTypeParser as pg.CustomTypesConfig['getTypeParser'] },
  });
  // Without a listener, an idle client's error is an uncaught 'error' event.
  pool.on('error', (error) => onError(error));

  const database: Database = {
    kind: 'postgres',
    async query<Row>(sql: string, params?: readonly unknown[]) {
      return rowsOf<Row>(await pool.query(sql, params === undefined ? undefined : [...params]));
    },
    async transaction<T>(work: (tx: Queryable) => Promise<T>): Promise<T> {
      const client = await pool.connect();
      // The pool stops listening to a client while it is checked out.
      const onClientError = (error: Error) => onError(error);
      client.on('error', onClientError);
      let open = true;
      // Whether the connection is known to be back outside any transaction.
      let clean = false;
      const scoped: Queryable = {
        async query<Row>(sql: string, params?: readonly unknown[]) {
          // After release the client belongs to someone else's work.
          if (!open) throw new Error('The transaction this query belongs to has already ended');
          return rowsOf<Row>(await client.query(sql, params === undefined ? undefined : [...params]));
        },
      };
      try {
        await client.query('BEGIN');
        let result: T;
        try {
          result = await work(scoped);
        } catch (error) {
          await client.query('ROLLBACK').then(
            () => (clean = true),
            () => {},
          );
          throw error;
        }
        const commit = await client.query('COMMIT');
        clean = true;
        // PostgreSQL answers COMMIT of a transaction that already failed (an
        // error the work caught) with ROLLBACK, not an error. PGlite throws
        // here, and silently losing the writes would be worse.
        if (commit.command === 'ROLLBACK') {
          throw new Error('The transaction was rolled back: a statement in it failed');
        }
        return result;
      } finally {
        open = false;
        client.off('error', onClientError);
        // `true` makes the pool discard a connection in an unknown state.
        client.release(!clean);
      }
    },
    async ping() {
      await pool.query('SELECT 1');
    },
    async close() {
      if (!pool.ended) await pool.end();
    },
  };

  try {
    await database.ping();
  } catch (error) {
    await pool.end();
    throw error;
  }
  return database;
}

function rowsOf<Row>(result: pg.QueryResult | pg.QueryResult[]): { rows: Row[] } {
  // pg returns one result per statement when a parameterless query has several.
  const last = Array.isArray(result) ? result.at(-1) : result;
  return { rows: (last?.rows ?? []) as Row[] };
}

/** text[]: its parser splits any array literal into strings, nulls and sub-arrays. */
const parseTextArray = (text: string): unknown => pg.types.getTypeParser(1009 as number)(text);

/** Text-format parsers that differ from pg's defaults, by type oid. */
const textParsers = new Map<number, (text: string) => unknown>([
  // BIGINT/BIGSERIAL: pg's default is a string, to be safe past 2^53.
  [20, parseInt8],
  [1016, (text) => mapArray(parseTextArray(text), parseInt8)],
  // DATE: pg's default is a Date at local midnight, which shifts with TZ.
  [1082, (text) => text],
  [1182, parseTextArray],
  // INTERVAL: pg's default is its own object; PGlite gives the text.
  [1186, (text) => text],
  [1187, parseTextArray],
]);

function getTypeParser(oid: number, format?: 'text' | 'binary'): unknown {
  if (format !== 'binary') {
    const parser = textParsers.get(oid);
    if (parser) return parser;
  }
  return pg.types.getTypeParser(oid, format);
}

/** BIGSERIAL ids and counts stay far below 2^53; past it, fail rather than round. */
function parseInt8(text: string): number {
  const value = Number(text);
  if (!Number.isSafeInteger(value)) {
    throw new RangeError(`BIGINT value ${text} does not fit a JavaScript number exactly`);
  }
  return value;
}

function mapArray(value: unknown, parse: (text: string) => unknown): unknown {
  if (Array.isArray(value)) return value.map((item) => mapArray(item, parse));
  return value === null ? null : parse(value as string);
}

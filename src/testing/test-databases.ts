import { randomBytes } from 'node:crypto';
import pg from 'pg';
import type { Database } from '../storage/database.js';
import { migrate } from '../storage/migrations.js';
import { openPgliteDatabase } from '../storage/pglite-database.js';
import { openPostgresDatabase } from '../storage/postgres-database.js';

/** The storage implementations every database-backed test runs against. */
export type DatabaseKind = 'pglite' | 'postgres';

/** A migrated database for one test file, and how to dispose of it. */
export interface TestDatabase {
  db: Database;
  /** The throwaway PostgreSQL database's URL; undefined for PGlite. */
  url?: string;
  /** Closes the database and, for PostgreSQL, drops it. */
  cleanup(): Promise<void>;
}

const DEFAULT_ADMIN_URL = 'postgres://postgres@127.0.0.1:5432/postgres';

/**
 * The server tests create their databases on. Tests never touch the
 * database named in the URL beyond CREATE/DROP DATABASE.
 */
function adminUrl(): string {
  return process.env.TEST_DATABASE_URL || DEFAULT_ADMIN_URL;
}

/** Both implementations: tests run the same cases against each. */
export function databaseKinds(): DatabaseKind[] {
  return ['pglite', 'postgres'];
}

/**
 * Creates an empty, uniquely named PostgreSQL database (`callme_test_…`) on
 * the test server (`TEST_DATABASE_URL`, else the local `postgres` user) so
 * test files running in parallel never see each other's rows.
 */
export async function createTestPostgres(): Promise<{ url: string; drop(): Promise<void> }> {
  const name = `callme_test_${randomBytes(6).toString('hex')}`;
  // The name is generated above, never from input, so it is safe to inline:
  // CREATE DATABASE takes no parameters.
  await withAdminClient((client) => client.query(`CREATE DATABASE ${name}`));
  const url = new URL(adminUrl());
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    async drop() {
      // FORCE ends connections a test forgot to close instead of failing.
      await withAdminClient((client) => client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`));
    },
  };
}

/** A migrated database of `kind`; PostgreSQL ones are created for the caller and dropped by `cleanup`. */
export async function openTestDatabase(kind: DatabaseKind): Promise<TestDatabase> {
  if (kind === 'pglite') {
    const db = await openPgliteDatabase(undefined);
    await migrate(db);
    return { db, cleanup: () => db.close() };
  }
  const server = await createTestPostgres();
  try {
    const db = await openPostgresDatabase(server.url);
    await migrate(db);
    return {
      db,
      url: server.url,
      async cleanup() {
        await db.close();
        await server.drop();
      },
    };
  } catch (error) {
    await server.drop();
    throw error;
  }
}

/**
 * Why PostgreSQL tests should be skipped, or undefined when they should run.
 * They run whenever the server answers. When it does not, they are skipped
 * on a developer's machine but run (and fail) when `CI` is set, so a broken
 * CI database can never pass as green.
 */
export async function postgresSkipReason(): Promise<string | undefined> {
  try {
    await withAdminClient((client) => client.query('SELECT 1'));
    return undefined;
  } catch (error) {
    if (process.env.CI) return undefined;
    const message = error instanceof Error ? error.message : String(error);
    return `PostgreSQL at ${redact(adminUrl())} is unreachable (${message}); set TEST_DATABASE_URL or start it`;
  }
}

/**
 * The kinds a test file should run against: both, unless PostgreSQL is
 * unreachable outside CI, in which case the reason is printed once and only
 * PGlite runs. In CI an unreachable PostgreSQL fails the tests instead.
 */
export async function availableDatabaseKinds(): Promise<DatabaseKind[]> {
  const reason = await postgresSkipReason();
  if (!reason) return databaseKinds();
  console.warn(`skipping the PostgreSQL runs: ${reason}`);
  return ['pglite'];
}

async function withAdminClient<T>(work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: adminUrl(), connectionTimeoutMillis: 5_000 });
  // A connection dropped between queries must fail the test, not the process.
  client.on('error', () => {});
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

function redact(url: string): string {
  const parsed = new URL(url);
  if (parsed.password) parsed.password = '***';
  return parsed.toString();
}

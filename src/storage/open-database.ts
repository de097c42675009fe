import { join } from 'node:path';
import type { Database } from './database.js';
import { migrate } from './migrations.js';
import { openPgliteDatabase } from './pglite-database.js';
import { openPostgresDatabase } from './postgres-database.js';
import { openThreadedPgliteDatabase } from './threaded-pglite-database.js';

/** Where callme keeps its data; see {@link openDatabase}. */
export interface OpenDatabaseOptions {
  /** A `postgres://` URL. When set, PostgreSQL is used and `dataDir` is not. */
  databaseUrl?: string;
  /** The data folder; the embedded database lives in its `db` subfolder. Undefined keeps it in memory. */
  dataDir?: string;
  /** Told about PostgreSQL connection errors outside any query (see `PostgresDatabaseOptions.onError`), and when PGlite's thread had to be restarted. */
  onError?: (error: Error) => void;
  /** Runs PGlite on a worker thread of its own instead of the event loop. */
  pgliteThread?: boolean;
}

/**
 * Opens the database callme runs on — PostgreSQL when `databaseUrl` is set,
 * otherwise embedded PGlite — and brings its schema up to date before
 * handing it over.
 */
export async function openDatabase(options: OpenDatabaseOptions): Promise<Database> {
  const pgliteDir = options.dataDir === undefined ? undefined : join(options.dataDir, 'db');
  const db = options.databaseUrl
    ? await openPostgresDatabase(options.databaseUrl, { onError: options.onError })
    : options.pgliteThread
      ? await openThreadedPgliteDatabase(pgliteDir, { onRestart: options.onError })
      : await openPgliteDatabase(pgliteDir);
  try {
    await migrate(db);
  } catch (error) {
    await db.close();
    throw error;
  }
  return db;
}

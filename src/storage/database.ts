/**
 * The one storage interface callme talks to. Two implementations share it:
 * PGlite (embedded, a data folder on disk) and PostgreSQL through `pg`.
 * Both speak PostgreSQL's dialect with `$1` placeholders, so the SQL in the
 * repositories is written once and runs unchanged on either.
 */
export interface Queryable {
  /** Runs one statement with `$1`-style parameters and returns its rows. */
  query<Row = Record<string, unknown>>(sql: string, params?: readonly unknown[]): Promise<{ rows: Row[] }>;
}

export interface Database extends Queryable {
  readonly kind: 'pglite' | 'postgres';
  /**
   * Runs `work` inside one transaction: committed when it resolves, rolled
   * back when it throws (the error is rethrown).
   */
  transaction<T>(work: (tx: Queryable) => Promise<T>): Promise<T>;
  /** Resolves when the database answers a trivial query; used by `/readyz`. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

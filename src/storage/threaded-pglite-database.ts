import type { Worker } from 'node:worker_threads';
import { siblingModule, startModuleWorker } from '../runtime/module-worker.js';
import type { Database, Queryable } from './database.js';

/** What the event loop asks the database thread; every request has an id its answer carries. */
export type ToDatabaseThread =
  | { type: 'query'; id: number; sql: string; params: readonly unknown[] | undefined; transaction?: number }
  | { type: 'begin'; id: number; transaction: number }
  | { type: 'end'; id: number; transaction: number; commit: boolean }
  | { type: 'ping'; id: number }
  | { type: 'close'; id: number };

export type FromDatabaseThread =
  | { type: 'ready' }
  | { type: 'failed-to-open'; error: ErrorDescription }
  | { type: 'result'; id: number; rows: unknown[] }
  | { type: 'error'; id: number; error: ErrorDescription };

/** An error as it crosses threads: its class name, message and PostgreSQL's fields (`code`, `constraint`, …). */
export interface ErrorDescription {
  name: string;
  message: string;
  fields: Record<string, string | number | undefined>;
}

const errorFields = ['code', 'detail', 'hint', 'constraint', 'table', 'column', 'schema', 'severity', 'position', 'routine'];

export function describeError(error: unknown): ErrorDescription {
  if (!(error instanceof Error)) return { name: 'Error', message: String(error), fields: {} };
  const fields: ErrorDescription['fields'] = {};
  for (const field of errorFields) {
    const value = (error as unknown as Record<string, unknown>)[field];
    if (typeof value === 'string' || typeof value === 'number') fields[field] = value;
  }
  return { name: error.name, message: error.message, fields };
}

const builtInErrors: Record<string, ErrorConstructor> = { RangeError, TypeError, SyntaxError };

/** Rebuilds an error on this side, of the same built-in class where there is one, with the same fields. */
function rebuildError(description: ErrorDescription): Error {
  const error = new (builtInErrors[description.name] ?? Error)(description.message);
  if (!(description.name in builtInErrors) && description.name !== 'Error') error.name = description.name;
  Object.assign(error, description.fields);
  return error;
}

export interface ThreadedPgliteOptions {
  /** Told when the thread died and a new one is opening the database. */
  onRestart?: (error: Error) => void;
  /** Where the worker's code is; the default is `pglite-worker`, beside this file. */
  workerUrl?: URL;
}

/**
 * Embedded PGlite on a worker thread: the same database as
 * `openPgliteDatabase` (same folder, same parsers, same errors, down to
 * their SQLSTATE `code`), but its queries (PostgreSQL in WebAssembly, run
 * synchronously) take the thread's core instead of the event loop's. A
 * webhook turn runs about thirty statements; on the event loop they were
 * the largest share of its CPU.
 */
export async function openThreadedPgliteDatabase(dataDir: string | undefined, options: ThreadedPgliteOptions = {}): Promise<Database> {
  const pending = new Map<number, { resolve: (rows: unknown[]) => void; reject: (error: Error) => void }>();
  let nextId = 1;
  let nextTransaction = 1;
  let closed = false;
  let restarting: Promise<{ worker: Worker; down?: Error }> | undefined;
  let thread = await startThread();

  /** A thread with the database open; while it opens (after a crash), requests wait for it. */
  function startThread(): Promise<{ worker: Worker; down?: Error }> {
    const worker = startModuleWorker(options.workerUrl ?? siblingModule('pglite-worker', import.meta.url), { dataDir });
    const state: { worker: Worker; down?: Error } = { worker };
    return new Promise((resolve, reject) => {
      let ready = false;
      worker.on('message', (message: FromDatabaseThread) => {
        switch (message.type) {
          case 'ready':
            ready = true;
            resolve(state);
            return;
          case 'failed-to-open':
            reject(rebuildError(message.error));
            void worker.terminate();
            return;
          case 'result':
            pending.get(message.id)?.resolve(message.rows);
            pending.delete(message.id);
            return;
          case 'error':
            pending.get(message.id)?.reject(rebuildError(message.error));
            pending.delete(message.id);
            return;
        }
      });
      worker.on('error', (error) => {
        state.down ??= Object.assign(error, { code: '08006' });
      });
      worker.on('exit', (code) => {
        // SQLSTATE 08006, connection failure: to the repositories the database is unreachable for a
        // moment (writes wait and are replayed), not refusing the statement.
        state.down ??= Object.assign(new Error(`the database thread stopped (exit code ${code})`), { code: '08006' });
        for (const request of pending.values()) request.reject(state.down);
        pending.clear();
        if (!ready) {
          reject(state.down);
          return;
        }
        if (closed) return;
        // The folder is intact (PostgreSQL recovers from its log on open): a new thread takes over.
        options.onRestart?.(state.down);
        const next = startThread();
        next.catch(() => undefined);
        restarting = next;
      });
    });
  }
  const ask = async (request: DistributiveOmit<ToDatabaseThread, 'id'>): Promise<unknown[]> => {
    if (closed) throw new Error('the database is closed');
    if (thread.down && restarting) thread = await restarting;
    if (thread.down) throw thread.down;
    const id = nextId++;
    const { worker } = thread;
    return new Promise((resolve, reject) => {
      pending.set(id, { resolve, reject });
      worker.postMessage({ ...request, id } as ToDatabaseThread);
    });
  };
  const query = async <Row>(sql: string, params: readonly unknown[] | undefined, transaction?: number) =>
    ({ rows: (await ask({ type: 'query', sql, params: params === undefined ? undefined : [...params], transaction })) as Row[] });

  return {
    kind: 'pglite',
    query: (sql, params) => query(sql, params),
    async transaction(work) {
      const transaction = nextTransaction++;
      await ask({ type: 'begin', transaction });
      let open = true;
      const scoped: Queryable = {
        query: (sql, params) => {
          if (!open) throw new Error('The transaction this query belongs to has already ended');
          return query(sql, params, transaction);
        },
      };
      let result: Awaited<ReturnType<typeof work>>;
      try {
        result = await work(scoped);
      } catch (error) {
        open = false;
        await ask({ type: 'end', transaction, commit: false }).catch(() => undefined);
        throw error;
      }
      open = false;
      await ask({ type: 'end', transaction, commit: true });
      return result;
    },
    async ping() {
      await ask({ type: 'ping' });
    },
    async close() {
      if (closed) return;
      await ask({ type: 'close' }).catch(() => undefined);
      closed = true;
      await thread.worker.terminate();
    },
  };
}

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

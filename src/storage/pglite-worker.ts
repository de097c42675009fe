import { parentPort, workerData } from 'node:worker_threads';
import type { Queryable } from './database.js';
import { openPgliteDatabase } from './pglite-database.js';
import { describeError, type FromDatabaseThread, type ToDatabaseThread } from './threaded-pglite-database.js';

// The embedded database on a thread of its own: PGlite runs PostgreSQL
// compiled to WebAssembly, synchronously, on whatever thread calls it. Here
// that is not the event loop answering Twilio. Requests come in with an id
// and are answered with it; a transaction stays open across requests until
// it is committed or rolled back.

const port = parentPort;
if (!port) throw new Error('pglite-worker runs as a worker thread');

const { dataDir } = workerData as { dataDir: string | undefined };
const answer = (message: FromDatabaseThread) => port.postMessage(message);
/** A transaction the event loop has begun: the queryable for its statements and how to end it. */
interface OpenTransaction {
  tx: Queryable;
  end: (commit: boolean) => void;
}
/** Open transactions, with their outcome. */
const transactions = new Map<number, OpenTransaction & { done: Promise<void> }>();

const opening = openPgliteDatabase(dataDir);
opening.then(
  () => answer({ type: 'ready' }),
  (error: unknown) => answer({ type: 'failed-to-open', error: describeError(error) }),
);

async function handle(message: ToDatabaseThread): Promise<void> {
  const db = await opening;
  switch (message.type) {
    case 'query': {
      const target = message.transaction === undefined ? db : transactions.get(message.transaction)?.tx;
      if (!target) throw new Error('The transaction this query belongs to has already ended');
      const { rows } = await target.query(message.sql, message.params);
      answer({ type: 'result', id: message.id, rows });
      return;
    }
    case 'begin': {
      // The transaction's work is whatever the event loop sends until `end`.
      let began!: (open: OpenTransaction) => void;
      const started = new Promise<OpenTransaction>((resolve) => (began = resolve));
      const done = db.transaction((tx) => new Promise<void>((resolve, reject) => began({ tx, end: (commit) => (commit ? resolve() : reject(new RollBack())) })));
      // An error here is the answer to `end`, not to `begin`.
      done.catch(() => undefined);
      const open = await Promise.race([started, done.then(() => undefined)]);
      if (open) transactions.set(message.transaction, { ...open, done });
      answer({ type: 'result', id: message.id, rows: [] });
      return;
    }
    case 'end': {
      const open = transactions.get(message.transaction);
      transactions.delete(message.transaction);
      open?.end(message.commit);
      try {
        await open?.done;
      } catch (error) {
        if (!(error instanceof RollBack)) throw error;
      }
      answer({ type: 'result', id: message.id, rows: [] });
      return;
    }
    case 'ping':
      await db.ping();
      answer({ type: 'result', id: message.id, rows: [] });
      return;
    case 'close':
      await db.close();
      answer({ type: 'result', id: message.id, rows: [] });
      return;
  }
}

class RollBack extends Error {}

port.on('message', (message: ToDatabaseThread) => {
  handle(message).catch((error: unknown) => answer({ type: 'error', id: message.id, error: describeError(error) }));
});

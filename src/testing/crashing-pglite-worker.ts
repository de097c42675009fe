import { parentPort } from 'node:worker_threads';
import type { ToDatabaseThread } from '../storage/threaded-pglite-database.js';

// The real database thread, which also dies on a query containing
// "crash the thread": lets tests see what a dead database thread does.

parentPort?.on('message', (message: ToDatabaseThread) => {
  if (message.type === 'query' && message.sql.includes('crash the thread')) process.exit(7);
});
await import('../storage/pglite-worker.js');

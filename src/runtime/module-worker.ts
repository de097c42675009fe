import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';

/**
 * The URL of a module beside `base` (an `import.meta.url`), with the
 * extension `base` has: `.ts` when running from source through tsx, `.js`
 * when compiled.
 */
export function siblingModule(name: string, base: string): URL {
  return new URL(`./${name}${base.endsWith('.ts') ? '.ts' : '.js'}`, base);
}

/**
 * A worker's young generation (where new objects live until a collection
 * finds them still in use). By default each thread gets as large a one as
 * the event loop, which the database and voice activity threads, keeping
 * little for long, fill with garbage that stays resident: a stream-mode
 * server sat at about 930 MB idle, and at about 610 MB with 12 MB per worker,
 * its event loop no slower (the stream bench at 100 and 150 calls).
 */
const resourceLimits = { maxYoungGenerationSizeMb: 12 };

/**
 * Starts a worker thread on a module. From TypeScript sources the worker
 * registers tsx itself first: a worker thread does not inherit the loader
 * hooks of the thread that made it.
 */
export function startModuleWorker(url: URL, workerData: unknown): Worker {
  if (!url.pathname.endsWith('.ts')) return new Worker(url, { workerData, resourceLimits });
  const require = createRequire(import.meta.url);
  // tsx's ESM API (the `import` condition of `tsx/esm/api`, which require.resolve cannot select).
  const tsx = pathToFileURL(require.resolve('tsx/esm/api').replace(/\.cjs$/, '.mjs')).href;
  return new Worker(`import(${JSON.stringify(tsx)}).then((api) => { api.register(); return import(${JSON.stringify(url.href)}); })`, { eval: true, workerData, resourceLimits });
}

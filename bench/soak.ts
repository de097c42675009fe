import { once } from 'node:events';
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { WebSocket } from 'ws';
import { placeCall, type CallRecorder } from './bench-caller.js';
import { startFakeProcess } from './fake-openai-handle.js';
import { scrapeMetrics, startServer } from './server-process.js';
import { mulberry32 } from './stats.js';

/**
 * `npm run soak`: one callme process under steady load for a long while
 * (10 minutes by default), to see whether its memory stays flat. The bench's
 * fake OpenAI (own process) and lean Twilio place calls without pause: each
 * of `--calls` caller slots places a call of `--turns-per-call` turns, then
 * the next, until the time is up. Every `--sample-seconds` the server
 * collects its garbage (asked over the V8 inspector, which it is started
 * with) and its resident set (from /proc) and V8 heap in use (from the
 * inspector) are sampled: the heap that survives a full collection, not a
 * point on the sawtooth between collections. At the end the series is
 * printed with its least-squares slope in MB per 10 minutes, leaving out the
 * warm-up (JIT, caches, pools filling), and judged on the lowest sample of
 * each two-minute stretch.
 * Exits 1 when memory grows or a turn failed.
 */

const usage = `npm run soak -- [options]

  --minutes N           how long to keep calling (default 10)
  --calls N             calls in flight at once (default 20)
  --turns-per-call N    caller turns per call (default 10)
  --think-ms N          mean pause before each caller answer, ±50 % (default 3000)
  --profile NAME        latency profile of the fake OpenAI: realistic or zero (default realistic)
  --sample-seconds N    sampling interval (default 30)
  --warmup-minutes N    samples left out of the slope (default: the first fifth, at most 2 minutes)
  --database-url URL    run the server on a database of its own on this PostgreSQL server instead of the embedded PGlite
  --flat-mb N           largest growth per 10 minutes still called flat, for the resident set and the heap (default 5)
`;

interface Sample {
  minutes: number;
  residentMb: number;
  heapMb: number;
  turns: number;
  failed: number;
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      minutes: { type: 'string' },
      calls: { type: 'string' },
      'turns-per-call': { type: 'string' },
      'think-ms': { type: 'string' },
      profile: { type: 'string' },
      'sample-seconds': { type: 'string' },
      'warmup-minutes': { type: 'string' },
      'database-url': { type: 'string' },
      'flat-mb': { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(usage);
    return 0;
  }
  const number = (name: string, fallback: number) => {
    const text = values[name as keyof typeof values];
    if (text === undefined) return fallback;
    const value = Number(text);
    if (!Number.isFinite(value) || value <= 0) throw new Error(`--${name} must be a positive number, got ${String(text)}`);
    return value;
  };
  const minutes = number('minutes', 10);
  const calls = Math.round(number('calls', 20));
  const turnsPerCall = Math.round(number('turns-per-call', 10));
  const thinkMs = values['think-ms'] === '0' ? 0 : number('think-ms', 3000);
  const sampleSeconds = number('sample-seconds', 30);
  const warmupMinutes = values['warmup-minutes'] === '0' ? 0 : number('warmup-minutes', Math.min(2, minutes / 5));
  const flatMb = number('flat-mb', 5);
  const profile = values.profile ?? 'realistic';
  if (profile !== 'realistic' && profile !== 'zero') throw new Error(`--profile must be realistic or zero, got ${profile}`);

  const database = values['database-url'] ? 'PostgreSQL' : 'PGlite';
  console.log(`callme soak: ${minutes} min, ${calls} calls in flight, ${turnsPerCall} turns per call, think ${thinkMs} ms ±50 %, ${profile} fake, ${database}`);
  const fake = await startFakeProcess(profile, 1);
  const server = await startServer({ name: 'soak', pipelined: true, openaiBaseUrl: fake.url, serverDir: process.cwd(), databaseUrl: values['database-url'], inspect: true });
  if (!server.inspectorUrl) throw new Error('the server did not announce its inspector');
  const inspector = await openInspector(server.inspectorUrl);
  try {
    await fake.waitQuiet(1000, 60_000);
    let turns = 0;
    let failed = 0;
    const errors: string[] = [];
    const recorder: CallRecorder = {
      turn: (sample) => {
        turns += 1;
        if (sample.error || sample.said || sample.abandoned) {
          failed += 1;
          if (errors.length < 5) errors.push(`call ${sample.callIndex} turn ${sample.turn}: ${sample.error ?? (sample.said ? 'a spoken fallback' : 'abandoned')}`);
        }
      },
      webhook: () => {},
      audio: () => {},
      error: (message) => {
        failed += 1;
        if (errors.length < 5) errors.push(message);
      },
      step: () => {},
    };

    const random = mulberry32(1);
    const started = performance.now();
    const deadline = started + minutes * 60_000;
    const keepGoing = () => performance.now() < deadline;
    let nextCall = 1;
    const slot = async () => {
      // Spread over the first think time, so calls do not move in lockstep.
      await sleep(random() * Math.max(thinkMs, 1000));
      while (keepGoing()) {
        await placeCall({ server, callIndex: nextCall++, turns: turnsPerCall, thinkMs: () => (thinkMs > 0 ? thinkMs * (0.5 + random()) : 0), recorder, keepGoing });
      }
    };

    const samples: Sample[] = [];
    const sample = async () => {
      const heapBytes = await inspector.heapAfterCollection();
      const metrics = await scrapeMetrics(server);
      // Drops the fake's request log, which would otherwise grow for the whole run.
      await fake.takeLog();
      const resident = (await residentBytes(server.process.pid)) ?? metrics.residentBytes;
      const point: Sample = { minutes: (performance.now() - started) / 60_000, residentMb: resident / 1048576, heapMb: heapBytes / 1048576, turns, failed };
      samples.push(point);
      console.log(`  ${point.minutes.toFixed(1).padStart(5)} min  RSS ${point.residentMb.toFixed(1).padStart(6)} MB  heap ${point.heapMb.toFixed(1).padStart(6)} MB  ${String(turns).padStart(7)} turns  ${failed} failed`);
    };
    await sample();
    const timer = setInterval(() => void sample().catch((error: Error) => console.log(`  sample failed: ${error.message}`)), sampleSeconds * 1000);
    await Promise.all(Array.from({ length: calls }, () => slot()));
    clearInterval(timer);
    await sample();

    const steady = samples.filter((point) => point.minutes >= warmupMinutes);
    // Even right after a full collection the heap holds whatever the calls in flight hold, and the
    // resident set moves with the allocator; what stays is the lowest sample of a stretch, so the
    // verdict is taken on those floors.
    const rss = slopePerTenMinutes(floors(steady, (point) => point.residentMb));
    const heap = slopePerTenMinutes(floors(steady, (point) => point.heapMb));
    const rawRss = slopePerTenMinutes(steady.map((point) => [point.minutes, point.residentMb]));
    const rawHeap = slopePerTenMinutes(steady.map((point) => [point.minutes, point.heapMb]));
    const growing = !(rss <= flatMb) || !(heap <= flatMb);
    const elapsed = (performance.now() - started) / 60_000;
    console.log('');
    console.log(`turns: ${turns} in ${elapsed.toFixed(1)} min (${(turns / (elapsed * 60)).toFixed(1)}/s), ${nextCall - 1} calls, ${failed} failed${errors.length ? `: ${errors.join('; ')}` : ''}`);
    console.log(`RSS: ${describeRange(steady.map((point) => point.residentMb))}; heap in use after a full collection: ${describeRange(steady.map((point) => point.heapMb))} (after the first ${warmupMinutes.toFixed(1)} min)`);
    console.log(`slope of every sample (least squares, ${steady.length} samples): RSS ${signed(rawRss)} MB per 10 min, heap ${signed(rawHeap)} MB per 10 min`);
    console.log(`slope of the floors (lowest sample of each stretch of ${floorStretch}, a shorter last one joined to the one before): RSS ${signed(rss)} MB per 10 min, heap ${signed(heap)} MB per 10 min`);
    console.log(`memory: ${growing ? 'GROWING' : 'flat'} (flat means at most ${flatMb} MB per 10 min for each)`);
    return growing || failed > 0 ? 1 : 0;
  } finally {
    // A client still attached would hold the server's exit ("Waiting for the debugger to disconnect").
    inspector.close();
    await server.stop();
    await fake.close();
  }
}

/** Samples per stretch whose lowest value stands for the stretch (2 minutes at the default 30 s). */
const floorStretch = 4;

/**
 * The lowest point of each stretch of `floorStretch` samples, at that sample's time. A shorter
 * last stretch (the sample taken after the calls end makes one) joins the stretch before: the
 * lowest of two samples sits higher than the lowest of four, and as the last point it would
 * tilt the slope upwards by itself.
 */
function floors(points: Sample[], value: (point: Sample) => number): Array<[number, number]> {
  const result: Array<[number, number]> = [];
  for (let start = 0; start < points.length; start += floorStretch) {
    const end = points.length - (start + floorStretch) < floorStretch ? points.length : start + floorStretch;
    const stretch = points.slice(start, end);
    const lowest = stretch.reduce((low, point) => (value(point) < value(low) ? point : low));
    result.push([lowest.minutes, value(lowest)]);
    if (end === points.length) break;
  }
  return result;
}

/** Least-squares slope of (minutes, MB) points, in MB per 10 minutes. */
function slopePerTenMinutes(points: Array<[number, number]>): number {
  if (points.length < 2) return Number.NaN;
  const meanX = points.reduce((sum, [x]) => sum + x, 0) / points.length;
  const meanY = points.reduce((sum, [, y]) => sum + y, 0) / points.length;
  const covariance = points.reduce((sum, [x, y]) => sum + (x - meanX) * (y - meanY), 0);
  const variance = points.reduce((sum, [x]) => sum + (x - meanX) ** 2, 0);
  return variance === 0 ? Number.NaN : (covariance / variance) * 10;
}

function describeRange(values: number[]): string {
  if (values.length === 0) return 'no samples';
  return `${Math.min(...values).toFixed(1)}–${Math.max(...values).toFixed(1)} MB`;
}

function signed(value: number): string {
  return `${value >= 0 ? '+' : ''}${value.toFixed(1)}`;
}

/** The server's V8 inspector, asked for the heap that survives a full garbage collection. */
async function openInspector(url: string): Promise<{ heapAfterCollection(): Promise<number>; close(): void }> {
  const socket = new WebSocket(url);
  await once(socket, 'open');
  let nextId = 1;
  const pending = new Map<number, { resolve: (result: unknown) => void; reject: (error: Error) => void }>();
  socket.on('message', (data) => {
    const message = JSON.parse(data.toString()) as { id?: number; result?: unknown; error?: { message: string } };
    const waiter = message.id === undefined ? undefined : pending.get(message.id);
    if (!waiter) return;
    pending.delete(message.id!);
    if (message.error) waiter.reject(new Error(`inspector: ${message.error.message}`));
    else waiter.resolve(message.result);
  });
  socket.on('close', () => {
    for (const waiter of pending.values()) waiter.reject(new Error('the inspector connection closed'));
    pending.clear();
  });
  const send = (method: string) =>
    new Promise<unknown>((resolve, reject) => {
      const id = nextId++;
      pending.set(id, { resolve, reject });
      socket.send(JSON.stringify({ id, method }));
    });
  return {
    async heapAfterCollection() {
      await send('HeapProfiler.collectGarbage');
      const usage = (await send('Runtime.getHeapUsage')) as { usedSize: number };
      return usage.usedSize;
    },
    close: () => socket.close(),
  };
}

async function residentBytes(pid: number | undefined): Promise<number | undefined> {
  if (pid === undefined) return undefined;
  try {
    const kilobytes = /VmRSS:\s+(\d+)\s+kB/.exec(await readFile(`/proc/${pid}/status`, 'utf8'))?.[1];
    return kilobytes === undefined ? undefined : Number(kilobytes) * 1024;
  } catch {
    return undefined;
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

main().then(
  (code) => process.exit(code),
  (error: Error) => {
    console.error(error.stack ?? error.message);
    process.exit(1);
  },
);

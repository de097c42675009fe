import type { ServerResponse } from 'node:http';
import { createServer } from 'node:net';

/** An HTTP error answer, shaped like OpenAI's. */
export interface FakeErrorReply {
  status: number;
  message?: string;
  /** OpenAI's error `code`, e.g. `insufficient_quota` for an exhausted balance. */
  code?: string;
  /** Sent as the `retry-after` header (seconds). */
  retryAfterSeconds?: number;
  /** Sent as OpenAI's own `retry-after-ms` header. */
  retryAfterMs?: number;
}

/**
 * A failure injected into the next request(s) to an endpoint:
 * - an HTTP error (`{ status: 500 }`, `{ status: 429, retryAfterSeconds: 2 }`);
 * - `'refuse'`: the socket is destroyed before a single byte is answered;
 * - `'hang'`: the request is read and never answered (no headers, ever);
 * - `{ stallMs }`: the response headers are held back that long, then it answers normally;
 * - `'garbage'`: 200 with an HTML page, what a misconfigured proxy sends;
 * - `'garbage-sse'`: 200 `text/event-stream` whose events are not JSON;
 * - `{ cutAfterChunks }`: a normal answer whose connection is destroyed after
 *   that many body writes (a chat chunk, ~100 ms of audio, a JSON body);
 * - `{ stallAfterChunks }`: a normal answer that goes silent after that many
 *   body writes, with the connection left open.
 */
export type FakeFault =
  | FakeErrorReply
  | 'refuse'
  | 'hang'
  | 'garbage'
  | 'garbage-sse'
  | { stallMs: number }
  | { cutAfterChunks: number }
  | { stallAfterChunks: number };

/** The faults a WebSocket upgrade (the Realtime API's) can meet: the HTTP ones. */
export type FakeConnectionFault = FakeErrorReply | 'refuse' | 'garbage' | { stallMs: number };

/** What the server does with a request after its fault was applied. */
export type FaultOutcome =
  /** The fault answered (or dropped) the request: nothing more to do. */
  | 'answered'
  /** Answer normally (after a delay, or through a response that breaks on its own). */
  | 'proceed';

/** The fake's means, so this module stays free of its internals. */
export interface FaultTools {
  sleep(ms: number): Promise<void>;
  sendError(response: ServerResponse, fault: FakeErrorReply): void;
}

/** Applies `fault` to one request. */
export async function applyFault(fault: FakeFault, response: ServerResponse, tools: FaultTools): Promise<FaultOutcome> {
  if (fault === 'refuse') {
    response.socket?.destroy();
    return 'answered';
  }
  if (fault === 'hang') {
    // The fake's close() ends the connection; until then it stays open and silent.
    return 'answered';
  }
  if (fault === 'garbage') {
    response.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    response.end('<html><body><h1>It works!</h1>\u0000\u00ff\u00fe</body></html>\n');
    return 'answered';
  }
  if (fault === 'garbage-sse') {
    response.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8' });
    response.end('data: {"id":"chatcmpl-x","choices":[{"delta":{"content":"Hel\n\ndata: \u0000\u00ff<html>\n\n');
    return 'answered';
  }
  if ('stallMs' in fault) {
    await tools.sleep(fault.stallMs);
    return response.destroyed ? 'answered' : 'proceed';
  }
  if ('cutAfterChunks' in fault) {
    breakAfterWrites(response, fault.cutAfterChunks, 'cut');
    return 'proceed';
  }
  if ('stallAfterChunks' in fault) {
    breakAfterWrites(response, fault.stallAfterChunks, 'stall');
    return 'proceed';
  }
  tools.sendError(response, fault);
  return 'answered';
}

/**
 * Lets `chunks` body writes through, then either destroys the connection
 * (once those bytes are flushed, so the client sees the data first and the
 * drop after, as with a real one) or swallows everything that follows,
 * `end` included, leaving the client waiting on an open connection.
 */
function breakAfterWrites(response: ServerResponse, chunks: number, then: 'cut' | 'stall'): void {
  const write = response.write.bind(response) as (chunk: unknown, callback?: () => void) => boolean;
  const end = response.end.bind(response) as (chunk?: unknown) => ServerResponse;
  const cut = () => {
    const socket = response.socket;
    // Only once what was written has left, so the client sees it before the drop.
    if (then === 'cut' && socket) socket.end(() => socket.destroy());
  };
  let passed = 0;
  let tripped = false;
  /** Nothing more goes out; the headers do, so the client is past "connected" and inside the body. */
  const trip = () => {
    tripped = true;
    // Unconditionally: `headersSent` turns true at writeHead, before anything is on the wire.
    response.flushHeaders();
  };
  response.write = ((chunk: unknown) => {
    if (tripped) return true;
    if (passed === chunks) {
      trip();
      cut();
      return true;
    }
    passed += 1;
    if (passed < chunks) return write(chunk);
    tripped = true;
    return write(chunk, cut);
  }) as ServerResponse['write'];
  response.end = ((chunk?: unknown) => {
    if (tripped) return response;
    const body = typeof chunk === 'function' ? undefined : chunk;
    if (body === undefined || (body as { length?: number }).length === 0) return end();
    // A whole body sent with `end` (a JSON answer) counts as one chunk.
    if (passed === chunks) {
      trip();
      cut();
      return response;
    }
    return end(body);
  }) as ServerResponse['end'];
}

/**
 * A loopback URL nothing listens on: connecting to it is refused at once,
 * as when the provider (or the proxy in front of it) is down.
 */
export async function refusedBaseUrl(): Promise<string> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return `http://127.0.0.1:${port}/v1`;
}

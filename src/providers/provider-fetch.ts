import { Readable } from 'node:stream';
import { request, type Dispatcher } from 'undici';

/** Statuses whose response has no body; `Response` refuses one for them. */
const nullBodyStatuses = new Set([101, 103, 204, 205, 304]);
/** As many redirects as `fetch` follows. */
const maxRedirections = 20;

/**
 * The `fetch` the OpenAI client is given: the same request over undici's
 * `request` instead of Node's `fetch`. Node's `fetch` builds the full WHATWG
 * machinery (request and header objects with guards, a fetch controller, a
 * body stream fed through several promise hops) around undici; a reply
 * costs a chat request and a speech request per sentence, and on loopback
 * that machinery was about 5 ms of CPU per turn, a quarter of what the
 * requests cost (`bench/provider-fetch-bench.ts`).
 * The SDK still gets a standard `Response`, whose body is the socket's
 * stream seen as a web stream.
 *
 * Only bodies `request` takes as they are (text and bytes: every JSON
 * request) go this way; anything else (a multipart upload of a recording to
 * transcribe) goes through Node's `fetch` on the same connection pool, as
 * before. Aborts reject with the signal's reason, like `fetch`, which is how
 * the SDK tells a timeout from a cancellation; connection errors reject with
 * undici's error, which the SDK retries and reports as a connection error
 * whatever its type.
 */
export function providerFetch(dispatcher: Dispatcher): typeof fetch {
  return async (input, init = {}) => {
    const body = init.body;
    const plainBody = body === undefined || body === null || typeof body === 'string' || body instanceof Uint8Array;
    if (!plainBody || !(typeof input === 'string' || input instanceof URL)) {
      // Node's fetch takes an undici dispatcher; the DOM RequestInit type does not name it.
      return fetch(input, { ...init, dispatcher } as RequestInit);
    }
    const url = String(input);
    const answer = await request(url, {
      dispatcher,
      method: (init.method ?? 'GET') as Dispatcher.HttpMethod,
      headers: headerRecord(init.headers),
      body: body ?? undefined,
      signal: init.signal ?? undefined,
      maxRedirections,
    });
    // A body that fails before anyone reads it (the connection cut between the headers and the first
    // read) would otherwise emit an error nobody listens to, which ends the process; the failure still
    // reaches the reader, from the stream's stored error.
    answer.body.on('error', () => undefined);
    try {
      const headers = new Headers();
      for (const [name, value] of Object.entries(answer.headers)) {
        if (Array.isArray(value)) for (const one of value) headers.append(name, one);
        else if (value !== undefined) headers.append(name, value);
      }
      let stream: ReadableStream<Uint8Array> | null = null;
      if (nullBodyStatuses.has(answer.statusCode) || init.method === 'HEAD') await answer.body.dump().catch(() => undefined);
      else stream = webStream(answer.body);
      const response = new Response(stream, { status: answer.statusCode, headers });
      // Read by the SDK's logs and errors; a constructed Response has none.
      Object.defineProperty(response, 'url', { value: url });
      return response;
    } catch (error) {
      // A header or status no Response can hold: the answer is unusable, and its connection is let go.
      answer.body.destroy();
      throw error;
    }
  };
}

/**
 * The body as a web stream, read as the consumer asks (`Readable.toWeb`
 * pushes instead, and on Node 20 a body still arriving after the consumer
 * cancelled, as the SDK does before a retry, throws from inside the adapter
 * with nothing to catch it). Cancelling destroys the body, which closes or
 * releases the connection; an error reading it errors the stream.
 */
function webStream(body: Readable): ReadableStream<Uint8Array> {
  const chunks = body[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        const next = await chunks.next();
        if (next.done) controller.close();
        else controller.enqueue(new Uint8Array(next.value.buffer, next.value.byteOffset, next.value.byteLength));
      },
      cancel() {
        // undici reports a body destroyed before its end as an error (heard by providerFetch's listener); here that is the point.
        body.destroy();
      },
    },
    { highWaterMark: 0 },
  );
}

function headerRecord(init: HeadersInit | undefined): Record<string, string> {
  const record: Record<string, string> = {};
  if (!init) return record;
  // A Headers object and an array of pairs both iterate as [name, value]; a record does not.
  const entries: Iterable<[string, string]> = init instanceof Headers || Array.isArray(init)
    ? (init as Iterable<[string, string]>)
    : Object.entries(init);
  for (const [name, value] of entries) {
    const key = name.toLowerCase();
    record[key] = key in record ? `${record[key]}, ${value}` : value;
  }
  return record;
}

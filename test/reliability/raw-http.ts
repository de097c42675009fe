import { Agent, request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { connect } from 'node:net';

/** One answer, or how the connection ended without one. */
export interface RawAnswer {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
  /** Set when the server closed the connection instead of answering (e.g. while a huge body was still being sent). */
  reset?: string;
}

export interface RawRequest {
  method: string;
  /** Sent exactly as given: no normalization of `..`, no re-encoding. */
  path: string;
  headers?: Record<string, string>;
  body?: Buffer | string;
  /** Stop reading after the headers (for event streams that never end). */
  headersOnly?: boolean;
}

const agent = new Agent({ keepAlive: true, maxSockets: 8 });

/** Sends a request with full control of its path, headers and body; never follows redirects. */
export function sendRaw(baseUrl: string, input: RawRequest): Promise<RawAnswer> {
  const base = new URL(baseUrl);
  const body = input.body === undefined ? undefined : Buffer.isBuffer(input.body) ? input.body : Buffer.from(input.body);
  return new Promise((resolve) => {
    let settled = false;
    const done = (answer: RawAnswer) => {
      if (!settled) {
        settled = true;
        resolve(answer);
      }
    };
    const request = httpRequest(
      {
        host: base.hostname,
        port: base.port,
        method: input.method,
        path: input.path,
        agent,
        headers: { ...(body ? { 'content-length': String(body.length) } : {}), ...input.headers },
      },
      (response) => {
        if (input.headersOnly) {
          done({ status: response.statusCode ?? 0, headers: response.headers, body: Buffer.alloc(0) });
          response.destroy();
          return;
        }
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () => done({ status: response.statusCode ?? 0, headers: response.headers, body: Buffer.concat(chunks) }));
        response.on('error', (error) => done({ status: response.statusCode ?? 0, headers: response.headers, body: Buffer.concat(chunks), reset: error.message }));
      },
    );
    request.on('error', (error: NodeJS.ErrnoException) => done({ status: 0, headers: {}, body: Buffer.alloc(0), reset: error.code ?? error.message }));
    request.end(body);
  });
}

/**
 * Writes bytes to the server's socket as they are: request lines and headers
 * an HTTP client library would refuse to send (control characters, NUL, bad
 * framing). Resolves with the status line's code, 0 when the server closed
 * the connection without one.
 */
export function sendBytes(baseUrl: string, bytes: Buffer): Promise<number> {
  const base = new URL(baseUrl);
  return new Promise((resolve) => {
    const socket = connect(Number(base.port), base.hostname);
    const chunks: Buffer[] = [];
    const finish = () => {
      const head = Buffer.concat(chunks).toString('latin1');
      resolve(Number(/^HTTP\/1\.[01] (\d{3})/.exec(head)?.[1] ?? 0));
    };
    socket.setTimeout(3_000, () => socket.destroy());
    socket.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      // One answer is all that is wanted.
      if (/\r\n\r\n/.test(Buffer.concat(chunks).toString('latin1'))) socket.destroy();
    });
    socket.on('error', () => {});
    socket.on('close', finish);
    socket.write(bytes);
  });
}

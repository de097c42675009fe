import http from 'node:http';

/**
 * A bare HTTP client for the bench: node:http on a keep-alive agent, no
 * redirects or decoding, so what it adds to a measured request is a few tens
 * of microseconds (the bench reports that baseline) rather than fetch's
 * stream machinery.
 */
const agent = new http.Agent({ keepAlive: true, maxSockets: Number.POSITIVE_INFINITY, maxFreeSockets: 4096 });

export interface HttpAnswer {
  status: number;
  contentType: string;
  body: Buffer;
}

export function request(method: string, url: string, options: { form?: Record<string, string>; headers?: Record<string, string>; timeoutMs?: number } = {}): Promise<HttpAnswer> {
  const body = options.form ? new URLSearchParams(options.form).toString() : undefined;
  return new Promise((resolve, reject) => {
    const outgoing = http.request(url, {
      method,
      agent,
      headers: {
        ...(body === undefined ? {} : { 'content-type': 'application/x-www-form-urlencoded', 'content-length': Buffer.byteLength(body) }),
        ...options.headers,
      },
    }, (incoming) => {
      const chunks: Buffer[] = [];
      incoming.on('data', (chunk: Buffer) => chunks.push(chunk));
      incoming.on('end', () => resolve({
        status: incoming.statusCode ?? 0,
        contentType: String(incoming.headers['content-type'] ?? ''),
        body: chunks.length === 1 ? chunks[0] : Buffer.concat(chunks),
      }));
      incoming.on('error', reject);
    });
    outgoing.setTimeout(options.timeoutMs ?? 30_000, () => outgoing.destroy(new Error(`${method} ${url} timed out after ${options.timeoutMs ?? 30_000} ms`)));
    outgoing.on('error', reject);
    outgoing.end(body);
  });
}

import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Agent } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { providerFetch } from './provider-fetch.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('providerFetch', () => {
  let server: Server;
  let base: string;
  let agent: Agent;
  const fetchOver = () => providerFetch(agent);

  beforeAll(async () => {
    server = createServer((request, response) => {
      let received = '';
      request.on('data', (chunk: Buffer) => (received += chunk.toString()));
      request.on('end', () => {
        switch (request.url) {
          case '/echo':
            response.writeHead(201, { 'content-type': 'application/json', 'set-cookie': ['a=1', 'b=2'], 'x-request-id': 'req_1' });
            response.end(JSON.stringify({ method: request.method, body: received, auth: request.headers.authorization, type: request.headers['content-type'] }));
            return;
          case '/empty':
            response.writeHead(204);
            response.end();
            return;
          case '/cut':
            // Headers and a first chunk, then the connection dies mid-body.
            response.writeHead(200, { 'content-type': 'audio/pcm' });
            response.write(Buffer.alloc(1000, 1));
            setTimeout(() => response.socket?.destroy(), 20);
            return;
          case '/slow':
            response.writeHead(200, { 'content-type': 'audio/pcm' });
            response.write(Buffer.alloc(1000, 1));
            // Never ends on its own: the client has to let it go.
            return;
          case '/hang':
            return; // no headers at all
        }
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    agent = new Agent({ keepAliveTimeout: 10_000 });
  });

  afterAll(async () => {
    await agent.destroy();
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  it('sends method, headers and body, and answers with a standard Response', async () => {
    const headers = new Headers({ authorization: 'Bearer sk-test', 'content-type': 'application/json' });
    const response = await fetchOver()(`${base}/echo`, { method: 'POST', headers, body: '{"input":"hello"}' });
    expect(response).toBeInstanceOf(Response);
    expect(response.status).toBe(201);
    expect(response.ok).toBe(true);
    expect(response.url).toBe(`${base}/echo`);
    expect(response.headers.get('x-request-id')).toBe('req_1');
    expect(response.headers.getSetCookie()).toEqual(['a=1', 'b=2']);
    expect(await response.json()).toEqual({ method: 'POST', body: '{"input":"hello"}', auth: 'Bearer sk-test', type: 'application/json' });
  });

  it('gives a 204 no body', async () => {
    const response = await fetchOver()(`${base}/empty`, { method: 'POST', body: '{}' });
    expect(response.status).toBe(204);
    expect(response.body).toBeNull();
  });

  it('fails the reader, and nothing else, when the connection dies before the body is read', async () => {
    const response = await fetchOver()(`${base}/cut`, { method: 'POST', body: '{}' });
    // The connection is cut while nobody reads: no error may escape to the process.
    await sleep(100);
    await expect(response.arrayBuffer()).rejects.toThrow();
  });

  it('lets a half-read body go when the reader cancels it', async () => {
    const response = await fetchOver()(`${base}/slow`, { method: 'POST', body: '{}' });
    const reader = response.body!.getReader();
    const first = await reader.read();
    expect(first.value?.byteLength).toBeGreaterThan(0);
    await reader.cancel();
    await sleep(50);
    // The pool can still serve requests once the cancelled one is gone.
    expect((await fetchOver()(`${base}/echo`, { method: 'POST', body: 'x' })).status).toBe(201);
  });

  it('rejects with the signal’s reason when aborted before the headers, as fetch does', async () => {
    const controller = new AbortController();
    const pending = fetchOver()(`${base}/hang`, { method: 'POST', body: '{}', signal: controller.signal });
    setTimeout(() => controller.abort(), 20);
    await expect(pending).rejects.toMatchObject({ name: 'AbortError' });
  });

  it('sends a multipart upload through Node’s fetch on the same pool', async () => {
    const form = new FormData();
    form.append('model', 'whisper-1');
    const response = await fetchOver()(`${base}/echo`, { method: 'POST', body: form });
    const echoed = (await response.json()) as { body: string; type: string };
    expect(echoed.type).toMatch(/^multipart\/form-data; boundary=/);
    expect(echoed.body).toContain('whisper-1');
  });
});

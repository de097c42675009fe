import { mkdtemp, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';

/** The keys s3rver checks signatures with. */
export const s3TestCredentials = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' } as const;

/** A running S3-compatible server on loopback, its data in a temporary folder. */
export interface S3TestServer {
  /** e.g. `http://127.0.0.1:43121`; use with path-style addressing. */
  endpoint: string;
  bucket: string;
  close(): Promise<void>;
}

interface S3rverInstance {
  run(): Promise<{ address: string; port: number }>;
  close(): Promise<void>;
}

/** Starts s3rver on a free port of 127.0.0.1 with one empty bucket. */
export async function startS3TestServer(bucket = 'callme-audio'): Promise<S3TestServer> {
  const directory = await mkdtemp(path.join(tmpdir(), 'callme-s3-'));
  // s3rver is CommonJS without type declarations.
  const S3rver = createRequire(import.meta.url)('s3rver') as new (options: Record<string, unknown>) => S3rverInstance;
  const server = new S3rver({ address: '127.0.0.1', port: 0, silent: true, directory, configureBuckets: [{ name: bucket, configs: [] }] });
  const { port } = await server.run();
  return {
    endpoint: `http://127.0.0.1:${port}`,
    bucket,
    async close() {
      await server.close().catch(() => {});
      await rm(directory, { recursive: true, force: true });
    },
  };
}

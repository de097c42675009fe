import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pino, type DestinationStream } from 'pino';
import { createApp, type App } from '../app.js';
import { loadConfig, type Config } from '../config.js';
import { createLogger } from '../observability/create-logger.js';
import type { Database } from '../storage/database.js';
import { signTwilioRequest } from '../simulator/twilio-simulator.js';
import { openTestDatabase, type DatabaseKind } from './test-databases.js';

/** The host the test server believes Twilio uses; requests really go to 127.0.0.1 (as behind a tunnel). */
export const testPublicUrl = 'https://callme.test';
export const testAuthToken = 'test-auth-token-0123456789abcdef';

export interface TestApp {
  app: App;
  config: Config;
  db: Database;
  /** Where requests go. */
  baseUrl: string;
  publicUrl: string;
  authToken: string;
  dataDir: string;
  close(): Promise<void>;
}

/**
 * The real server on a loopback port, with a throwaway database of `kind` and
 * a temporary data folder. `env` is the environment it is configured from
 * (the same parsing as production); OpenAI traffic goes where `OPENAI_BASE_URL` says.
 */
export async function startTestApp(
  kind: DatabaseKind,
  env: Record<string, string | undefined> = {},
  options: { /** Where the server's own logger (the production one: scrubbing, masking) writes; silent otherwise. */ logDestination?: DestinationStream } = {},
): Promise<TestApp> {
  const dataDir = await mkdtemp(path.join(tmpdir(), 'callme-test-'));
  const testDb = await openTestDatabase(kind);
  const config = loadConfig({
    PUBLIC_URL: testPublicUrl,
    TWILIO_AUTH_TOKEN: testAuthToken,
    DATA_DIR: dataDir,
    AUDIO_RETENTION: 'delete',
    LOG_LEVEL: 'silent',
    OPENAI_TIMEOUT_MS: '5000',
    ...env,
  });
  const logger = options.logDestination ? createLogger(config, options.logDestination) : pino({ level: config.logLevel });
  const app = await createApp(config, { database: testDb.db, logger });
  const address = await app.server.listen({ port: 0, host: '127.0.0.1' });
  return {
    app,
    config,
    db: testDb.db,
    baseUrl: address,
    publicUrl: config.publicUrl,
    authToken: config.twilio.authToken ?? '',
    dataDir,
    async close() {
      await app.close().catch(() => {});
      await testDb.cleanup().catch(() => {});
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

/** Posts a webhook to the test server as Twilio would: form-encoded and signed over the public URL. */
export function postSignedWebhook(server: TestApp, route: string, params: Record<string, string>): Promise<Response> {
  return fetch(`${server.baseUrl}${route}`, {
    method: 'POST',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      'x-twilio-signature': signTwilioRequest(server.authToken, `${server.publicUrl}${route}`, params),
    },
    body: new URLSearchParams(params),
  });
}

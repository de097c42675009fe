import { setFlagsFromString } from 'node:v8';
import { createApp, prewarmPhrases } from './app.js';
import { ConfigError, loadConfig, type Config } from './config.js';
import { ProfileError } from './assistant/profile.js';
import { devAuthTokenPath } from './twilio/dev-auth-token.js';

async function main(): Promise<void> {
  let config: Config;
  try {
    config = loadConfig();
  } catch (error) {
    if (error instanceof ConfigError) {
      console.error(`callme cannot start.\n${error.message}\nSee README.md, "Configuration".`);
      process.exit(1);
    }
    throw error;
  }
  // A call keeps its turn's objects (requests, streams, pending replies) for
  // seconds, so many outlive the young generation and the old one grows
  // steadily under load. V8 sizes that small heap's next limit only a little
  // above what survives: under 50 calls it ran a full collection every
  // 0.6-1 s, each pausing the event loop 5-16 ms at once and in steps of up
  // to 13 ms, which landed in the slowest replies. Letting the heap grow
  // further first makes those collections rare. The flag is the process's,
  // so every thread's heap grows further too: it costs memory (the README's
  // HEAP_GROWTH_PERCENT row has the figures), and 0 keeps V8's own margin.
  if (config.heapGrowthPercent > 0) setFlagsFromString(`--heap-growing-percent=${config.heapGrowthPercent}`);

  const app = await createApp(config).catch((error: unknown) => {
    if (error instanceof ProfileError) {
      console.error(`callme cannot start: ${error.message}`);
      process.exit(1);
    }
    const code = (error as NodeJS.ErrnoException).code;
    if (config.databaseUrl && (code === 'ECONNREFUSED' || code === '28P01' || code === '3D000' || code === 'ENOTFOUND')) {
      console.error(`callme cannot start: the database at DATABASE_URL is not reachable (${(error as Error).message}).`);
      process.exit(1);
    }
    throw error;
  });

  try {
    await app.server.listen({ port: config.port, host: config.host });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EADDRINUSE') {
      console.error(`callme cannot start: port ${config.port} is already in use. Set PORT to another port.`);
      await app.close();
      process.exit(1);
    }
    throw error;
  }
  console.log(startupMessage(config, app.services.database.kind, app.services.profiles.defaultProfile.id));

  const prewarm = new AbortController();
  const prewarmed = app.services.speechModel
    ? prewarmPhrases(app.services, prewarm.signal).then(({ ready, failed }) => {
        if (!prewarm.signal.aborted) app.services.logger.info({ ready, failed }, 'fixed phrases ready');
      })
    : Promise.resolve();

  const streams = app.services.streams;
  if (streams && app.services.profiles.all.some((profile) => profile.mode === 'stream')) {
    // The voice activity model (and its threads) are ready before the first stream call.
    void streams.prepare().catch((error: unknown) => app.services.logger.warn({ err: error }, 'could not prepare voice activity detection'));
  }

  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    app.services.logger.info({ signal }, 'shutting down: finishing turns in flight');
    const force = setTimeout(() => process.exit(1), 20_000);
    force.unref();
    // Phrases still being prepared stop first, so none is written after the database closes.
    prewarm.abort();
    prewarmed.then(() => app.close()).then(
      () => process.exit(0),
      (error) => {
        app.services.logger.error({ err: error }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

/** What a person reads at start: where to point Twilio, and what is and isn't set up. */
export function startupMessage(config: Config, databaseKind: string, profileId: string): string {
  const line = (ok: boolean, text: string) => `  ${ok ? '✔' : '✘'} ${text}`;
  const base = config.publicUrl;
  const lines = [
    '',
    `callme is listening on http://${config.host === '0.0.0.0' ? 'localhost' : config.host}:${config.port}`,
    '',
    'Twilio console → Phone Numbers → your number → Voice Configuration:',
    `  A call comes in (Webhook, HTTP POST):  ${base}/twilio/incoming   (or ${base}/voice)`,
    `  Call status changes (HTTP POST):       ${base}/twilio/status     (or ${base}/status)`,
    config.publicUrlIsDefault
      ? '  PUBLIC_URL is not set: Twilio cannot reach localhost. Run a tunnel (e.g. `ngrok http 8000`) and set PUBLIC_URL to its https address.'
      : '',
    '',
    'Configuration:',
    line(true, `database: ${databaseKind === 'postgres' ? 'PostgreSQL (DATABASE_URL)' : `embedded PGlite in ${config.dataDir}/db (set DATABASE_URL for PostgreSQL)`}`),
    line(true, `audio files: ${config.audioDir}; kept ${describeRetention(config)}`),
    line(true, `assistant profile: ${profileId} (from ${config.assistant.profilesDir}/)`),
    config.openai.apiKey
      ? line(true, `OpenAI: chat ${config.openai.chatModel} and speech at ${config.openai.baseUrl ?? 'api.openai.com'}`)
      : line(false, 'OPENAI_API_KEY is not set: calls are answered by the scripted assistant, with Twilio\'s Polly voices; /tts/stream answers 503'),
    config.twilio.authToken
      ? line(true, 'TWILIO_AUTH_TOKEN: webhook signatures are checked')
      : line(false, `TWILIO_AUTH_TOKEN is not set: webhooks must be signed with the local development token in ${devAuthTokenPath(config.dataDir)} (the simulator, \`npm run call\`, uses it); real Twilio calls are refused until you set it`),
    config.twilio.validateSignature ? '' : '  ⚠ TWILIO_VALIDATE_SIGNATURE=false: webhook signatures are NOT checked; anyone who finds this server can post fake calls',
    line(Boolean(config.twilio.accountSid), config.twilio.accountSid ? 'TWILIO_ACCOUNT_SID set' : 'TWILIO_ACCOUNT_SID is not set (only needed for outbound calls and recordings)'),
    line(Boolean(config.twilio.phoneNumber), config.twilio.phoneNumber ? `phone number ${config.twilio.phoneNumber}` : 'TWILIO_PHONE_NUMBER is not set (only needed for outbound calls)'),
    config.apiToken ? line(true, 'API_TOKEN: /tts/stream needs "Authorization: Bearer <API_TOKEN>"') : line(false, 'API_TOKEN is not set: /tts/stream answers only requests from this machine'),
    config.admin.token || config.admin.username
      ? line(true, `dashboard: ${base}/dashboard (sign in with ${config.admin.token ? 'ADMIN_TOKEN' : 'ADMIN_USERNAME and ADMIN_PASSWORD'})`)
      : line(false, `ADMIN_TOKEN is not set: the dashboard (${base}/dashboard) and /api answer only this machine`),
    '',
    'Try a call from this terminal:  npm run call',
    '',
  ];
  return lines.filter((text, index) => text !== '' || lines[index - 1] !== '').join('\n');
}

function describeRetention(config: Config): string {
  const retention = config.audioRetention;
  if (retention.kind === 'delete') return 'until the call ends';
  if (retention.kind === 'forever') return 'forever';
  return `${retention.days} days after the call`;
}

await main();

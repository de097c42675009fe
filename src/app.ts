import type { FastifyInstance } from 'fastify';
import { pino, type Logger } from 'pino';
import { DiskAudioStore } from './audio/disk-audio-store.js';
import { detailTools } from './assistant/detail-tools.js';
import { LlmAssistant } from './assistant/llm-assistant.js';
import { ToolBox } from './assistant/tool-box.js';
import { loadProfiles } from './assistant/profile.js';
import { ScriptedAssistant } from './assistant/scripted-assistant.js';
import type { Config } from './config.js';
import { CallEngine } from './conversation/call-engine.js';
import { CallStatusRecorder } from './conversation/call-status-recorder.js';
import { SpeechRenderer } from './conversation/speech-renderer.js';
import { TurnProgress } from './conversation/turn-progress.js';
import { createOpenAIClient } from './providers/openai-client.js';
import { OpenAIChatModel } from './providers/openai-chat-model.js';
import { OpenAISpeechModel } from './providers/openai-speech-model.js';
import { OpenAITranscriptionModel } from './providers/openai-transcription-model.js';
import { OpenAIRealtimeModel } from './providers/openai-realtime-model.js';
import { MediaStreamHub } from './conversation/media-stream-hub.js';
import { Metrics } from './observability/metrics.js';
import { buildServer } from './server.js';
import type { Services } from './services.js';
import { CallRepository } from './storage/call-repository.js';
import { openDatabase } from './storage/open-database.js';
import type { Database } from './storage/database.js';
import { ensureDevAuthToken } from './twilio/dev-auth-token.js';

export interface App {
  services: Services;
  server: FastifyInstance;
  /** Stops accepting requests, lets turns in flight finish, then closes the database. */
  close(): Promise<void>;
}

/** Model calls a turn may spend before the caller hears an apology instead. */
const turnTimeoutMarginMs = 2_000;

/** Builds every service from the configuration and the HTTP server on top (config → database → providers → server). */
export async function createApp(config: Config, options: { logger?: Logger; database?: Database } = {}): Promise<App> {
  const logger =
    options.logger ??
    pino({
      level: config.logLevel,
      redact: { paths: ['req.headers.authorization', 'req.headers["x-twilio-signature"]', '*.apiKey', '*.authToken'], censor: '[redacted]' },
    });
  const profiles = await loadProfiles(config.assistant.profilesDir, config.assistant.profile);
  const database = options.database ?? await openDatabase({
    databaseUrl: config.databaseUrl,
    dataDir: config.dataDir,
    onError: (error) => logger.error({ err: error }, 'database connection error'),
  });
  const repository = new CallRepository(database);
  const audioStore = new DiskAudioStore(config.audioDir);

  const openai = config.openai.apiKey
    ? createOpenAIClient({
        apiKey: config.openai.apiKey,
        baseURL: config.openai.baseUrl ?? 'https://api.openai.com/v1',
        timeoutMs: config.openai.timeoutMs,
        maxRetries: 1,
      })
    : undefined;
  const chatModel = openai ? new OpenAIChatModel({ client: openai, idleTimeoutMs: config.openai.timeoutMs }) : undefined;
  const speechModel = openai ? new OpenAISpeechModel({ client: openai, idleTimeoutMs: config.openai.timeoutMs }) : undefined;

  const metrics = new Metrics({ activeCalls: () => repository.countActiveCalls() });
  const renderer = new SpeechRenderer({ speechModel, audioStore, repository });
  const tools = new ToolBox([detailTools]);
  const engine = new CallEngine({
    repository,
    profiles,
    llmAssistant: chatModel ? new LlmAssistant({ chatModel, tools, defaultModel: config.openai.chatModel }) : undefined,
    scriptedAssistant: new ScriptedAssistant(),
    renderer,
    progress: new TurnProgress(),
    settings: {
      minSpeechConfidence: config.assistant.minSpeechConfidence,
      maxSilentPrompts: config.assistant.maxSilentPrompts,
      maxLlmFailures: config.assistant.maxLlmFailures,
      turnTimeoutMs: config.openai.timeoutMs + turnTimeoutMarginMs,
      pipelinedReplies: config.assistant.pipelinedReplies,
    },
    logger,
    metrics,
  });
  const streams =
    openai && speechModel
      ? new MediaStreamHub({
          engine,
          repository,
          renderer,
          audioStore,
          speechModel,
          transcriptionModel: new OpenAITranscriptionModel({ client: openai }),
          realtimeModel: new OpenAIRealtimeModel({ client: openai }),
          tools,
          logger,
        })
      : undefined;
  const statusRecorder = new CallStatusRecorder({ repository, engine, audioStore, retention: config.audioRetention, logger });
  const twilioAuthToken = config.twilio.authToken ?? (await ensureDevAuthToken(config.dataDir));

  const services: Services = {
    config, logger, database, repository, profiles, engine, statusRecorder, renderer, audioStore, speechModel, twilioAuthToken, metrics, streams,
  };
  const server = await buildServer(services);
  const sweeper = setInterval(() => {
    statusRecorder.sweepExpiredAudio().catch((error) => logger.warn({ err: error }, 'audio retention sweep failed'));
  }, 3_600_000);
  sweeper.unref();

  let closing: Promise<void> | undefined;
  return {
    services,
    server,
    close: () =>
      (closing ??= (async () => {
        clearInterval(sweeper);
        streams?.closeAll();
        await server.close();
        await engine.drain();
        await database.close();
      })()),
  };
}

/**
 * Synthesizes every profile's fixed phrases ahead of the first call, so a
 * greeting never waits on the provider. Failures are only logged: the phrase
 * is synthesized on first use instead.
 */
export async function prewarmPhrases(services: Services): Promise<{ ready: number; failed: number }> {
  let ready = 0;
  let failed = 0;
  const jobs = services.profiles.all.flatMap((profile) =>
    [profile.greeting, ...Object.entries(profile.phrases).filter(([name]) => name !== 'confirm').map(([, text]) => text)].map(
      (text) => async () => {
        try {
          await services.renderer.renderPhrase(text, profile);
          ready += 1;
        } catch (error) {
          failed += 1;
          services.logger.warn({ err: error, profile: profile.id }, 'could not prepare a phrase; it will be synthesized on first use');
        }
      },
    ),
  );
  // A few at a time: the provider's rate limits are shared with live calls.
  const workers = Array.from({ length: 3 }, async () => {
    for (let job = jobs.shift(); job; job = jobs.shift()) await job();
  });
  await Promise.all(workers);
  return { ready, failed };
}

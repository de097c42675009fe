import type { Socket } from 'node:net';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { openAudioStore } from './audio/open-audio-store.js';
import { OutboundCallRepository } from './outbound/outbound-call-repository.js';
import { OutboundDialer } from './outbound/outbound-dialer.js';
import { outboundContext } from './outbound/outbound-tools.js';
import { RecordingArchive } from './recordings/recording-archive.js';
import { RecordingRepository } from './recordings/recording-repository.js';
import { TransferRepository } from './transfer/transfer-repository.js';
import { transferTools } from './transfer/transfer-tools.js';
import { TwilioTelephonyApi } from './twilio/twilio-telephony-api.js';
import { detailTools } from './assistant/detail-tools.js';
import { LlmAssistant } from './assistant/llm-assistant.js';
import { ToolBox } from './assistant/tool-box.js';
import { KnowledgeBase } from './knowledge/knowledge-base.js';
import { KnowledgeRepository } from './knowledge/knowledge-repository.js';
import { knowledgeTools } from './knowledge/knowledge-tools.js';
import { languageTools } from './languages/language-tools.js';
import { CallerRecognition, callerRecognitionToolkit } from './reservations/caller-recognition.js';
import { ReservationBook } from './reservations/reservation-book.js';
import { reservationTools } from './reservations/reservation-tools.js';
import { ReservationRepository } from './storage/reservation-repository.js';
import { OpenAIEmbeddingModel } from './providers/openai-embedding-model.js';
import { loadProfiles } from './assistant/profile.js';
import { ScriptedAssistant } from './assistant/scripted-assistant.js';
import type { Config } from './config.js';
import { CallEngine } from './conversation/call-engine.js';
import { CallStatusRecorder } from './conversation/call-status-recorder.js';
import { SpeechRenderer } from './conversation/speech-renderer.js';
import { PendingAudio } from './audio/pending-audio.js';
import { TurnProgress } from './conversation/turn-progress.js';
import { createOpenAIClient, createProviderAgent } from './providers/openai-client.js';
import { OpenAIChatModel } from './providers/openai-chat-model.js';
import { OpenAISpeechModel } from './providers/openai-speech-model.js';
import { OpenAITranscriptionModel } from './providers/openai-transcription-model.js';
import { callRetryPolicy } from './providers/retry-policy.js';
import { OpenAIRealtimeModel } from './providers/openai-realtime-model.js';
import { MediaStreamHub } from './conversation/media-stream-hub.js';
import { createLogger } from './observability/create-logger.js';
import { Metrics } from './observability/metrics.js';
import { buildServer } from './server.js';
import type { Services } from './services.js';
import { ResilientCallRepository } from './storage/resilient-call-repository.js';
import { openDatabase } from './storage/open-database.js';
import type { Database } from './storage/database.js';
import { ensureDevAuthToken } from './twilio/dev-auth-token.js';
import { openCallerTurns } from './audio/open-caller-turns.js';

export interface App {
  services: Services;
  server: FastifyInstance;
  /** Stops accepting requests, lets turns in flight finish, then closes the database. */
  close(): Promise<void>;
}

/** Model calls a turn may spend before the caller hears an apology instead. */
const turnTimeoutMarginMs = 2_000;
/** How long shutdown waits for writes queued during a database outage (the process is killed after 20 s). */
const shutdownWriteWaitMs = 10_000;

/** Builds every service from the configuration and the HTTP server on top (config → database → providers → server). */
export async function createApp(config: Config, options: { logger?: Logger; database?: Database } = {}): Promise<App> {
  const logger = options.logger ?? createLogger(config);
  const profiles = await loadProfiles(config.assistant.profilesDir, config.assistant.profile);
  const database = options.database ?? await openDatabase({
    databaseUrl: config.databaseUrl,
    dataDir: config.dataDir,
    pgliteThread: config.pgliteThread,
    onError: (error) => logger.error({ err: error }, 'database connection error'),
  });
  // Calls in progress outlive a database restart: their writes wait in memory and are replayed in order.
  const repository = new ResilientCallRepository(database, { logger });
  const audioStore = openAudioStore(config.audioStore, config.audioDir);

  const providerAgent = config.openai.apiKey ? createProviderAgent() : undefined;
  const openai = config.openai.apiKey
    ? createOpenAIClient({
        dispatcher: providerAgent,
        apiKey: config.openai.apiKey,
        baseURL: config.openai.baseUrl ?? 'https://api.openai.com/v1',
        timeoutMs: config.openai.timeoutMs,
        // The models retry (callRetryPolicy): the SDK's own retries sleep through any Retry-After, deaf to aborts.
        maxRetries: 0,
      })
    : undefined;
  const providerTiming = { idleTimeoutMs: config.openai.timeoutMs, retry: callRetryPolicy };
  const chatModel = openai ? new OpenAIChatModel({ client: openai, ...providerTiming }) : undefined;
  const speechModel = openai ? new OpenAISpeechModel({ client: openai, ...providerTiming }) : undefined;

  const metrics = new Metrics({ activeCalls: () => repository.countActiveCalls() });
  repository.journal.registerMetrics(metrics.registry);
  const pendingAudio = new PendingAudio();
  const renderer = new SpeechRenderer({ speechModel, audioStore, repository, pendingAudio });
  const knowledge = new KnowledgeBase({
    repository: new KnowledgeRepository(database),
    embeddingModel: openai && config.openai.embeddingModel ? new OpenAIEmbeddingModel({ client: openai }) : undefined,
    embeddingModelName: config.openai.embeddingModel,
    logger,
  });
  for (const report of await knowledge.load(profiles.all)) logger.info(report, 'knowledge loaded');
  const transcriptionModel = openai ? new OpenAITranscriptionModel({ client: openai, timeoutMs: config.openai.timeoutMs, retry: callRetryPolicy }) : undefined;
  const reservationRepository = new ReservationRepository(database);
  const reservationBook = new ReservationBook(reservationRepository);
  const callerRecognition = new CallerRecognition(reservationRepository);
  // Twilio's REST API (outbound calls, recording downloads) needs the account's SID and token.
  const telephony =
    config.twilio.accountSid && config.twilio.authToken
      ? new TwilioTelephonyApi({ accountSid: config.twilio.accountSid, authToken: config.twilio.authToken, apiBaseUrl: config.twilio.apiBaseUrl })
      : undefined;
  const transfers = new TransferRepository(database);
  const outboundCalls = new OutboundCallRepository(database);
  const outboundDialer = new OutboundDialer({ calls: outboundCalls, profiles, telephony, publicUrl: config.publicUrl, fromNumber: config.twilio.phoneNumber, logger });
  const tools = new ToolBox([detailTools, knowledgeTools(knowledge), languageTools, reservationTools(reservationBook), callerRecognitionToolkit(callerRecognition), transferTools, outboundContext(outboundDialer)]);
  const engine = new CallEngine({
    repository,
    profiles,
    llmAssistant: chatModel ? new LlmAssistant({ chatModel, tools, defaultModel: config.openai.chatModel }) : undefined,
    scriptedAssistant: new ScriptedAssistant({ reservations: reservationBook }),
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
    callerRecognition,
    openingLine: (call) => outboundDialer.openingLine(call),
    transfers,
  });
  const turns = openai && speechModel ? openCallerTurns(config.voiceActivityThreads, logger) : undefined;
  const streams =
    openai && speechModel && turns
      ? new MediaStreamHub({
          engine,
          repository,
          renderer,
          audioStore,
          speechModel,
          transcriptionModel: transcriptionModel!,
          realtimeModel: new OpenAIRealtimeModel({ client: openai }),
          turns,
          tools,
          logger,
          metrics,
        })
      : undefined;
  const statusRecorder = new CallStatusRecorder({ repository, engine, audioStore, retention: config.audioRetention, logger });
  const recordingRepository = new RecordingRepository(database);
  const recordings = new RecordingArchive({
    recordings: recordingRepository, repository, audioStore, telephony, accountSid: config.twilio.accountSid, retention: config.audioRetention, logger,
  });
  const twilioAuthToken = config.twilio.authToken ?? (await ensureDevAuthToken(config.dataDir));

  const services: Services = {
    config, logger, database, repository, profiles, engine, statusRecorder, renderer, audioStore, pendingAudio, speechModel, twilioAuthToken, metrics, streams,
    knowledge, transcriptionModel,
    telephony, recordings, recordingRepository, transfers, outboundCalls, outboundDialer,
  };
  const server = await buildServer(services);
  const sweeper = setInterval(() => {
    statusRecorder.sweepExpiredAudio().catch((error) => logger.warn({ err: error }, 'audio retention sweep failed'));
  }, 3_600_000);
  sweeper.unref();

  /** How long requests still in flight at shutdown may take before their connections are cut. */
  const closeGraceMs = 12_000;
  /** How long a media stream closed at shutdown may take to finish its closing handshake. */
  const streamCloseGraceMs = 3_000;
  // Every socket, upgraded ones too: `closeAllConnections` knows only those still speaking HTTP,
  // and a media-stream socket caught mid-upgrade would otherwise hold the shutdown for good.
  const sockets = new Set<Socket>();
  server.server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  // Media-stream sockets: at shutdown each is closed with 1000 (Twilio then carries the call on over
  // webhooks) and given `streamCloseGraceMs`; one whose peer half-closed without a closing handshake
  // would otherwise stay open until the general cut.
  const upgraded = new Set<Socket>();
  server.server.on('upgrade', (_request: unknown, socket: Socket) => {
    upgraded.add(socket);
    socket.once('close', () => upgraded.delete(socket));
  });
  let closing: Promise<void> | undefined;
  return {
    services,
    server,
    close: () =>
      (closing ??= (async () => {
        clearInterval(sweeper);
        streams?.closeAll();
        // In-flight webhooks answer within seconds; a connection that never finishes
        // (a half-sent request, a client gone quiet) must not hold the shutdown up.
        const cutStreams = setTimeout(() => {
          for (const socket of upgraded) socket.destroy();
        }, streamCloseGraceMs);
        const cutConnections = setTimeout(() => {
          logger.warn(
            { connections: sockets.size },
            `shutdown: connections still open after ${closeGraceMs / 1000} s are cut`,
          );
          server.server.closeAllConnections();
          for (const socket of sockets) socket.destroy();
        }, closeGraceMs);
        await server.close();
        clearTimeout(cutConnections);
        clearTimeout(cutStreams);
        await engine.drain();
        await recordings.settle();
        await repository.flushWrites(shutdownWriteWaitMs);
        await turns?.close();
        await database.close();
        await providerAgent?.destroy();
      })()),
  };
}

/**
 * Synthesizes every profile's fixed phrases ahead of the first call, so a
 * greeting never waits on the provider. Failures are only logged: the phrase
 * is synthesized on first use instead. `signal` stops it (at shutdown): no
 * new phrase is started, the ones in flight are abandoned, and once it
 * resolves nothing of it writes to storage any more.
 */
export async function prewarmPhrases(services: Services, signal?: AbortSignal): Promise<{ ready: number; failed: number }> {
  let ready = 0;
  let failed = 0;
  const jobs = services.profiles.all.flatMap((profile) =>
    [profile.greeting, ...(profile.recording.enabled ? [profile.recording.disclosure] : []), ...(profile.transfer ? [profile.transfer.handoffLine, profile.transfer.unavailableLine, profile.transfer.messageTakenLine] : []), ...Object.entries(profile.phrases).filter(([name]) => name !== 'confirm').map(([, text]) => text)].map(
      (text) => async () => {
        try {
          await services.renderer.renderPhrase(text, profile, signal);
          ready += 1;
        } catch (error) {
          if (signal?.aborted) return;
          failed += 1;
          services.logger.warn({ err: error, profile: profile.id }, 'could not prepare a phrase; it will be synthesized on first use');
        }
      },
    ),
  );
  // A few at a time: the provider's rate limits are shared with live calls.
  const workers = Array.from({ length: 3 }, async () => {
    for (let job = jobs.shift(); job && !signal?.aborted; job = jobs.shift()) await job();
  });
  await Promise.all(workers);
  return { ready, failed };
}

import type { Logger } from 'pino';
import type { AudioStore } from './audio/audio-store.js';
import type { ProfileSet } from './assistant/profile.js';
import type { MediaStreamHub } from './conversation/media-stream-hub.js';
import type { Config } from './config.js';
import type { CallEngine } from './conversation/call-engine.js';
import type { CallStatusRecorder } from './conversation/call-status-recorder.js';
import type { SpeechRenderer } from './conversation/speech-renderer.js';
import type { SpeechModel } from './providers/speech-model.js';
import type { Metrics } from './observability/metrics.js';
import type { CallRepository } from './storage/call-repository.js';
import type { Database } from './storage/database.js';

/** Everything built once at start-up and handed to the HTTP layer. */
export interface Services {
  config: Config;
  logger: Logger;
  database: Database;
  repository: CallRepository;
  profiles: ProfileSet;
  engine: CallEngine;
  statusRecorder: CallStatusRecorder;
  renderer: SpeechRenderer;
  audioStore: AudioStore;
  /** Absent when no OpenAI key is configured. */
  speechModel?: SpeechModel;
  /** The token Twilio signs webhooks with (the configured one, or the local development token). */
  twilioAuthToken: string;
  metrics: Metrics;
  /** The media-stream calls of this instance; absent when they cannot run (no OpenAI key). */
  streams?: MediaStreamHub;
}

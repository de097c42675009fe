import type { Logger } from 'pino';
import type { AudioStore } from './audio/audio-store.js';
import type { ProfileSet } from './assistant/profile.js';
import type { MediaStreamHub } from './conversation/media-stream-hub.js';
import type { Config } from './config.js';
import type { CallEngine } from './conversation/call-engine.js';
import type { CallStatusRecorder } from './conversation/call-status-recorder.js';
import type { SpeechRenderer } from './conversation/speech-renderer.js';
import type { PendingAudio } from './audio/pending-audio.js';
import type { SpeechModel } from './providers/speech-model.js';
import type { TranscriptionModel } from './providers/transcription-model.js';
import type { KnowledgeBase } from './knowledge/knowledge-base.js';
import type { Metrics } from './observability/metrics.js';
import type { CallRepository } from './storage/call-repository.js';
import type { Database } from './storage/database.js';

import type { OutboundCallRepository } from './outbound/outbound-call-repository.js';
import type { OutboundDialer } from './outbound/outbound-dialer.js';
import type { RecordingArchive } from './recordings/recording-archive.js';
import type { RecordingRepository } from './recordings/recording-repository.js';
import type { TransferRepository } from './transfer/transfer-repository.js';
import type { TelephonyApi } from './twilio/telephony-api.js';

/** Everything built once at start-up and handed to the HTTP layer. */
export interface Services {
  config: Config;
  logger: Logger;
  /** Twilio's REST API; absent without `TWILIO_ACCOUNT_SID` and `TWILIO_AUTH_TOKEN`. */
  telephony?: TelephonyApi;
  /** Call recordings: callbacks stored, audio fetched into the audio store. */
  recordings: RecordingArchive;
  recordingRepository: RecordingRepository;
  /** Hand-offs to a person and the messages taken when nobody answered. */
  transfers: TransferRepository;
  outboundCalls: OutboundCallRepository;
  /** Places calls (`POST /api/calls`, the CLI). */
  outboundDialer: OutboundDialer;
  database: Database;
  repository: CallRepository;
  profiles: ProfileSet;
  engine: CallEngine;
  statusRecorder: CallStatusRecorder;
  renderer: SpeechRenderer;
  audioStore: AudioStore;
  /** Reply audio being synthesized under names already given to Twilio. */
  pendingAudio: PendingAudio;
  /** Absent when no OpenAI key is configured. */
  speechModel?: SpeechModel;
  /** The token Twilio signs webhooks with (the configured one, or the local development token). */
  twilioAuthToken: string;
  metrics: Metrics;
  /** The media-stream calls of this instance; absent when they cannot run (no OpenAI key). */
  streams?: MediaStreamHub;
  /** Each profile's knowledge sources, searchable. */
  knowledge: KnowledgeBase;
  /** Speech to text for uploaded audio (`/mvp/audio`); absent without an OpenAI key. */
  transcriptionModel?: TranscriptionModel;
}

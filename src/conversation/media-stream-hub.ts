import type { ToolBox } from '../assistant/tool-box.js';
import type { Logger } from 'pino';
import type { AudioStore } from '../audio/audio-store.js';
import type { CallerTurns } from '../audio/caller-turns.js';
import type { AssistantProfile } from '../assistant/profile.js';
import type { Metrics } from '../observability/metrics.js';
import type { RealtimeModel } from '../providers/realtime-model.js';
import type { SpeechModel } from '../providers/speech-model.js';
import type { TranscriptionModel } from '../providers/transcription-model.js';
import type { CallRepository } from '../storage/call-repository.js';
import type { CallEngine, CallInfo } from './call-engine.js';
import type { SpeechRenderer } from './speech-renderer.js';
import { RealtimeCall } from './realtime-session.js';
import { StreamSession, type StreamConnection } from './stream-session.js';

export interface MediaStreamHubDeps {
  engine: CallEngine;
  repository: CallRepository;
  renderer: SpeechRenderer;
  audioStore: AudioStore;
  speechModel: SpeechModel;
  transcriptionModel: TranscriptionModel;
  realtimeModel?: RealtimeModel;
  /** Voice activity detection for `stream`-mode calls. */
  turns: CallerTurns;
  /** The tools realtime-mode calls offer their model (the engine's assistants have their own). */
  tools: ToolBox;
  logger: Logger;
  metrics?: Metrics;
}

/** What a live stream's socket forwards to its call. */
export interface StreamCall {
  hearAudio(mulaw: Uint8Array): void | Promise<void>;
  hearDigit(digit: string): void;
  markEchoed(name: string): void;
  end(): void;
}

/**
 * The media-stream calls this instance holds. A stream belongs to the
 * instance holding its socket; its call state is still in the database.
 * Voice activity detection runs where `turns` puts it (worker threads by default).
 */
export class MediaStreamHub {
  private readonly active = new Map<string, StreamCall>();
  /** Each open call's socket, for closing it properly at shutdown. */
  private readonly connections = new WeakMap<StreamCall, StreamConnection>();

  constructor(private readonly deps: MediaStreamHubDeps) {}

  canServe(profile: AssistantProfile): boolean {
    return profile.mode === 'stream' || (profile.mode === 'realtime' && this.deps.realtimeModel !== undefined);
  }

  isActive(callSid: string): boolean {
    return this.active.has(callSid);
  }

  get size(): number {
    return this.active.size;
  }

  /** Loads the voice activity model (and starts its threads) ahead of the first call. */
  async prepare(): Promise<void> {
    await this.deps.turns.detector;
  }

  /** Starts a call on an accepted stream; `undefined` when the call already has a stream here. */
  async open(call: CallInfo, profile: AssistantProfile, connection: StreamConnection): Promise<StreamCall | undefined> {
    if (this.active.has(call.callSid)) return undefined;
    const placeholder: StreamCall = { hearAudio() {}, hearDigit() {}, markEchoed() {}, end() {} };
    this.active.set(call.callSid, placeholder);
    try {
      if (profile.mode === 'realtime' && this.deps.realtimeModel) {
        const realtime = new RealtimeCall(
          {
            engine: this.deps.engine,
            repository: this.deps.repository,
            renderer: this.deps.renderer,
            audioStore: this.deps.audioStore,
            tools: this.deps.tools,
            realtimeModel: this.deps.realtimeModel,
            logger: this.deps.logger,
          },
          connection,
          call,
          profile,
        );
        const handle: StreamCall = {
          hearAudio: (mulaw) => realtime.hearAudio(mulaw),
          hearDigit: (digit) => realtime.hearDigit(digit),
          markEchoed: (name) => realtime.markEchoed(name),
          end: () => {
            realtime.end();
            if (this.active.get(call.callSid) === handle) this.active.delete(call.callSid);
          },
        };
        this.active.set(call.callSid, handle);
        this.connections.set(handle, connection);
        await realtime.start();
        return handle;
      }
      const session = new StreamSession(
        {
          engine: this.deps.engine,
          repository: this.deps.repository,
          renderer: this.deps.renderer,
          audioStore: this.deps.audioStore,
          speechModel: this.deps.speechModel,
          transcriptionModel: this.deps.transcriptionModel,
          turns: this.deps.turns,
          logger: this.deps.logger,
          metrics: this.deps.metrics,
        },
        connection,
        call,
        profile,
      );
      const handle: StreamCall = {
        hearAudio: (mulaw) => session.hearAudio(mulaw),
        hearDigit: (digit) => session.hearDigit(digit),
        markEchoed: (name) => session.markEchoed(name),
        end: () => {
          session.end();
          if (this.active.get(call.callSid) === handle) this.active.delete(call.callSid);
        },
      };
      this.active.set(call.callSid, handle);
      this.connections.set(handle, connection);
      await session.start();
      return handle;
    } catch (error) {
      this.active.delete(call.callSid);
      throw error;
    }
  }

  /** Ends every stream (shutdown). */
  closeAll(): void {
    for (const call of [...this.active.values()]) {
      call.end();
      // A normal closure from our side: Twilio posts the <Connect action> and the call carries on over webhooks.
      this.connections.get(call)?.close();
    }
  }
}

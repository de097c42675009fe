import type { Logger } from 'pino';
import type { AudioStore } from '../audio/audio-store.js';
import { OutboundAudio } from '../audio/outbound-audio.js';
import type { CallerTurns, CallerTurnStream } from '../audio/caller-turns.js';
import { utteranceSampleRate, type TurnEvent } from '../audio/turn-detector.js';
import { encodeWav } from '../audio/wav.js';
import type { AssistantProfile } from '../assistant/profile.js';
import type { Metrics } from '../observability/metrics.js';
import { isAbortError } from '../providers/provider-error.js';
import type { SpeechModel } from '../providers/speech-model.js';
import type { TranscriptionModel } from '../providers/transcription-model.js';
import type { CallRepository, TurnTiming } from '../storage/call-repository.js';
import type { CallEngine, CallerInput, CallInfo } from './call-engine.js';
import { maxCallSeconds } from './call-limits.js';
import type { SpeechRenderer } from './speech-renderer.js';
import { StreamReplyOutput } from './stream-reply-output.js';

/** While the assistant listens, a short "yes" must count; while it talks, only real speech interrupts. */
const listeningMinSpeechMs = 120;
/** Keypad digits are collected until `#` or this long without another one. */
const digitGapMs = 1_500;

/** What a media-stream call needs from the rest of the server. */
export interface StreamSessionDeps {
  engine: CallEngine;
  repository: CallRepository;
  renderer: SpeechRenderer;
  audioStore: AudioStore;
  speechModel: SpeechModel;
  transcriptionModel: TranscriptionModel;
  /** Where the caller's audio is turned into turns (on the event loop or on worker threads). */
  turns: CallerTurns;
  logger: Logger;
  metrics?: Pick<Metrics, 'speechReachedCaller'>;
}

/** The socket side, already speaking Twilio's protocol. */
export interface StreamConnection {
  sendAudio(frame: Uint8Array): void;
  sendMark(name: string): void;
  sendClear(): void;
  /** Ends the stream; Twilio then moves on to `<Connect action>`. */
  close(): void;
}

/** A caller's speech, what the detector and transcription said of it. */
interface Utterance {
  text: string;
  speechEndedAt: Date;
  transcriptFinalAt: Date;
}

/**
 * One call over a media stream in `stream` mode: the caller's audio goes
 * through voice activity detection; finished utterances are transcribed and
 * handed to the conversation engine; replies are spoken into the stream as
 * they are synthesized. Speech over a reply interrupts it (barge-in).
 * Protocol, audio pacing and the assistant itself live elsewhere; this class
 * only decides whose turn it is.
 */
export class StreamSession {
  private readonly outbound: OutboundAudio;
  private readonly detector: CallerTurnStream;
  private seq = 0;
  private turns: Promise<void> = Promise.resolve();
  private current: { interrupt: AbortController; output?: StreamReplyOutput } | undefined;
  private silenceTimer: NodeJS.Timeout | undefined;
  private callTimer: NodeJS.Timeout | undefined;
  private digitTimer: NodeJS.Timeout | undefined;
  private digits = '';
  private ended = false;
  private readonly log: Logger;

  constructor(
    private readonly deps: StreamSessionDeps,
    private readonly connection: StreamConnection,
    private readonly call: CallInfo,
    private readonly profile: AssistantProfile,
  ) {
    this.log = deps.logger.child({ callSid: call.callSid });
    this.outbound = new OutboundAudio({
      sink: { sendAudio: (frame) => connection.sendAudio(frame), sendMark: (name) => connection.sendMark(name), sendClear: () => connection.sendClear() },
    });
    this.detector = deps.turns.open(
      { minSpeechMs: profile.stream.minSpeechMs, endOfSpeechMs: profile.stream.endOfSpeechMs },
      {
        onEvents: (events) => {
          if (!this.ended) for (const event of events) this.onTurnEvent(event);
        },
        onError: (error) => this.log.error({ err: error }, 'voice activity detection failed'),
      },
    );
  }

  /** Starts the call: greeting first, then listening. */
  async start(): Promise<void> {
    this.seq = await this.deps.repository.nextTurnSeq(this.call.callSid);
    this.callTimer = setTimeout(() => this.reachLimit(), maxCallSeconds(this.profile) * 1000);
    this.callTimer.unref?.();
    this.queueTurn(this.seq === 0 ? undefined : { kind: 'silence' });
    // A stream has no <Say>: when synthesis fails later, the cached apology is what the caller can still hear.
    void this.deps.renderer.renderPhrase(this.profile.phrases.apology, this.profile).catch(() => {});
  }

  /** The caller's audio, one Twilio media frame at a time; what it means arrives later, as turn events. */
  hearAudio(mulaw: Uint8Array): void {
    if (!this.ended) this.detector.push(mulaw);
  }

  hearDigit(digit: string): void {
    if (this.ended) return;
    this.interrupt();
    clearTimeout(this.digitTimer);
    if (digit === '#') {
      this.submitDigits();
      return;
    }
    this.digits += digit;
    this.digitTimer = setTimeout(() => this.submitDigits(), digitGapMs);
  }

  markEchoed(name: string): void {
    const outcome = this.outbound.markEchoed(name);
    if (outcome === 'played') this.current?.output?.markPlayed(name);
  }

  /** The stream is gone (caller hung up, or Twilio stopped it): stop everything. */
  end(): void {
    if (this.ended) return;
    this.ended = true;
    clearTimeout(this.silenceTimer);
    clearTimeout(this.callTimer);
    clearTimeout(this.digitTimer);
    this.current?.interrupt.abort(new Error('stream ended'));
    this.outbound.close();
    this.detector.close();
    this.deps.engine.abortCall(this.call.callSid);
  }

  /** Resolves when the turns in flight have settled. */
  settled(): Promise<void> {
    return this.turns;
  }

  private onTurnEvent(event: TurnEvent): void {
    switch (event.type) {
      case 'speech-started':
        clearTimeout(this.silenceTimer);
        this.interrupt();
        break;
      case 'backchannel-ignored':
        this.log.debug({ speechMs: event.speechMs }, 'backchannel ignored');
        break;
      case 'speech-ended': {
        // The detector runs on audio time; the caller's last voiced frame arrived this long ago.
        const speechEndedAt = new Date(Date.now() - (event.atMs - event.lastVoicedAtMs));
        const transcript = this.transcribe(event.audio, speechEndedAt);
        this.queueTurn(transcript);
        break;
      }
    }
  }

  /** Barge-in: Twilio drops what it has not played, the reply in progress stops, and its turn keeps what was heard. */
  private interrupt(): void {
    const current = this.current;
    if (!current || current.interrupt.signal.aborted) return;
    const result = this.outbound.clear();
    current.output?.interrupted(result);
    current.interrupt.abort(new Error('caller-interrupt'));
    this.log.info({ heardMs: result.pieces.reduce((sum, piece) => sum + piece.heardMs, 0) }, 'caller interrupted the reply');
  }

  private async transcribe(audio: Int16Array, speechEndedAt: Date): Promise<Utterance | CallerInput> {
    const wav = encodeWav({
      sampleRate: utteranceSampleRate,
      channels: 1,
      bitsPerSample: 16,
      format: 'pcm',
      data: new Uint8Array(audio.buffer, audio.byteOffset, audio.byteLength),
    });
    try {
      const result = await this.deps.transcriptionModel.transcribe({
        audio: wav,
        filename: 'speech.wav',
        model: this.profile.stream.transcriptionModel,
        // A profile that allows several languages gets no hint: the model then writes what it heard in its own script, and the call follows.
        language: this.profile.languages.length > 0 ? undefined : this.profile.language.slice(0, 2),
      });
      return { text: result.text.trim(), speechEndedAt, transcriptFinalAt: new Date() };
    } catch (error) {
      if (!isAbortError(error)) this.log.warn({ err: error }, 'transcription failed');
      const message = error instanceof Error ? error.message : String(error);
      return { kind: 'unclear', reason: `transcription failed: ${message}`, errorCode: 'transcription_failed' };
    }
  }

  private submitDigits(): void {
    const digits = this.digits;
    this.digits = '';
    if (digits) this.queueTurn({ kind: 'dtmf', digits });
  }

  private reachLimit(): void {
    this.interrupt();
    this.queueTurn({ kind: 'limit' });
  }

  /** Turns run one after another; an utterance is transcribed while the previous turn winds down. */
  private queueTurn(input: CallerInput | undefined | Promise<Utterance | CallerInput>): void {
    this.turns = this.turns.then(async () => {
      if (this.ended) return;
      const resolved = await input;
      if (resolved && 'text' in resolved && !('kind' in resolved)) {
        if (!resolved.text) return; // noise the detector took for speech: nothing was said
        await this.reply({ kind: 'speech', text: resolved.text }, {
          speech_ended_at: resolved.speechEndedAt,
          transcript_final_at: resolved.transcriptFinalAt,
        });
      } else {
        await this.reply(resolved as CallerInput | undefined, {});
      }
    }).catch((error) => {
      this.log.error({ err: error }, 'stream turn failed');
    });
  }

  private async reply(input: CallerInput | undefined, timings: Partial<Record<TurnTiming, Date>>): Promise<void> {
    if (this.ended) return;
    const seq = this.seq++;
    const interrupt = new AbortController();
    const current: { interrupt: AbortController; output?: StreamReplyOutput } = { interrupt };
    this.current = current;
    this.detector.configure({ minSpeechMs: this.profile.stream.minSpeechMs });
    const { repository } = this.deps;
    const { turn } = await this.deps.engine.runTurn(
      this.call,
      seq,
      input,
      (context) => {
        void repository.markTurnTimings(context.turnId, timings).catch(() => {});
        const stamps = batchedTimings((batch) => void repository.markTurnTimings(context.turnId, batch).catch(() => {}));
        current.output = new StreamReplyOutput({
          outbound: this.outbound,
          speechModel: this.deps.speechModel,
          renderer: this.deps.renderer,
          audioStore: this.deps.audioStore,
          profile: this.profile,
          context,
          onTiming: stamps,
          onFirstFrame: (ms) => this.deps.metrics?.speechReachedCaller(ms),
        });
        return current.output;
      },
      interrupt.signal,
    );
    if (this.current === current) this.current = undefined;
    this.detector.configure({ minSpeechMs: listeningMinSpeechMs });
    if (this.ended) return;
    if (turn.action === 'hangup' && !interrupt.signal.aborted) {
      this.log.info('conversation ended; closing the stream');
      this.ended = true;
      clearTimeout(this.callTimer);
      this.outbound.close();
      this.detector.close();
      this.connection.close();
      return;
    }
    if (!turn.assistant_text && !interrupt.signal.aborted) {
      // Nothing could be said over the stream (synthesis is down, no apology cached): Twilio's own
      // voice can. Closing the stream sends Twilio to <Connect action>, which apologises and goes on over webhooks.
      this.log.warn({ turnId: turn.turn_id }, 'nothing could be spoken over the stream; handing the call to webhooks');
      this.end();
      this.connection.close();
      return;
    }
    if (!interrupt.signal.aborted) {
      clearTimeout(this.silenceTimer);
      this.silenceTimer = setTimeout(() => this.queueTurn({ kind: 'silence' }), this.profile.stream.silenceRepromptMs);
    }
  }
}

/**
 * Stage times set in the same turn of the event loop go to the database in
 * one statement: the speech's first byte and the first frame it became are
 * stamped a moment apart, and each write is a round trip to the database.
 */
function batchedTimings(write: (timings: Partial<Record<TurnTiming, Date>>) => void): (stage: TurnTiming, at: Date) => void {
  let batch: Partial<Record<TurnTiming, Date>> | undefined;
  return (stage, at) => {
    if (batch) {
      batch[stage] ??= at;
      return;
    }
    batch = { [stage]: at };
    setImmediate(() => {
      const due = batch!;
      batch = undefined;
      write(due);
    });
  };
}

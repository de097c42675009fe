import type { Logger } from 'pino';
import type { AudioStore } from '../audio/audio-store.js';
import { OutboundAudio } from '../audio/outbound-audio.js';
import { parseWav } from '../audio/wav.js';
import type { AssistantProfile } from '../assistant/profile.js';
import { missingDetails } from '../assistant/assistant.js';
import type { ToolBox } from '../assistant/tool-box.js';
import type { RealtimeEvent, RealtimeModel, RealtimeSession as ProviderSession } from '../providers/realtime-model.js';
import type { CallRepository, TurnKind, TurnTiming } from '../storage/call-repository.js';
import type { CallEngine, CallInfo } from './call-engine.js';
import type { SpeechRenderer } from './speech-renderer.js';
import type { StreamConnection } from './stream-session.js';

export interface RealtimeSessionDeps {
  engine: CallEngine;
  repository: CallRepository;
  renderer: SpeechRenderer;
  audioStore: AudioStore;
  realtimeModel: RealtimeModel;
  tools: ToolBox;
  logger: Logger;
}

/** One assistant reply in the making, and the turn row it is stored in. */
interface ReplyInProgress {
  turnId: number;
  itemId?: string;
  text: string;
  mark?: string;
  audioMs: number;
  toolCalls: unknown[];
  interruptedAtMs?: number;
  ending: boolean;
  usage: { promptTokens: number; completionTokens: number };
}

/** After the goodbye, how long to wait for its mark beyond the audio still to play. */
const markGraceMs = 3_000;

/**
 * One call in `realtime` mode: the caller's μ-law goes to OpenAI's Realtime
 * API as it arrives and the model's μ-law comes back into the stream, with no
 * transcoding either way. Turn-taking is the provider's (server VAD); this
 * class relays, stores each exchange as a turn, runs the tools, and on
 * barge-in clears Twilio's buffer and tells the model how much was heard.
 */
export class RealtimeCall {
  private readonly outbound: OutboundAudio;
  private session: ProviderSession | undefined;
  private seq = 0;
  private reply: ReplyInProgress | undefined;
  /** A reply the provider has finished but the caller is still hearing; its turn is stored when its mark returns. */
  private playing: (ReplyInProgress & { status: 'completed' | 'failed' }) | undefined;
  private callerTurn: { turnId: number } | undefined;
  private details: Record<string, unknown> = {};
  private language: string;
  private ended = false;
  private finalMark: { name: string; heard: () => void } | undefined;
  private readonly log: Logger;
  private readonly abort = new AbortController();

  constructor(
    private readonly deps: RealtimeSessionDeps,
    private readonly connection: StreamConnection,
    private readonly call: CallInfo,
    private readonly profile: AssistantProfile,
  ) {
    this.log = deps.logger.child({ callSid: call.callSid, mode: 'realtime' });
    this.language = profile.language;
    this.outbound = new OutboundAudio({
      sink: { sendAudio: (frame) => connection.sendAudio(frame), sendMark: (name) => connection.sendMark(name), sendClear: () => connection.sendClear() },
    });
  }

  async start(): Promise<void> {
    const row = await this.deps.engine.registerCall(this.call);
    this.details = row.details;
    this.language = row.language;
    this.seq = await this.deps.repository.nextTurnSeq(this.call.callSid);
    this.session = await this.deps.realtimeModel.connect({
      model: this.profile.stream.realtimeModel,
      voice: this.profile.voice,
      instructions: `${this.profile.systemPrompt}\n\nKnowledge:\n${this.profile.knowledge}`,
      tools: this.deps.tools.definitions(this.profile),
      language: this.profile.language.slice(0, 2),
      turnDetection: { silenceMs: this.profile.stream.endOfSpeechMs },
      abortSignal: this.abort.signal,
    });
    void this.relay(this.session);
    await this.openReply('greeting');
    this.session.sendText(`(The caller has just been connected. Greet them with: "${this.profile.greeting}")`, { respond: true });
  }

  hearAudio(mulaw: Uint8Array): void {
    if (!this.ended) this.session?.appendAudio(mulaw);
  }

  hearDigit(digit: string): void {
    this.session?.sendText(`(keyed on the phone keypad: ${digit})`, { respond: true });
  }

  markEchoed(name: string): void {
    if (this.outbound.markEchoed(name) !== 'played') return;
    if (this.playing?.mark === name) {
      const played = this.playing;
      this.playing = undefined;
      void this.finish(played, played.status);
    }
    if (this.finalMark?.name === name) this.finalMark.heard();
  }

  end(): void {
    if (this.ended) return;
    this.ended = true;
    this.abort.abort(new Error('stream ended'));
    this.outbound.close();
    void this.session?.close();
  }

  private async relay(session: ProviderSession): Promise<void> {
    try {
      for await (const event of session.events) await this.onEvent(event);
    } catch (error) {
      this.log.error({ err: error }, 'realtime relay failed');
      await this.fail('relay_failed', error);
    }
  }

  private async onEvent(event: RealtimeEvent): Promise<void> {
    const { repository } = this.deps;
    switch (event.type) {
      case 'speech-started':
        this.interrupt();
        break;
      case 'speech-stopped': {
        const turnId = await this.claim('speech');
        this.callerTurn = { turnId };
        await repository.markTurnTiming(turnId, 'speech_ended_at', new Date());
        break;
      }
      case 'caller-transcript-completed':
        if (this.callerTurn) {
          await repository.setTurnUserText(this.callerTurn.turnId, event.text);
          await repository.markTurnTiming(this.callerTurn.turnId, 'transcript_final_at', new Date());
        }
        break;
      case 'reply-audio-delta': {
        const reply = await this.replyFor(event.itemId);
        if (reply.audioMs === 0) await this.mark(reply.turnId, 'first_frame_at');
        this.outbound.pushMulaw(event.audio);
        reply.audioMs += event.audio.length / 8;
        break;
      }
      case 'reply-text-delta': {
        const reply = await this.replyFor(event.itemId);
        if (!reply.text) await this.mark(reply.turnId, 'llm_first_token_at');
        reply.text += event.text;
        break;
      }
      case 'tool-called': {
        const reply = await this.replyFor(undefined);
        const { result, saved, action, arguments: parsed } = await this.deps.tools.run(event, {
          profile: this.profile,
          callId: this.call.callSid,
          callerNumber: this.call.from,
          language: this.language,
          details: this.details,
          abortSignal: this.abort.signal,
        });
        const endCall = action?.type === 'end-call';
        if (saved) {
          this.details = await repository.mergeDetails(this.call.callSid, saved);
          if (missingDetails(this.profile, this.details).length === 0) await repository.updateCallState(this.call.callSid, { outcome: 'details-collected' });
        }
        reply.toolCalls.push({ name: event.name, arguments: parsed, result });
        reply.ending ||= endCall;
        this.session?.sendToolResult(event.callId, result, { respond: !endCall });
        break;
      }
      case 'reply-completed': {
        const reply = this.reply;
        if (!reply) break;
        if (event.usage) {
          reply.usage.promptTokens += event.usage.inputTokens;
          reply.usage.completionTokens += event.usage.outputTokens;
        }
        // A tool result asks for another reply in the same turn; it completes then.
        if (reply.toolCalls.length > 0 && !reply.text && !reply.ending && event.status === 'completed') break;
        this.reply = undefined;
        const status = event.status === 'failed' ? 'failed' : 'completed';
        if (reply.audioMs > 0) {
          reply.mark = `${reply.turnId}.rt`;
          this.outbound.endPiece(reply.mark);
          if (this.playing) await this.finish(this.playing, this.playing.status);
          this.playing = { ...reply, status };
        } else {
          await this.finish(reply, status);
        }
        if (reply.ending) await this.hangUpAfter(reply);
        break;
      }
      case 'error-reported':
        this.log.warn({ err: event.error }, 'realtime provider reported an error');
        break;
      case 'session-failed':
        await this.fail(event.error.code, event.error);
        break;
    }
  }

  /** Barge-in: Twilio drops what it has not played and the model learns how much of its reply was heard. */
  private interrupt(): void {
    const generating = this.reply && this.reply.audioMs > 0 ? this.reply : undefined;
    const reply = generating ?? this.playing;
    if (!reply) return;
    const result = this.outbound.clear();
    const heardMs = Math.round(result.pieces.reduce((sum, piece) => sum + piece.heardMs, 0));
    reply.interruptedAtMs = heardMs;
    if (reply.itemId) this.session?.truncateReply(reply.itemId, heardMs);
    if (generating) this.session?.cancelReply();
    const words = reply.text.split(/\s+/).filter(Boolean);
    const keep = reply.audioMs > 0 ? Math.round((words.length * Math.min(heardMs, reply.audioMs)) / reply.audioMs) : 0;
    reply.text = keep > 0 ? `${words.slice(0, keep).join(' ')}…` : '';
    if (generating) this.reply = undefined;
    else this.playing = undefined;
    void this.finish(reply, 'completed');
  }

  private async replyFor(itemId: string | undefined): Promise<ReplyInProgress> {
    if (!this.reply) await this.openReply(this.callerTurn ? undefined : 'speech');
    if (itemId && !this.reply!.itemId) this.reply!.itemId = itemId;
    return this.reply!;
  }

  /** The reply is stored on the caller's turn when there is one, else on a turn of its own (the greeting). */
  private async openReply(kind?: TurnKind): Promise<void> {
    const turnId = this.callerTurn && !kind ? this.callerTurn.turnId : await this.claim(kind ?? 'speech');
    this.callerTurn = undefined;
    this.reply = { turnId, text: '', audioMs: 0, toolCalls: [], ending: false, usage: { promptTokens: 0, completionTokens: 0 } };
  }

  private async claim(kind: TurnKind): Promise<number> {
    const { turn } = await this.deps.repository.claimTurn({
      callId: this.call.callSid,
      seq: this.seq++,
      kind,
      assistantMode: 'realtime',
      receivedAt: new Date(),
    });
    return turn.turn_id;
  }

  private async finish(reply: ReplyInProgress, status: 'completed' | 'failed', error?: { code: string; message: string }): Promise<void> {
    await this.deps.repository
      .finishTurn(reply.turnId, {
        assistantText: reply.text.trim(),
        action: reply.ending ? 'hangup' : 'listen',
        status,
        errorCode: error?.code,
        errorMessage: error?.message,
        toolCalls: reply.toolCalls,
        promptTokens: reply.usage.promptTokens,
        completionTokens: reply.usage.completionTokens,
        ttsCharacters: 0,
        completedAt: new Date(),
        interruptedAtMs: reply.interruptedAtMs,
      })
      .catch((caught) => this.log.error({ err: caught }, 'could not store a realtime turn'));
  }

  /** end_call: the goodbye plays to its mark, then the stream closes and `<Connect action>` hangs up. */
  private async hangUpAfter(reply: ReplyInProgress): Promise<void> {
    if (reply.mark) {
      const mark = reply.mark;
      const wait = this.outbound.queuedMs + Math.max(0, this.outbound.sentMs - this.outbound.playedMs) + markGraceMs;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, wait);
        this.finalMark = { name: mark, heard: () => (clearTimeout(timer), resolve()) };
      });
    }
    this.end();
    this.connection.close();
  }

  /**
   * The provider is gone mid-call: the caller hears the apology (from the
   * phrase cache), then the stream closes and `<Connect action>` carries the
   * call on over webhooks.
   */
  private async fail(code: string, error: unknown): Promise<void> {
    if (this.ended) return;
    this.log.error({ err: error, code }, 'realtime session failed; apologising and continuing over webhooks');
    const reply = this.reply ?? { turnId: await this.claim('speech'), text: '', audioMs: 0, toolCalls: [], ending: false, usage: { promptTokens: 0, completionTokens: 0 } };
    this.reply = undefined;
    this.outbound.clear();
    try {
      const apology = this.profile.phrases.apology;
      const rendered = await this.deps.renderer.renderPhrase(apology, this.profile);
      const file = rendered.kind === 'audio' ? await this.deps.audioStore.get(rendered.filename) : undefined;
      if (file) {
        const chunks: Buffer[] = [];
        for await (const chunk of file.body) chunks.push(chunk as Buffer);
        this.outbound.pushMulaw(parseWav(Buffer.concat(chunks)).data);
        reply.mark = `${reply.turnId}.apology`;
        reply.audioMs = 1;
        this.outbound.endPiece(reply.mark);
        reply.text = `${reply.text} ${apology}`.trim();
      }
    } catch (caught) {
      this.log.warn({ err: caught }, 'could not play the apology');
    }
    await this.finish(reply, 'failed', { code, message: error instanceof Error ? error.message : String(error) });
    await this.hangUpAfter({ ...reply, ending: false });
  }

  private mark(turnId: number, stage: TurnTiming): Promise<void> {
    return this.deps.repository.markTurnTiming(turnId, stage, new Date()).catch(() => {});
  }
}

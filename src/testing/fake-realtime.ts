import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { RealtimeSessionCreateRequest } from 'openai/resources/realtime/realtime';
import { WebSocketServer, type WebSocket } from 'ws';
import { decodeMulaw, encodeMulawSample } from '../audio/mulaw.js';
import type {
  FakeChatMessage,
  FakeChatReply,
  FakeChatRequest,
  FakeLatencyProfile,
  FakeTranscriptionRequest,
} from './fake-openai-server.js';
import type { FakeConnectionFault } from './fake-faults.js';

// A fake of OpenAI's Realtime API (the GA protocol, `gpt-realtime`) over a
// WebSocket, served at `/v1/realtime` by the fake OpenAI server. It hears the
// caller with a simple energy VAD (or a test says when the caller speaks),
// "understands" through the fake's transcriber, decides what to say through
// the fake's chat responder and reply queue, and speaks a speech-like signal
// whose length follows the text, streamed at the latency profile's pace.

/** An event a client sent, as parsed from its JSON. */
export interface FakeRealtimeClientEvent {
  type: string;
  [key: string]: unknown;
}

/** An item of the conversation as the fake keeps it; `text` of audio messages is their transcript. */
export type FakeRealtimeItem =
  | { id: string; type: 'message'; role: 'user' | 'assistant' | 'system'; text: string; audioMs?: number }
  | { id: string; type: 'function_call'; callId: string; name: string; arguments: string }
  | { id: string; type: 'function_call_output'; callId: string; output: string };

export interface FakeRealtimeTruncation {
  itemId: string;
  contentIndex: number;
  audioEndMs: number;
}

/** One `response.cancel` received; `active` says whether a reply was in progress to cancel. */
export interface FakeRealtimeCancellation {
  responseId?: string;
  active: boolean;
}

/** The server side of one realtime connection, for tests to script and inspect. */
export interface FakeRealtimeSession {
  /** The `model` query parameter of the connection. */
  readonly model: string;
  readonly headers: IncomingHttpHeaders;
  /** Every client event received, oldest first. */
  readonly received: FakeRealtimeClientEvent[];
  /** The session's effective configuration, as `session.updated` last reported it. */
  readonly config: RealtimeSessionCreateRequest;
  readonly items: FakeRealtimeItem[];
  readonly truncations: FakeRealtimeTruncation[];
  readonly cancellations: FakeRealtimeCancellation[];
  /** Resolves with the close code once the connection is closed, by either side. */
  readonly closed: Promise<number>;
  /** All audio the client appended, decoded from base64. */
  inputAudio(): Uint8Array;
  /** Resolves with the `count`-th client event of `type`, at once if it has already arrived. */
  waitFor(type: string, count?: number): Promise<FakeRealtimeClientEvent>;
  /** Makes the VAD hear the caller start talking now, whatever the audio says. */
  startSpeech(): void;
  /**
   * Makes the VAD hear the caller stop now: commits the buffered audio, then
   * transcribes it (as `transcript` when given, else with the fake's
   * transcriber) and answers as turn detection is configured to.
   */
  stopSpeech(transcript?: string): Promise<void>;
  /** Sends an `error` event, as OpenAI does for a rejected request or a recovered failure. */
  sendError(error: { message: string; type?: string; code?: string }): void;
  /** Sends any server event as is. */
  send(event: Record<string, unknown>): void;
  /** Drops the connection without a closing handshake, as a network failure would. */
  drop(): void;
  /** Closes the connection from the server side with `code`. */
  close(code?: number, reason?: string): void;
}

/** The realtime part of the fake OpenAI server. */
export interface FakeRealtime {
  /** Every session connected so far, oldest first. */
  readonly sessions: FakeRealtimeSession[];
  /** Resolves with the `index`-th session once it has connected. */
  waitForSession(index?: number): Promise<FakeRealtimeSession>;
  /** Makes the next `count` connection attempts fail with `fault` instead of upgrading. */
  failNextConnection(fault: FakeConnectionFault, count?: number): void;
}

/** What the realtime fake borrows from the HTTP fake, so both answer alike. */
export interface FakeRealtimeHost {
  profile(): FakeLatencyProfile;
  /** The next queued chat reply, else the chat responder's. */
  reply(request: FakeChatRequest): Promise<FakeChatReply>;
  transcribe(request: FakeTranscriptionRequest): Promise<string>;
  /** Speech-like 16-bit little-endian PCM for `text`. */
  speak(text: string, voice: string, sampleRate: number, speed: number): Buffer;
  /** Resolves after `ms`, and at once when the fake closes. */
  sleep(ms: number): Promise<void>;
  jittered(ms: number): number;
  randomId(): string;
}

/** Writes an HTTP answer on a socket whose upgrade is refused, then closes it. */
export function refuseUpgrade(socket: Duplex, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  const contentType = typeof body === 'string' ? 'text/html; charset=utf-8' : 'application/json';
  const lines = [
    `HTTP/1.1 ${status} ${status === 200 ? 'OK' : 'Error'}`,
    `content-type: ${contentType}`,
    `content-length: ${Buffer.byteLength(text)}`,
    'connection: close',
    ...Object.entries(headers).map(([name, value]) => `${name}: ${value}`),
  ];
  socket.end(`${lines.join('\r\n')}\r\n\r\n${text}`);
}

export class FakeRealtimeServer implements FakeRealtime {
  readonly sessions: RealtimeConnection[] = [];
  private readonly sockets = new WebSocketServer({ noServer: true });
  private readonly faults: FakeConnectionFault[] = [];
  private readonly waiters: { index: number; resolve: (session: FakeRealtimeSession) => void }[] = [];
  private closed = false;

  constructor(private readonly host: FakeRealtimeHost) {}

  waitForSession(index = 0): Promise<FakeRealtimeSession> {
    const session = this.sessions[index];
    if (session) return Promise.resolve(session);
    return new Promise((resolve) => this.waiters.push({ index, resolve }));
  }

  failNextConnection(fault: FakeConnectionFault, count = 1): void {
    for (let index = 0; index < count; index++) this.faults.push(fault);
  }

  /** Takes over an authorized upgrade request to `/v1/realtime`; returns the HTTP status answered. */
  async accept(request: IncomingMessage, socket: Duplex, head: Buffer, errorBody: (status: number, message?: string) => unknown): Promise<number> {
    const fault = this.faults.shift();
    if (fault === 'refuse') {
      socket.destroy();
      return 0;
    }
    if (fault === 'garbage') {
      refuseUpgrade(socket, 200, '<html><body><h1>It works!</h1></body></html>\n');
      return 200;
    }
    if (fault !== undefined && 'stallMs' in fault) await this.host.sleep(fault.stallMs);
    else if (fault !== undefined) {
      const headers: Record<string, string> = fault.retryAfterSeconds === undefined ? {} : { 'retry-after': String(fault.retryAfterSeconds) };
      refuseUpgrade(socket, fault.status, errorBody(fault.status, fault.message), headers);
      return fault.status;
    }
    if (socket.destroyed) return 0;
    const model = new URL(request.url ?? '/', 'http://fake').searchParams.get('model');
    if (!model) {
      refuseUpgrade(socket, 400, errorBody(400, "Missing required parameter: 'model'."));
      return 400;
    }
    if (this.closed) {
      socket.destroy();
      return 0;
    }
    this.sockets.handleUpgrade(request, socket, head, (webSocket) => {
      const session = new RealtimeConnection(webSocket, model, request.headers, this.host);
      const index = this.sessions.push(session) - 1;
      for (const waiter of this.waiters.filter((candidate) => candidate.index === index)) {
        this.waiters.splice(this.waiters.indexOf(waiter), 1);
        waiter.resolve(session);
      }
    });
    return 101;
  }

  /** Drops every connection; later upgrades are refused. */
  close(): void {
    this.closed = true;
    for (const session of this.sessions) session.drop();
    this.sockets.close();
  }
}

// ---------------------------------------------------------------------------
// One connection

interface ResponseState {
  id: string;
  output: Record<string, unknown>[];
  finished: boolean;
  textTokens: number;
  audioMs: number;
}

type InputTurnDetection = { type: string; threshold?: number; silence_duration_ms?: number; create_response?: boolean; interrupt_response?: boolean };

/** Loudness (RMS of 16-bit samples) above which a 20 ms frame counts as speech, at threshold 0.5. */
const speechRms = 1000;
const frameMs = 20;
/** Audio goes out in pieces of this length, as OpenAI streams it. */
const chunkMs = 100;
const betaSessionFields = ['input_audio_format', 'output_audio_format', 'input_audio_transcription', 'turn_detection', 'modalities', 'voice'];
const audioFormats = ['audio/pcm', 'audio/pcmu'];

class RealtimeConnection implements FakeRealtimeSession {
  readonly received: FakeRealtimeClientEvent[] = [];
  readonly items: FakeRealtimeItem[] = [];
  readonly truncations: FakeRealtimeTruncation[] = [];
  readonly cancellations: FakeRealtimeCancellation[] = [];
  readonly closed: Promise<number>;
  config: RealtimeSessionCreateRequest;
  private readonly input: Buffer[] = [];
  private buffered: Buffer[] = [];
  /** Audio time where the buffered audio starts. */
  private bufferedFromMs = 0;
  private readonly waiters: { type: string; count: number; resolve: (event: FakeRealtimeClientEvent) => void }[] = [];
  private response: ResponseState | undefined;
  private isClosed = false;
  private spokeAlready = false;
  // Voice-activity detection, on audio time rather than wall time so tests can append faster than real time.
  private vadFrame: number[] = [];
  private framesHeard = 0;
  private speaking = false;
  private silentMs = 0;
  private speechItemId: string | undefined;
  private nextTranscript: string | undefined;
  private readonly sessionId: string;

  constructor(
    private readonly socket: WebSocket,
    readonly model: string,
    readonly headers: IncomingHttpHeaders,
    private readonly host: FakeRealtimeHost,
  ) {
    this.sessionId = `sess_${host.randomId()}`;
    this.config = {
      type: 'realtime',
      model,
      output_modalities: ['audio'],
      instructions: 'You are a helpful assistant.',
      tools: [],
      tool_choice: 'auto',
      audio: {
        input: {
          format: { type: 'audio/pcm', rate: 24000 },
          transcription: undefined,
          turn_detection: { type: 'server_vad', threshold: 0.5, prefix_padding_ms: 300, silence_duration_ms: 500, create_response: true, interrupt_response: true },
        },
        output: { format: { type: 'audio/pcm', rate: 24000 }, voice: 'alloy', speed: 1 },
      },
    };
    this.closed = new Promise((resolve) => socket.once('close', (code) => {
      this.isClosed = true;
      resolve(code);
    }));
    socket.on('message', (data, isBinary) => this.receive(isBinary ? '' : data.toString()));
    this.send({ type: 'session.created', session: this.sessionView() });
  }

  inputAudio(): Uint8Array {
    return new Uint8Array(Buffer.concat(this.input));
  }

  waitFor(type: string, count = 1): Promise<FakeRealtimeClientEvent> {
    const matching = this.received.filter((event) => event.type === type);
    if (matching.length >= count) return Promise.resolve(matching[count - 1]);
    return new Promise((resolve) => this.waiters.push({ type, count, resolve }));
  }

  startSpeech(): void {
    this.speechStarted();
  }

  async stopSpeech(transcript?: string): Promise<void> {
    this.nextTranscript = transcript;
    await this.speechStopped();
  }

  sendError(error: { message: string; type?: string; code?: string }, clientEventId?: string): void {
    this.send({
      type: 'error',
      error: { type: error.type ?? 'invalid_request_error', code: error.code ?? null, message: error.message, param: null, event_id: clientEventId ?? null },
    });
  }

  send(event: Record<string, unknown>, onSent?: () => void): void {
    if (this.isClosed) return;
    this.socket.send(JSON.stringify({ event_id: `event_${this.host.randomId()}`, ...event }), onSent);
  }

  drop(): void {
    this.isClosed = true;
    this.socket.terminate();
  }

  close(code = 1000, reason = ''): void {
    this.socket.close(code, reason);
  }

  // --- client events --------------------------------------------------------

  private receive(text: string): void {
    let event: FakeRealtimeClientEvent;
    try {
      event = JSON.parse(text) as FakeRealtimeClientEvent;
      if (typeof event?.type !== 'string') throw new SyntaxError('no type');
    } catch {
      return this.sendError({ code: 'invalid_json', message: "The server had trouble parsing your event: expected a JSON object with a 'type'." });
    }
    this.received.push(event);
    for (const waiter of [...this.waiters]) {
      if (waiter.type !== event.type || this.received.filter((candidate) => candidate.type === event.type).length !== waiter.count) continue;
      this.waiters.splice(this.waiters.indexOf(waiter), 1);
      waiter.resolve(event);
    }
    const eventId = typeof event.event_id === 'string' ? event.event_id : undefined;
    switch (event.type) {
      case 'session.update': return this.updateSession(event, eventId);
      case 'input_audio_buffer.append': return this.append(event, eventId);
      case 'input_audio_buffer.commit': return void this.commit(this.newId('item'), false);
      case 'input_audio_buffer.clear':
        this.takeBuffered();
        return this.send({ type: 'input_audio_buffer.cleared' });
      case 'conversation.item.create': return this.createItem(event, eventId);
      case 'conversation.item.truncate': return this.truncate(event, eventId);
      case 'response.create':
        if (this.response) {
          return this.sendError({ code: 'conversation_already_has_active_response', message: `Conversation already has an active response in progress: ${this.response.id}. Wait until the response is finished before creating a new one.` }, eventId);
        }
        return void this.respond();
      case 'response.cancel':
        this.cancellations.push({ responseId: this.response?.id, active: this.response !== undefined });
        if (!this.response) return this.sendError({ code: 'response_cancel_not_active', message: 'Cancellation failed: no active response found.' }, eventId);
        return this.finish(this.response, 'cancelled', { type: 'cancelled', reason: 'client_cancelled' });
      default:
        return this.sendError({ code: 'invalid_value', message: `Invalid value: '${event.type}'. Supported values are client events of the Realtime API.` }, eventId);
    }
  }

  private updateSession(event: FakeRealtimeClientEvent, eventId: string | undefined): void {
    const update = event.session as Record<string, unknown> | undefined;
    if (!update || typeof update !== 'object') return this.sendError({ code: 'missing_required_parameter', message: "Missing required parameter: 'session'." }, eventId);
    // The GA API refuses the beta's flat fields rather than ignoring them.
    const beta = betaSessionFields.find((field) => field in update);
    if (beta) return this.sendError({ code: 'unknown_parameter', message: `Unknown parameter: 'session.${beta}'.` }, eventId);
    if (update.type !== 'realtime') return this.sendError({ code: 'missing_required_parameter', message: "Missing required parameter: 'session.type'." }, eventId);
    const audio = (update.audio ?? {}) as { input?: Record<string, unknown>; output?: Record<string, unknown> };
    for (const [direction, settings] of Object.entries(audio)) {
      const format = (settings?.format as { type?: string } | undefined)?.type;
      if (format !== undefined && !audioFormats.includes(format)) {
        return this.sendError({ code: 'invalid_value', message: `Invalid value: '${format}'. The fake supports ${audioFormats.join(' and ')} (session.audio.${direction}.format.type).` }, eventId);
      }
    }
    const tools = Array.isArray(update.tools) ? (update.tools as { type?: string; name?: unknown }[]) : [];
    const badTool = tools.findIndex((tool) => tool?.type === 'function' && !/^[a-zA-Z0-9_-]{1,64}$/.test(String(tool.name ?? '')));
    if (badTool !== -1) {
      return this.sendError({ code: 'invalid_value', message: `Invalid 'session.tools[${badTool}].name': string does not match pattern. Expected a string that matches the pattern '^[a-zA-Z0-9_-]+$'.` }, eventId);
    }
    const voice = audio.output?.voice;
    if (voice !== undefined && this.spokeAlready && voice !== this.config.audio?.output?.voice) {
      return this.sendError({ code: 'cannot_update_voice', message: 'Cannot update a conversation\'s voice if assistant audio is present.' }, eventId);
    }
    const { audio: _audio, ...rest } = update;
    this.config = {
      ...this.config,
      ...(rest as Partial<RealtimeSessionCreateRequest>),
      audio: {
        input: { ...this.config.audio?.input, ...audio.input },
        output: { ...this.config.audio?.output, ...audio.output },
      },
    };
    this.send({ type: 'session.updated', session: this.sessionView() });
  }

  private append(event: FakeRealtimeClientEvent, eventId: string | undefined): void {
    if (typeof event.audio !== 'string') return this.sendError({ code: 'missing_required_parameter', message: "Missing required parameter: 'audio'." }, eventId);
    const audio = Buffer.from(event.audio, 'base64');
    this.input.push(audio);
    this.buffered.push(audio);
    if (this.turnDetection()) this.detectSpeech(audio);
  }

  private createItem(event: FakeRealtimeClientEvent, eventId: string | undefined): void {
    const item = event.item as { type?: string; role?: string; content?: { type?: string; text?: string }[]; call_id?: string; output?: string } | undefined;
    const id = this.newId('item');
    let added: FakeRealtimeItem;
    if (item?.type === 'message' && (item.role === 'user' || item.role === 'system')) {
      added = { id, type: 'message', role: item.role, text: (item.content ?? []).map((part) => part.text ?? '').join('') };
    } else if (item?.type === 'function_call_output' && typeof item.call_id === 'string' && typeof item.output === 'string') {
      if (!this.items.some((candidate) => candidate.type === 'function_call' && candidate.callId === item.call_id)) {
        return this.sendError({ code: 'invalid_value', message: `Tool call ID '${item.call_id}' not found in conversation.` }, eventId);
      }
      added = { id, type: 'function_call_output', callId: item.call_id, output: item.output };
    } else {
      return this.sendError({ code: 'invalid_value', message: 'The fake accepts user or system messages and function_call_output items.' }, eventId);
    }
    this.items.push(added);
    const wire = { ...item, id, status: 'completed' };
    this.send({ type: 'conversation.item.added', item: wire });
    this.send({ type: 'conversation.item.done', item: wire });
  }

  private truncate(event: FakeRealtimeClientEvent, eventId: string | undefined): void {
    const itemId = String(event.item_id);
    const contentIndex = Number(event.content_index ?? 0);
    const audioEndMs = Number(event.audio_end_ms);
    const item = this.items.find((candidate) => candidate.id === itemId);
    if (!item || item.type !== 'message' || item.role !== 'assistant' || item.audioMs === undefined) {
      return this.sendError({ code: 'invalid_value', message: `Only assistant messages with audio can be truncated; '${itemId}' is not one.` }, eventId);
    }
    if (!(audioEndMs >= 0) || audioEndMs > item.audioMs) {
      return this.sendError({ code: 'invalid_value', message: `Audio content of ${item.audioMs}ms is already shorter than ${audioEndMs}ms` }, eventId);
    }
    this.truncations.push({ itemId, contentIndex, audioEndMs });
    // What the caller never heard leaves the model's memory too.
    item.text = item.text.slice(0, Math.round((item.text.length * audioEndMs) / Math.max(1, item.audioMs)));
    item.audioMs = audioEndMs;
    this.send({ type: 'conversation.item.truncated', item_id: itemId, content_index: contentIndex, audio_end_ms: audioEndMs });
  }

  // --- hearing the caller ---------------------------------------------------

  private turnDetection(): InputTurnDetection | undefined {
    return (this.config.audio?.input?.turn_detection ?? undefined) as InputTurnDetection | undefined;
  }

  private inputRate(): number {
    return this.config.audio?.input?.format?.type === 'audio/pcmu' ? 8000 : 24000;
  }

  private detectSpeech(audio: Buffer): void {
    const samples = this.inputRate() === 8000 ? decodeMulaw(audio) : pcm16(audio);
    const frameSamples = (this.inputRate() * frameMs) / 1000;
    const threshold = speechRms * ((this.turnDetection()?.threshold ?? 0.5) / 0.5);
    const silenceMs = this.turnDetection()?.silence_duration_ms ?? 500;
    for (const sample of samples) {
      this.vadFrame.push(sample);
      if (this.vadFrame.length < frameSamples) continue;
      const rms = Math.sqrt(this.vadFrame.reduce((sum, value) => sum + value * value, 0) / this.vadFrame.length);
      this.vadFrame = [];
      this.framesHeard++;
      if (rms >= threshold) {
        this.silentMs = 0;
        if (!this.speaking) this.speechStarted((this.framesHeard - 1) * frameMs);
      } else if (this.speaking) {
        this.silentMs += frameMs;
        if (this.silentMs >= silenceMs) void this.speechStopped(this.framesHeard * frameMs);
      }
    }
  }

  private speechStarted(audioStartMs = this.inputMs()): void {
    this.speaking = true;
    this.silentMs = 0;
    this.speechItemId = this.newId('item');
    this.send({ type: 'input_audio_buffer.speech_started', audio_start_ms: Math.round(audioStartMs), item_id: this.speechItemId });
    // A caller talking over the reply cancels it, unless configured otherwise.
    if (this.response && this.turnDetection()?.interrupt_response !== false) {
      this.finish(this.response, 'cancelled', { type: 'cancelled', reason: 'turn_detected' });
    }
  }

  private async speechStopped(audioEndMs = this.inputMs()): Promise<void> {
    this.speaking = false;
    const itemId = this.speechItemId ?? this.newId('item');
    this.speechItemId = undefined;
    this.send({ type: 'input_audio_buffer.speech_stopped', audio_end_ms: Math.round(audioEndMs), item_id: itemId });
    await this.commit(itemId, this.turnDetection()?.create_response !== false, audioEndMs);
  }

  private inputBytesPerMs(): number {
    return this.inputRate() === 8000 ? 8 : 48;
  }

  private inputMs(): number {
    return this.input.reduce((sum, chunk) => sum + chunk.length, 0) / this.inputBytesPerMs();
  }

  /** Removes the buffered audio up to `untilMs` (all of it by default); what follows stays for the next turn. */
  private takeBuffered(untilMs = Number.POSITIVE_INFINITY): Buffer {
    const all = Buffer.concat(this.buffered);
    const cut = Math.min(all.length, Math.max(0, Math.round((untilMs - this.bufferedFromMs) * this.inputBytesPerMs())));
    this.buffered = cut < all.length ? [all.subarray(cut)] : [];
    this.bufferedFromMs += cut / this.inputBytesPerMs();
    return all.subarray(0, cut);
  }

  /** Turns the buffered audio (up to `untilMs`) into a user message, transcribes it, and answers when `respond` says so. */
  private async commit(itemId: string, respond: boolean, untilMs?: number): Promise<void> {
    const audio = this.takeBuffered(untilMs);
    const previous = this.items.at(-1)?.id ?? null;
    const item: FakeRealtimeItem = { id: itemId, type: 'message', role: 'user', text: '' };
    this.items.push(item);
    this.send({ type: 'input_audio_buffer.committed', item_id: itemId, previous_item_id: previous });
    const wire = { id: itemId, type: 'message', role: 'user', status: 'completed', content: [{ type: 'input_audio', transcript: null }] };
    this.send({ type: 'conversation.item.added', item: wire, previous_item_id: previous });
    this.send({ type: 'conversation.item.done', item: wire, previous_item_id: previous });

    const transcription = this.config.audio?.input?.transcription;
    const scripted = this.nextTranscript;
    this.nextTranscript = undefined;
    // The model "hears" through the transcriber even when no transcript is asked for.
    item.text = scripted ?? await this.host.transcribe({
      model: transcription?.model ?? this.model,
      language: transcription?.language,
      filename: 'realtime-input',
      contentType: this.config.audio?.input?.format?.type ?? 'audio/pcm',
      audio: new Uint8Array(audio),
    });
    if (transcription) {
      this.send({ type: 'conversation.item.input_audio_transcription.completed', item_id: itemId, content_index: 0, transcript: item.text });
    }
    // The reply streams on its own: a caller may talk over it.
    if (respond && !this.response) void this.respond();
  }

  // --- answering ------------------------------------------------------------

  private async respond(): Promise<void> {
    const response: ResponseState = { id: this.newId('resp'), output: [], finished: false, textTokens: 0, audioMs: 0 };
    this.response = response;
    this.send({ type: 'response.created', response: { id: response.id, object: 'realtime.response', status: 'in_progress', output: [] } });
    try {
      const reply = await this.host.reply(this.chatRequest());
      if (response.finished || this.isClosed) return;
      if ('error' in reply) {
        const type = reply.error.status >= 500 ? 'server_error' : 'invalid_request_error';
        return this.finish(response, 'failed', { type: 'failed', error: { type, code: reply.error.code ?? type, message: reply.error.message } });
      }
      const profile = this.host.profile();
      await this.host.sleep(this.host.jittered(profile.chatFirstTokenMs));
      const stop = 'cutAfterChars' in reply ? { kind: 'cut' as const, after: reply.cutAfterChars } : 'stallAfterChars' in reply ? { kind: 'stall' as const, after: reply.stallAfterChars } : undefined;
      if (reply.text && !(await this.speakReply(response, reply.text, stop))) return;
      for (const call of ('toolCalls' in reply ? reply.toolCalls : undefined) ?? []) {
        if (!(await this.callTool(response, call.name, JSON.stringify(call.arguments)))) return;
      }
      this.finish(response, 'completed');
    } catch (error) {
      this.finish(response, 'failed', { type: 'failed', error: { type: 'server_error', code: 'server_error', message: (error as Error).message } });
    }
  }

  /** Streams one assistant message; false once the response is over (cancelled, cut or stalled). */
  private async speakReply(response: ResponseState, text: string, stop?: { kind: 'cut' | 'stall'; after: number }): Promise<boolean> {
    const live = () => !response.finished && !this.isClosed;
    const audioOut = this.config.output_modalities?.includes('audio') !== false;
    const outputIndex = response.output.length;
    const item: FakeRealtimeItem & { type: 'message' } = { id: this.newId('item'), type: 'message', role: 'assistant', text: '', audioMs: audioOut ? 0 : undefined };
    this.items.push(item);
    const partType = audioOut ? 'output_audio' : 'output_text';
    const wire = (status: string, content: unknown[]) => ({ id: item.id, type: 'message', role: 'assistant', status, content });
    response.output.push(wire('incomplete', [{ type: partType, transcript: '' }]));
    const where = { response_id: response.id, item_id: item.id, output_index: outputIndex, content_index: 0 };
    this.send({ type: 'response.output_item.added', response_id: response.id, output_index: outputIndex, item: wire('in_progress', []) });
    this.send({ type: 'conversation.item.added', item: wire('in_progress', []) });
    this.send({ type: 'response.content_part.added', ...where, part: { type: partType, transcript: '' } });

    const profile = this.host.profile();
    const output = this.config.audio?.output;
    const mulaw = output?.format?.type === 'audio/pcmu';
    const rate = mulaw ? 8000 : 24000;
    const pcm = audioOut ? this.host.speak(text, String(output?.voice ?? 'alloy'), rate, output?.speed ?? 1) : Buffer.alloc(0);
    const audio = mulaw ? toMulaw(pcm) : pcm;
    const bytesPerMs = (rate / 1000) * (mulaw ? 1 : 2);
    const chunkBytes = chunkMs * bytesPerMs;
    const chunkCount = Math.max(1, Math.ceil(audio.length / chunkBytes));
    const pieces = tokenPieces(text);
    const started = performance.now();
    let piecesSent = 0;
    for (let chunk = 0; chunk < chunkCount; chunk++) {
      await this.host.sleep(started + (chunk * chunkMs) / profile.ttsRealtimeFactor - performance.now());
      if (!live()) return false;
      // The transcript runs a little ahead of the audio it describes, as OpenAI's does.
      for (const end = Math.ceil(((chunk + 1) * pieces.length) / chunkCount); piecesSent < end; piecesSent++) {
        item.text += pieces[piecesSent];
        response.textTokens++;
        const delta = { type: audioOut ? 'response.output_audio_transcript.delta' : 'response.output_text.delta', ...where, delta: pieces[piecesSent] };
        if (stop && item.text.length >= stop.after) {
          // The last delta goes out whole before the connection breaks (or the fake goes silent).
          this.send(delta, stop.kind === 'cut' ? () => this.drop() : undefined);
          return false;
        }
        this.send(delta);
      }
      const piece = audio.subarray(chunk * chunkBytes, (chunk + 1) * chunkBytes);
      if (piece.length === 0) continue;
      item.audioMs = (item.audioMs ?? 0) + piece.length / bytesPerMs;
      response.audioMs += piece.length / bytesPerMs;
      this.spokeAlready = true;
      this.send({ type: 'response.output_audio.delta', ...where, delta: piece.toString('base64') });
    }
    if (!live()) return false;
    const part = audioOut ? { type: 'output_audio', transcript: text } : { type: 'output_text', text };
    if (audioOut) {
      this.send({ type: 'response.output_audio.done', ...where });
      this.send({ type: 'response.output_audio_transcript.done', ...where, transcript: text });
    } else {
      this.send({ type: 'response.output_text.done', ...where, text });
    }
    this.send({ type: 'response.content_part.done', ...where, part });
    response.output[outputIndex] = wire('completed', [part]);
    this.send({ type: 'response.output_item.done', response_id: response.id, output_index: outputIndex, item: response.output[outputIndex] });
    this.send({ type: 'conversation.item.done', item: response.output[outputIndex] });
    return true;
  }

  /** Streams one function call, its arguments at the profile's token rate; false once the response is over. */
  private async callTool(response: ResponseState, name: string, args: string): Promise<boolean> {
    const live = () => !response.finished && !this.isClosed;
    const pace = () => this.host.sleep(this.host.jittered(1000 / this.host.profile().chatTokensPerSecond));
    if (!live()) return false;
    const item: FakeRealtimeItem = { id: this.newId('item'), type: 'function_call', callId: `call_${this.host.randomId()}`, name, arguments: args };
    this.items.push(item);
    const outputIndex = response.output.length;
    const wire = (status: string, argumentsText: string) => ({ id: item.id, type: 'function_call', status, call_id: item.callId, name, arguments: argumentsText });
    response.output.push(wire('completed', args));
    this.send({ type: 'response.output_item.added', response_id: response.id, output_index: outputIndex, item: wire('in_progress', '') });
    this.send({ type: 'conversation.item.added', item: wire('in_progress', '') });
    const where = { response_id: response.id, item_id: item.id, output_index: outputIndex, call_id: item.callId };
    for (const piece of tokenPieces(args)) {
      await pace();
      if (!live()) return false;
      response.textTokens++;
      this.send({ type: 'response.function_call_arguments.delta', ...where, delta: piece });
    }
    this.send({ type: 'response.function_call_arguments.done', ...where, name, arguments: args });
    // One more token's time before the item (and then the response) is done, as the model closes it.
    await pace();
    if (!live()) return false;
    this.send({ type: 'response.output_item.done', response_id: response.id, output_index: outputIndex, item: wire('completed', args) });
    this.send({ type: 'conversation.item.done', item: wire('completed', args) });
    return true;
  }

  private finish(response: ResponseState, status: 'completed' | 'cancelled' | 'failed', details?: Record<string, unknown>): void {
    if (response.finished) return;
    response.finished = true;
    if (this.response === response) this.response = undefined;
    const inputAudioTokens = Math.ceil(this.inputMs() / 100);
    const inputTextTokens = estimateTokens(JSON.stringify(this.chatRequest().messages));
    const outputAudioTokens = Math.ceil(response.audioMs / 50);
    this.send({
      type: 'response.done',
      response: {
        id: response.id,
        object: 'realtime.response',
        status,
        status_details: details ?? null,
        output: response.output,
        output_modalities: this.config.output_modalities,
        usage: {
          total_tokens: inputAudioTokens + inputTextTokens + outputAudioTokens + response.textTokens,
          input_tokens: inputAudioTokens + inputTextTokens,
          output_tokens: outputAudioTokens + response.textTokens,
          input_token_details: { text_tokens: inputTextTokens, audio_tokens: inputAudioTokens, cached_tokens: 0, image_tokens: 0 },
          output_token_details: { text_tokens: response.textTokens, audio_tokens: outputAudioTokens },
        },
      },
    });
  }

  /** The conversation as a chat request, so the HTTP fake's responder and reply queue decide what to say. */
  private chatRequest(): FakeChatRequest {
    const messages: FakeChatMessage[] = this.config.instructions ? [{ role: 'system', content: this.config.instructions }] : [];
    for (const item of this.items) {
      if (item.type === 'message') messages.push({ role: item.role, content: item.text });
      else if (item.type === 'function_call') {
        messages.push({ role: 'assistant', content: null, tool_calls: [{ id: item.callId, type: 'function', function: { name: item.name, arguments: item.arguments } }] });
      } else messages.push({ role: 'tool', tool_call_id: item.callId, content: item.output });
    }
    const tools = (this.config.tools ?? []).flatMap((tool) => ('name' in tool && tool.name
      ? [{ name: tool.name, description: tool.description, parameters: tool.parameters as Record<string, unknown> | undefined }]
      : []));
    return { model: this.model, messages, tools, stream: true };
  }

  private sessionView(): Record<string, unknown> {
    return { ...this.config, id: this.sessionId, object: 'realtime.session' };
  }

  private newId(prefix: string): string {
    return `${prefix}_${this.host.randomId()}`;
  }
}

function pcm16(bytes: Buffer): Int16Array {
  const samples = new Int16Array(Math.floor(bytes.length / 2));
  for (let index = 0; index < samples.length; index++) samples[index] = bytes.readInt16LE(index * 2);
  return samples;
}

function toMulaw(pcm: Buffer): Buffer {
  const out = Buffer.alloc(pcm.length / 2);
  for (let index = 0; index < out.length; index++) out[index] = encodeMulawSample(pcm.readInt16LE(index * 2));
  return out;
}

/** Token-sized pieces (at most four visible characters) that join back exactly, as the chat fake streams them. */
function tokenPieces(text: string): string[] {
  return text.match(/\s*\S{1,4}|\s+/g) ?? [];
}

function estimateTokens(text: string): number {
  return Math.ceil(text.length / 4);
}

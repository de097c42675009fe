import type { IncomingMessage } from 'node:http';
import { APIError, type OpenAI } from 'openai';
import type { RealtimeClientEvent, RealtimeSessionCreateRequest } from 'openai/resources/realtime/realtime';
import { WebSocket, type RawData } from 'ws';
import { z } from 'zod';
import { defaultIdleTimeoutMs } from './openai-client.js';
import { ProviderError, toAbortError, toProviderError } from './provider-error.js';
import type {
  RealtimeConnectOptions,
  RealtimeEvent,
  RealtimeModel,
  RealtimeReplyStatus,
  RealtimeSession,
  RealtimeUsage,
} from './realtime-model.js';

export interface OpenAIRealtimeModelOptions {
  /** Only its key and base URL are used: the realtime API is a WebSocket beside the HTTP API. */
  client: Pick<OpenAI, 'apiKey' | 'baseURL'>;
  /** Model of the caller transcript; `null` turns the transcript off. Defaults to `gpt-4o-mini-transcribe`. */
  transcriptionModel?: string | null;
  /** Longest wait from dialing until the provider has accepted the session's settings. Defaults to 10 s. */
  connectTimeoutMs?: number;
  /** Longest silence from the provider while a reply is in progress before the session counts as stalled. */
  idleTimeoutMs?: number;
}

/**
 * `RealtimeModel` over OpenAI's Realtime API (the GA protocol of
 * `gpt-realtime`), or any server that speaks it at `<baseURL>/realtime`.
 *
 * Audio is G.711 μ-law both ways (`audio/pcmu`; the beta API called it
 * `g711_ulaw` and took it in flat `input_audio_format`/`output_audio_format`
 * fields, which the GA API refuses), so a call's audio passes through
 * untouched. Server VAD decides when the caller has finished and cancels a
 * reply the caller talks over; the caller's words are transcribed on the side.
 *
 * The SDK's `OpenAIRealtimeWS` is not used: it always dials `wss:`, so it
 * cannot reach a compatible server on plain `http:` (a local model, the
 * tests' fake), and it hides the HTTP status of a refused handshake.
 */
export class OpenAIRealtimeModel implements RealtimeModel {
  private readonly client: Pick<OpenAI, 'apiKey' | 'baseURL'>;
  private readonly transcriptionModel: string | null;
  private readonly connectTimeoutMs: number;
  private readonly idleTimeoutMs: number;

  constructor(options: OpenAIRealtimeModelOptions) {
    this.client = options.client;
    this.transcriptionModel = options.transcriptionModel === undefined ? 'gpt-4o-mini-transcribe' : options.transcriptionModel;
    this.connectTimeoutMs = options.connectTimeoutMs ?? 10_000;
    this.idleTimeoutMs = options.idleTimeoutMs ?? defaultIdleTimeoutMs;
  }

  async connect(options: RealtimeConnectOptions): Promise<RealtimeSession> {
    const signal = options.abortSignal;
    if (signal?.aborted) throw toAbortError(signal);
    const socket = new WebSocket(realtimeUrl(this.client.baseURL, options.model), {
      headers: { Authorization: `Bearer ${this.client.apiKey}` },
    });
    const session = new OpenAIRealtimeSession(socket, this.idleTimeoutMs);
    await session.start(sessionConfig(options, this.transcriptionModel), this.connectTimeoutMs, signal);
    return session;
  }
}

function realtimeUrl(baseURL: string, model: string): URL {
  const url = new URL(`${baseURL.replace(/\/+$/, '')}/realtime`);
  url.protocol = url.protocol === 'http:' ? 'ws:' : 'wss:';
  url.searchParams.set('model', model);
  return url;
}

function sessionConfig(options: RealtimeConnectOptions, transcriptionModel: string | null): RealtimeSessionCreateRequest {
  const { silenceMs, threshold } = options.turnDetection ?? {};
  return {
    type: 'realtime',
    instructions: options.instructions,
    output_modalities: ['audio'],
    audio: {
      input: {
        format: { type: 'audio/pcmu' },
        ...(transcriptionModel ? { transcription: { model: transcriptionModel, language: options.language } } : {}),
        turn_detection: {
          type: 'server_vad',
          create_response: true,
          interrupt_response: true,
          ...(silenceMs === undefined ? {} : { silence_duration_ms: silenceMs }),
          ...(threshold === undefined ? {} : { threshold }),
        },
      },
      output: { format: { type: 'audio/pcmu' }, voice: options.voice },
    },
    tools: (options.tools ?? []).map((tool) => ({
      type: 'function' as const,
      name: tool.name,
      description: tool.description,
      parameters: tool.parameters,
    })),
    tool_choice: 'auto',
  };
}

// ---------------------------------------------------------------------------
// Server events: only the ones a call needs; the rest are ignored.

const errorDetails = z.object({ message: z.string().optional(), type: z.string().optional(), code: z.string().nullish() });

const usageSchema = z.object({
  input_tokens: z.number().default(0),
  output_tokens: z.number().default(0),
  input_token_details: z.object({ audio_tokens: z.number().default(0), cached_tokens: z.number().default(0) }).partial().optional(),
  output_token_details: z.object({ audio_tokens: z.number().default(0) }).partial().optional(),
});

// The beta names of the reply events are accepted too, for servers that still speak it.
const serverEvent = z.discriminatedUnion('type', [
  z.object({ type: z.literal('session.updated') }),
  z.object({ type: z.literal('input_audio_buffer.speech_started') }),
  z.object({ type: z.literal('input_audio_buffer.speech_stopped') }),
  z.object({ type: z.literal('conversation.item.input_audio_transcription.completed'), item_id: z.string(), transcript: z.string() }),
  z.object({ type: z.literal('conversation.item.input_audio_transcription.failed'), error: errorDetails.optional() }),
  z.object({ type: z.literal(['response.output_audio.delta', 'response.audio.delta']), item_id: z.string(), content_index: z.number().default(0), delta: z.string() }),
  z.object({
    type: z.literal(['response.output_audio_transcript.delta', 'response.audio_transcript.delta', 'response.output_text.delta', 'response.text.delta']),
    item_id: z.string(),
    delta: z.string(),
  }),
  z.object({ type: z.literal('response.output_item.added'), item: z.object({ id: z.string().optional(), name: z.string().optional() }) }),
  z.object({ type: z.literal('response.function_call_arguments.done'), item_id: z.string().optional(), call_id: z.string(), name: z.string().optional(), arguments: z.string() }),
  z.object({ type: z.literal('response.created') }),
  z.object({
    type: z.literal('response.done'),
    response: z.object({
      status: z.string().optional(),
      status_details: z.object({ error: errorDetails.nullish() }).nullish(),
      usage: usageSchema.nullish(),
    }),
  }),
  z.object({ type: z.literal('error'), error: errorDetails }),
]);
type ServerEvent = z.infer<typeof serverEvent>;
const knownTypes = new Set<string>(serverEvent.options.flatMap((option) => [...option.shape.type.values]));

/** An error reported inside the session, classified as `toProviderError` would an HTTP one. */
function reportedError(details: z.infer<typeof errorDetails> | null | undefined, fallback: string): ProviderError {
  return toProviderError(new APIError(undefined, { ...details }, details?.message ?? fallback, undefined));
}

/** μ-law at 8 kHz: one byte a sample, eight a millisecond. */
const bytesPerMs = 8;
const replyStatuses: readonly RealtimeReplyStatus[] = ['completed', 'cancelled', 'incomplete', 'failed'];

class OpenAIRealtimeSession implements RealtimeSession {
  readonly events: EventQueue<RealtimeEvent>;
  private state: 'connecting' | 'open' | 'closed' = 'connecting';
  private ready: { resolve: () => void; reject: (error: Error) => void } | undefined;
  private replyActive = false;
  private replyQueued = false;
  private readonly heard = new Map<string, { bytes: number; contentIndex: number }>();
  private readonly toolNames = new Map<string, string>();
  private socketError: Error | undefined;
  private lastError: ProviderError | undefined;
  private idleTimer: NodeJS.Timeout | undefined;
  private readonly closed: Promise<void>;
  private stopAbortListener = () => {};

  constructor(
    private readonly socket: WebSocket,
    private readonly idleTimeoutMs: number,
  ) {
    this.events = new EventQueue(() => void this.close());
    this.closed = new Promise((resolve) => socket.once('close', () => resolve()));
    socket.on('unexpected-response', (_request, response) => void this.refused(response));
    socket.on('message', (data: RawData) => this.receive(data.toString()));
    socket.on('error', (error) => {
      this.socketError = error;
    });
    socket.on('close', (code, reason) => this.ended(code, reason.toString()));
  }

  /** Opens the session with `config`; resolves once the provider has accepted it. */
  async start(config: RealtimeSessionCreateRequest, timeoutMs: number, signal: AbortSignal | undefined): Promise<void> {
    const ready = new Promise<void>((resolve, reject) => {
      this.ready = { resolve, reject };
    });
    const timer = setTimeout(() => this.notReady(new ProviderError('provider_timeout', `realtime session not ready after ${timeoutMs} ms`)), timeoutMs);
    const onAbort = () => (this.state === 'connecting' ? this.notReady(toAbortError(signal!)) : void this.close());
    signal?.addEventListener('abort', onAbort, { once: true });
    this.stopAbortListener = () => signal?.removeEventListener('abort', onAbort);
    this.socket.once('open', () => this.send({ type: 'session.update', session: config }));
    try {
      await ready;
    } finally {
      clearTimeout(timer);
    }
  }

  appendAudio(mulaw: Uint8Array): void {
    this.send({ type: 'input_audio_buffer.append', audio: Buffer.from(mulaw.buffer, mulaw.byteOffset, mulaw.byteLength).toString('base64') });
  }

  truncateReply(itemId: string, audioEndMs: number): void {
    const heard = this.heard.get(itemId);
    // The provider refuses to truncate past the audio it sent, or audio it never sent.
    if (!heard) return;
    const end = Math.min(Math.max(0, Math.round(audioEndMs)), Math.floor(heard.bytes / bytesPerMs));
    this.send({ type: 'conversation.item.truncate', item_id: itemId, content_index: heard.contentIndex, audio_end_ms: end });
  }

  cancelReply(): void {
    this.replyQueued = false;
    // Cancelling with no reply in progress only earns an error event.
    if (this.replyActive) this.send({ type: 'response.cancel' });
  }

  createReply(): void {
    // The provider refuses a second reply while one is in progress: ask again once it is done.
    if (this.replyActive) this.replyQueued = true;
    else if (this.send({ type: 'response.create' })) this.replyStarted();
  }

  sendToolResult(callId: string, output: string, options: { respond: boolean }): void {
    this.send({ type: 'conversation.item.create', item: { type: 'function_call_output', call_id: callId, output } });
    if (options.respond) this.createReply();
  }

  sendText(text: string, options: { respond: boolean }): void {
    this.send({ type: 'conversation.item.create', item: { type: 'message', role: 'user', content: [{ type: 'input_text', text }] } });
    if (options.respond) this.createReply();
  }

  async close(): Promise<void> {
    if (this.state !== 'closed') this.finish();
    if (this.socket.readyState === WebSocket.CLOSED) return;
    if (this.socket.readyState === WebSocket.OPEN) this.socket.close(1000);
    // Without the provider's closing handshake in a second, just drop the connection.
    const force = setTimeout(() => this.socket.terminate(), 1_000);
    await this.closed;
    clearTimeout(force);
  }

  // --- wire -----------------------------------------------------------------

  private send(event: RealtimeClientEvent): boolean {
    if (this.socket.readyState !== WebSocket.OPEN || this.state === 'closed') return false;
    this.socket.send(JSON.stringify(event));
    return true;
  }

  private receive(text: string): void {
    if (this.state === 'closed') return;
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (error) {
      return this.report(toProviderError(error));
    }
    const parsed = serverEvent.safeParse(json);
    if (parsed.success) return this.handle(parsed.data);
    const type = (json as { type?: unknown } | null)?.type;
    if (typeof type === 'string' && knownTypes.has(type)) {
      this.report(new ProviderError('provider_bad_response', `malformed ${type} event: ${parsed.error.message}`));
    }
  }

  private handle(event: ServerEvent): void {
    if (this.replyActive) this.armIdleTimer();
    switch (event.type) {
      case 'session.updated':
        if (this.state === 'connecting') {
          this.state = 'open';
          this.ready?.resolve();
        }
        return;
      case 'error':
        if (this.state === 'connecting') return this.notReady(reportedError(event.error, 'provider refused the session settings'));
        return this.report(reportedError(event.error, 'provider reported an error'));
      case 'input_audio_buffer.speech_started':
        return this.events.push({ type: 'speech-started' });
      case 'input_audio_buffer.speech_stopped':
        return this.events.push({ type: 'speech-stopped' });
      case 'conversation.item.input_audio_transcription.completed':
        return this.events.push({ type: 'caller-transcript-completed', itemId: event.item_id, text: event.transcript });
      case 'conversation.item.input_audio_transcription.failed':
        return this.report(reportedError(event.error, 'caller transcription failed'));
      case 'response.output_audio.delta':
      case 'response.audio.delta': {
        const audio = Buffer.from(event.delta, 'base64');
        const heard = this.heard.get(event.item_id) ?? { bytes: 0, contentIndex: event.content_index };
        heard.bytes += audio.length;
        this.heard.set(event.item_id, heard);
        return this.events.push({ type: 'reply-audio-delta', itemId: event.item_id, audio: new Uint8Array(audio.buffer, audio.byteOffset, audio.length) });
      }
      case 'response.output_audio_transcript.delta':
      case 'response.audio_transcript.delta':
      case 'response.output_text.delta':
      case 'response.text.delta':
        return this.events.push({ type: 'reply-text-delta', itemId: event.item_id, text: event.delta });
      case 'response.output_item.added':
        // The beta API names the function only here, not when its arguments are done.
        if (event.item.id && event.item.name) this.toolNames.set(event.item.id, event.item.name);
        return;
      case 'response.function_call_arguments.done': {
        const name = event.name ?? this.toolNames.get(event.item_id ?? '') ?? '';
        return this.events.push({ type: 'tool-called', callId: event.call_id, name, arguments: event.arguments });
      }
      case 'response.created':
        return this.replyStarted();
      case 'response.done':
        return this.replyDone(event.response);
    }
  }

  private replyStarted(): void {
    this.replyActive = true;
    this.armIdleTimer();
  }

  private replyDone(response: Extract<ServerEvent, { type: 'response.done' }>['response']): void {
    this.replyActive = false;
    clearTimeout(this.idleTimer);
    const status = replyStatuses.find((known) => known === response.status) ?? 'completed';
    const error = status === 'failed' ? reportedError(response.status_details?.error, 'reply failed') : undefined;
    this.events.push({ type: 'reply-completed', status, usage: usageOf(response.usage), ...(error ? { error } : {}) });
    if (this.replyQueued) {
      this.replyQueued = false;
      this.createReply();
    }
  }

  private armIdleTimer(): void {
    clearTimeout(this.idleTimer);
    if (!Number.isFinite(this.idleTimeoutMs)) return;
    this.idleTimer = setTimeout(() => {
      this.fail(new ProviderError('provider_timeout', `realtime reply stalled for ${this.idleTimeoutMs} ms`));
    }, this.idleTimeoutMs);
  }

  private report(error: ProviderError): void {
    this.lastError = error;
    this.events.push({ type: 'error-reported', error });
  }

  // --- ending ---------------------------------------------------------------

  /** The handshake was answered with HTTP instead of an upgrade: classify it like an HTTP API error. */
  private async refused(response: IncomingMessage): Promise<void> {
    const status = response.statusCode ?? 0;
    let text = '';
    try {
      for await (const chunk of response) {
        text += String(chunk);
        if (text.length > 65_536) break;
      }
    } catch {
      // The status alone is enough to classify the refusal.
    }
    const headers = new Headers();
    for (const [name, value] of Object.entries(response.headers)) {
      if (value !== undefined) headers.set(name, Array.isArray(value) ? value.join(', ') : value);
    }
    let body: object | undefined;
    try {
      body = JSON.parse(text) as object;
    } catch {
      body = undefined;
    }
    this.notReady(status >= 400
      ? toProviderError(APIError.generate(status, body, text.slice(0, 200) || undefined, headers))
      : new ProviderError('provider_bad_response', `provider answered the realtime handshake with HTTP ${status} (${headers.get('content-type') ?? 'no content type'}), not a WebSocket`, { status }));
  }

  private notReady(error: Error): void {
    if (this.state !== 'connecting') return;
    this.finish();
    this.socket.terminate();
    this.ready?.reject(error);
  }

  private fail(error: ProviderError): void {
    if (this.state === 'closed') return;
    this.events.push({ type: 'session-failed', error });
    this.finish({ keepEvents: true });
    this.socket.terminate();
  }

  private ended(code: number, reason: string): void {
    if (this.state === 'connecting') {
      const cause = this.socketError;
      const error = cause ? toProviderError(cause) : undefined;
      return this.notReady(!error || error.code === 'provider_unavailable'
        ? new ProviderError('provider_unavailable', `cannot reach the realtime API: ${cause?.message ?? `connection closed (code ${code})`}`, { cause })
        : error);
    }
    const detail = `code ${code}${reason ? `: ${reason}` : ''}${this.lastError ? `; last error: ${this.lastError.message}` : ''}`;
    this.fail(new ProviderError('provider_unavailable', `realtime connection closed unexpectedly (${detail})`, { cause: this.socketError ?? this.lastError }));
  }

  /** Stops everything; events already queued are dropped unless the session failed (the failure must be seen). */
  private finish(options: { keepEvents?: boolean } = {}): void {
    this.state = 'closed';
    clearTimeout(this.idleTimer);
    this.stopAbortListener();
    this.events.end(options.keepEvents ?? false);
  }
}

function usageOf(usage: z.infer<typeof usageSchema> | null | undefined): RealtimeUsage | undefined {
  if (!usage) return undefined;
  return {
    inputTokens: usage.input_tokens,
    outputTokens: usage.output_tokens,
    inputAudioTokens: usage.input_token_details?.audio_tokens ?? 0,
    outputAudioTokens: usage.output_token_details?.audio_tokens ?? 0,
    cachedInputTokens: usage.input_token_details?.cached_tokens ?? 0,
  };
}

/** An async iterable for one consumer, fed by pushes; leaving it early calls `onReturn`. */
class EventQueue<T> implements AsyncIterable<T> {
  private readonly buffered: T[] = [];
  private waiting: ((result: IteratorResult<T>) => void) | undefined;
  private ended = false;

  constructor(private readonly onReturn: () => void) {}

  push(item: T): void {
    if (this.ended) return;
    const waiting = this.waiting;
    this.waiting = undefined;
    if (waiting) waiting({ value: item, done: false });
    else this.buffered.push(item);
  }

  end(keepBuffered: boolean): void {
    if (this.ended) return;
    this.ended = true;
    if (!keepBuffered) this.buffered.length = 0;
    this.waiting?.({ value: undefined, done: true });
    this.waiting = undefined;
  }

  [Symbol.asyncIterator](): AsyncIterator<T> {
    return {
      next: () => {
        if (this.buffered.length) return Promise.resolve({ value: this.buffered.shift()!, done: false });
        if (this.ended) return Promise.resolve({ value: undefined, done: true });
        return new Promise((resolve) => {
          this.waiting = resolve;
        });
      },
      return: () => {
        this.onReturn();
        this.end(false);
        return Promise.resolve({ value: undefined, done: true });
      },
    };
  }
}

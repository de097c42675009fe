import { readFile } from 'node:fs/promises';
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import {
  speechContentTypes,
  speechFormats,
  speechVoices,
  type SpeechFormat,
} from '../providers/speech-model.js';
import { applyFault, type FakeErrorReply, type FakeFault } from './fake-faults.js';
import { FakeRealtimeServer, refuseUpgrade, type FakeRealtime } from './fake-realtime.js';
import { ngramEmbedding } from './ngram-embedding.js';

export type { FakeErrorReply, FakeFault } from './fake-faults.js';
export { refusedBaseUrl } from './fake-faults.js';

/**
 * How slowly the fake answers. Rates of `Infinity` and delays of 0 mean no
 * timers at all, so tests on the `zero` profile run as fast as the loopback.
 */
export interface FakeLatencyProfile {
  /** Delay before the first streamed chat chunk. */
  chatFirstTokenMs: number;
  /** Streamed pieces (~4 characters each) per second after the first. */
  chatTokensPerSecond: number;
  /** Delay before the speech response's headers and first audio bytes. */
  ttsFirstByteMs: number;
  /** Seconds of audio sent per second of wall time once audio flows. */
  ttsRealtimeFactor: number;
  /** Relative spread applied to each delay: 0.2 means ±20 %. */
  jitter: number;
}

/** Ready-made profiles: `realistic` approximates OpenAI from a European or US server. */
export const latencyProfiles = {
  zero: {
    chatFirstTokenMs: 0,
    chatTokensPerSecond: Number.POSITIVE_INFINITY,
    ttsFirstByteMs: 0,
    ttsRealtimeFactor: Number.POSITIVE_INFINITY,
    jitter: 0,
  },
  realistic: {
    chatFirstTokenMs: 400,
    chatTokensPerSecond: 60,
    ttsFirstByteMs: 500,
    ttsRealtimeFactor: 6.5,
    jitter: 0.2,
  },
} satisfies Record<string, FakeLatencyProfile>;

/** A tool call the fake should make; `arguments` is serialized to JSON for the stream. */
export interface FakeToolCall {
  name: string;
  arguments: Record<string, unknown>;
}

/**
 * What the fake answers to one chat completion:
 * - text and/or tool calls (text streams first, then the tool calls);
 * - an HTTP error;
 * - `cutAfterChars`: streams that much of `text`, then drops the connection;
 * - `stallAfterChars`: streams that much of `text`, then goes silent with the connection open.
 */
export type FakeChatReply =
  | { text?: string; toolCalls?: FakeToolCall[] }
  | { error: FakeErrorReply }
  | { cutAfterChars: number; text: string }
  | { stallAfterChars: number; text: string };

/** A message as the client sent it, in OpenAI's wire shape. */
export interface FakeChatMessage {
  role: string;
  content?: string | null | { type: string; text?: string }[];
  tool_calls?: { id: string; type: string; function: { name: string; arguments: string } }[];
  tool_call_id?: string;
}

/** A tool offered in the request, flattened out of OpenAI's `{ type: 'function', function }`. */
export interface FakeChatTool {
  name: string;
  description?: string;
  parameters?: Record<string, unknown>;
}

export interface FakeChatRequest {
  model: string;
  messages: FakeChatMessage[];
  tools: FakeChatTool[];
  stream: boolean;
}

export type FakeChatResponder = (request: FakeChatRequest) => FakeChatReply | Promise<FakeChatReply>;

export interface FakeTranscriptionRequest {
  model: string;
  language?: string;
  filename: string;
  contentType?: string;
  audio: Uint8Array;
}

export type FakeTranscriber = (request: FakeTranscriptionRequest) => string | Promise<string>;

export type FakeEndpoint = 'chat' | 'speech' | 'transcription' | 'embeddings';

/** One request the fake received, as seen on the wire. */
export interface FakeRecordedRequest {
  endpoint: FakeEndpoint | 'models' | 'realtime' | 'unknown';
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  /** Parsed JSON body (chat, speech). */
  body?: Record<string, unknown>;
  /** Text fields of a multipart body (transcription). */
  fields?: Record<string, string>;
  file?: { filename: string; contentType?: string; size: number };
  /** `performance.now()` when the request arrived. */
  receivedAt: number;
  /** `performance.now()` when the response was fully sent; unset while still sending or if never sent. */
  finishedAt?: number;
  status?: number;
  /** The delays this request was given, after jitter (chat and speech). */
  injected?: FakeInjectedDelays;
}

/**
 * The delays the fake applied to one request, after jitter, in milliseconds
 * from the moment it started answering. A benchmark computes from them the
 * fastest any client could have gone (its floor).
 */
export type FakeInjectedDelays =
  | {
      endpoint: 'chat';
      /** Streamed text pieces, in order (tool-call fragments follow them). */
      textPieces: string[];
      /** When each chunk was due: the opening role chunk, then each text piece, then each tool-call fragment. */
      chunkDueMs: number[];
    }
  | {
      endpoint: 'speech';
      /** Headers and the first audio bytes. */
      firstByteMs: number;
      /** The last audio bytes (the body ends right after). */
      lastByteMs: number;
      audioSeconds: number;
      bytes: number;
    };

export interface FakeOpenAIOptions {
  /** Defaults to `latencyProfiles.zero`. */
  profile?: FakeLatencyProfile;
  /** Defaults to `defaultChatResponder`. */
  respond?: FakeChatResponder;
  /** Defaults to answering "hello". */
  transcribe?: FakeTranscriber;
  /** When set, only this key is accepted; otherwise any non-empty bearer token is. */
  apiKey?: string;
  /** Seed of the jitter and of generated ids, so runs can be repeated exactly. */
  seed?: number;
  /** Port on 127.0.0.1; 0 (the default) picks a free one. */
  port?: number;
  /**
   * `pcm`/`wav` speech is cut from one stretch of the speech-like signal
   * rendered once per voice and speed, instead of rendered for each text:
   * same length and byte rate, a tiny fraction of the CPU. For benchmarks,
   * where rendering (about 5 ms of CPU per second of audio) would make the
   * fake the bottleneck rather than the server under test.
   */
  reuseSpeechSignal?: boolean;
}

/** A running fake OpenAI-compatible server on 127.0.0.1. */
export interface FakeOpenAI {
  /** Base URL for the SDK, ending in `/v1`. */
  readonly url: string;
  /** Every request received, oldest first. */
  readonly requests: FakeRecordedRequest[];
  setProfile(profile: FakeLatencyProfile): void;
  /** Replaces the chat responder; without an argument, restores the default. */
  setRespond(respond?: FakeChatResponder): void;
  /** Replies used, in order, by the next chat completions before the responder is asked. */
  queueChatReplies(...replies: FakeChatReply[]): void;
  /** Replaces the transcriber; without an argument, restores the default. */
  setTranscribe(transcribe?: FakeTranscriber): void;
  /** Makes the next `count` requests to `endpoint` fail with `fault`. */
  failNext(endpoint: FakeEndpoint, fault: FakeFault, count?: number): void;
  /**
   * The Realtime API's WebSocket at `/v1/realtime` on the same port, with the
   * same key check; it answers through this fake's transcriber, chat
   * responder and reply queue. See `fake-realtime.ts`.
   */
  readonly realtime: FakeRealtime;
  /** Drops every open connection (stalled ones included) and stops listening. */
  close(): Promise<void>;
}

/** Starts a fake OpenAI-compatible server on an ephemeral port of 127.0.0.1. */
export async function startFakeOpenAI(options: FakeOpenAIOptions = {}): Promise<FakeOpenAI> {
  const fixtures = await loadAudioFixtures();
  const fake = new FakeOpenAIServer(options, fixtures);
  await fake.listen(options.port ?? 0);
  return fake;
}

/**
 * The fake's default chat behaviour, a deterministic receptionist: greets when
 * the caller has said nothing, repeats back what the caller said otherwise,
 * and says goodbye and calls `end_call` (when offered) once the caller's last
 * message contains "bye"; after a tool result, it only acknowledges. Handy to
 * compose in a custom responder.
 */
export function defaultChatResponder(request: FakeChatRequest): FakeChatReply {
  // After a tool's result the model speaks about it rather than calling the tool again.
  if (request.messages.at(-1)?.role === 'tool') return { text: 'Done. Is there anything else I can help with?' };
  const lastUser = [...request.messages].reverse().find((message) => message.role === 'user');
  const said = lastUser ? messageText(lastUser).trim() : '';
  if (!said) return { text: 'Hello, thanks for calling. How can I help you today?' };
  const endCall = request.tools.find((tool) => tool.name === 'end_call');
  if (endCall && /\bbye\b/i.test(said)) {
    const goodbye = 'Thanks for calling. Goodbye!';
    return { text: goodbye, toolCalls: [{ name: 'end_call', arguments: argumentsFor(endCall, goodbye) }] };
  }
  const quoted = said.length > 120 ? `${said.slice(0, 117)}...` : said;
  return { text: `You said: "${quoted}". I can help with that. Is there anything else?` };
}

/** Fills the string properties of the tool's schema so the arguments validate. */
function argumentsFor(tool: FakeChatTool, goodbye: string): Record<string, unknown> {
  const properties = (tool.parameters?.properties ?? {}) as Record<string, { type?: unknown }>;
  const values: Record<string, unknown> = {};
  for (const [name, schema] of Object.entries(properties)) {
    if (schema.type === 'string') values[name] = /reason/i.test(name) ? 'caller said goodbye' : goodbye;
  }
  return values;
}

function messageText(message: FakeChatMessage): string {
  if (typeof message.content === 'string') return message.content;
  if (Array.isArray(message.content)) return message.content.map((part) => part.text ?? '').join('');
  return '';
}

// ---------------------------------------------------------------------------
// Server

const maxBodyBytes = 26 * 1024 * 1024;

class FakeOpenAIServer implements FakeOpenAI {
  url = '';
  readonly requests: FakeRecordedRequest[] = [];
  private readonly server = createServer((request, response) => void this.handle(request, response));
  readonly realtime: FakeRealtimeServer;
  private profile: FakeLatencyProfile;
  private respond: FakeChatResponder;
  private transcribe: FakeTranscriber;
  private readonly chatScript: FakeChatReply[] = [];
  private readonly faults: Record<FakeEndpoint, FakeFault[]> = { chat: [], speech: [], transcription: [], embeddings: [] };
  private readonly sleeps = new Set<{ timer: NodeJS.Timeout; resolve: () => void }>();
  private readonly random: () => number;
  private closed = false;
  private requestCount = 0;
  private readonly speechSignals = new Map<string, Buffer>();

  constructor(
    private readonly options: FakeOpenAIOptions,
    private readonly fixtures: AudioFixtures,
  ) {
    this.profile = options.profile ?? latencyProfiles.zero;
    this.respond = options.respond ?? defaultChatResponder;
    this.transcribe = options.transcribe ?? defaultTranscriber;
    this.random = mulberry32(options.seed ?? 1);
    this.realtime = new FakeRealtimeServer({
      profile: () => this.profile,
      reply: async (request) => this.chatScript.shift() ?? (await this.respond(request)),
      transcribe: async (request) => this.transcribe(request),
      speak: (text, voice, sampleRate, speed) => speechLikePcm(text, speed, voice, sampleRate),
      sleep: (ms) => this.sleep(ms),
      jittered: (ms) => this.jittered(ms, this.profile),
      randomId: () => this.randomId(),
    });
    this.server.on('upgrade', (request, socket, head) => void this.upgrade(request, socket, head));
  }

  async listen(requestedPort = 0): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(requestedPort, '127.0.0.1', resolve);
    });
    const { port } = this.server.address() as AddressInfo;
    this.url = `http://127.0.0.1:${port}/v1`;
  }

  setProfile(profile: FakeLatencyProfile): void {
    this.profile = profile;
  }

  setRespond(respond?: FakeChatResponder): void {
    this.respond = respond ?? defaultChatResponder;
  }

  queueChatReplies(...replies: FakeChatReply[]): void {
    this.chatScript.push(...replies);
  }

  setTranscribe(transcribe?: FakeTranscriber): void {
    this.transcribe = transcribe ?? defaultTranscriber;
  }

  failNext(endpoint: FakeEndpoint, fault: FakeFault, count = 1): void {
    for (let index = 0; index < count; index++) this.faults[endpoint].push(fault);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const sleep of this.sleeps) {
      clearTimeout(sleep.timer);
      sleep.resolve();
    }
    this.sleeps.clear();
    this.realtime.close();
    const stopped = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeAllConnections();
    await stopped;
  }

  private async handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const path = (request.url ?? '/').split('?')[0];
    const route = routeOf(request.method ?? 'GET', path);
    const record: FakeRecordedRequest = {
      endpoint: route,
      method: request.method ?? 'GET',
      path,
      headers: request.headers,
      receivedAt: performance.now(),
    };
    this.requests.push(record);
    response.setHeader('x-request-id', `req_${++this.requestCount}`);
    response.on('finish', () => {
      record.finishedAt = performance.now();
      record.status = response.statusCode;
    });
    try {
      const body = await readBody(request);
      if (body === undefined) return sendError(response, 413, 'Request body too large.');
      if (!this.authorized(request, response)) return;
      if (route === 'unknown') return sendError(response, 404, `Invalid URL (${record.method} ${path})`);
      if (route === 'models') return sendModels(response);
      if (!(await this.injectFault(route, response))) return;
      if (route === 'chat') await this.chat(response, record, body);
      else if (route === 'speech') await this.speech(response, record, body);
      else if (route === 'embeddings') this.embeddings(response, record, body);
      else await this.transcription(request, response, record, body);
    } catch (error) {
      if (!response.headersSent) sendError(response, 500, `fake server failed: ${(error as Error).message}`);
      else response.destroy();
    }
  }

  private authorized(request: IncomingMessage, response: ServerResponse): boolean {
    const refusal = this.authRefusal(request);
    if (refusal) sendError(response, 401, refusal.message, refusal.code);
    return refusal === undefined;
  }

  private authRefusal(request: IncomingMessage): { message: string; code?: string } | undefined {
    const key = /^Bearer\s+(\S+)/i.exec(request.headers.authorization ?? '')?.[1];
    if (!key) {
      return { message: "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY)." };
    }
    if (this.options.apiKey !== undefined && key !== this.options.apiKey) {
      return { message: `Incorrect API key provided: ${key.slice(0, 3)}***${key.slice(-4)}.`, code: 'invalid_api_key' };
    }
    return undefined;
  }

  /** WebSocket upgrades: only the Realtime API's, checked like any other request. */
  private async upgrade(request: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    const path = (request.url ?? '/').split('?')[0];
    const record: FakeRecordedRequest = {
      endpoint: path === '/v1/realtime' ? 'realtime' : 'unknown',
      method: request.method ?? 'GET',
      path,
      headers: request.headers,
      receivedAt: performance.now(),
    };
    this.requests.push(record);
    const answered = (status: number) => {
      record.status = status;
      record.finishedAt = performance.now();
    };
    const refusal = this.authRefusal(request);
    if (refusal) {
      refuseUpgrade(socket, 401, errorBody(401, refusal.message, refusal.code));
      return answered(401);
    }
    if (record.endpoint !== 'realtime') {
      refuseUpgrade(socket, 404, errorBody(404, `Invalid URL (${record.method} ${path})`));
      return answered(404);
    }
    try {
      answered(await this.realtime.accept(request, socket, head, (status, message) => errorBody(status, message)));
    } catch {
      socket.destroy();
    }
  }

  /** Applies the endpoint's next fault; false when the response is already dealt with. */
  private async injectFault(endpoint: FakeEndpoint, response: ServerResponse): Promise<boolean> {
    const fault = this.faults[endpoint].shift();
    if (fault === undefined) return true;
    const outcome = await applyFault(fault, response, {
      sleep: (ms) => this.sleep(ms),
      sendError: (target, error) => sendError(target, error.status, error.message, error.code, error.retryAfterSeconds, undefined, error.retryAfterMs),
    });
    return outcome === 'proceed' && this.isOpen(response);
  }

  // --- chat -----------------------------------------------------------------

  private async chat(response: ServerResponse, record: FakeRecordedRequest, rawBody: Buffer): Promise<void> {
    const body = parseJson(rawBody);
    record.body = body;
    if (!body) return sendError(response, 400, 'We could not parse the JSON body of your request.');
    if (typeof body.model !== 'string' || !body.model) {
      return sendError(response, 400, 'you must provide a model parameter', undefined, undefined, 'model');
    }
    if (!Array.isArray(body.messages) || body.messages.length === 0) {
      return sendError(response, 400, "Invalid 'messages': empty array. Expected an array with minimum length 1.", undefined, undefined, 'messages');
    }
    const chatRequest: FakeChatRequest = {
      model: body.model,
      messages: body.messages as FakeChatMessage[],
      tools: toolsOf(body.tools),
      stream: body.stream === true,
    };
    const reply = this.chatScript.shift() ?? (await this.respond(chatRequest));
    if ('error' in reply) {
      return sendError(response, reply.error.status, reply.error.message, reply.error.code, reply.error.retryAfterSeconds, undefined, reply.error.retryAfterMs);
    }
    const includeUsage = (body.stream_options as { include_usage?: unknown } | undefined)?.include_usage === true;
    const plan = planCompletion(reply, chatRequest, () => this.randomId());
    if (chatRequest.stream) await this.streamCompletion(response, record, plan, includeUsage);
    else await this.answerCompletion(response, plan);
  }

  private async streamCompletion(response: ServerResponse, record: FakeRecordedRequest, plan: CompletionPlan, includeUsage: boolean): Promise<void> {
    const profile = this.profile;
    response.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache' });
    response.flushHeaders();
    const chunk = (choice: Record<string, unknown> | undefined, usage?: Record<string, unknown>) =>
      `data: ${JSON.stringify({
        id: plan.id,
        object: 'chat.completion.chunk',
        created: plan.created,
        model: plan.model,
        service_tier: 'default',
        system_fingerprint: 'fp_fake',
        choices: choice ? [{ index: 0, ...choice, logprobs: null }] : [],
        ...(includeUsage ? { usage: usage ?? null } : {}),
      })}\n\n`;

    const interval = 1000 / profile.chatTokensPerSecond;
    let due = this.jittered(profile.chatFirstTokenMs, profile);
    const start = performance.now();
    const chunkDueMs: number[] = [];
    record.injected = { endpoint: 'chat', textPieces: plan.textPieces, chunkDueMs };
    const waitTurn = async () => {
      chunkDueMs.push(due);
      await this.sleep(start + due - performance.now());
      due += this.jittered(interval, profile);
      return this.isOpen(response);
    };

    if (!(await waitTurn())) return;
    response.write(chunk({ delta: { role: 'assistant', content: plan.text ? '' : null, refusal: null }, finish_reason: null }));
    let sentChars = 0;
    for (const piece of plan.textPieces) {
      if (plan.stopAfterChars !== undefined && sentChars >= plan.stopAfterChars) break;
      if (!(await waitTurn())) return;
      response.write(chunk({ delta: { content: piece }, finish_reason: null }));
      sentChars += piece.length;
    }
    if (plan.stop === 'cut') {
      // Destroying only once the bytes are flushed makes the client see the
      // text first and the broken connection after, as with a real drop.
      response.write('', () => response.socket?.destroy());
      return;
    }
    if (plan.stop === 'stall') return;
    for (const [index, toolCall] of plan.toolCalls.entries()) {
      if (!(await waitTurn())) return;
      response.write(chunk({
        delta: { tool_calls: [{ index, id: toolCall.id, type: 'function', function: { name: toolCall.name, arguments: '' } }] },
        finish_reason: null,
      }));
      for (const piece of tokenPieces(toolCall.arguments)) {
        if (!(await waitTurn())) return;
        response.write(chunk({ delta: { tool_calls: [{ index, function: { arguments: piece } }] }, finish_reason: null }));
      }
    }
    response.write(chunk({ delta: {}, finish_reason: plan.finishReason }));
    if (includeUsage) response.write(chunk(undefined, usageOf(plan)));
    response.end('data: [DONE]\n\n');
  }

  private async answerCompletion(response: ServerResponse, plan: CompletionPlan): Promise<void> {
    const profile = this.profile;
    const pieces = plan.textPieces.length + plan.toolCalls.reduce((sum, call) => sum + tokenPieces(call.arguments).length, 0);
    await this.sleep(this.jittered(profile.chatFirstTokenMs + (pieces * 1000) / profile.chatTokensPerSecond, profile));
    if (!this.isOpen(response)) return;
    if (plan.stop === 'cut') return void response.socket?.destroy();
    if (plan.stop === 'stall') return;
    sendJson(response, 200, {
      id: plan.id,
      object: 'chat.completion',
      created: plan.created,
      model: plan.model,
      choices: [{
        index: 0,
        message: {
          role: 'assistant',
          content: plan.text || null,
          refusal: null,
          annotations: [],
          ...(plan.toolCalls.length ? {
            tool_calls: plan.toolCalls.map((call) => ({
              id: call.id, type: 'function', function: { name: call.name, arguments: call.arguments },
            })),
          } : {}),
        },
        logprobs: null,
        finish_reason: plan.finishReason,
      }],
      usage: usageOf(plan),
      service_tier: 'default',
      system_fingerprint: 'fp_fake',
    });
  }

  // --- speech ---------------------------------------------------------------

  private async speech(response: ServerResponse, record: FakeRecordedRequest, rawBody: Buffer): Promise<void> {
    const body = parseJson(rawBody);
    record.body = body;
    if (!body) return sendError(response, 400, 'We could not parse the JSON body of your request.');
    const invalid = validateSpeech(body);
    if (invalid) return sendError(response, 400, invalid.message, invalid.code, undefined, invalid.param);
    const format = (body.response_format ?? 'mp3') as SpeechFormat;
    const speed = (body.speed ?? 1) as number;
    const { bytes, seconds } = this.speechAudio(format, body.input as string, speed, body.voice as string);

    const profile = this.profile;
    // About 100 ms of audio per chunk, as a streaming TTS server flushes it.
    const chunkSize = Math.max(512, Math.round((bytes.length / Math.max(seconds, 0.001)) * 0.1));
    const chunkIntervalMs = (chunkSize / bytes.length) * seconds * 1000 / profile.ttsRealtimeFactor;
    const start = performance.now();
    const firstByteMs = this.jittered(profile.ttsFirstByteMs, profile);
    record.injected = {
      endpoint: 'speech',
      firstByteMs,
      lastByteMs: firstByteMs + (Math.ceil(bytes.length / chunkSize) - 1) * chunkIntervalMs,
      audioSeconds: seconds,
      bytes: bytes.length,
    };
    await this.sleep(firstByteMs);
    if (!this.isOpen(response)) return;
    // Headers go out with the first audio, as OpenAI's do, so "answered" means "audio is flowing".
    response.writeHead(200, { 'content-type': speechContentTypes[format] });
    const firstByteAt = performance.now() - start;
    for (let offset = 0, index = 0; offset < bytes.length; offset += chunkSize, index++) {
      await this.sleep(start + firstByteAt + index * chunkIntervalMs - performance.now());
      if (!this.isOpen(response)) return;
      response.write(bytes.subarray(offset, offset + chunkSize));
    }
    response.end();
  }

  private speechAudio(format: SpeechFormat, text: string, speed: number, voice: string): { bytes: Buffer; seconds: number } {
    if (format === 'pcm' || format === 'wav') {
      const pcm = this.options.reuseSpeechSignal ? this.reusedPcm(text, speed, voice) : speechLikePcm(text, speed, voice);
      const seconds = pcm.length / 2 / pcmSampleRate;
      return { bytes: format === 'wav' ? Buffer.concat([wavHeader(pcm.length), pcm]) : pcm, seconds };
    }
    const fixture = this.fixtures[format];
    return { bytes: fixture.bytes, seconds: fixture.seconds };
  }

  /** As long as `speechLikePcm` would make it, cut from a stretch rendered once (grown when a longer text needs it). */
  private reusedPcm(text: string, speed: number, voice: string): Buffer {
    const bytes = 2 * Math.max(1, Math.round(text.length * (secondsPerCharacter / speed) * pcmSampleRate));
    const key = `${voice}/${speed}`;
    let signal = this.speechSignals.get(key);
    if (!signal || signal.length < bytes) {
      const sample = 'Thank you for calling, how can I help you today? ';
      signal = speechLikePcm(sample.repeat(Math.ceil((text.length * 2) / sample.length)), speed, voice);
      this.speechSignals.set(key, signal);
    }
    return signal.subarray(0, bytes);
  }

  // --- transcription --------------------------------------------------------

  private async transcription(request: IncomingMessage, response: ServerResponse, record: FakeRecordedRequest, body: Buffer): Promise<void> {
    const form = parseMultipart(body, request.headers['content-type'] ?? '');
    if (!form) return sendError(response, 400, 'Could not parse multipart form');
    record.fields = form.fields;
    const file = form.files.file;
    if (file) record.file = { filename: file.filename, contentType: file.contentType, size: file.data.length };
    if (!file) return sendError(response, 400, "Missing required parameter: 'file'.", 'missing_required_parameter', undefined, 'file');
    const model = form.fields.model;
    if (!model) return sendError(response, 400, 'you must provide a model parameter', undefined, undefined, 'model');
    const text = await this.transcribe({
      model,
      language: form.fields.language,
      filename: file.filename,
      contentType: file.contentType,
      audio: new Uint8Array(file.data),
    });
    const seconds = wavDurationSeconds(file.data);
    // whisper-1 bills by duration, the gpt-4o models by tokens; the usage says which.
    const usage = model === 'whisper-1'
      ? (seconds === undefined ? undefined : { type: 'duration', seconds: Math.ceil(seconds) })
      : { type: 'tokens', input_tokens: Math.ceil(file.data.length / 1000), output_tokens: estimateTokens(text), total_tokens: Math.ceil(file.data.length / 1000) + estimateTokens(text) };
    sendJson(response, 200, usage ? { text, usage } : { text });
  }

  // --- embeddings -----------------------------------------------------------

  /** Deterministic vectors (`ngramEmbedding`): similar texts get similar vectors, as with a real model. */
  private embeddings(response: ServerResponse, record: FakeRecordedRequest, rawBody: Buffer): void {
    const body = parseJson(rawBody);
    record.body = body;
    if (!body) return sendError(response, 400, 'We could not parse the JSON body of your request.');
    if (typeof body.model !== 'string' || !body.model) return sendError(response, 400, 'you must provide a model parameter', undefined, undefined, 'model');
    const inputs = typeof body.input === 'string' ? [body.input] : body.input;
    if (!Array.isArray(inputs) || inputs.length === 0 || inputs.some((input) => typeof input !== 'string' || input === '')) {
      return sendError(response, 400, "'input' : input must be a non-empty string or an array of non-empty strings", undefined, undefined, 'input');
    }
    const dimensions = typeof body.dimensions === 'number' ? body.dimensions : undefined;
    const base64 = body.encoding_format === 'base64';
    const data = (inputs as string[]).map((input, index) => {
      const vector = ngramEmbedding(input, dimensions);
      return { object: 'embedding', index, embedding: base64 ? Buffer.from(vector.buffer, vector.byteOffset, vector.byteLength).toString('base64') : Array.from(vector) };
    });
    const tokens = (inputs as string[]).reduce((sum, input) => sum + estimateTokens(input), 0);
    sendJson(response, 200, { object: 'list', data, model: body.model, usage: { prompt_tokens: tokens, total_tokens: tokens } });
  }

  // --- timing ---------------------------------------------------------------

  /** Resolves after `ms`; no timer at all for 0, and at once when the fake closes. */
  private async sleep(ms: number): Promise<void> {
    if (!(ms > 0) || this.closed) return;
    if (!Number.isFinite(ms)) ms = 2 ** 31 - 1;
    await new Promise<void>((resolve) => {
      const sleep = {
        timer: setTimeout(() => {
          this.sleeps.delete(sleep);
          resolve();
        }, ms),
        resolve,
      };
      this.sleeps.add(sleep);
    });
  }

  private jittered(ms: number, profile: FakeLatencyProfile): number {
    if (!(ms > 0) || !Number.isFinite(ms) || profile.jitter === 0) return ms;
    return ms * (1 + profile.jitter * (2 * this.random() - 1));
  }

  private isOpen(response: ServerResponse): boolean {
    return !this.closed && !response.destroyed;
  }

  private randomId(): string {
    let id = '';
    for (let index = 0; index < 24; index++) id += 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789'[Math.floor(this.random() * 62)];
    return id;
  }
}

function routeOf(method: string, path: string): FakeEndpoint | 'models' | 'unknown' {
  if (method === 'POST' && path === '/v1/chat/completions') return 'chat';
  if (method === 'POST' && path === '/v1/audio/speech') return 'speech';
  if (method === 'POST' && path === '/v1/audio/transcriptions') return 'transcription';
  if (method === 'POST' && path === '/v1/embeddings') return 'embeddings';
  if (method === 'GET' && path === '/v1/models') return 'models';
  return 'unknown';
}

const defaultTranscriber: FakeTranscriber = () => 'hello';

// ---------------------------------------------------------------------------
// Chat completion planning

interface CompletionPlan {
  id: string;
  created: number;
  model: string;
  text: string;
  textPieces: string[];
  toolCalls: { id: string; name: string; arguments: string }[];
  finishReason: 'stop' | 'tool_calls';
  /** Where a faulty stream stops after `stopAfterChars` characters of text. */
  stop?: 'cut' | 'stall';
  stopAfterChars?: number;
  promptTokens: number;
}

function planCompletion(reply: Exclude<FakeChatReply, { error: FakeErrorReply }>, request: FakeChatRequest, randomId: () => string): CompletionPlan {
  const text = reply.text ?? '';
  const toolCalls = 'toolCalls' in reply && reply.toolCalls
    ? reply.toolCalls.map((call) => ({ id: `call_${randomId()}`, name: call.name, arguments: JSON.stringify(call.arguments) }))
    : [];
  const stop = 'cutAfterChars' in reply ? 'cut' : 'stallAfterChars' in reply ? 'stall' : undefined;
  return {
    id: `chatcmpl-${randomId()}`,
    created: Math.floor(Date.now() / 1000),
    model: request.model,
    text,
    textPieces: tokenPieces(text),
    toolCalls,
    finishReason: toolCalls.length ? 'tool_calls' : 'stop',
    stop,
    stopAfterChars: 'cutAfterChars' in reply ? reply.cutAfterChars : 'stallAfterChars' in reply ? reply.stallAfterChars : undefined,
    promptTokens: estimateTokens(JSON.stringify(request.messages)) + estimateTokens(JSON.stringify(request.tools)),
  };
}

/** Splits text into token-sized pieces (at most four visible characters) that join back exactly. */
function tokenPieces(text: string): string[] {
  return text.match(/\s*\S{1,4}|\s+/g) ?? [];
}

function estimateTokens(text: string): number {
  return Math.ceil(text.length / 4);
}

function usageOf(plan: CompletionPlan): Record<string, unknown> {
  const completionTokens = plan.textPieces.length
    + plan.toolCalls.reduce((sum, call) => sum + 1 + tokenPieces(call.arguments).length, 0);
  return {
    prompt_tokens: plan.promptTokens,
    completion_tokens: completionTokens,
    total_tokens: plan.promptTokens + completionTokens,
    prompt_tokens_details: { cached_tokens: 0, audio_tokens: 0 },
    completion_tokens_details: { reasoning_tokens: 0, audio_tokens: 0, accepted_prediction_tokens: 0, rejected_prediction_tokens: 0 },
  };
}

function toolsOf(tools: unknown): FakeChatTool[] {
  if (!Array.isArray(tools)) return [];
  return tools.flatMap((tool: { function?: FakeChatTool }) => (tool?.function?.name ? [tool.function] : []));
}

// ---------------------------------------------------------------------------
// Speech

function validateSpeech(body: Record<string, unknown>): { message: string; param: string; code: string } | undefined {
  const { model, input, voice } = body;
  const format = body.response_format ?? 'mp3';
  const speed = body.speed ?? 1;
  if (typeof model !== 'string' || !model) return { message: "Missing required parameter: 'model'.", param: 'model', code: 'missing_required_parameter' };
  if (typeof input !== 'string') return { message: "Missing required parameter: 'input'.", param: 'input', code: 'missing_required_parameter' };
  if (input.length === 0) {
    return { message: "Invalid 'input': string too short. Expected a string with minimum length 1, but got an empty string instead.", param: 'input', code: 'string_below_min_length' };
  }
  if (input.length > 4096) {
    return { message: `Invalid 'input': string too long. Expected a string with maximum length 4096, but got a string with length ${input.length} instead.`, param: 'input', code: 'string_above_max_length' };
  }
  if (typeof voice !== 'string' || !(speechVoices as readonly string[]).includes(voice)) {
    return { message: `Invalid value: '${String(voice)}'. Supported values are: ${speechVoices.map((name) => `'${name}'`).join(', ')}.`, param: 'voice', code: 'invalid_value' };
  }
  if (typeof format !== 'string' || !(speechFormats as readonly string[]).includes(format)) {
    return { message: `Invalid value: '${String(format)}'. Supported values are: ${speechFormats.map((name) => `'${name}'`).join(', ')}.`, param: 'response_format', code: 'invalid_value' };
  }
  if (typeof speed !== 'number' || !(speed >= 0.25 && speed <= 4)) {
    return { message: `Invalid 'speed': expected a number between 0.25 and 4.0, got ${String(speed)}.`, param: 'speed', code: 'invalid_value' };
  }
  return undefined;
}

/** OpenAI's `pcm`: 24 kHz, 16-bit little-endian, mono. */
const pcmSampleRate = 24_000;
/** How long one character of input lasts at speed 1; close to OpenAI's voices. */
const secondsPerCharacter = 0.065;

/**
 * A voiced, speech-shaped signal rather than a pure tone or silence, so that
 * level meters, voice-activity detection and codecs downstream behave as they
 * would with speech: a voice-dependent pitch with a few harmonics, pulsed at
 * syllable rate, near-silent where the text has spaces or punctuation.
 */
function speechLikePcm(text: string, speed: number, voice: string, sampleRate = pcmSampleRate): Buffer {
  const characterSeconds = secondsPerCharacter / speed;
  const sampleCount = Math.max(1, Math.round(text.length * characterSeconds * sampleRate));
  const pcm = Buffer.alloc(sampleCount * 2);
  const pitch = 100 + (hash(voice) % 120);
  const syllableHz = 4.5 * speed;
  const fade = 0.01 * sampleRate;
  let phase = 0;
  let level = 0;
  for (let index = 0; index < sampleCount; index++) {
    const time = index / sampleRate;
    const character = text[Math.min(text.length - 1, Math.floor(time / characterSeconds))] ?? ' ';
    const target = /[\p{L}\p{N}]/u.test(character) ? 1 : 0.03;
    // A ~20 ms glide between voiced and pause levels avoids clicks.
    level += (target - level) * 0.002 * (pcmSampleRate / sampleRate);
    phase += (2 * Math.PI * pitch * (1 + 0.06 * Math.sin(2 * Math.PI * 0.8 * time))) / sampleRate;
    const syllable = 0.35 + 0.65 * Math.sin(Math.PI * ((time * syllableHz) % 1)) ** 2;
    let sample = 0;
    for (let harmonic = 1; harmonic <= 5; harmonic++) sample += Math.sin(harmonic * phase) / harmonic;
    const edge = Math.min(1, index / fade, (sampleCount - 1 - index) / fade);
    const value = Math.round((sample / 2.3) * level * syllable * edge * 0.4 * 32767);
    pcm.writeInt16LE(Math.max(-32768, Math.min(32767, value)), index * 2);
  }
  return pcm;
}

function wavHeader(dataBytes: number): Buffer {
  const header = Buffer.alloc(44);
  header.write('RIFF', 0, 'ascii');
  header.writeUInt32LE(36 + dataBytes, 4);
  header.write('WAVE', 8, 'ascii');
  header.write('fmt ', 12, 'ascii');
  header.writeUInt32LE(16, 16);
  header.writeUInt16LE(1, 20); // PCM
  header.writeUInt16LE(1, 22); // mono
  header.writeUInt32LE(pcmSampleRate, 24);
  header.writeUInt32LE(pcmSampleRate * 2, 28);
  header.writeUInt16LE(2, 32);
  header.writeUInt16LE(16, 34);
  header.write('data', 36, 'ascii');
  header.writeUInt32LE(dataBytes, 40);
  return header;
}

/** Duration of a canonical PCM WAV file, or undefined for anything else. */
function wavDurationSeconds(bytes: Buffer): number | undefined {
  if (bytes.length < 44 || bytes.toString('ascii', 0, 4) !== 'RIFF' || bytes.toString('ascii', 8, 12) !== 'WAVE') return undefined;
  const byteRate = bytes.readUInt32LE(28);
  return byteRate > 0 ? (bytes.length - 44) / byteRate : undefined;
}

function hash(text: string): number {
  let value = 2166136261;
  for (const character of text) value = Math.imul(value ^ character.charCodeAt(0), 16777619) >>> 0;
  return value;
}

/** Small seeded generator, so jitter and ids repeat from run to run. */
function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let value = state;
    value = Math.imul(value ^ (value >>> 15), value | 1);
    value ^= value + Math.imul(value ^ (value >>> 7), value | 61);
    return ((value ^ (value >>> 14)) >>> 0) / 4294967296;
  };
}

type EncodedFormat = Exclude<SpeechFormat, 'pcm' | 'wav'>;
type AudioFixtures = Record<EncodedFormat, { bytes: Buffer; seconds: number }>;

/** Real encoded speech, made by scripts/make-audio-fixtures.sh; its length does not follow the text. */
async function loadAudioFixtures(): Promise<AudioFixtures> {
  const directory = new URL('../../test/fixtures/audio/', import.meta.url);
  const manifest = JSON.parse(await readFile(new URL('manifest.json', directory), 'utf8')) as {
    durationSeconds: Record<EncodedFormat, number>;
  };
  const load = async (format: EncodedFormat) => ({
    bytes: await readFile(new URL(`speech.${format}`, directory)),
    seconds: manifest.durationSeconds[format],
  });
  const [mp3, opus, aac, flac] = await Promise.all((['mp3', 'opus', 'aac', 'flac'] as const).map(load));
  return { mp3, opus, aac, flac };
}

// ---------------------------------------------------------------------------
// HTTP plumbing

async function readBody(request: IncomingMessage): Promise<Buffer | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > maxBodyBytes) return undefined;
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

function parseJson(body: Buffer): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(body.toString('utf8'));
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

function sendJson(response: ServerResponse, status: number, value: unknown, headers: Record<string, string> = {}): void {
  const body = JSON.stringify(value);
  response.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), ...headers });
  response.end(body);
}

const errorTypes: Record<number, string> = {
  401: 'invalid_request_error',
  403: 'invalid_request_error',
  404: 'invalid_request_error',
  429: 'requests',
  500: 'server_error',
  502: 'server_error',
  503: 'server_error',
};

/** OpenAI's error body: `{ error: { message, type, param, code } }`. */
function sendError(response: ServerResponse, status: number, message?: string, code?: string, retryAfterSeconds?: number, param?: string, retryAfterMs?: number): void {
  const headers: Record<string, string> = {};
  if (retryAfterSeconds !== undefined) headers['retry-after'] = String(retryAfterSeconds);
  if (retryAfterMs !== undefined) headers['retry-after-ms'] = String(retryAfterMs);
  sendJson(response, status, errorBody(status, message, code, param), headers);
}

function errorBody(status: number, message?: string, code?: string, param?: string): Record<string, unknown> {
  return {
    error: {
      message: message ?? defaultErrorMessage(status),
      type: errorTypes[status] ?? (status >= 500 ? 'server_error' : 'invalid_request_error'),
      param: param ?? null,
      code: code ?? (status === 429 ? 'rate_limit_exceeded' : null),
    },
  };
}

function defaultErrorMessage(status: number): string {
  if (status === 429) return 'Rate limit reached. Please try again later.';
  if (status >= 500) return 'The server had an error while processing your request. Sorry about that!';
  return `Request failed with status ${status}.`;
}

function sendModels(response: ServerResponse): void {
  const models = ['gpt-4o-mini', 'gpt-4.1-mini', 'tts-1', 'tts-1-hd', 'gpt-4o-mini-tts', 'whisper-1', 'gpt-4o-mini-transcribe', 'gpt-4o-transcribe'];
  sendJson(response, 200, {
    object: 'list',
    data: models.map((id) => ({ id, object: 'model', created: 1_700_000_000, owned_by: 'system' })),
  });
}

interface MultipartForm {
  fields: Record<string, string>;
  files: Record<string, { filename: string; contentType?: string; data: Buffer }>;
}

/** Just enough of multipart/form-data for the SDK's uploads: named fields and files. */
function parseMultipart(body: Buffer, contentType: string): MultipartForm | undefined {
  const match = /boundary=(?:"([^"]+)"|([^;\s]+))/i.exec(contentType);
  if (!/^multipart\/form-data/i.test(contentType) || !match) return undefined;
  const delimiter = Buffer.from(`--${match[1] ?? match[2]}`);
  const form: MultipartForm = { fields: {}, files: {} };
  let position = body.indexOf(delimiter);
  while (position !== -1) {
    const start = position + delimiter.length;
    if (body.toString('latin1', start, start + 2) === '--') return form;
    const next = body.indexOf(delimiter, start);
    if (next === -1) return undefined;
    // Each part sits between the CRLF after one delimiter and the CRLF before the next.
    const part = body.subarray(start + 2, next - 2);
    const headerEnd = part.indexOf('\r\n\r\n');
    if (headerEnd === -1) return undefined;
    const headers = part.toString('utf8', 0, headerEnd);
    const data = part.subarray(headerEnd + 4);
    const name = /[;\s]name="([^"]*)"/i.exec(headers)?.[1];
    const filename = /filename="([^"]*)"/i.exec(headers)?.[1];
    const partType = /content-type:\s*([^\r\n]+)/i.exec(headers)?.[1];
    if (name !== undefined && filename !== undefined) form.files[name] = { filename, contentType: partType, data };
    else if (name !== undefined) form.fields[name] = data.toString('utf8');
    position = next;
  }
  return form;
}

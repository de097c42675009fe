import { randomBytes } from 'node:crypto';
import WebSocket from 'ws';
import { mulawFrameBytes, parseServerMessage } from '../twilio/media-stream-messages.js';
import { signTwilioRequest } from './twilio-simulator.js';

// Plays Twilio's side of a bidirectional Media Stream (`<Connect><Stream>`)
// against a running server: it opens the WebSocket as Twilio does, streams
// the caller's microphone as 20 ms μ-law frames, and "plays" what the server
// sends at real time, echoing marks and honouring `clear` the way Twilio's
// documentation describes. Tests and benchmarks read the timeline it keeps.

/** What the simulated Twilio saw the server do, `atMs` from the socket opening. */
export type StreamTimelineEvent =
  | { type: 'audio-received'; bytes: number; atMs: number; /** When this audio starts playing to the caller. */ playsAtMs: number }
  | { type: 'mark-received'; name: string; atMs: number }
  | { type: 'mark-echoed'; name: string; /** Echoed because a `clear` dropped it, not because it played. */ cleared: boolean; atMs: number }
  | { type: 'playback-cleared'; droppedMs: number; atMs: number }
  | { type: 'message-rejected'; error: string; atMs: number }
  | { type: 'stream-closed'; code: number; reason: string; atMs: number };

export interface ConnectMediaStreamOptions {
  /** Where the socket really connects, e.g. `ws://127.0.0.1:8000/twilio/stream`. */
  url: string;
  /** The `wss://` URL the server believes Twilio connected to; the signature is computed over it. Defaults to `url`. */
  signatureUrl?: string;
  authToken: string;
  callSid?: string;
  accountSid?: string;
  streamSid?: string;
  /** Sent as `start.customParameters`, as the `<Parameter>`s of a `<Stream>` are. */
  parameters?: Record<string, string>;
  headers?: Record<string, string>;
  /**
   * What the line carries while the caller says nothing. Twilio streams
   * audio all call long, silence included, which is how a server measures
   * pauses: `'silence'` (the default) sends μ-law silence every 20 ms, a
   * byte array loops that audio (line noise, say), `'none'` sends only what
   * `say` and `silence` give it.
   */
  idleAudio?: 'silence' | 'none' | Uint8Array;
  /** Defaults to 5 s. */
  connectTimeoutMs?: number;
}

/** A simulated caller on an open Media Stream. */
export interface MediaStreamCall {
  readonly callSid: string;
  readonly accountSid: string;
  readonly streamSid: string;
  /** Everything the server did, in order. */
  readonly timeline: readonly StreamTimelineEvent[];
  /** Audio the server sent, in ms (8 bytes a millisecond). */
  readonly receivedAudioMs: number;
  /** Of that, what has played to the caller by now (not dropped by a `clear`, not still buffered). */
  readonly playedAudioMs: number;
  /** Marks echoed because their audio finished playing. */
  readonly heardMarks: readonly string[];
  /** How many `clear` messages the server sent. */
  readonly clears: number;
  /** Settles when the socket closes, whoever closes it. */
  readonly closed: Promise<{ code: number; reason: string }>;
  /**
   * Speaks 8 kHz μ-law into the call as 20 ms media frames (the last one
   * padded with silence). In real time by default, resolving when the last
   * frame has gone; `realtime: false` sends them all at once.
   */
  say(mulaw: Uint8Array, options?: { realtime?: boolean }): Promise<void>;
  /** Says nothing for `ms`: silence frames, paced like `say`. */
  silence(ms: number, options?: { realtime?: boolean }): Promise<void>;
  pressDigit(digit: string): void;
  /** Hangs up: Twilio sends `stop`, then closes the socket. */
  stop(): Promise<{ code: number; reason: string }>;
  /** The μ-law the caller has heard so far, in order, without what a `clear` dropped. */
  heardAudio(): Uint8Array;
  /** Resolves with the first timeline event, past or future, of this type or matching this test. */
  waitFor(match: StreamTimelineEvent['type'] | ((event: StreamTimelineEvent) => boolean), timeoutMs?: number): Promise<StreamTimelineEvent>;
}

/** The server refused the WebSocket upgrade (a wrong signature, say). */
export class StreamRejectedError extends Error {
  constructor(readonly status: number) {
    super(`the server answered the WebSocket upgrade with HTTP ${status}`);
  }
}

const mulawSilence = 0xff;
const frameMs = 20;

const sid = (prefix: string) => prefix + randomBytes(16).toString('hex');

/** Opens a Media Stream to a server the way Twilio does and sends `connected` and `start`. */
export async function connectMediaStream(options: ConnectMediaStreamOptions): Promise<MediaStreamCall> {
  // Twilio signs the upgrade request like a webhook with no form parameters:
  // HMAC-SHA1 over the exact wss:// URL it connects to.
  const signature = signTwilioRequest(options.authToken, options.signatureUrl ?? options.url, {});
  const socket = new WebSocket(options.url, { headers: { ...options.headers, 'X-Twilio-Signature': signature }, handshakeTimeout: options.connectTimeoutMs ?? 5000 });
  // Errors after a failed upgrade or during the call end up as a close; this keeps them from crashing the process.
  socket.on('error', () => {});
  await new Promise<void>((resolve, reject) => {
    socket.once('open', () => resolve());
    socket.once('unexpected-response', (request, response) => {
      reject(new StreamRejectedError(response.statusCode ?? 0));
      request.destroy();
    });
    socket.once('error', reject);
  });
  return new SimulatedStream(socket, options);
}

interface Segment {
  bytes: Uint8Array;
  startAt: number;
}

class SimulatedStream implements MediaStreamCall {
  readonly callSid: string;
  readonly accountSid: string;
  readonly streamSid: string;
  readonly timeline: StreamTimelineEvent[] = [];
  readonly heardMarks: string[] = [];
  readonly closed: Promise<{ code: number; reason: string }>;
  clears = 0;
  private readonly openedAt = performance.now();
  private sequence = 0;
  private chunk = 0;
  private receivedBytes = 0;
  private droppedMs = 0;
  /** When everything received so far will have played (performance.now() time). */
  private playEndAt = 0;
  private segments: Segment[] = [];
  private pendingMarks: Array<{ name: string; at: number }> = [];
  private markTimer: ReturnType<typeof setTimeout> | undefined;
  /** Frames waiting for the microphone clock, each with what to do once sent. */
  private microphone: Array<{ frame: Uint8Array; sent?: () => void }> = [];
  private microphoneTimer: ReturnType<typeof setTimeout> | undefined;
  private nextFrameAt = 0;
  private idleOffset = 0;
  private readonly idleAudio: 'silence' | 'none' | Uint8Array;
  private readonly waiters = new Set<(event: StreamTimelineEvent) => void>();
  private isClosed = false;

  constructor(
    private readonly socket: WebSocket,
    options: ConnectMediaStreamOptions,
  ) {
    this.callSid = options.callSid ?? sid('CA');
    this.accountSid = options.accountSid ?? sid('AC');
    this.streamSid = options.streamSid ?? sid('MZ');
    this.idleAudio = options.idleAudio ?? 'silence';
    this.closed = new Promise((resolve) => {
      socket.once('close', (code, reason) => {
        this.isClosed = true;
        this.stopTimers();
        this.record({ type: 'stream-closed', code, reason: reason.toString(), atMs: this.elapsed() });
        resolve({ code, reason: reason.toString() });
      });
    });
    socket.on('message', (data, isBinary) => this.receive(isBinary ? undefined : data.toString()));

    this.send({ event: 'connected', protocol: 'Call', version: '1.0.0' });
    this.send({
      event: 'start',
      sequenceNumber: String(++this.sequence),
      start: {
        accountSid: this.accountSid,
        streamSid: this.streamSid,
        callSid: this.callSid,
        tracks: ['inbound'],
        customParameters: options.parameters ?? {},
        mediaFormat: { encoding: 'audio/x-mulaw', sampleRate: 8000, channels: 1 },
      },
      streamSid: this.streamSid,
    });
    this.nextFrameAt = performance.now();
    this.tickMicrophone();
  }

  get receivedAudioMs(): number {
    return this.receivedBytes / 8;
  }

  get playedAudioMs(): number {
    return this.receivedAudioMs - this.droppedMs - Math.max(0, this.playEndAt - performance.now());
  }

  say(mulaw: Uint8Array, options: { realtime?: boolean } = {}): Promise<void> {
    const frames: Uint8Array[] = [];
    for (let offset = 0; offset < mulaw.length; offset += mulawFrameBytes) {
      const frame = new Uint8Array(mulawFrameBytes).fill(mulawSilence);
      frame.set(mulaw.subarray(offset, offset + mulawFrameBytes));
      frames.push(frame);
    }
    if (frames.length === 0 || this.isClosed) return Promise.resolve();
    if (options.realtime === false) {
      for (const queued of this.microphone.splice(0)) {
        this.sendMedia(queued.frame);
        queued.sent?.();
      }
      for (const frame of frames) this.sendMedia(frame);
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      frames.forEach((frame, index) => this.microphone.push({ frame, sent: index === frames.length - 1 ? resolve : undefined }));
    });
  }

  silence(ms: number, options: { realtime?: boolean } = {}): Promise<void> {
    return this.say(new Uint8Array(Math.round(ms / frameMs) * mulawFrameBytes).fill(mulawSilence), options);
  }

  pressDigit(digit: string): void {
    this.send({ event: 'dtmf', streamSid: this.streamSid, sequenceNumber: String(++this.sequence), dtmf: { track: 'inbound_track', digit } });
  }

  async stop(): Promise<{ code: number; reason: string }> {
    if (!this.isClosed) {
      this.stopTimers();
      this.send({ event: 'stop', sequenceNumber: String(++this.sequence), stop: { accountSid: this.accountSid, callSid: this.callSid }, streamSid: this.streamSid });
      this.socket.close(1000, 'call ended');
    }
    return this.closed;
  }

  heardAudio(): Uint8Array {
    const now = performance.now();
    const parts = this.segments.map(({ bytes, startAt }) => bytes.subarray(0, Math.max(0, Math.min(bytes.length, Math.floor((now - startAt) * 8)))));
    const out = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0));
    let offset = 0;
    for (const part of parts) {
      out.set(part, offset);
      offset += part.length;
    }
    return out;
  }

  waitFor(match: StreamTimelineEvent['type'] | ((event: StreamTimelineEvent) => boolean), timeoutMs = 5000): Promise<StreamTimelineEvent> {
    const test = typeof match === 'string' ? (event: StreamTimelineEvent) => event.type === match : match;
    const past = this.timeline.find(test);
    if (past) return Promise.resolve(past);
    return new Promise((resolve, reject) => {
      const waiter = (event: StreamTimelineEvent) => {
        if (!test(event)) return;
        this.waiters.delete(waiter);
        clearTimeout(timer);
        resolve(event);
      };
      const timer = setTimeout(() => {
        this.waiters.delete(waiter);
        reject(new Error(`no ${typeof match === 'string' ? match : 'matching'} event within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiters.add(waiter);
    });
  }

  /** Sends the caller's next frame every 20 ms, catching up in a burst after a stall as Twilio's media would arrive. */
  private tickMicrophone(): void {
    const now = performance.now();
    while (this.nextFrameAt <= now && !this.isClosed) {
      const queued = this.microphone.shift();
      const frame = queued?.frame ?? this.idleFrame();
      if (frame) this.sendMedia(frame);
      queued?.sent?.();
      this.nextFrameAt += frameMs;
    }
    if (!this.isClosed) this.microphoneTimer = setTimeout(() => this.tickMicrophone(), Math.max(0, this.nextFrameAt - performance.now()));
  }

  private idleFrame(): Uint8Array | undefined {
    if (this.idleAudio === 'none') return undefined;
    const frame = new Uint8Array(mulawFrameBytes).fill(mulawSilence);
    if (this.idleAudio === 'silence' || this.idleAudio.length === 0) return frame;
    for (let i = 0; i < frame.length; i++) frame[i] = this.idleAudio[(this.idleOffset + i) % this.idleAudio.length];
    this.idleOffset = (this.idleOffset + frame.length) % this.idleAudio.length;
    return frame;
  }

  private sendMedia(frame: Uint8Array): void {
    this.chunk++;
    if (this.socket.readyState !== WebSocket.OPEN) return;
    // Fifty a second per call, written out rather than through JSON.stringify: the same text, as
    // every value but the stream sid is digits or base64, which JSON never escapes.
    const payload = Buffer.from(frame.buffer, frame.byteOffset, frame.byteLength).toString('base64');
    this.socket.send(
      `{"event":"media","sequenceNumber":"${++this.sequence}","media":{"track":"inbound","chunk":"${this.chunk}","timestamp":"${(this.chunk - 1) * frameMs}","payload":"${payload}"},"streamSid":${JSON.stringify(this.streamSid)}}`,
    );
  }

  private receive(text: string | undefined): void {
    const atMs = this.elapsed();
    const parsed = text === undefined ? { ok: false as const, error: 'binary frame; Twilio takes JSON text' } : parseServerMessage(text);
    if (!parsed.ok) return this.record({ type: 'message-rejected', error: parsed.error, atMs });
    const message = parsed.event;
    if (message.streamSid !== this.streamSid) return this.record({ type: 'message-rejected', error: `unknown streamSid ${message.streamSid}`, atMs });
    const now = performance.now();
    switch (message.type) {
      case 'audio-queued': {
        // Twilio queues audio behind whatever is still playing.
        const startAt = Math.max(now, this.playEndAt);
        this.playEndAt = startAt + message.audio.length / 8;
        this.receivedBytes += message.audio.length;
        this.segments.push({ bytes: message.audio, startAt });
        return this.record({ type: 'audio-received', bytes: message.audio.length, atMs, playsAtMs: startAt - this.openedAt });
      }
      case 'mark-queued':
        this.record({ type: 'mark-received', name: message.name, atMs });
        // "Twilio sends back a mark event with a matching name when the audio ends (or if there is no audio buffered)."
        this.pendingMarks.push({ name: message.name, at: Math.max(now, this.playEndAt) });
        return this.scheduleMarks();
      case 'playback-cleared': {
        // "This empties all buffered audio and causes any mark messages to be sent back."
        const dropped = Math.max(0, this.playEndAt - now);
        this.droppedMs += dropped;
        this.playEndAt = now;
        this.segments = this.segments
          .map(({ bytes, startAt }) => ({ bytes: bytes.subarray(0, Math.max(0, Math.min(bytes.length, Math.floor((now - startAt) * 8)))), startAt }))
          .filter((segment) => segment.bytes.length > 0);
        this.clears++;
        this.record({ type: 'playback-cleared', droppedMs: dropped, atMs });
        for (const mark of this.pendingMarks.splice(0)) this.echoMark(mark.name, true);
        return this.scheduleMarks();
      }
    }
  }

  private scheduleMarks(): void {
    if (this.markTimer !== undefined) clearTimeout(this.markTimer);
    this.markTimer = undefined;
    const next = this.pendingMarks[0];
    if (!next || this.isClosed) return;
    this.markTimer = setTimeout(() => {
      const now = performance.now();
      while (this.pendingMarks.length > 0 && this.pendingMarks[0].at <= now + 0.5) this.echoMark(this.pendingMarks.shift()!.name, false);
      this.scheduleMarks();
    }, Math.max(0, next.at - performance.now()));
  }

  private echoMark(name: string, cleared: boolean): void {
    if (!cleared) this.heardMarks.push(name);
    this.send({ event: 'mark', sequenceNumber: String(++this.sequence), streamSid: this.streamSid, mark: { name } });
    this.record({ type: 'mark-echoed', name, cleared, atMs: this.elapsed() });
  }

  private send(message: object): void {
    if (this.socket.readyState === WebSocket.OPEN) this.socket.send(JSON.stringify(message));
  }

  private record(event: StreamTimelineEvent): void {
    this.timeline.push(event);
    for (const waiter of [...this.waiters]) waiter(event);
  }

  private elapsed(): number {
    return performance.now() - this.openedAt;
  }

  private stopTimers(): void {
    clearTimeout(this.microphoneTimer);
    clearTimeout(this.markTimer);
    // Words still waiting to be said never will be; their `say` resolves rather than hanging a test.
    for (const queued of this.microphone.splice(0)) queued.sent?.();
  }
}

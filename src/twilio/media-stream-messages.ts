import { z } from 'zod';

// Twilio Media Streams speak JSON text frames over the WebSocket opened by
// `<Connect><Stream>`. This file is the only place that knows their shape:
// inbound messages become typed events, outbound ones are built here.
// Twilio sends every number (`sequenceNumber`, `chunk`, `timestamp`) as a
// string; both strings and numbers are accepted.

/** Twilio's frames are a few hundred bytes; anything this large is not Twilio. */
export const maxStreamMessageBytes = 64 * 1024;
/** One 20 ms frame of 8 kHz μ-law: the unit Twilio plays and sends. */
export const mulawFrameBytes = 160;

/** Events a Media Stream delivers to the server, named noun-verb. */
export type InboundStreamEvent =
  | { type: 'stream-connected'; protocol: string; version: string }
  | {
      type: 'stream-started';
      streamSid: string;
      callSid: string;
      accountSid: string;
      tracks: string[];
      /** The `<Parameter>`s of the `<Stream>`, which is how values reach the socket: Twilio drops query strings from stream URLs. */
      parameters: Record<string, string>;
      sequence: number;
    }
  | {
      type: 'caller-audio';
      streamSid: string;
      /** 8 kHz μ-law, normally one 20 ms frame (160 bytes). */
      audio: Uint8Array;
      /** Presentation time from the start of the stream. */
      timestampMs: number;
      /** Twilio's `sequenceNumber`, counting every message of the stream; a gap means a lost message. */
      sequence: number;
      /** Counts media messages only, from 1. */
      chunk: number;
      track: string;
    }
  | { type: 'digit-pressed'; streamSid: string; digit: string }
  | {
      type: 'mark-echoed';
      streamSid: string;
      /**
       * The name of a mark this server sent. Twilio echoes a mark once the
       * audio sent before it has played, or at once when a `clear` dropped it:
       * an echo alone does not prove the caller heard the audio.
       */
      name: string;
    }
  | { type: 'stream-stopped'; streamSid: string; callSid: string; accountSid: string };

/** Messages the server sends back to Twilio, as {@link parseServerMessage} reads them. */
export type OutboundStreamMessage =
  | { type: 'audio-queued'; streamSid: string; audio: Uint8Array }
  | { type: 'mark-queued'; streamSid: string; name: string }
  | { type: 'playback-cleared'; streamSid: string };

export type ParseResult<T> = { ok: true; event: T } | { ok: false; error: string };

const count = z.union([z.number().int().nonnegative(), z.string().regex(/^\d{1,15}$/)]).transform(Number);
const sid = (prefix: string) => z.string().regex(new RegExp(`^${prefix}[0-9a-fA-F]{32}$`), `must be ${prefix} followed by 32 hexadecimal characters`);
const streamSid = sid('MZ');
const base64 = z.string().regex(/^[A-Za-z0-9+/]*={0,2}$/, 'must be base64');
const markName = z.string().min(1).max(256);

const inboundSchema = z.discriminatedUnion('event', [
  z.object({ event: z.literal('connected'), protocol: z.string().max(64), version: z.string().max(64) }),
  z.object({
    event: z.literal('start'),
    sequenceNumber: count,
    streamSid,
    start: z.object({
      streamSid,
      accountSid: sid('AC'),
      callSid: sid('CA'),
      tracks: z.array(z.string().max(32)).max(4),
      customParameters: z.record(z.string().max(256), z.string().max(4096)).default({}),
      mediaFormat: z.object({ encoding: z.literal('audio/x-mulaw'), sampleRate: z.literal(8000), channels: z.literal(1) }),
    }),
  }),
  z.object({
    event: z.literal('media'),
    sequenceNumber: count,
    streamSid,
    media: z.object({ track: z.string().max(32), chunk: count, timestamp: count, payload: base64 }),
  }),
  z.object({
    event: z.literal('dtmf'),
    streamSid,
    dtmf: z.object({ track: z.string().max(32).optional(), digit: z.string().regex(/^[0-9*#A-D]$/, 'must be one keypad digit') }),
  }),
  z.object({ event: z.literal('mark'), streamSid, mark: z.object({ name: markName }) }),
  z.object({ event: z.literal('stop'), streamSid, stop: z.object({ accountSid: sid('AC'), callSid: sid('CA') }) }),
]);

const outboundSchema = z.discriminatedUnion('event', [
  z.object({ event: z.literal('media'), streamSid, media: z.object({ payload: base64 }) }),
  z.object({ event: z.literal('mark'), streamSid, mark: z.object({ name: markName }) }),
  z.object({ event: z.literal('clear'), streamSid }),
]);

function decodeBase64(text: string): Uint8Array {
  // Decoded into a buffer of its own: `Buffer.from` would hand out a view of
  // Node's shared 8 KB pool, which a stored frame would then keep alive.
  const out = new Uint8Array(Buffer.byteLength(text, 'base64'));
  const written = Buffer.from(out.buffer).write(text, 'base64');
  return out.subarray(0, written);
}

const streamSidPattern = /^MZ[0-9a-fA-F]{32}$/;
const countPattern = /^\d{1,15}$/;
const base64Pattern = /^[A-Za-z0-9+/]*={0,2}$/;

function readCount(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isInteger(value) && value >= 0 ? value : undefined;
  return typeof value === 'string' && countPattern.test(value) ? Number(value) : undefined;
}

/**
 * The part of a `media` message both directions share, checked without the
 * schema: the event, a valid stream sid, a `media` object with a base64
 * payload. `undefined` when any of it is off, and the schema decides.
 */
function mediaEnvelope(json: unknown): { streamSid: string; media: Record<string, unknown>; payload: string } | undefined {
  const message = json as { event?: unknown; streamSid?: unknown; media?: unknown } | null;
  if (typeof message !== 'object' || message === null || message.event !== 'media') return undefined;
  const { streamSid, media } = message;
  if (typeof streamSid !== 'string' || !streamSidPattern.test(streamSid)) return undefined;
  if (typeof media !== 'object' || media === null || Array.isArray(media)) return undefined;
  const payload = (media as Record<string, unknown>).payload;
  if (typeof payload !== 'string' || !base64Pattern.test(payload)) return undefined;
  return { streamSid, media: media as Record<string, unknown>, payload };
}

/**
 * `media` is fifty messages a second per call, and the zod schema costs
 * more than decoding its audio. This accepts exactly what the schema
 * accepts for a well-formed `media` message; anything else (including every
 * malformed one) goes through the schema, which names the problem.
 */
function fastMedia(json: unknown): InboundStreamEvent | undefined {
  const envelope = mediaEnvelope(json);
  if (!envelope) return undefined;
  const { streamSid, media, payload } = envelope;
  const sequence = readCount((json as { sequenceNumber?: unknown }).sequenceNumber);
  const chunk = readCount(media.chunk);
  const timestampMs = readCount(media.timestamp);
  const { track } = media;
  if (sequence === undefined || chunk === undefined || timestampMs === undefined) return undefined;
  if (typeof track !== 'string' || track.length > 32) return undefined;
  return { type: 'caller-audio', streamSid, audio: decodeBase64(payload), timestampMs, sequence, chunk, track };
}

function parseJson(text: string): { ok: true; value: unknown } | { ok: false; error: string } {
  if (typeof text !== 'string') return { ok: false, error: 'message is not text' };
  if (text.length > maxStreamMessageBytes) return { ok: false, error: `message longer than ${maxStreamMessageBytes} bytes` };
  try {
    return { ok: true, value: JSON.parse(text) };
  } catch {
    return { ok: false, error: 'message is not JSON' };
  }
}

function validate<T>(json: unknown, schema: z.ZodType<T>): { ok: true; value: T } | { ok: false; error: string } {
  const parsed = schema.safeParse(json);
  if (parsed.success) return { ok: true, value: parsed.data };
  const issue = parsed.error.issues[0];
  const where = issue.path.length > 0 ? issue.path.join('.') : 'message';
  return { ok: false, error: `${where}: ${issue.message}` };
}

/** Reads one text frame from Twilio. Never throws: anything malformed, unknown or oversized is `{ ok: false }`. */
export function parseStreamMessage(text: string): ParseResult<InboundStreamEvent> {
  const json = parseJson(text);
  if (!json.ok) return json;
  const media = fastMedia(json.value);
  if (media) return { ok: true, event: media };
  const read = validate(json.value, inboundSchema);
  if (!read.ok) return read;
  const message = read.value;
  switch (message.event) {
    case 'connected':
      return { ok: true, event: { type: 'stream-connected', protocol: message.protocol, version: message.version } };
    case 'start':
      return {
        ok: true,
        event: {
          type: 'stream-started',
          streamSid: message.start.streamSid,
          callSid: message.start.callSid,
          accountSid: message.start.accountSid,
          tracks: message.start.tracks,
          parameters: message.start.customParameters,
          sequence: message.sequenceNumber,
        },
      };
    case 'media':
      return {
        ok: true,
        event: {
          type: 'caller-audio',
          streamSid: message.streamSid,
          audio: decodeBase64(message.media.payload),
          timestampMs: message.media.timestamp,
          sequence: message.sequenceNumber,
          chunk: message.media.chunk,
          track: message.media.track,
        },
      };
    case 'dtmf':
      return { ok: true, event: { type: 'digit-pressed', streamSid: message.streamSid, digit: message.dtmf.digit } };
    case 'mark':
      return { ok: true, event: { type: 'mark-echoed', streamSid: message.streamSid, name: message.mark.name } };
    case 'stop':
      return { ok: true, event: { type: 'stream-stopped', streamSid: message.streamSid, callSid: message.stop.callSid, accountSid: message.stop.accountSid } };
  }
}

/**
 * Reads one text frame a server sent to Twilio; the simulator plays Twilio
 * with it. Never throws.
 */
export function parseServerMessage(text: string): ParseResult<OutboundStreamMessage> {
  const json = parseJson(text);
  if (!json.ok) return json;
  // A simulated call receives fifty of these a second: the same shortcut as `fastMedia`, the other way.
  const media = mediaEnvelope(json.value);
  if (media) return { ok: true, event: { type: 'audio-queued', streamSid: media.streamSid, audio: decodeBase64(media.payload) } };
  const read = validate(json.value, outboundSchema);
  if (!read.ok) return read;
  const message = read.value;
  switch (message.event) {
    case 'media':
      return { ok: true, event: { type: 'audio-queued', streamSid: message.streamSid, audio: decodeBase64(message.media.payload) } };
    case 'mark':
      return { ok: true, event: { type: 'mark-queued', streamSid: message.streamSid, name: message.mark.name } };
    case 'clear':
      return { ok: true, event: { type: 'playback-cleared', streamSid: message.streamSid } };
  }
}

/**
 * A `media` message that plays 8 kHz μ-law to the caller. Twilio accepts any
 * length and queues it behind earlier audio; callme only sends whole 20 ms
 * frames so that its count of audio sent, and every mark after it, falls on
 * a frame boundary.
 */
export function audioMessage(streamSid: string, mulaw: Uint8Array): string {
  if (mulaw.length === 0 || mulaw.length % mulawFrameBytes !== 0) {
    throw new RangeError(`audio must be whole 20 ms frames (a multiple of ${mulawFrameBytes} bytes), got ${mulaw.length}`);
  }
  const payload = Buffer.from(mulaw.buffer, mulaw.byteOffset, mulaw.byteLength).toString('base64');
  // Fifty a second per call: written out, which is what JSON.stringify gives (base64 needs no escaping).
  return `{"event":"media","streamSid":${JSON.stringify(streamSid)},"media":{"payload":"${payload}"}}`;
}

/**
 * A `mark` message. Twilio echoes it back with the same name when the audio
 * queued before it has finished playing, which is how the server learns what
 * the caller has heard.
 */
export function markMessage(streamSid: string, name: string): string {
  if (name.length === 0 || name.length > 256) throw new RangeError('mark name must be 1 to 256 characters');
  return JSON.stringify({ event: 'mark', streamSid, mark: { name } });
}

/** A `clear` message: Twilio drops all audio queued for the caller and echoes every pending mark at once. */
export function clearMessage(streamSid: string): string {
  return JSON.stringify({ event: 'clear', streamSid });
}

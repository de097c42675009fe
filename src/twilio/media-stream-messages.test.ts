import { describe, expect, it } from 'vitest';
import {
  audioMessage,
  clearMessage,
  markMessage,
  maxStreamMessageBytes,
  parseServerMessage,
  parseStreamMessage,
} from './media-stream-messages.js';

const streamSid = 'MZ0123456789abcdef0123456789abcdef';
const callSid = 'CA0123456789abcdef0123456789abcdef';
const accountSid = 'AC0123456789abcdef0123456789abcdef';

// The examples from Twilio's "Media Streams - WebSocket Messages" page, with real-looking SIDs.
const twilioExamples = {
  connected: { event: 'connected', protocol: 'Call', version: '1.0.0' },
  start: {
    event: 'start',
    sequenceNumber: '1',
    start: {
      accountSid,
      streamSid,
      callSid,
      tracks: ['inbound'],
      mediaFormat: { encoding: 'audio/x-mulaw', sampleRate: 8000, channels: 1 },
      customParameters: { FirstName: 'Jane', LastName: 'Doe', RemoteParty: 'Bob' },
    },
    streamSid,
  },
  media: {
    event: 'media',
    sequenceNumber: '4',
    media: { track: 'inbound', chunk: '2', timestamp: '5', payload: Buffer.from([0xff, 0x7f, 0x00, 0x80]).toString('base64') },
    streamSid,
  },
  stop: { event: 'stop', sequenceNumber: '5', stop: { accountSid, callSid }, streamSid },
  dtmf: { event: 'dtmf', streamSid, sequenceNumber: '5', dtmf: { track: 'inbound_track', digit: '1' } },
  mark: { event: 'mark', sequenceNumber: '4', streamSid, mark: { name: 'my label' } },
};

const parse = (message: unknown) => parseStreamMessage(JSON.stringify(message));

describe('parseStreamMessage: happy path', () => {
  it('reads connected', () => {
    expect(parse(twilioExamples.connected)).toEqual({ ok: true, event: { type: 'stream-connected', protocol: 'Call', version: '1.0.0' } });
  });

  it('reads start with its custom parameters', () => {
    expect(parse(twilioExamples.start)).toEqual({
      ok: true,
      event: {
        type: 'stream-started',
        streamSid,
        callSid,
        accountSid,
        tracks: ['inbound'],
        parameters: { FirstName: 'Jane', LastName: 'Doe', RemoteParty: 'Bob' },
        sequence: 1,
      },
    });
  });

  it('treats a start without customParameters as having none', () => {
    const { customParameters: _, ...start } = twilioExamples.start.start;
    const result = parse({ ...twilioExamples.start, start });
    expect(result.ok && result.event.type === 'stream-started' && result.event.parameters).toEqual({});
  });

  it('reads media and decodes the payload into its own bytes', () => {
    const result = parse(twilioExamples.media);
    expect(result).toEqual({
      ok: true,
      event: { type: 'caller-audio', streamSid, audio: Uint8Array.from([0xff, 0x7f, 0x00, 0x80]), timestampMs: 5, sequence: 4, chunk: 2, track: 'inbound' },
    });
    if (result.ok && result.event.type === 'caller-audio') {
      // Not a view into Node's shared Buffer pool.
      expect(result.event.audio.buffer.byteLength).toBe(4);
    }
  });

  it('accepts numbers where Twilio usually sends numeric strings', () => {
    const result = parse({ ...twilioExamples.media, sequenceNumber: 4, media: { ...twilioExamples.media.media, chunk: 2, timestamp: 5 } });
    expect(result.ok && result.event.type === 'caller-audio' && [result.event.sequence, result.event.chunk, result.event.timestampMs]).toEqual([4, 2, 5]);
  });

  it('reads a full 20 ms frame', () => {
    const frame = new Uint8Array(160).map((_, i) => i);
    const result = parse({ ...twilioExamples.media, media: { ...twilioExamples.media.media, payload: Buffer.from(frame).toString('base64') } });
    expect(result.ok && result.event.type === 'caller-audio' && result.event.audio).toEqual(frame);
  });

  it('reads dtmf, mark and stop', () => {
    expect(parse(twilioExamples.dtmf)).toEqual({ ok: true, event: { type: 'digit-pressed', streamSid, digit: '1' } });
    expect(parse(twilioExamples.mark)).toEqual({ ok: true, event: { type: 'mark-echoed', streamSid, name: 'my label' } });
    expect(parse(twilioExamples.stop)).toEqual({ ok: true, event: { type: 'stream-stopped', streamSid, callSid, accountSid } });
  });

  it('ignores fields Twilio may add later', () => {
    expect(parse({ ...twilioExamples.mark, extra: { anything: true } }).ok).toBe(true);
  });
});

describe('parseStreamMessage: errors', () => {
  it.each([
    ['not JSON', '{"event":', 'message is not JSON'],
    ['JSON null', 'null', 'message'],
    ['an array', '[]', 'message'],
    ['an unknown event', JSON.stringify({ event: 'hello' }), 'event'],
    ['no event', JSON.stringify({ streamSid }), 'event'],
  ])('refuses %s', (_name, text, where) => {
    const result = parseStreamMessage(text);
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.error).toContain(where);
  });

  it('names the field that is wrong', () => {
    const result = parse({ ...twilioExamples.media, media: { ...twilioExamples.media.media, payload: 'not base64!' } });
    expect(result).toEqual({ ok: false, error: 'media.payload: must be base64' });
  });

  it('refuses a media format other than 8 kHz mono μ-law', () => {
    const start = { ...twilioExamples.start.start, mediaFormat: { encoding: 'audio/l16', sampleRate: 16000, channels: 1 } };
    const result = parse({ ...twilioExamples.start, start });
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.error).toMatch(/^start\.mediaFormat\./);
  });

  it('refuses malformed SIDs', () => {
    expect(parse({ ...twilioExamples.mark, streamSid: 'MZ123' }).ok).toBe(false);
    expect(parse({ ...twilioExamples.stop, stop: { accountSid, callSid: 'CA-nope' } }).ok).toBe(false);
  });

  it('refuses a dtmf that is not one keypad digit', () => {
    expect(parse({ ...twilioExamples.dtmf, dtmf: { track: 'inbound_track', digit: '12' } }).ok).toBe(false);
    expect(parse({ ...twilioExamples.dtmf, dtmf: { track: 'inbound_track', digit: 'x' } }).ok).toBe(false);
  });

  it('refuses negative or fractional counters', () => {
    expect(parse({ ...twilioExamples.media, sequenceNumber: '-1' }).ok).toBe(false);
    expect(parse({ ...twilioExamples.media, sequenceNumber: 1.5 }).ok).toBe(false);
  });
});

describe('parseStreamMessage: security', () => {
  it('refuses oversized messages before parsing them', () => {
    const payload = 'A'.repeat(maxStreamMessageBytes);
    const result = parse({ ...twilioExamples.media, media: { ...twilioExamples.media.media, payload } });
    expect(result).toEqual({ ok: false, error: `message longer than ${maxStreamMessageBytes} bytes` });
  });

  it('never throws, whatever the input', () => {
    const inputs: unknown[] = ['', ' ', '"x"', '1', 'true', '{"__proto__":{"event":"mark"}}', '{"event":"start","start":null}', undefined, Buffer.from('{}')];
    for (const input of inputs) expect(() => parseStreamMessage(input as string)).not.toThrow();
    expect(parseStreamMessage('{"__proto__":{"event":"mark"}}').ok).toBe(false);
  });
});

describe('outbound messages', () => {
  it('builds media exactly as Twilio documents it', () => {
    const frame = new Uint8Array(160).fill(0xff);
    expect(JSON.parse(audioMessage(streamSid, frame))).toEqual({ event: 'media', streamSid, media: { payload: Buffer.from(frame).toString('base64') } });
  });

  it('writes the same text JSON.stringify would, whatever the stream sid holds', () => {
    const frame = new Uint8Array(320).map((_, i) => (i * 31) % 256);
    for (const sid of [streamSid, 'MZ"quoted\\back\nslash']) {
      expect(audioMessage(sid, frame)).toBe(JSON.stringify({ event: 'media', streamSid: sid, media: { payload: Buffer.from(frame).toString('base64') } }));
    }
  });

  it('encodes only the bytes of a view, not its whole buffer', () => {
    const backing = new Uint8Array(480).map((_, i) => i % 256);
    const view = backing.subarray(160, 320);
    const payload = JSON.parse(audioMessage(streamSid, view)).media.payload;
    expect(new Uint8Array(Buffer.from(payload, 'base64'))).toEqual(view);
  });

  it('refuses audio that is not whole 20 ms frames', () => {
    expect(() => audioMessage(streamSid, new Uint8Array(0))).toThrow(RangeError);
    expect(() => audioMessage(streamSid, new Uint8Array(161))).toThrow(RangeError);
    expect(() => audioMessage(streamSid, new Uint8Array(320))).not.toThrow();
  });

  it('builds mark and clear exactly as Twilio documents them', () => {
    expect(JSON.parse(markMessage(streamSid, 'my label'))).toEqual({ event: 'mark', streamSid, mark: { name: 'my label' } });
    expect(JSON.parse(clearMessage(streamSid))).toEqual({ event: 'clear', streamSid });
    expect(() => markMessage(streamSid, '')).toThrow(RangeError);
  });

  it('round-trips through parseServerMessage', () => {
    const frame = new Uint8Array(320).map((_, i) => (i * 7) % 256);
    expect(parseServerMessage(audioMessage(streamSid, frame))).toEqual({ ok: true, event: { type: 'audio-queued', streamSid, audio: frame } });
    expect(parseServerMessage(markMessage(streamSid, 'piece-1'))).toEqual({ ok: true, event: { type: 'mark-queued', streamSid, name: 'piece-1' } });
    expect(parseServerMessage(clearMessage(streamSid))).toEqual({ ok: true, event: { type: 'playback-cleared', streamSid } });
    expect(parseServerMessage('{"event":"media","streamSid":"MZ1","media":{}}').ok).toBe(false);
  });
});

describe('media messages: the fast path accepts exactly what the schema accepts', () => {
  const streamSid = `MZ${'a'.repeat(32)}`;
  const good = { event: 'media', sequenceNumber: '3', streamSid, media: { track: 'inbound', chunk: '2', timestamp: '40', payload: '/////w==' } };
  const variants: Array<[string, unknown, boolean]> = [
    ['numbers as numbers', { ...good, sequenceNumber: 3, media: { ...good.media, chunk: 2, timestamp: 40 } }, true],
    ['a negative count', { ...good, sequenceNumber: -1 }, false],
    ['a fractional count', { ...good, media: { ...good.media, timestamp: 1.5 } }, false],
    ['a bad stream sid', { ...good, streamSid: 'MZ123' }, false],
    ['a long track', { ...good, media: { ...good.media, track: 'x'.repeat(33) } }, false],
    ['non-base64 payload', { ...good, media: { ...good.media, payload: '***' } }, false],
    ['media not an object', { ...good, media: 'x' }, false],
    ['media an array', { ...good, media: [] }, false],
    ['missing payload', { ...good, media: { track: 'inbound', chunk: '2', timestamp: '40' } }, false],
  ];
  it.each(variants)('%s', (_name, message, accepted) => {
    const result = parseStreamMessage(JSON.stringify(message));
    expect(result.ok).toBe(accepted);
    // A refusal names the field, as the schema does.
    if (!result.ok) expect(result.error).toMatch(/^(media|sequenceNumber|streamSid)/);
  });
  it('decodes a good frame', () => {
    const result = parseStreamMessage(JSON.stringify(good));
    expect(result).toEqual({
      ok: true,
      event: { type: 'caller-audio', streamSid, audio: new Uint8Array([255, 255, 255, 255]), timestampMs: 40, sequence: 3, chunk: 2, track: 'inbound' },
    });
  });
});

describe('server media messages: the fast path accepts exactly what the schema accepts', () => {
  const streamSid = `MZ${'b'.repeat(32)}`;
  const good = { event: 'media', streamSid, media: { payload: '/////w==' } };
  const variants: Array<[string, unknown, boolean]> = [
    ['a well-formed frame', good, true],
    ['extra fields, which the schema ignores', { ...good, extra: 1, media: { ...good.media, track: 'outbound' } }, true],
    ['a bad stream sid', { ...good, streamSid: 'MZ123' }, false],
    ['a missing stream sid', { event: 'media', media: good.media }, false],
    ['non-base64 payload', { ...good, media: { payload: '***' } }, false],
    ['a numeric payload', { ...good, media: { payload: 5 } }, false],
    ['media not an object', { ...good, media: 'x' }, false],
    ['media an array', { ...good, media: [] }, false],
    ['media null', { ...good, media: null }, false],
    ['missing payload', { ...good, media: {} }, false],
  ];
  it.each(variants)('%s', (_name, message, accepted) => {
    const result = parseServerMessage(JSON.stringify(message));
    expect(result.ok).toBe(accepted);
    if (!result.ok) expect(result.error).toMatch(/^(media|streamSid)/);
    else expect(result.event).toEqual({ type: 'audio-queued', streamSid, audio: new Uint8Array([255, 255, 255, 255]) });
  });
});

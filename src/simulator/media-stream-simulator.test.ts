import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import twilio from 'twilio';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket, { WebSocketServer } from 'ws';
import { audioMessage, clearMessage, markMessage, parseStreamMessage, type InboundStreamEvent } from '../twilio/media-stream-messages.js';
import { connectMediaStream, StreamRejectedError, type ConnectMediaStreamOptions } from './media-stream-simulator.js';

const authToken = 'test-auth-token-0123456789abcdef';
// The server believes Twilio reaches it through a tunnel at this address.
const signatureUrl = 'wss://callme.example.test/twilio/stream';

interface Connection {
  socket: WebSocket;
  events: Array<InboundStreamEvent & { receivedAt: number }>;
  rawMessages: unknown[];
  streamSid?: string;
}

/**
 * A tiny Media Streams server: checks the signature on the upgrade, parses
 * every message with the real converter, and does what a test asks of it.
 */
async function startEchoServer(): Promise<{ server: Server; url: string; connections: Connection[]; next: () => Promise<Connection> }> {
  const connections: Connection[] = [];
  const waiting: Array<(connection: Connection) => void> = [];
  const server = createServer();
  const sockets = new WebSocketServer({ noServer: true });
  server.on('upgrade', (request, socket, head) => {
    const signature = String(request.headers['x-twilio-signature'] ?? '');
    if (!twilio.validateRequest(authToken, signature, signatureUrl, {})) {
      socket.end('HTTP/1.1 403 Forbidden\r\nConnection: close\r\n\r\n');
      return;
    }
    sockets.handleUpgrade(request, socket, head, (ws) => {
      const connection: Connection = { socket: ws, events: [], rawMessages: [] };
      ws.on('message', (data) => {
        connection.rawMessages.push(JSON.parse(data.toString()));
        const parsed = parseStreamMessage(data.toString());
        if (!parsed.ok) throw new Error(`the simulator sent an invalid message: ${parsed.error}`);
        connection.events.push({ ...parsed.event, receivedAt: performance.now() });
        if (parsed.event.type === 'stream-started') connection.streamSid = parsed.event.streamSid;
      });
      connections.push(connection);
      waiting.shift()?.(connection);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    server,
    url: `ws://127.0.0.1:${port}/twilio/stream`,
    connections,
    next: () => new Promise((resolve) => waiting.push(resolve)),
  };
}

/** `ms` of a μ-law tone, distinguishable from silence. */
function toneMulaw(ms: number): Uint8Array {
  return new Uint8Array(ms * 8).map((_, i) => (i % 16 < 8 ? 0x20 : 0xa0));
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function until(condition: () => boolean, timeoutMs = 2000): Promise<void> {
  const end = performance.now() + timeoutMs;
  while (!condition()) {
    if (performance.now() > end) throw new Error('condition not met in time');
    await sleep(5);
  }
}

describe('connectMediaStream', () => {
  let echo: Awaited<ReturnType<typeof startEchoServer>>;
  beforeAll(async () => {
    echo = await startEchoServer();
  });
  afterAll(async () => {
    for (const connection of echo.connections) connection.socket.terminate();
    await new Promise<void>((resolve) => echo.server.close(() => resolve()));
  });

  async function connect(options: Partial<ConnectMediaStreamOptions> = {}) {
    const accepted = echo.next();
    const call = await connectMediaStream({ url: echo.url, signatureUrl, authToken, idleAudio: 'none', ...options });
    const connection = await accepted;
    await until(() => connection.streamSid !== undefined);
    return { call, connection };
  }

  describe('happy path', () => {
    it('opens like Twilio: a signed upgrade, then connected and start with the custom parameters', async () => {
      const { call, connection } = await connect({ parameters: { turnToken: 'abc', from: '+15005550006' } });
      expect(connection.rawMessages[0]).toEqual({ event: 'connected', protocol: 'Call', version: '1.0.0' });
      expect(connection.events[1]).toMatchObject({
        type: 'stream-started',
        streamSid: call.streamSid,
        callSid: call.callSid,
        accountSid: call.accountSid,
        tracks: ['inbound'],
        parameters: { turnToken: 'abc', from: '+15005550006' },
        sequence: 1,
      });
      await call.stop();
    });

    it('streams speech as numbered 20 ms frames in real time', async () => {
      const { call, connection } = await connect();
      const started = performance.now();
      await call.say(toneMulaw(300));
      const elapsed = performance.now() - started;
      await until(() => connection.events.filter((event) => event.type === 'caller-audio').length === 15);
      const media = connection.events.filter((event) => event.type === 'caller-audio');
      expect(media.map((event) => event.sequence)).toEqual(Array.from({ length: 15 }, (_, i) => i + 2));
      expect(media.map((event) => event.chunk)).toEqual(Array.from({ length: 15 }, (_, i) => i + 1));
      expect(media.map((event) => event.timestampMs)).toEqual(Array.from({ length: 15 }, (_, i) => i * 20));
      expect(media.every((event) => event.audio.length === 160)).toBe(true);
      expect(elapsed).toBeGreaterThanOrEqual(270);
      expect(elapsed).toBeLessThan(600);
      await call.stop();
    });

    it('sends a whole utterance at once when not in real time, padding the last frame with silence', async () => {
      const { call, connection } = await connect();
      await call.say(toneMulaw(45), { realtime: false });
      await until(() => connection.events.filter((event) => event.type === 'caller-audio').length === 3);
      const last = connection.events.filter((event) => event.type === 'caller-audio')[2];
      expect(last.type === 'caller-audio' && [...last.audio.subarray(40)].every((byte) => byte === 0xff)).toBe(true);
      await call.stop();
    });

    it('keeps the line open with silence while the caller says nothing, as Twilio does', async () => {
      const { call, connection } = await connect({ idleAudio: 'silence' });
      await sleep(200);
      const media = connection.events.filter((event) => event.type === 'caller-audio');
      expect(media.length).toBeGreaterThanOrEqual(8);
      expect(media.every((event) => event.type === 'caller-audio' && event.audio.every((byte) => byte === 0xff))).toBe(true);
      await call.stop();
    });

    it('sends dtmf and, on hang-up, stop before closing', async () => {
      const { call, connection } = await connect();
      call.pressDigit('7');
      const closed = await call.stop();
      expect(closed.code).toBe(1000);
      await until(() => connection.events.some((event) => event.type === 'stream-stopped'));
      expect(connection.events.slice(2).map((event) => event.type)).toEqual(['digit-pressed', 'stream-stopped']);
      expect(connection.events[2]).toMatchObject({ type: 'digit-pressed', digit: '7' });
      expect(connection.events[3]).toMatchObject({ type: 'stream-stopped', callSid: call.callSid, accountSid: call.accountSid });
    });
  });

  describe('playback like Twilio', () => {
    it('plays server audio in real time and echoes a mark when it has played', async () => {
      const { call, connection } = await connect();
      const sid = connection.streamSid!;
      const audio = toneMulaw(400);
      const sentAt = performance.now();
      connection.socket.send(audioMessage(sid, audio));
      connection.socket.send(markMessage(sid, 'greeting'));
      await until(() => connection.events.some((event) => event.type === 'mark-echoed'));
      const echoedAfter = connection.events.find((event) => event.type === 'mark-echoed')!.receivedAt - sentAt;
      expect(echoedAfter).toBeGreaterThanOrEqual(390);
      expect(echoedAfter).toBeLessThan(550);
      expect(call.heardMarks).toEqual(['greeting']);
      expect(call.receivedAudioMs).toBe(400);
      expect(call.playedAudioMs).toBeCloseTo(400, 0);
      expect(call.heardAudio()).toEqual(audio);
      expect(call.timeline.map((event) => event.type)).toEqual(['audio-received', 'mark-received', 'mark-echoed']);
      await call.stop();
    });

    it('queues audio behind audio still playing', async () => {
      const { call, connection } = await connect();
      const sid = connection.streamSid!;
      connection.socket.send(audioMessage(sid, toneMulaw(200)));
      connection.socket.send(audioMessage(sid, toneMulaw(200)));
      await call.waitFor((event) => event.type === 'audio-received' && event.playsAtMs > 150);
      const [first, second] = call.timeline.filter((event) => event.type === 'audio-received');
      expect(first.type === 'audio-received' && second.type === 'audio-received' && second.playsAtMs - first.playsAtMs).toBeCloseTo(200, 0);
      await call.stop();
    });

    it('echoes a mark at once when no audio is buffered', async () => {
      const { call, connection } = await connect();
      connection.socket.send(markMessage(connection.streamSid!, 'nothing-playing'));
      const echoed = await call.waitFor('mark-echoed', 200);
      expect(echoed).toMatchObject({ name: 'nothing-playing', cleared: false });
      await call.stop();
    });

    it('on clear, drops unplayed audio and echoes every pending mark at once', async () => {
      const { call, connection } = await connect();
      const sid = connection.streamSid!;
      connection.socket.send(audioMessage(sid, toneMulaw(500)));
      connection.socket.send(markMessage(sid, 'sentence-1'));
      connection.socket.send(audioMessage(sid, toneMulaw(500)));
      connection.socket.send(markMessage(sid, 'sentence-2'));
      await call.waitFor((event) => event.type === 'mark-received' && event.name === 'sentence-2');
      await sleep(200);
      const clearedAt = performance.now();
      connection.socket.send(clearMessage(sid));
      await until(() => connection.events.filter((event) => event.type === 'mark-echoed').length === 2);
      const echoes = connection.events.filter((event) => event.type === 'mark-echoed');
      expect(echoes.map((event) => event.type === 'mark-echoed' && event.name)).toEqual(['sentence-1', 'sentence-2']);
      expect(echoes.every((event) => event.receivedAt - clearedAt < 100)).toBe(true);
      expect(call.heardMarks).toEqual([]);
      expect(call.clears).toBe(1);
      const cleared = await call.waitFor('playback-cleared');
      expect(cleared.type === 'playback-cleared' && cleared.droppedMs).toBeGreaterThan(700);
      expect(call.playedAudioMs).toBeGreaterThan(150);
      expect(call.playedAudioMs).toBeLessThan(300);
      expect(Math.abs(call.heardAudio().length - call.playedAudioMs * 8)).toBeLessThanOrEqual(2);
      await sleep(100);
      expect(call.playedAudioMs).toBeLessThan(300);
      await call.stop();
    });
  });

  describe('errors', () => {
    it('is refused when the signature is wrong', async () => {
      await expect(connectMediaStream({ url: echo.url, signatureUrl, authToken: 'wrong-token' })).rejects.toThrow(StreamRejectedError);
      await expect(connectMediaStream({ url: echo.url, signatureUrl: 'wss://elsewhere.example.test/twilio/stream', authToken })).rejects.toMatchObject({ status: 403 });
    });

    it('records server messages Twilio would reject', async () => {
      const { call, connection } = await connect();
      connection.socket.send('{"event":"media","streamSid":"MZ0123","media":{"payload":"AAAA"}}');
      connection.socket.send(markMessage('MZ00000000000000000000000000000000', 'other-stream'));
      connection.socket.send(Buffer.from([1, 2, 3]), { binary: true });
      await until(() => call.timeline.length === 3);
      expect(call.timeline.map((event) => event.type)).toEqual(['message-rejected', 'message-rejected', 'message-rejected']);
      await call.stop();
    });

    it('settles closed with the code the server closes with, and times out waiting', async () => {
      const { call, connection } = await connect();
      const pending = call.say(toneMulaw(2000));
      connection.socket.close(4000, 'done');
      expect(await call.closed).toEqual({ code: 4000, reason: 'done' });
      await pending;
      await expect(call.waitFor('mark-echoed', 50)).rejects.toThrow('no mark-echoed event within 50 ms');
      expect(call.timeline.at(-1)).toMatchObject({ type: 'stream-closed', code: 4000 });
    });
  });
});

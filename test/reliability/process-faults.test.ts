import { randomBytes } from 'node:crypto';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectMediaStream } from '../../src/simulator/media-stream-simulator.js';
import { signTwilioRequest, simulateCall, type CallerReply } from '../../src/simulator/twilio-simulator.js';
import { latencyProfiles, startFakeOpenAI, type FakeOpenAI } from '../../src/testing/fake-openai-server.js';
import { startServerProcess, type ServerProcess } from '../../src/testing/server-process.js';
import { testAuthToken, testPublicUrl } from '../../src/testing/test-app.js';
import { createTestPostgres } from '../../src/testing/test-databases.js';
import { recordFigure } from './figures.js';

const streamNumber = '+15550009999';
const newCallSid = () => `CA${randomBytes(16).toString('hex')}`;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A signed webhook on a connection of its own (no pooled socket to a process that may be gone). */
function postWebhook(baseUrl: string, route: string, params: Record<string, string>): Promise<{ status: number; body: string }> {
  const body = new URLSearchParams(params).toString();
  return new Promise((resolve, reject) => {
    const outgoing = request(
      `${baseUrl}${route}`,
      {
        method: 'POST',
        agent: false,
        headers: {
          'content-type': 'application/x-www-form-urlencoded',
          'content-length': Buffer.byteLength(body),
          'x-twilio-signature': signTwilioRequest(testAuthToken, `${testPublicUrl}${route}`, params),
        },
      },
      (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () => resolve({ status: response.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
        response.on('error', reject);
      },
    );
    outgoing.on('error', reject);
    outgoing.end(body);
  });
}

/** Whether a new TCP connection to the port is refused. */
function connectionRefused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', (error: NodeJS.ErrnoException) => resolve(error.code === 'ECONNREFUSED'));
  });
}

async function until<T>(what: string, probe: () => Promise<T | undefined> | T | undefined, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

describe('the server process: killed, restarted, retried, stopped', () => {
  let openai: FakeOpenAI;
  let database: { url: string; drop(): Promise<void> };
  let db: pg.Client;
  let dataDir: string;
  let env: Record<string, string>;
  let server: ServerProcess;

  beforeAll(async () => {
    openai = await startFakeOpenAI();
    database = await createTestPostgres();
    dataDir = await mkdtemp(path.join(tmpdir(), 'callme-process-'));
    // The shipped profiles, and one answering over a media stream.
    const profiles = path.join(dataDir, 'profiles');
    await cp('profiles', profiles, { recursive: true });
    const restaurant = JSON.parse(await readFile('profiles/restaurant.json', 'utf8'));
    await writeFile(
      path.join(profiles, 'restaurant-stream.json'),
      JSON.stringify({ ...restaurant, id: 'restaurant-stream', mode: 'stream', phoneNumbers: [streamNumber] }),
    );
    env = {
      PROFILES_DIR: profiles,
      PUBLIC_URL: testPublicUrl,
      TWILIO_AUTH_TOKEN: testAuthToken,
      DATA_DIR: dataDir,
      DATABASE_URL: database.url,
      OPENAI_API_KEY: 'sk-test',
      OPENAI_BASE_URL: openai.url,
      OPENAI_TIMEOUT_MS: '5000',
      AUDIO_RETENTION: 'delete',
      LOG_LEVEL: 'warn',
    };
    server = await startServerProcess({ env });
    db = new pg.Client({ connectionString: database.url });
    await db.connect();
  });

  afterAll(async () => {
    server?.kill('SIGKILL');
    await server?.exited;
    await db?.end();
    await openai?.close();
    await database?.drop();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  const turnsOf = async (callSid: string) =>
    (
      await db.query<{ seq: number; kind: string; user_text: string | null; assistant_text: string | null; status: string; action: string | null }>(
        'SELECT seq, kind, user_text, assistant_text, status, action FROM turns WHERE call_id = $1 ORDER BY seq',
        [callSid],
      )
    ).rows;

  it('killed with SIGKILL between two webhooks of a call and started again: the call goes on, its history intact', async () => {
    const callSid = newCallSid();
    const lines = ['a table for three please', 'on Saturday evening', 'at half past seven', 'that is all, bye'];
    let restartMs = 0;
    let killedBy: string | null = null;
    const steps: Array<string | (() => Promise<void>)> = [
      lines[0]!,
      lines[1]!,
      async () => {
        // The caller is listening to the reply (seconds, on a real call): its turn is stored by then.
        await until('the last turn to be stored', async () => ((await turnsOf(callSid)).every((turn) => turn.status !== 'processing') ? true : undefined));
        const killedAt = Date.now();
        server.kill('SIGKILL');
        killedBy = (await server.exited).signal;
        server = await startServerProcess({ env, port: server.port });
        restartMs = Date.now() - killedAt;
      },
      lines[2]!,
      lines[3]!,
    ];
    const caller = async (): Promise<CallerReply> => {
      for (let step = steps.shift(); step !== undefined; step = steps.shift()) {
        if (typeof step === 'string') return step;
        await step();
      }
      return null;
    };

    const result = await simulateCall({ baseUrl: server.baseUrl, publicUrl: testPublicUrl, authToken: testAuthToken, callSid, caller });

    expect(killedBy).toBe('SIGKILL');
    expect(result.applicationErrors).toEqual([]);
    expect(result.warnings).toEqual([]);
    expect(result.endedBy).toBe('hangup');
    const turns = await turnsOf(callSid);
    expect(turns.map((turn) => turn.seq)).toEqual([0, 1, 2, 3, 4]);
    expect(turns.filter((turn) => turn.kind === 'speech').map((turn) => turn.user_text)).toEqual(lines);
    for (const turn of turns) expect(turn.status).toBe('completed');
    expect(turns.at(-1)!.action).toBe('hangup');

    // The restarted process answered from the conversation the first one stored.
    const chats = openai.requests.filter((entry) => entry.endpoint === 'chat');
    const afterRestart = chats.find((entry) => JSON.stringify(entry.body?.messages).includes(lines[2]!));
    const contents = ((afterRestart?.body?.messages ?? []) as Array<{ content: string }>).map((message) => message.content);
    expect(contents).toEqual(expect.arrayContaining([lines[0], turns[1]!.assistant_text, lines[1], turns[2]!.assistant_text, lines[2]]));

    recordFigure({ section: 'process', name: 'SIGKILL between webhooks: kill to ready again', value: restartMs, unit: 'ms' });
    recordFigure({ section: 'process', name: 'SIGKILL between webhooks: turns lost', value: lines.length + 1 - turns.length, expected: '0' });
    recordFigure({ section: 'process', name: 'SIGKILL between webhooks: call went on to its goodbye', value: result.endedBy === 'hangup' ? 'yes' : 'no', expected: 'yes' });
  });

  it('answers a webhook Twilio delivers twice, or three times at once, with one turn and byte-identical TwiML', async () => {
    const callSid = newCallSid();
    const base = { CallSid: callSid, AccountSid: `AC${'0'.repeat(32)}`, From: '+15550001111', To: '+15550002222', CallStatus: 'in-progress' };
    const greeting = await postWebhook(server.baseUrl, '/twilio/incoming', base);
    expect(greeting.status).toBe(200);

    // Twilio's retry after a timeout: the same request again, once the first was answered.
    const first = { ...base, SpeechResult: 'retried: a table for two', Confidence: '0.9' };
    const once = await postWebhook(server.baseUrl, '/twilio/voice?turn=1', first);
    const again = await postWebhook(server.baseUrl, '/twilio/voice?turn=1', first);

    // Deliveries that overlap while the reply is still being produced.
    openai.setProfile({ ...latencyProfiles.zero, chatFirstTokenMs: 300 });
    const second = { ...base, SpeechResult: 'concurrent: on Sunday at noon', Confidence: '0.9' };
    const together = await Promise.all([1, 2, 3].map(() => postWebhook(server.baseUrl, '/twilio/voice?turn=2', second)));
    openai.setProfile(latencyProfiles.zero);

    const answers = [once, again, ...together];
    for (const answer of answers) {
      expect(answer.status).toBe(200);
      expect(answer.body).toMatch(/<Play>/);
    }
    expect(again.body).toBe(once.body);
    expect(together[1]!.body).toBe(together[0]!.body);
    expect(together[2]!.body).toBe(together[0]!.body);

    const turns = await turnsOf(callSid);
    expect(turns.map((turn) => turn.seq)).toEqual([0, 1, 2]);
    const modelCalls = openai.requests.filter((entry) => entry.endpoint === 'chat' && JSON.stringify(entry.body?.messages).includes('concurrent: on Sunday')).length;
    expect(modelCalls).toBe(1);

    const identical = Number(again.body === once.body) + together.filter((answer) => answer.body === together[0]!.body).length - 1;
    recordFigure({ section: 'process', name: 'duplicate webhook deliveries answered byte-identically', value: `${identical}/3`, expected: '3/3' });
    recordFigure({ section: 'process', name: 'extra turns created by duplicate deliveries', value: turns.length - 3, expected: '0' });
  });

  it('on SIGTERM refuses new connections, finishes the turn in flight with its full answer, closes media streams, and exits 0', async () => {
    // A call on a media stream, its greeting playing.
    const streamCallSid = newCallSid();
    const connectTwiml = await postWebhook(server.baseUrl, '/twilio/incoming', { CallSid: streamCallSid, From: '+15550004444', To: streamNumber, CallStatus: 'ringing' });
    const streamUrl = /<Stream url="([^"]+)"/.exec(connectTwiml.body)?.[1];
    expect(streamUrl).toBeDefined();
    const stream = await connectMediaStream({
      url: streamUrl!.replace(testPublicUrl.replace(/^http/, 'ws'), server.baseUrl.replace(/^http/, 'ws')),
      signatureUrl: streamUrl,
      authToken: testAuthToken,
      callSid: streamCallSid,
    });
    await stream.waitFor('audio-received', 15_000);

    const callSid = newCallSid();
    const base = { CallSid: callSid, AccountSid: `AC${'0'.repeat(32)}`, From: '+15550003333', To: '+15550002222', CallStatus: 'in-progress' };
    expect((await postWebhook(server.baseUrl, '/twilio/incoming', base)).status).toBe(200);

    const reply = 'Certainly, a table for two at eight.';
    openai.setProfile({ ...latencyProfiles.zero, chatFirstTokenMs: 2_000 });
    openai.queueChatReplies({ text: reply });
    const said = 'sigterm: a table for two at eight';
    const inFlight = postWebhook(server.baseUrl, '/twilio/voice?turn=1', { ...base, SpeechResult: said, Confidence: '0.9' });
    let answered = false;
    void inFlight.finally(() => (answered = true)).catch(() => {});
    // The model is working on the turn when the signal comes.
    await until('the model to be asked', () =>
      openai.requests.some((entry) => entry.endpoint === 'chat' && JSON.stringify(entry.body?.messages).includes(said)) ? true : undefined,
    );

    const signalledAt = Date.now();
    const answeredBeforeSignal = answered;
    server.kill('SIGTERM');
    const refused = await until('new connections to be refused', async () => ((await connectionRefused(server.port)) ? true : undefined), 3_000);
    const refusedAfterMs = Date.now() - signalledAt;

    const answer = await inFlight;
    const answeredAfterMs = Date.now() - signalledAt;
    const streamClosed = await Promise.race([stream.closed, sleep(20_000).then(() => undefined)]);
    const exit = await Promise.race([server.exited, sleep(20_000).then(() => undefined)]);
    const exitedAfterMs = Date.now() - signalledAt;
    openai.setProfile(latencyProfiles.zero);

    expect(answeredBeforeSignal).toBe(false);
    expect(refused).toBe(true);
    expect(answer.status).toBe(200);
    // The reply itself, then what comes next: not an apology, not a "still thinking" pause.
    expect(answer.body).toMatch(/<Play>[^<]+<\/Play>/);
    expect(answer.body).toMatch(/<Gather |<Redirect/);
    expect(answer.body).not.toMatch(/<Pause/);
    expect(exit).toEqual({ code: 0, signal: null });
    // Closed by the server with a normal closure, not dropped.
    expect(streamClosed?.code).toBe(1000);

    const turns = await turnsOf(callSid);
    expect(turns.at(-1)).toMatchObject({ seq: 1, status: 'completed', user_text: said, assistant_text: reply, action: 'listen' });

    recordFigure({ section: 'process', name: 'SIGTERM: new connections refused after', value: refusedAfterMs, unit: 'ms' });
    recordFigure({ section: 'process', name: 'SIGTERM: turns in flight answered in full', value: '1/1', expected: '1/1' });
    recordFigure({ section: 'process', name: 'SIGTERM: in-flight answer after', value: answeredAfterMs, unit: 'ms' });
    recordFigure({ section: 'process', name: 'SIGTERM: open media stream closed with', value: streamClosed ? `${streamClosed.code} ${streamClosed.reason}` : 'nothing', expected: '1000' });
    recordFigure({ section: 'process', name: 'SIGTERM: exit code', value: exit?.code ?? 'none', expected: '0' });
    recordFigure({ section: 'process', name: 'SIGTERM: exited after', value: exitedAfterMs, unit: 'ms', expected: '< 20000' });
  });
});

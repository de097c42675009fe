import { randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { encodeWav } from '../audio/wav.js';

/** A call created through the fake's Calls resource, with the parameters as sent. */
export interface FakeRestCall {
  sid: string;
  accountSid: string;
  /** The form parameters of the create request (`To`, `From`, `Url`, `MachineDetection`, `StatusCallback`…); repeated ones joined by a space. */
  params: Record<string, string>;
  status: string;
  /** Updates posted to the call, oldest first (`Status`, `Url`, `Twiml`…). */
  updates: Array<Record<string, string>>;
  createdAt: Date;
}

/** A recording the fake holds; its media is synthesized on request. */
export interface FakeRestRecording {
  sid: string;
  accountSid: string;
  callSid: string;
  status: 'in-progress' | 'completed' | 'absent';
  durationSeconds: number;
  channels: 1 | 2;
  source: string;
  /** `RecordingUrl` as Twilio sends it in callbacks: the resource without an extension. */
  url: string;
  /** Parameters of the create request, for recordings started through the API. */
  params?: Record<string, string>;
}

/** One request the fake received. */
export interface FakeRestRequest {
  method: string;
  path: string;
  params: Record<string, string>;
  status: number;
  authenticated: boolean;
}

export interface FakeTwilioRestOptions {
  accountSid?: string;
  authToken?: string;
}

/** A running fake of Twilio's REST API on 127.0.0.1. */
export interface FakeTwilioRest {
  /** Where the `twilio` package is pointed (`TWILIO_API_BASE_URL`). */
  readonly url: string;
  readonly accountSid: string;
  readonly authToken: string;
  readonly calls: FakeRestCall[];
  readonly recordings: FakeRestRecording[];
  readonly requests: FakeRestRequest[];
  /** Called for each created call, e.g. to have the simulated Twilio answer it. */
  onCallCreated(listener: (call: FakeRestCall) => void): void;
  /** Registers a recording of a call, as `<Start><Recording>` would make one; returns it. */
  addRecording(options: { callSid: string; durationSeconds: number; channels?: 1 | 2; source?: string }): FakeRestRecording;
  /** The next request to a create or update fails with this HTTP status and Twilio error code. */
  failNext(status: number, code: number, message: string): void;
  close(): Promise<void>;
}

const apiVersion = '2010-04-01';

/**
 * A fake of the parts of Twilio's REST API callme uses, on loopback: create,
 * fetch and update Calls; create Recordings on a call; fetch a recording's
 * metadata and its media as `.wav` (8 kHz 16-bit PCM, as Twilio serves it) or
 * `.mp3`. Every request must carry the account's Basic credentials, as
 * Twilio requires. Nothing is dialled: tests drive the call's webhooks
 * themselves (see `onCallCreated`).
 */
export async function startFakeTwilioRest(options: FakeTwilioRestOptions = {}): Promise<FakeTwilioRest> {
  const fake = new FakeTwilioRestServer(
    options.accountSid ?? `AC${randomBytes(16).toString('hex')}`,
    options.authToken ?? randomBytes(16).toString('hex'),
  );
  await fake.listen();
  return fake;
}

class FakeTwilioRestServer implements FakeTwilioRest {
  readonly calls: FakeRestCall[] = [];
  readonly recordings: FakeRestRecording[] = [];
  readonly requests: FakeRestRequest[] = [];
  private readonly server: Server;
  private readonly listeners: Array<(call: FakeRestCall) => void> = [];
  private readonly faults: Array<{ status: number; code: number; message: string }> = [];
  private port = 0;

  constructor(
    readonly accountSid: string,
    readonly authToken: string,
  ) {
    this.server = createServer((request, response) => {
      this.handle(request, response).catch((error: unknown) => {
        if (!response.headersSent) this.json(response, 500, { code: 20500, message: String(error), status: 500 });
        else response.destroy();
      });
    });
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async listen(): Promise<void> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as AddressInfo).port;
  }

  onCallCreated(listener: (call: FakeRestCall) => void): void {
    this.listeners.push(listener);
  }

  addRecording(options: { callSid: string; durationSeconds: number; channels?: 1 | 2; source?: string }): FakeRestRecording {
    const sid = `RE${randomBytes(16).toString('hex')}`;
    const recording: FakeRestRecording = {
      sid,
      accountSid: this.accountSid,
      callSid: options.callSid,
      status: 'completed',
      durationSeconds: options.durationSeconds,
      channels: options.channels ?? 1,
      source: options.source ?? 'StartCallRecordingTwiML',
      url: `${this.url}/${apiVersion}/Accounts/${this.accountSid}/Recordings/${sid}`,
    };
    this.recordings.push(recording);
    return recording;
  }

  failNext(status: number, code: number, message: string): void {
    this.faults.push({ status, code, message });
  }

  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeAllConnections();
    await closed;
  }

  private async handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const url = new URL(request.url ?? '/', this.url);
    const params = await readForm(request);
    const authenticated = this.authenticated(request.headers.authorization);
    const record: FakeRestRequest = { method: request.method ?? 'GET', path: url.pathname, params, status: 0, authenticated };
    this.requests.push(record);
    response.on('finish', () => (record.status = response.statusCode));

    if (!authenticated) {
      response.setHeader('WWW-Authenticate', 'Basic realm="Twilio API"');
      return this.json(response, 401, { code: 20003, message: 'Authenticate', more_info: 'https://www.twilio.com/docs/errors/20003', status: 401 });
    }
    const match = /^\/2010-04-01\/Accounts\/(AC[0-9a-f]{32})\/(.+)$/.exec(url.pathname);
    if (!match || match[1] !== this.accountSid) return this.notFound(response, url.pathname);
    const resource = match[2];
    const method = request.method ?? 'GET';

    if ((method === 'POST') && this.faults.length > 0) {
      const fault = this.faults.shift()!;
      return this.json(response, fault.status, { code: fault.code, message: fault.message, more_info: `https://www.twilio.com/docs/errors/${fault.code}`, status: fault.status });
    }

    let found: RegExpExecArray | null;
    if (resource === 'Calls.json' && method === 'POST') return this.createCall(response, params);
    if ((found = /^Calls\/(CA[0-9a-f]{32})\.json$/.exec(resource))) {
      const call = this.calls.find((candidate) => candidate.sid === found![1]);
      if (!call) return this.notFound(response, url.pathname);
      if (method === 'POST') {
        call.updates.push(params);
        if (params.Status) call.status = params.Status;
      }
      return this.json(response, 200, this.callJson(call));
    }
    if ((found = /^Calls\/(CA[0-9a-f]{32})\/Recordings\.json$/.exec(resource)) && method === 'POST') {
      const call = this.calls.find((candidate) => candidate.sid === found![1]);
      if (!call) return this.notFound(response, url.pathname);
      const recording = this.addRecording({ callSid: call.sid, durationSeconds: 0, channels: params.RecordingChannels === 'dual' ? 2 : 1, source: 'StartCallRecordingAPI' });
      recording.status = 'in-progress';
      recording.params = params;
      return this.json(response, 201, this.recordingJson(recording));
    }
    if ((found = /^Recordings\/(RE[0-9a-f]{32})(?:\.(json|wav|mp3))?$/.exec(resource)) && method === 'GET') {
      const recording = this.recordings.find((candidate) => candidate.sid === found![1]);
      if (!recording) return this.notFound(response, url.pathname);
      const format = found[2] ?? 'wav';
      if (format === 'json') return this.json(response, 200, this.recordingJson(recording));
      if (recording.status !== 'completed') return this.notFound(response, url.pathname);
      const body = format === 'mp3' ? silentMp3(recording.durationSeconds) : toneWav(recording.durationSeconds, recording.channels);
      response.writeHead(200, { 'Content-Type': format === 'mp3' ? 'audio/mpeg' : 'audio/x-wav', 'Content-Length': String(body.length) });
      response.end(body);
      return;
    }
    return this.notFound(response, url.pathname);
  }

  private createCall(response: ServerResponse, params: Record<string, string>): void {
    const missing = ['To', 'From'].find((name) => !params[name]);
    if (missing) return this.json(response, 400, { code: 21201, message: `Required parameter "${missing}" missing.`, status: 400 });
    if (!params.Url && !params.Twiml && !params.ApplicationSid) {
      return this.json(response, 400, { code: 21205, message: 'Url parameter is required.', status: 400 });
    }
    if (!/^\+[1-9]\d{6,14}$/.test(params.To)) {
      return this.json(response, 400, { code: 21211, message: `The 'To' number ${params.To} is not a valid phone number.`, status: 400 });
    }
    const call: FakeRestCall = {
      sid: `CA${randomBytes(16).toString('hex')}`,
      accountSid: this.accountSid,
      params,
      status: 'queued',
      updates: [],
      createdAt: new Date(),
    };
    this.calls.push(call);
    this.json(response, 201, this.callJson(call));
    for (const listener of this.listeners) listener(call);
  }

  private callJson(call: FakeRestCall) {
    return {
      sid: call.sid,
      account_sid: call.accountSid,
      to: call.params.To,
      from: call.params.From,
      status: call.status,
      direction: 'outbound-api',
      api_version: apiVersion,
      date_created: call.createdAt.toUTCString(),
      uri: `/${apiVersion}/Accounts/${call.accountSid}/Calls/${call.sid}.json`,
    };
  }

  private recordingJson(recording: FakeRestRecording) {
    return {
      sid: recording.sid,
      account_sid: recording.accountSid,
      call_sid: recording.callSid,
      status: recording.status,
      duration: String(recording.durationSeconds),
      channels: recording.channels,
      source: recording.source,
      api_version: apiVersion,
      uri: `/${apiVersion}/Accounts/${recording.accountSid}/Recordings/${recording.sid}.json`,
    };
  }

  private authenticated(header: string | undefined): boolean {
    const match = /^Basic\s+(\S+)$/i.exec(header ?? '');
    if (!match) return false;
    const given = Buffer.from(match[1], 'base64');
    const expected = Buffer.from(`${this.accountSid}:${this.authToken}`);
    return given.length === expected.length && timingSafeEqual(given, expected);
  }

  private notFound(response: ServerResponse, path: string): void {
    this.json(response, 404, { code: 20404, message: `The requested resource ${path} was not found`, status: 404 });
  }

  private json(response: ServerResponse, status: number, body: unknown): void {
    const text = JSON.stringify(body);
    response.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': String(Buffer.byteLength(text)) });
    response.end(text);
  }
}

async function readForm(request: IncomingMessage): Promise<Record<string, string>> {
  const chunks: Buffer[] = [];
  for await (const chunk of request) chunks.push(chunk as Buffer);
  const text = Buffer.concat(chunks).toString('utf8');
  const params: Record<string, string> = {};
  for (const [key, value] of new URLSearchParams(text)) params[key] = key in params ? `${params[key]} ${value}` : value;
  return params;
}

/** A quiet 440 Hz tone as 8 kHz 16-bit PCM WAV, the format of Twilio's `.wav` recordings. */
function toneWav(seconds: number, channels: 1 | 2): Uint8Array {
  const frames = Math.max(1, Math.round(seconds * 8000));
  const data = new Uint8Array(frames * 2 * channels);
  const view = new DataView(data.buffer);
  for (let frame = 0; frame < frames; frame++) {
    const sample = Math.round(1000 * Math.sin((2 * Math.PI * 440 * frame) / 8000));
    for (let channel = 0; channel < channels; channel++) view.setInt16((frame * channels + channel) * 2, sample, true);
  }
  return encodeWav({ sampleRate: 8000, channels, bitsPerSample: 16, format: 'pcm', data });
}

/**
 * Silent MPEG-2 layer III at 16 kHz and 32 kbit/s, mono: 144-byte frames
 * whose zeroed side information decodes as silence in any player.
 */
function silentMp3(seconds: number): Uint8Array {
  const frameBytes = 144;
  const frames = Math.max(1, Math.round((seconds * 16000) / 576));
  const body = new Uint8Array(frames * frameBytes);
  for (let frame = 0; frame < frames; frame++) body.set([0xff, 0xf3, 0x48, 0xc0], frame * frameBytes);
  return body;
}

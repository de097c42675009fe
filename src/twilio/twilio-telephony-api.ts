import twilio from 'twilio';
import type RequestClient from 'twilio/lib/base/RequestClient.js';
import { TelephonyApiError, type PlaceCallOptions, type PlacedCall, type RecordingMedia, type TelephonyApi } from './telephony-api.js';

type RequestOptions<TData> = RequestClient.RequestOptions<TData>;

/** Twilio's REST API host; every resource callme uses lives under it. */
export const twilioApiOrigin = 'https://api.twilio.com';

export interface TwilioTelephonyApiOptions {
  accountSid: string;
  authToken: string;
  /**
   * Sends every REST request here instead of `https://api.twilio.com` (the
   * path is kept): for a local fake of the API. Production leaves it unset.
   */
  apiBaseUrl?: string;
  /** Milliseconds before a REST request is given up. */
  timeoutMs?: number;
}

/**
 * The `twilio` package's request client, pointed at another origin. The SDK
 * builds absolute `https://api.twilio.com/...` URLs and only lets `edge` and
 * `region` change the host name within twilio.com, so a local fake is reached
 * by rewriting the origin of each request just before it is sent.
 */
class RedirectedRequestClient extends twilio.RequestClient {
  constructor(private readonly origin: string, timeoutMs: number) {
    super({ timeout: timeoutMs, keepAlive: false });
  }

  override request<TData>(options: RequestOptions<TData>) {
    const target = new URL(options.uri);
    const redirected = new URL(target.pathname + target.search, this.origin);
    return super.request<TData>({ ...options, uri: redirected.toString() });
  }
}

/** Places calls and fetches recordings through Twilio's REST API with the account's credentials. */
export class TwilioTelephonyApi implements TelephonyApi {
  private readonly client: twilio.Twilio;
  private readonly origin: string;
  private readonly timeoutMs: number;

  constructor(private readonly options: TwilioTelephonyApiOptions) {
    this.origin = options.apiBaseUrl ?? twilioApiOrigin;
    this.timeoutMs = options.timeoutMs ?? 15_000;
    this.client = twilio(options.accountSid, options.authToken, {
      httpClient: options.apiBaseUrl ? new RedirectedRequestClient(options.apiBaseUrl, this.timeoutMs) : undefined,
      timeout: this.timeoutMs,
    });
  }

  async placeCall(options: PlaceCallOptions): Promise<PlacedCall> {
    try {
      const call = await this.client.calls.create({
        to: options.to,
        from: options.from,
        url: options.url,
        method: 'POST',
        statusCallback: options.statusCallback,
        statusCallbackMethod: 'POST',
        statusCallbackEvent: ['initiated', 'ringing', 'answered', 'completed'],
        machineDetection: options.machineDetection,
        machineDetectionTimeout: options.machineDetectionTimeoutSeconds,
        timeout: options.ringTimeoutSeconds,
      });
      return { callSid: call.sid, status: call.status };
    } catch (error) {
      throw asTelephonyError(error, 'placing the call failed');
    }
  }

  async fetchRecording(options: { accountSid: string; recordingSid: string; format: 'mp3' | 'wav'; abortSignal?: AbortSignal }): Promise<RecordingMedia> {
    if (!/^AC[0-9a-fA-F]{32}$/.test(options.accountSid) || !/^RE[0-9a-fA-F]{32}$/.test(options.recordingSid)) {
      throw new TelephonyApiError('not a Twilio account or recording SID');
    }
    // Built from the SIDs, never taken from a callback's RecordingUrl: the credentials only ever go to the API's own host.
    const url = `${this.origin}/2010-04-01/Accounts/${options.accountSid}/Recordings/${options.recordingSid}.${options.format}`;
    let response: Response;
    try {
      response = await fetch(url, {
        headers: { Authorization: `Basic ${Buffer.from(`${this.options.accountSid}:${this.options.authToken}`).toString('base64')}` },
        signal: AbortSignal.any([AbortSignal.timeout(this.timeoutMs * 4), ...(options.abortSignal ? [options.abortSignal] : [])]),
      });
    } catch (error) {
      throw new TelephonyApiError(`fetching the recording failed: ${error instanceof Error ? error.message : String(error)}`);
    }
    if (!response.ok) {
      await response.body?.cancel();
      throw new TelephonyApiError(`fetching the recording failed: HTTP ${response.status}`, response.status);
    }
    const bytes = new Uint8Array(await response.arrayBuffer());
    return { bytes, contentType: response.headers.get('content-type')?.split(';')[0].trim() || (options.format === 'mp3' ? 'audio/mpeg' : 'audio/wav') };
  }
}

function asTelephonyError(error: unknown, context: string): TelephonyApiError {
  if (error instanceof TelephonyApiError) return error;
  const rest = error as { status?: number; code?: number; message?: string };
  return new TelephonyApiError(`${context}: ${rest.message ?? String(error)}`, rest.status, rest.code);
}

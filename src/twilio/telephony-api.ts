/** What to dial, and where Twilio asks what to do once the call is answered. */
export interface PlaceCallOptions {
  /** E.164 number to call. */
  to: string;
  /** E.164 number of this account the call comes from. */
  from: string;
  /** The webhook Twilio fetches TwiML from when the call is answered. */
  url: string;
  /** Receives the call's status changes (the usual `/twilio/status`). */
  statusCallback: string;
  /**
   * Answering-machine detection. `DetectMessageEnd` waits for the greeting's
   * end (the beep) before fetching `url`, so a voicemail is left whole.
   */
  machineDetection?: 'Enable' | 'DetectMessageEnd';
  /** Longest detection, in seconds (Twilio's default is 30). */
  machineDetectionTimeoutSeconds?: number;
  /** Seconds to let it ring before giving up. */
  ringTimeoutSeconds?: number;
  abortSignal?: AbortSignal;
}

/** A call the provider accepted; it is queued, not yet answered. */
export interface PlacedCall {
  callSid: string;
  status: string;
}

/** A recording's audio, as the provider serves it. */
export interface RecordingMedia {
  bytes: Uint8Array;
  contentType: string;
}

/**
 * The telephony provider's REST API, as far as callme uses it: placing calls
 * and downloading call recordings. Webhooks are the other direction and live
 * in the route files. Errors are thrown as `TelephonyApiError`.
 */
export interface TelephonyApi {
  placeCall(options: PlaceCallOptions): Promise<PlacedCall>;
  /** Downloads a recording's media with the account's credentials. */
  fetchRecording(options: { accountSid: string; recordingSid: string; format: 'mp3' | 'wav'; abortSignal?: AbortSignal }): Promise<RecordingMedia>;
}

/** The provider refused or could not be reached; `status` is the HTTP status when there was one. */
export class TelephonyApiError extends Error {
  readonly code = 'telephony_api_failed';
  constructor(
    message: string,
    readonly status?: number,
    /** The provider's own error code (Twilio's 21xxx numbers). */
    readonly providerCode?: number,
  ) {
    super(message);
    this.name = 'TelephonyApiError';
  }

  get retryable(): boolean {
    return this.status === undefined || this.status === 429 || this.status >= 500;
  }
}

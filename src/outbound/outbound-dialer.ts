import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import type { ProfileSet } from '../assistant/profile.js';
import type { CallRow } from '../storage/call-repository.js';
import { TelephonyApiError, type TelephonyApi } from '../twilio/telephony-api.js';
import type { OutboundCallRepository, OutboundCallRow } from './outbound-call-repository.js';

/** What `POST /api/calls` and the CLI ask for. */
export interface OutboundRequest {
  /** E.164 number to call. */
  to: string;
  /** Profile id; the default profile when unset. */
  profile?: string;
  /** A purpose the profile defines (`reminder`, `confirmation`…). */
  purpose: string;
  /** Fills `{details}` in the purpose's lines, e.g. "your table for 4 on Friday at 7 pm". */
  details?: string;
  /** One of this account's numbers; `TWILIO_PHONE_NUMBER` when unset. */
  from?: string;
}

/** Why a call could not be placed; `code` maps to an HTTP status. */
export class OutboundCallError extends Error {
  constructor(
    readonly code: 'invalid_request' | 'not_configured' | 'provider_unavailable',
    message: string,
    readonly field?: string,
  ) {
    super(message);
    this.name = 'OutboundCallError';
  }
}

export interface OutboundDialerDeps {
  calls: OutboundCallRepository;
  profiles: ProfileSet;
  /** Absent without Twilio credentials: placing a call is refused as not configured. */
  telephony?: TelephonyApi;
  publicUrl: string;
  fromNumber?: string;
  logger: Logger;
}

const e164 = /^\+[1-9]\d{6,14}$/;
/** The answer webhook; the id in its path is the only reference to the call's purpose Twilio carries. */
export const outboundAnswerRoute = '/twilio/outbound/:outboundId';

/**
 * Places calls through the provider's REST API. Each call is stored before it
 * is dialled, with the lines it will say, under a random id that is the path
 * of its answer webhook. Answering-machine detection is synchronous with
 * `DetectMessageEnd`: Twilio fetches the webhook only once it knows who
 * answered and, for a machine, once its greeting has ended (the beep), so the
 * voicemail is never cut into and never needs a mid-call redirect.
 */
export class OutboundDialer {
  constructor(private readonly deps: OutboundDialerDeps) {}

  async place(request: OutboundRequest): Promise<OutboundCallRow> {
    const { profiles, telephony, calls, logger } = this.deps;
    if (typeof request.to !== 'string' || !e164.test(request.to)) throw new OutboundCallError('invalid_request', 'to: expected an E.164 number such as +15551234567', 'to');
    const from = request.from ?? this.deps.fromNumber;
    if (request.from !== undefined && !e164.test(request.from)) throw new OutboundCallError('invalid_request', 'from: expected an E.164 number', 'from');
    const profile = request.profile ? profiles.byId(request.profile) : profiles.defaultProfile;
    if (!profile) throw new OutboundCallError('invalid_request', `profile: no assistant profile "${request.profile}"`, 'profile');
    const purpose = profile.outbound.purposes[request.purpose];
    if (!purpose) {
      const known = Object.keys(profile.outbound.purposes).join(', ') || 'none';
      throw new OutboundCallError('invalid_request', `purpose: "${request.purpose}" is not one of the profile's purposes (${known})`, 'purpose');
    }
    const details = request.details?.trim().slice(0, 300) || undefined;
    if (!details && [purpose.greeting, purpose.voicemail].some((line) => line.includes('{details}'))) {
      throw new OutboundCallError('invalid_request', `details: the "${request.purpose}" purpose says them, e.g. "your table for 4 on Friday at 7 pm"`, 'details');
    }
    if (!telephony) throw new OutboundCallError('not_configured', 'placing calls needs TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN');
    if (!from) throw new OutboundCallError('not_configured', 'from: no number to call from (set TWILIO_PHONE_NUMBER or send "from")', 'from');

    const fill = (template: string) => template.replaceAll('{business}', profile.outbound.business ?? profile.name).replaceAll('{details}', details ?? '');
    const row = await calls.create({
      outbound_id: randomBytes(18).toString('base64url'),
      to_number: request.to,
      from_number: from,
      profile_id: profile.id,
      purpose: request.purpose,
      details: details ?? null,
      greeting: fill(purpose.greeting),
      voicemail: fill(purpose.voicemail),
    });
    try {
      const placed = await telephony.placeCall({
        to: request.to,
        from,
        url: `${this.deps.publicUrl}${outboundAnswerRoute.replace(':outboundId', row.outbound_id)}`,
        statusCallback: `${this.deps.publicUrl}/twilio/status`,
        machineDetection: 'DetectMessageEnd',
        machineDetectionTimeoutSeconds: 30,
      });
      await calls.markPlaced(row.outbound_id, placed.callSid);
      logger.info({ outboundId: row.outbound_id, callSid: placed.callSid, purpose: request.purpose }, 'outbound call placed');
      return (await calls.get(row.outbound_id)) ?? row;
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      await calls.markFailed(row.outbound_id, message);
      if (error instanceof TelephonyApiError && error.status !== undefined && error.status < 500 && error.status !== 401 && error.status !== 429) {
        throw new OutboundCallError('invalid_request', `the call was refused: ${message}`);
      }
      throw new OutboundCallError('provider_unavailable', `the call could not be placed: ${message}`);
    }
  }

  /** The purpose's greeting, for a call this server placed and a person answered. */
  async openingLine(call: CallRow): Promise<string | undefined> {
    if (!call.direction?.startsWith('outbound')) return undefined;
    return (await this.deps.calls.forCall(call.call_id))?.greeting;
  }

  /** What the assistant is told about a call it placed, for its system prompt. */
  async instructions(callId: string, callDirection?: string): Promise<string | undefined> {
    if (callDirection !== undefined && !callDirection.startsWith('outbound')) return undefined;
    const row = await this.deps.calls.forCall(callId);
    if (!row) return undefined;
    const profile = this.deps.profiles.byId(row.profile_id);
    const purpose = profile?.outbound.purposes[row.purpose];
    const said = `This is a call you placed (purpose: ${row.purpose}${row.details ? `; ${row.details}` : ''}). You opened with: "${row.greeting}"`;
    const extra = purpose?.instructions.replaceAll('{details}', row.details ?? '').replaceAll('{business}', profile?.outbound.business ?? profile?.name ?? '');
    return extra ? `${said}\n${extra}` : said;
  }
}

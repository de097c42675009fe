import type { FastifyInstance } from 'fastify';
import { HttpError } from '../errors.js';
import { registerOutboundApiRoutes } from '../outbound/outbound-api-routes.js';
import type { Services } from '../services.js';
import type { AdminContext } from './admin-context.js';
import { callSidPattern } from './admin-queries.js';
import { maskPhoneNumber } from './phone-mask.js';

/** A call recording as the dashboard and `GET /api/calls/{callSid}` show it. */
export interface RecordingSummary {
  recordingSid: string;
  status: string;
  source: string | null;
  channels: number | null;
  durationSeconds: number | null;
  /** Where the dashboard plays our copy; `null` when there is none (yet, or any more). */
  url: string | null;
  contentType: string | null;
  sizeBytes: number | null;
  /** Why there is no copy: not downloaded, or deleted under audio retention. */
  note: string | null;
  startedAt: string | null;
}

/** A hand-off to a person. */
export interface TransferSummary {
  to: string;
  summary: string;
  /** `dialing`, then Twilio's `DialCallStatus`: `completed`, `busy`, `no-answer`, `failed`… */
  status: string;
  durationSeconds: number | null;
  message: string | null;
  at: string;
}

/** The request behind a call this server placed. */
export interface OutboundSummary {
  purpose: string;
  details: string | null;
  status: string;
  answeredBy: string | null;
  greeting: string;
  voicemail: string;
}

export interface TelephonyDetail {
  recordings: RecordingSummary[];
  transfers: TransferSummary[];
  outbound: OutboundSummary | null;
}

/** A call's recordings, transfers and outbound request, for its page and its API detail. */
export async function loadTelephonyDetail(services: Services, callSid: string, maskNumbers: boolean): Promise<TelephonyDetail> {
  const [recordings, transfers, outbound] = await Promise.all([
    services.recordingRepository.listForCall(callSid),
    services.transfers.listForCall(callSid),
    services.outboundCalls.forCall(callSid),
  ]);
  const number = (value: string) => (maskNumbers ? maskPhoneNumber(value) : value);
  return {
    recordings: recordings.map((row) => {
      const playable = row.filename !== null && row.audio_deleted_at === null;
      return {
        recordingSid: row.recording_sid,
        status: row.status,
        source: row.source,
        channels: row.channels,
        durationSeconds: row.duration_seconds,
        url: playable ? recordingAudioUrl(callSid, row.recording_sid) : null,
        contentType: playable ? row.content_type : null,
        sizeBytes: playable ? row.size_bytes : null,
        note: row.audio_deleted_at ? 'deleted under the audio retention setting' : playable ? null : row.fetch_error,
        startedAt: row.started_at?.toISOString() ?? null,
      };
    }),
    transfers: transfers.map((row) => ({
      to: number(row.to_number),
      summary: row.summary,
      status: row.status,
      durationSeconds: row.dial_duration_seconds,
      message: row.message,
      at: row.created_at.toISOString(),
    })),
    outbound: outbound
      ? {
          purpose: outbound.purpose,
          details: outbound.details,
          status: outbound.status,
          answeredBy: outbound.answered_by,
          greeting: outbound.greeting,
          voicemail: outbound.voicemail,
        }
      : null,
  };
}

/** Served behind the admin sign-in, never on the public `/audio` route Twilio fetches from. */
export function recordingAudioUrl(callSid: string, recordingSid: string): string {
  return `/api/calls/${callSid}/recordings/${recordingSid}/audio`;
}

/** The admin routes for recordings and outbound calls (inside the admin scope: signed in, CSRF-checked). */
export async function registerTelephonyAdminRoutes(app: FastifyInstance, context: AdminContext): Promise<void> {
  const { services } = context;
  await registerOutboundApiRoutes(app, services);

  app.get<{ Params: { callSid: string; recordingSid: string } }>('/api/calls/:callSid/recordings/:recordingSid/audio', async (request, reply) => {
    const { callSid, recordingSid } = request.params;
    if (!callSidPattern.test(callSid) || !/^RE[0-9a-fA-F]{32}$/.test(recordingSid)) throw new HttpError('not_found', 'no such recording');
    const recording = (await services.recordingRepository.listForCall(callSid)).find((row) => row.recording_sid === recordingSid);
    if (!recording?.filename || recording.audio_deleted_at) throw new HttpError('not_found', 'no such recording, or its audio is not kept');
    const file = await services.audioStore.get(recording.filename);
    if (!file) throw new HttpError('not_found', 'the recording\'s audio is missing from the audio store');
    return reply
      .header('Content-Type', file.info.contentType)
      .header('Content-Length', String(file.info.sizeBytes))
      .header('Content-Disposition', `inline; filename="${recordingSid}.${recording.filename.split('.').pop()}"`)
      .send(file.body);
  });
}

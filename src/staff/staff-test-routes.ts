import multipart from '@fastify/multipart';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import type { AdminContext } from '../admin/admin-context.js';
import { HttpError } from '../errors.js';
import { isAbortError } from '../providers/provider-error.js';
import { StaffConversation, type StaffReply } from './staff-conversation.js';

/** An uploaded recording of a few sentences; Whisper takes up to 25 MB. */
const maxAudioBytes = 10 * 1024 * 1024;

const profileId = z.string().regex(/^[a-z0-9][a-z0-9-]{0,63}$/, 'expected a profile id');
const sessionId = z.string().regex(/^ST[0-9a-f]{32}$/, 'expected a session id from an earlier answer');
const textSchema = z.object({
  profile: profileId.optional(),
  sessionId: sessionId.optional(),
  text: z.string().max(2_000, 'expected at most 2000 characters').optional(),
  /** Ends the session (stored as a completed call). */
  end: z.boolean().optional(),
});
const audioFieldsSchema = z.object({ profile: profileId.optional(), sessionId: sessionId.optional() });

/** File extensions the transcription API recognises, by content type. */
const audioExtensions: Record<string, string> = {
  'audio/wav': 'wav', 'audio/x-wav': 'wav', 'audio/wave': 'wav', 'audio/mpeg': 'mp3', 'audio/mp3': 'mp3', 'audio/mp4': 'm4a',
  'audio/x-m4a': 'm4a', 'audio/m4a': 'm4a', 'audio/ogg': 'ogg', 'audio/webm': 'webm', 'audio/flac': 'flac', 'audio/x-flac': 'flac',
};

/**
 * Talking to an assistant without a phone, for staff (VoiceHunte's
 * `/mvp/text` and `/mvp/audio`): registered inside the admin scope, so the
 * same sign-in, token and CSRF checks guard them as the admin API.
 */
export async function registerStaffTestRoutes(app: FastifyInstance, context: AdminContext): Promise<void> {
  const conversation = new StaffConversation(context.services);
  const staff = (request: FastifyRequest) => {
    const principal = context.principal(request);
    return principal && 'subject' in principal ? principal.subject : 'local';
  };

  await app.register(async (scope) => {
    await scope.register(multipart, { limits: { fileSize: maxAudioBytes, files: 1, fields: 10, fieldSize: 1_000 } });
    // A recording may also come as the raw body, e.g. `curl --data-binary @question.wav -H 'content-type: audio/wav'`.
    scope.addContentTypeParser(/^audio\//, { parseAs: 'buffer', bodyLimit: maxAudioBytes }, (_request, body, done) => done(null, body));

    scope.post('/mvp/text', async (request, reply) => {
      const parsed = textSchema.safeParse(request.body ?? {});
      if (!parsed.success) throw invalid(parsed.error);
      const { profile, sessionId: session, text, end } = parsed.data;
      if (end) {
        if (!session) throw new HttpError('invalid_request', 'end needs a sessionId', { field: 'sessionId' });
        await conversation.end(session);
        return reply.send({ sessionId: session, ended: true });
      }
      if (session && !text?.trim()) throw new HttpError('invalid_request', 'text is required to continue a session', { field: 'text' });
      return reply.send(await conversation.exchange({ profileId: profile, sessionId: session, text, staff: staff(request) }));
    });

    scope.post('/mvp/audio', async (request, reply) => {
      const upload = await readUpload(request);
      const fields = audioFieldsSchema.safeParse(upload.fields);
      if (!fields.success) throw invalid(fields.error);
      const transcriptionModel = context.services.transcriptionModel;
      if (!transcriptionModel) throw new HttpError('not_configured', 'transcribing audio needs OPENAI_API_KEY');
      const { profiles } = context.services;
      const session = fields.data.sessionId ? await context.services.repository.getCall(fields.data.sessionId) : undefined;
      const profile = (session && profiles.byId(session.profile_id)) ?? (fields.data.profile ? profiles.byId(fields.data.profile) : profiles.defaultProfile);
      if (!profile) throw new HttpError('not_found', `no assistant profile "${fields.data.profile}"`, { field: 'profile' });
      let transcript: string;
      try {
        // No language hint when the profile allows several: the model then hears which one it is, and the session follows.
        const hint = profile.languages.length === 0 ? profile.language.slice(0, 2) : undefined;
        transcript = (await transcriptionModel.transcribe({ audio: upload.audio, filename: upload.filename, model: profile.stream.transcriptionModel, language: hint })).text;
      } catch (error) {
        if (isAbortError(error)) throw error;
        request.log.warn({ err: error }, 'staff test audio could not be transcribed');
        throw new HttpError('provider_unavailable', `the audio could not be transcribed: ${error instanceof Error ? error.message : String(error)}`);
      }
      if (!transcript.trim()) throw new HttpError('invalid_request', 'no speech was heard in the audio', { field: 'file' });
      const answer: StaffReply = await conversation.exchange({ profileId: profile.id, sessionId: fields.data.sessionId, text: transcript, staff: staff(request) });
      return reply.send({ ...answer, transcript });
    });
  });
}

/** The audio and its fields, from a multipart form (`file`, `profile`, `sessionId`) or a raw `audio/*` body with the fields in the query. */
async function readUpload(request: FastifyRequest): Promise<{ audio: Uint8Array; filename: string; fields: Record<string, string> }> {
  if (request.isMultipart()) {
    const fields: Record<string, string> = {};
    let file: { audio: Buffer; filename: string } | undefined;
    try {
      for await (const part of request.parts()) {
        if (part.type === 'file') {
          if (part.fieldname !== 'file') {
            part.file.resume();
            continue;
          }
          const audio = await part.toBuffer();
          file = { audio, filename: safeFilename(part.filename, part.mimetype) };
        } else if (typeof part.value === 'string') fields[part.fieldname] = part.value;
      }
    } catch (error) {
      // The multipart parser's own errors ("Boundary not found", "Unexpected end of multipart data") carry no status: the body is broken.
      if ((error as { statusCode?: number }).statusCode) throw error;
      throw new HttpError('invalid_request', 'the body is not valid multipart/form-data', { field: 'file' });
    }
    if (!file || file.audio.length === 0) throw new HttpError('invalid_request', 'expected an audio file in the "file" field', { field: 'file' });
    return { ...file, fields };
  }
  const body = request.body;
  if (!Buffer.isBuffer(body) || body.length === 0) {
    throw new HttpError('unsupported_media_type', 'send the audio as multipart/form-data (field "file") or as an audio/* body');
  }
  const query = (request.query ?? {}) as Record<string, unknown>;
  const fields = Object.fromEntries(Object.entries(query).filter((entry): entry is [string, string] => typeof entry[1] === 'string'));
  return { audio: body, filename: safeFilename(undefined, request.headers['content-type']), fields };
}

/** A name the transcription API can tell the format from, and nothing of the client's path. */
function safeFilename(given: string | undefined, contentType: string | undefined): string {
  const extension = /\.([a-z0-9]{2,5})$/i.exec(given ?? '')?.[1]?.toLowerCase() ?? audioExtensions[(contentType ?? '').split(';')[0].trim().toLowerCase()] ?? 'wav';
  return `upload.${extension}`;
}

function invalid(error: z.ZodError): HttpError {
  const issue = error.issues[0];
  return new HttpError('invalid_request', issue ? `${String(issue.path[0] ?? 'body')}: ${issue.message}` : 'invalid request', issue ? { field: String(issue.path[0] ?? '') } : undefined);
}

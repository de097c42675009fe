import { Readable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { HttpError } from '../errors.js';
import { isAbortError, toProviderError } from '../providers/provider-error.js';
import { speechContentTypes, speechFormats, speechModels, speechVoices } from '../providers/speech-model.js';
import type { Services } from '../services.js';
import { apiAccessGuard } from './api-access.js';

/** OpenAI's own limit on the text of one speech request. */
const maxTextLength = 4096;

const ttsRequestSchema = z.object({
  text: z
    .string({ message: 'text is required and must be a string' })
    .trim()
    .min(1, 'text must not be empty')
    .max(maxTextLength, `text must be at most ${maxTextLength} characters`),
  voice: z.enum(speechVoices, { message: `voice must be one of ${speechVoices.join(', ')}` }).default('alloy'),
  model: z.enum(speechModels, { message: `model must be one of ${speechModels.join(', ')}` }).default('tts-1'),
  response_format: z.enum(speechFormats, { message: `response_format must be one of ${speechFormats.join(', ')}` }).default('mp3'),
  speed: z.number({ message: 'speed must be a number' }).min(0.25, 'speed must be at least 0.25').max(4, 'speed must be at most 4.0').default(1),
  instructions: z.string().max(4096).optional(),
});

/**
 * `POST /tts/stream`, as VoiceHunte documents it: the provider's audio is
 * piped to the client chunk by chunk, so the first bytes leave before the
 * provider has finished.
 */
export async function registerTtsRoutes(app: FastifyInstance, services: Services): Promise<void> {
  app.post('/tts/stream', { preHandler: apiAccessGuard(services.config.apiToken), bodyLimit: 64 * 1024 }, async (request, reply) => {
    if (!/^application\/json\b/i.test(request.headers['content-type'] ?? '')) {
      throw new HttpError('unsupported_media_type', 'send the request as JSON with "Content-Type: application/json"');
    }
    const body = request.body;
    if (typeof body !== 'object' || body === null || Array.isArray(body)) {
      throw new HttpError('invalid_request', 'the body must be a JSON object such as {"text": "Hello"}', { field: 'body' });
    }
    const parsed = ttsRequestSchema.safeParse(body);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw new HttpError('invalid_request', issue.message, { field: String(issue.path[0] ?? 'body') });
    }
    const speechModel = services.speechModel;
    if (!speechModel) throw new HttpError('not_configured', 'speech synthesis needs OPENAI_API_KEY to be set');

    const options = parsed.data;
    const abort = new AbortController();
    request.raw.on('close', () => {
      if (!reply.raw.writableEnded) abort.abort(new Error('client went away'));
    });
    let audio: AsyncIterable<Uint8Array>;
    try {
      audio = await speechModel.synthesize({
        text: options.text,
        voice: options.voice,
        model: options.model,
        format: options.response_format,
        speed: options.speed,
        instructions: options.instructions,
        abortSignal: abort.signal,
      });
    } catch (error) {
      const providerError = toProviderError(error);
      request.log.warn({ err: providerError }, 'speech provider failed');
      throw new HttpError('provider_unavailable', `the speech provider failed: ${providerError.message}`, { providerCode: providerError.code });
    }
    const stream = Readable.from(audio, { objectMode: false });
    stream.on('error', (error) => {
      if (!isAbortError(error)) request.log.warn({ err: error }, 'speech stream broke off');
    });
    return reply
      .header('Content-Type', speechContentTypes[options.response_format])
      .header('Cache-Control', 'no-store')
      .header('X-Accel-Buffering', 'no')
      .send(stream);
  });
}

import type { FastifyInstance } from 'fastify';
import { audioNamePattern } from '../audio/audio-store.js';
import { HttpError } from '../errors.js';
import type { Services } from '../services.js';
import { recordingAudioModel } from '../recordings/recording-archive.js';

/**
 * `GET /audio/{filename}`: the audio Twilio's `<Play>` fetches. Names are
 * random (unguessable) and checked against a strict pattern before they reach
 * the store, so no path can escape it. A cached phrase never changes under its
 * name, so it may be cached for a year by Twilio's media proxies.
 */
export async function registerAudioRoutes(app: FastifyInstance, services: Services): Promise<void> {
  app.get<{ Params: { filename: string } }>('/audio/:filename', async (request, reply) => {
    const { filename } = request.params;
    if (!audioNamePattern.test(filename)) throw new HttpError('not_found', 'no such audio file');
    const row = await services.repository.getAudioByFilename(filename);
    // Call recordings hold the caller's voice: only the dashboard and the API serve them, behind sign-in.
    if (!row || row.deleted_at || row.model === recordingAudioModel) throw new HttpError('not_found', 'no such audio file');
    const etag = `"${row.audio_id}"`;
    const cacheControl = row.cache_key ? 'public, max-age=31536000, immutable' : 'public, max-age=86400';
    if (request.headers['if-none-match'] === etag) {
      return reply.code(304).header('ETag', etag).header('Cache-Control', cacheControl).send();
    }
    const file = await services.audioStore.get(filename);
    if (!file) {
      // Recorded in the shared database but absent here: another instance wrote it to a store this one cannot see.
      request.log.warn({ filename }, 'audio file is in the database but not in the audio store; instances must share AUDIO_DIR or use AUDIO_STORE=s3');
      throw new HttpError('not_found', 'no such audio file');
    }
    return reply
      .header('Content-Type', file.info.contentType)
      .header('Content-Length', String(file.info.sizeBytes))
      .header('ETag', etag)
      .header('Cache-Control', cacheControl)
      .send(file.body);
  });
}

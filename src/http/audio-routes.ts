import type { FastifyInstance, FastifyReply } from 'fastify';
import { audioNamePattern } from '../audio/audio-store.js';
import { replyAudioMintedAt } from '../audio/pending-audio.js';
import { encodeWav } from '../audio/wav.js';
import { HttpError } from '../errors.js';
import type { Services } from '../services.js';
import type { AudioFileRow } from '../storage/call-repository.js';
import { recordingAudioModel } from '../recordings/recording-archive.js';
import { unsynthesizedAudioModel } from '../conversation/speech-renderer.js';

/** How long after its name was made a reply piece may still be being synthesized on another instance. */
const pendingElsewhereMs = 15_000;

/** A tenth of a second of μ-law silence: what a piece whose synthesis failed plays instead. */
const silence = encodeWav({ sampleRate: 8000, channels: 1, bitsPerSample: 8, format: 'mulaw', data: new Uint8Array(800).fill(0xff) });

/**
 * `GET /audio/{filename}`: the audio Twilio's `<Play>` fetches. Names are
 * random (unguessable) and checked against a strict pattern before they reach
 * the store, so no path can escape it. A cached phrase never changes under its
 * name, so it may be cached for a year by Twilio's media proxies.
 *
 * A reply piece may be named before its audio exists (see `PendingAudio`):
 * the instance synthesizing it answers the download the moment the audio is
 * whole; another instance waits for the file to be stored.
 */
export async function registerAudioRoutes(app: FastifyInstance, services: Services): Promise<void> {
  app.get<{ Params: { filename: string } }>('/audio/:filename', async (request, reply) => {
    const { filename } = request.params;
    if (!audioNamePattern.test(filename)) throw new HttpError('not_found', 'no such audio file');
    const pending = services.pendingAudio.get(filename);
    if (pending) {
      const wav = await pending;
      // Its synthesis failed: a moment of silence, and the words follow in Twilio's voice.
      if (!wav) return sendWav(reply.header('Cache-Control', 'no-store'), silence);
      return sendWav(reply.header('ETag', `"${filename.slice(0, -4)}"`).header('Cache-Control', replyCacheControl), wav);
    }
    const row = (await services.repository.getAudioByFilename(filename)) ?? (await storedElsewhere(services, filename));
    // Call recordings hold the caller's voice: only the dashboard and the API serve them, behind sign-in.
    if (!row || row.deleted_at || row.model === recordingAudioModel) throw new HttpError('not_found', 'no such audio file');
    // Its synthesis failed on the instance that named it, as above.
    if (row.model === unsynthesizedAudioModel) return sendWav(reply.header('Cache-Control', 'no-store'), silence);
    const etag = `"${row.audio_id}"`;
    const cacheControl = row.cache_key ? 'public, max-age=31536000, immutable' : replyCacheControl;
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

const replyCacheControl = 'public, max-age=86400';

function sendWav(reply: FastifyReply, wav: Uint8Array) {
  return reply
    .header('Content-Type', 'audio/wav')
    .header('Content-Length', String(wav.length))
    .send(Buffer.from(wav.buffer, wav.byteOffset, wav.length));
}

/**
 * A reply piece named moments ago by another instance, still being
 * synthesized there: its row appears once its file is stored. Names that were
 * not made recently are not waited for.
 */
async function storedElsewhere(services: Services, filename: string): Promise<AudioFileRow | undefined> {
  const mintedAt = replyAudioMintedAt(filename);
  if (mintedAt === undefined) return undefined;
  const until = mintedAt + pendingElsewhereMs;
  if (Date.now() > until || mintedAt > Date.now() + 1_000) return undefined;
  // Checked often: the caller hears nothing until this answers (at most 100 ms late, about ten reads a second).
  for (let waitMs = 10; Date.now() < until; waitMs = Math.min(waitMs * 2, 100)) {
    await new Promise((resolve) => setTimeout(resolve, Math.min(waitMs, until - Date.now())));
    const row = await services.repository.getAudioByFilename(filename);
    // The row and the file are written at once: both must be there (a failed synthesis has no file).
    if (row && (row.model === unsynthesizedAudioModel || (await services.audioStore.has(filename)))) return row;
  }
  return undefined;
}

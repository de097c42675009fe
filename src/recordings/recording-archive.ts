import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import type { AudioStore } from '../audio/audio-store.js';
import { newAudioName } from '../audio/disk-audio-store.js';
import type { AudioRetention } from '../config.js';
import type { CallRepository } from '../storage/call-repository.js';
import type { TelephonyApi } from '../twilio/telephony-api.js';
import type { RecordingRepository } from './recording-repository.js';

/** One recording status callback, parsed. */
export interface RecordingCallback {
  accountSid?: string;
  callSid: string;
  recordingSid: string;
  /** `in-progress`, `completed`, `absent` or `failed`. */
  status: string;
  recordingUrl?: string;
  durationSeconds?: number;
  channels?: number;
  source?: string;
  startedAt?: Date;
}

export interface RecordingArchiveDeps {
  recordings: RecordingRepository;
  repository: CallRepository;
  audioStore: AudioStore;
  /** Absent without Twilio credentials: recordings are listed but not downloaded. */
  telephony?: TelephonyApi;
  accountSid?: string;
  retention: AudioRetention;
  logger: Logger;
}

/** Media format fetched from Twilio: MP3 is a quarter of the bytes of its 8 kHz 16-bit WAV. */
const fetchFormat = 'mp3';

/**
 * Keeps Twilio's recordings of calls: each status callback updates the
 * `recordings` row, and a `completed` recording is downloaded (with the
 * account's credentials) into the audio store, as the call's own audio file,
 * so that audio retention deletes it with the rest of the call's audio.
 * Downloads run after the callback is answered: Twilio does not wait for them.
 */
export class RecordingArchive {
  private readonly pending = new Set<Promise<void>>();

  constructor(private readonly deps: RecordingArchiveDeps) {}

  /** Stores the callback; returns false when the call is unknown here (nothing stored). */
  async record(callback: RecordingCallback): Promise<boolean> {
    const call = await this.deps.repository.getCall(callback.callSid);
    if (!call) return false;
    await this.deps.recordings.upsert({
      recordingSid: callback.recordingSid,
      callId: callback.callSid,
      status: callback.status,
      source: callback.source,
      channels: callback.channels,
      durationSeconds: callback.durationSeconds !== undefined && callback.durationSeconds >= 0 ? callback.durationSeconds : undefined,
      sourceUrl: callback.recordingUrl,
      startedAt: callback.startedAt,
    });
    if (callback.status === 'completed') this.track(this.download(callback));
    return true;
  }

  /** Resolves once every download started so far has finished (tests, shutdown). */
  async settle(): Promise<void> {
    while (this.pending.size > 0) await Promise.allSettled([...this.pending]);
  }

  private track(work: Promise<void>): void {
    const guarded = work.catch((error: unknown) => this.deps.logger.error({ err: error }, 'recording download failed unexpectedly'));
    this.pending.add(guarded);
    void guarded.finally(() => this.pending.delete(guarded));
  }

  private async download(callback: RecordingCallback): Promise<void> {
    const { recordings, repository, audioStore, telephony, logger } = this.deps;
    const existing = await recordings.get(callback.recordingSid);
    if (existing?.audio_id) return;
    const call = await repository.getCall(callback.callSid);
    // The call's audio is already gone (AUDIO_RETENTION=delete, or its days ran out): the recording follows it.
    if (this.deps.retention.kind === 'delete' || call?.audio_deleted_at) {
      await recordings.markFetchFailed(callback.recordingSid, 'not kept: the call\'s audio was deleted under AUDIO_RETENTION');
      return;
    }
    const accountSid = this.deps.accountSid ?? callback.accountSid;
    if (!telephony || !accountSid) {
      await recordings.markFetchFailed(callback.recordingSid, 'not downloaded: TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN are needed');
      return;
    }
    let media;
    try {
      media = await telephony.fetchRecording({ accountSid, recordingSid: callback.recordingSid, format: fetchFormat });
    } catch (error) {
      logger.warn({ err: error, callSid: callback.callSid, recordingSid: callback.recordingSid }, 'could not download a call recording');
      await recordings.markFetchFailed(callback.recordingSid, error instanceof Error ? error.message : String(error));
      return;
    }
    const filename = newAudioName(fetchFormat);
    const contentType = media.contentType.startsWith('audio/') ? media.contentType : 'audio/mpeg';
    await audioStore.put(filename, media.bytes, contentType);
    const audioId = randomBytes(12).toString('base64url');
    await repository.insertAudioFile({
      audio_id: audioId,
      filename,
      call_id: callback.callSid,
      turn_id: null,
      cache_key: null,
      text: 'Call recording',
      voice: 'twilio',
      model: recordingAudioModel,
      format: fetchFormat,
      content_type: contentType,
      size_bytes: media.bytes.length,
      duration_ms: callback.durationSeconds !== undefined && callback.durationSeconds >= 0 ? callback.durationSeconds * 1000 : null,
    });
    if (!(await recordings.attachAudio(callback.recordingSid, audioId))) {
      // A duplicate callback's download won: this copy is not needed.
      await audioStore.delete(filename).catch(() => {});
      await repository.markAudioDeleted([audioId]);
    }
  }
}

/** `audio_files.model` of a call recording: never served on the public `/audio` route Twilio uses. */
export const recordingAudioModel = 'twilio-recording';

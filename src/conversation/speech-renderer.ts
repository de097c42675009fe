import { createHash } from 'node:crypto';
import type { AudioStore } from '../audio/audio-store.js';
import type { PendingAudio, PendingReply } from '../audio/pending-audio.js';
import { newAudioName } from '../audio/disk-audio-store.js';
import { audioDurationMs, createPcm24kToMulaw8k, encodeWav } from '../audio/wav.js';
import type { AssistantProfile } from '../assistant/profile.js';
import type { SpeechModel } from '../providers/speech-model.js';
import type { CallRepository } from '../storage/call-repository.js';

/** A piece of the reply as Twilio will play it: an audio file, or text for `<Say>`. */
export type RenderedSpeech =
  | { kind: 'audio'; audioId: string; filename: string }
  /** `served`: the audio reached the caller under a name given out early, but was not stored. */
  | { kind: 'say'; served?: boolean };

/**
 * A reserved reply piece whose audio was made and served from memory, but
 * could not be stored: the caller hears it, the database has no file for it.
 */
export class AudioNotStoredError extends Error {
  constructor(readonly reason: unknown) {
    super(`reply audio was served but not stored: ${reason instanceof Error ? reason.message : String(reason)}`);
  }
}

/** The model of an `audio_files` row for a reply piece whose synthesis failed: it has no file. */
export const unsynthesizedAudioModel = 'unsynthesized';

export interface RenderOwner {
  callId: string;
  turnId: number;
}

/**
 * Turns text into audio Twilio can `<Play>`. OpenAI is asked for raw 24 kHz
 * PCM, which is converted here to 8 kHz μ-law WAV: the telephone network's
 * own encoding, so Twilio plays it without transcoding, and a sixth of the
 * bytes to download compared with the PCM.
 * Fixed phrases (greetings, reprompts, apologies) are content-addressed and
 * synthesized once for all calls; replies belong to their call.
 */
export class SpeechRenderer {
  private readonly inFlight = new Map<string, Promise<RenderedSpeech>>();

  constructor(
    private readonly deps: { speechModel?: SpeechModel; audioStore: AudioStore; repository: CallRepository; pendingAudio?: PendingAudio },
  ) {}

  /** True when the profile's speech is synthesized here rather than by Twilio's `<Say>`. */
  synthesizes(profile: AssistantProfile): boolean {
    return this.deps.speechModel !== undefined && profile.speech === 'openai';
  }

  /** A fixed phrase: looked up in the cache, synthesized once when missing. */
  async renderPhrase(text: string, profile: AssistantProfile, abortSignal?: AbortSignal): Promise<RenderedSpeech> {
    if (!this.synthesizes(profile)) return { kind: 'say' };
    const key = cacheKey(text, profile);
    const pending = this.inFlight.get(key);
    if (pending) return pending;
    const work = (async (): Promise<RenderedSpeech> => {
      const cached = await this.deps.repository.findCachedAudio(key);
      if (cached && (await this.deps.audioStore.has(cached.filename))) {
        return { kind: 'audio', audioId: cached.audio_id, filename: cached.filename };
      }
      // A row whose file is gone (AUDIO_DIR emptied, another instance's disk) is the one the new file replaces.
      return this.synthesize(text, profile, { cacheKey: key, replacing: cached?.filename }, abortSignal);
    })();
    this.inFlight.set(key, work);
    try {
      return await work;
    } finally {
      this.inFlight.delete(key);
    }
  }

  /**
   * A piece of a reply, stored as the call's own audio. Under a `reserved`
   * name (see {@link reserveReply}) it is served from memory while it is
   * synthesized, so a webhook may name it before the audio exists.
   */
  async renderReply(
    text: string,
    profile: AssistantProfile,
    owner: RenderOwner,
    abortSignal?: AbortSignal,
    reserved?: PendingReply,
  ): Promise<RenderedSpeech> {
    if (!this.synthesizes(profile)) {
      reserved?.failed();
      return { kind: 'say' };
    }
    let served = false;
    const onAudio = (wav: Uint8Array) => {
      served = true;
      reserved?.ready(wav);
    };
    try {
      const rendered = await this.synthesize(text, profile, { owner, filename: reserved?.filename, onAudio }, abortSignal);
      reserved?.stored();
      return rendered;
    } catch (error) {
      reserved?.failed();
      if (reserved && !served) await this.noteUnsynthesized(reserved.filename, text, profile, owner);
      throw reserved && served ? new AudioNotStoredError(error) : error;
    }
  }

  /**
   * A name given out early whose audio will never exist: recorded, so that
   * another instance asked for it plays silence at once (the words follow in
   * Twilio's voice) instead of waiting out the name's window and answering 404.
   * Only this instance could have served it, so a failure here costs only that.
   */
  private async noteUnsynthesized(filename: string, text: string, profile: AssistantProfile, owner: RenderOwner): Promise<void> {
    await this.deps.repository
      .insertAudioFile({
        audio_id: filename.slice(0, -4),
        filename,
        call_id: owner.callId,
        turn_id: owner.turnId,
        cache_key: null,
        text,
        voice: profile.voice,
        model: unsynthesizedAudioModel,
        format: 'wav',
        content_type: 'audio/wav',
        size_bytes: 0,
        duration_ms: 0,
      })
      .catch(() => undefined);
  }

  /** A name for a reply piece that is served (when it is whole) before it is stored; none when replies are not synthesized here. */
  reserveReply(profile: AssistantProfile): PendingReply | undefined {
    return this.synthesizes(profile) ? this.deps.pendingAudio?.reserve() : undefined;
  }

  private async synthesize(
    text: string,
    profile: AssistantProfile,
    target: { cacheKey?: string; replacing?: string; owner?: RenderOwner; filename?: string; onAudio?: (wav: Uint8Array) => void },
    abortSignal?: AbortSignal,
  ): Promise<RenderedSpeech> {
    const speechModel = this.deps.speechModel!;
    // Converted as it streams in, so no call's event loop stalls on a whole reply's conversion at the end.
    const converter = createPcm24kToMulaw8k();
    const mulaw: Uint8Array[] = [];
    const stream = await speechModel.synthesize({
      text,
      voice: profile.voice,
      model: profile.ttsModel,
      speed: profile.speed,
      format: 'pcm',
      abortSignal,
    });
    for await (const chunk of stream) mulaw.push(converter.push(chunk));
    mulaw.push(converter.flush());
    const wav = encodeWav({ sampleRate: 8000, channels: 1, bitsPerSample: 8, format: 'mulaw', data: Buffer.concat(mulaw) });
    const filename = target.filename ?? newAudioName('wav');
    target.onAudio?.(wav);
    const file = {
      audio_id: filename.slice(0, -4),
      filename,
      call_id: target.owner?.callId ?? null,
      turn_id: target.owner?.turnId ?? null,
      cache_key: target.cacheKey ?? null,
      text,
      voice: profile.voice,
      model: profile.ttsModel,
      format: 'wav',
      content_type: 'audio/wav',
      size_bytes: wav.length,
      // The column holds whole milliseconds; any length not a multiple of 8 μ-law bytes is fractional.
      duration_ms: roundedOrNull(audioDurationMs(wav, 'wav')),
    };
    if (target.cacheKey === undefined) {
      // A reply's own audio: no request reads the store for it until both of these
      // are done (this instance serves a name given out early from memory until
      // then; another one waits for the row and the file), so they are written at once.
      const [stored, row] = await Promise.allSettled([
        // A name given out early may be read by another instance as soon as it exists: written whole, then renamed.
        this.deps.audioStore.put(filename, wav, 'audio/wav', { newName: target.filename === undefined }),
        this.deps.repository.insertAudioFile(file),
      ]);
      if (stored.status === 'rejected') {
        if (row.status === 'fulfilled') await this.deps.repository.markAudioDeleted([row.value.audio_id]).catch(() => undefined);
        throw stored.reason;
      }
      if (row.status === 'rejected') {
        await this.deps.audioStore.delete(filename).catch(() => undefined);
        throw row.reason;
      }
      return { kind: 'audio', audioId: row.value.audio_id, filename };
    }
    await this.deps.audioStore.put(filename, wav, 'audio/wav', { newName: true });
    const row = await this.deps.repository.insertAudioFile(file, { replacing: target.replacing });
    // Another instance stored this phrase first: its file is the one every URL names.
    if (row.filename !== filename) await this.deps.audioStore.delete(filename);
    return { kind: 'audio', audioId: row.audio_id, filename: row.filename };
  }
}

function cacheKey(text: string, profile: AssistantProfile): string {
  return createHash('sha256')
    .update(JSON.stringify([text, profile.voice, profile.ttsModel, profile.speed, 'wav-mulaw-8k']))
    .digest('hex');
}

function roundedOrNull(value: number | undefined): number | null {
  return value === undefined ? null : Math.round(value);
}

import type { AudioStoreConfig } from '../config.js';
import type { AudioStore } from './audio-store.js';
import { DiskAudioStore } from './disk-audio-store.js';
import { RecentAudioStore } from './recent-audio-store.js';
import { S3AudioStore } from './s3-audio-store.js';

/**
 * Files written in the last minute stay in memory too (up to 32 MB): Twilio
 * fetches a reply's pieces moments after they are written. A minute of 200
 * calls' replies is about that size.
 */
const recentAudio = { maxBytes: 32 * 1024 * 1024, keepMs: 60_000 };

/** The audio store the configuration names: `AUDIO_DIR` on disk (the default) or an S3-compatible bucket, behind a short memory of recent files. */
export function openAudioStore(config: AudioStoreConfig, audioDir: string): RecentAudioStore {
  return new RecentAudioStore(backingStore(config, audioDir), recentAudio);
}

function backingStore(config: AudioStoreConfig, audioDir: string): AudioStore {
  if (config.kind === 'disk') return new DiskAudioStore(audioDir);
  return new S3AudioStore({
    bucket: config.bucket,
    region: config.region,
    endpoint: config.endpoint,
    forcePathStyle: config.forcePathStyle,
    credentials:
      config.accessKeyId && config.secretAccessKey ? { accessKeyId: config.accessKeyId, secretAccessKey: config.secretAccessKey } : undefined,
  });
}

import type { AudioStoreConfig } from '../config.js';
import type { AudioStore } from './audio-store.js';
import { DiskAudioStore } from './disk-audio-store.js';
import { S3AudioStore } from './s3-audio-store.js';

/** The audio store the configuration names: `AUDIO_DIR` on disk (the default) or an S3-compatible bucket. */
export function openAudioStore(config: AudioStoreConfig, audioDir: string): AudioStore {
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

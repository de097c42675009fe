import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../config.js';
import { DiskAudioStore } from './disk-audio-store.js';
import { openAudioStore } from './open-audio-store.js';
import { S3AudioStore } from './s3-audio-store.js';

describe('openAudioStore', () => {
  it('keeps audio on disk by default', () => {
    const config = loadConfig({ DATA_DIR: '/tmp/callme-x' });
    expect(config.audioStore).toEqual({ kind: 'disk' });
    expect(openAudioStore(config.audioStore, config.audioDir).store).toBeInstanceOf(DiskAudioStore);
  });

  it('uses an S3-compatible bucket with AUDIO_STORE=s3', () => {
    const config = loadConfig({
      AUDIO_STORE: 's3',
      S3_BUCKET: 'calls',
      S3_ENDPOINT: 'http://127.0.0.1:9000',
      S3_ACCESS_KEY_ID: 'key',
      S3_SECRET_ACCESS_KEY: 'secret',
      S3_FORCE_PATH_STYLE: 'true',
    });
    expect(config.audioStore).toEqual({
      kind: 's3',
      bucket: 'calls',
      endpoint: 'http://127.0.0.1:9000',
      region: 'us-east-1',
      accessKeyId: 'key',
      secretAccessKey: 'secret',
      forcePathStyle: true,
    });
    const { store } = openAudioStore(config.audioStore, config.audioDir);
    expect(store).toBeInstanceOf(S3AudioStore);
    (store as S3AudioStore).destroy();
  });

  it('stops at start when AUDIO_STORE=s3 has no bucket, without echoing secrets', () => {
    let error: unknown;
    try {
      loadConfig({ AUDIO_STORE: 's3', S3_SECRET_ACCESS_KEY: 'do-not-print', TWILIO_API_BASE_URL: 'not a url' });
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const message = (error as ConfigError).message;
    expect(message).toContain('S3_BUCKET');
    expect(message).toContain('TWILIO_API_BASE_URL');
    expect(message).not.toContain('do-not-print');
  });
});

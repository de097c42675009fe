import { Readable } from 'node:stream';
import {
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
} from '@aws-sdk/client-s3';
import { type AudioStore, InvalidAudioNameError, type StoredAudio, audioNamePattern } from './audio-store.js';

export interface S3AudioStoreOptions {
  bucket: string;
  region: string;
  /** An S3-compatible server (MinIO, R2, s3rver…); AWS when unset. */
  endpoint?: string;
  /** `bucket` in the path instead of the host name: what most S3-compatible servers expect. */
  forcePathStyle?: boolean;
  /** Without them the SDK's own sources apply (environment, profile, instance role). */
  credentials?: { accessKeyId: string; secretAccessKey: string };
  /** Prepended to every key, e.g. `callme/audio/`. */
  prefix?: string;
}

/**
 * Keeps audio as objects in an S3-compatible bucket. A PUT replaces an object
 * whole, so readers never see part of one; the content type travels as the
 * object's `Content-Type`. Names are checked against `audioNamePattern`
 * before any request is made.
 */
export class S3AudioStore implements AudioStore {
  private readonly client: S3Client;
  private readonly prefix: string;

  constructor(private readonly options: S3AudioStoreOptions, client?: S3Client) {
    this.prefix = options.prefix ?? '';
    this.client =
      client ??
      new S3Client({
        region: options.region,
        endpoint: options.endpoint,
        forcePathStyle: options.forcePathStyle ?? false,
        credentials: options.credentials,
        // Checksums on every request are a newer SDK default many S3-compatible servers reject.
        requestChecksumCalculation: 'WHEN_REQUIRED',
        responseChecksumValidation: 'WHEN_REQUIRED',
      });
  }

  private keyOf(filename: string): string {
    if (typeof filename !== 'string' || !audioNamePattern.test(filename)) throw new InvalidAudioNameError(String(filename));
    return this.prefix + filename;
  }

  async put(filename: string, bytes: Uint8Array, contentType: string): Promise<StoredAudio> {
    const key = this.keyOf(filename);
    await this.client.send(
      new PutObjectCommand({ Bucket: this.options.bucket, Key: key, Body: bytes, ContentType: contentType, ContentLength: bytes.length }),
    );
    return { filename, contentType, sizeBytes: bytes.length };
  }

  async get(filename: string): Promise<{ info: StoredAudio; body: NodeJS.ReadableStream } | undefined> {
    const key = this.keyOf(filename);
    try {
      const object = await this.client.send(new GetObjectCommand({ Bucket: this.options.bucket, Key: key }));
      const body = object.Body instanceof Readable ? object.Body : Readable.from([]);
      return {
        info: { filename, contentType: object.ContentType ?? 'application/octet-stream', sizeBytes: object.ContentLength ?? 0 },
        body,
      };
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw error;
    }
  }

  async has(filename: string): Promise<boolean> {
    const key = this.keyOf(filename);
    try {
      await this.client.send(new HeadObjectCommand({ Bucket: this.options.bucket, Key: key }));
      return true;
    } catch (error) {
      if (isNotFound(error)) return false;
      throw error;
    }
  }

  async delete(filename: string): Promise<void> {
    const key = this.keyOf(filename);
    // S3 answers a delete of a missing key with success, which is the promise here too.
    await this.client.send(new DeleteObjectCommand({ Bucket: this.options.bucket, Key: key }));
  }

  /** Closes the client's connections. */
  destroy(): void {
    this.client.destroy();
  }
}

function isNotFound(error: unknown): boolean {
  if (error instanceof S3ServiceException) {
    return error.name === 'NoSuchKey' || error.name === 'NotFound' || error.$metadata?.httpStatusCode === 404;
  }
  return false;
}

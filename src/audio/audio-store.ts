/** Metadata the store keeps beside the bytes. */
export interface StoredAudio {
  /** The file's name in the store: unguessable, `[A-Za-z0-9_-]+\.[a-z0-9]+`. */
  filename: string;
  contentType: string;
  sizeBytes: number;
}

/**
 * Where generated audio lives. The disk store is the default; an S3-compatible
 * one can take its place. Names are chosen by the caller and validated by the
 * store: a name with a path separator, `..` or other characters outside the
 * safe set is rejected with `InvalidAudioNameError`, never resolved.
 */
/** How a file is being written. */
export interface PutOptions {
  /**
   * The caller has just made the name up (`newAudioName`) and hands it to no
   * one before `put` resolves, so no reader can be looking and the store may
   * write in place instead of through a temporary file. A write that fails
   * leaves no file behind either way. Passing it for a name already in the
   * store is a mistake, which a store may refuse.
   */
  newName?: boolean;
}

export interface AudioStore {
  /** Writes the whole file atomically (readers never see a partial file). */
  put(filename: string, bytes: Uint8Array, contentType: string, options?: PutOptions): Promise<StoredAudio>;
  /** Opens a file for reading; `undefined` when it does not exist. */
  get(filename: string): Promise<{ info: StoredAudio; body: NodeJS.ReadableStream } | undefined>;
  /** True when the file exists. */
  has(filename: string): Promise<boolean>;
  /** Deletes a file; deleting a missing file is not an error. */
  delete(filename: string): Promise<void>;
}

export class InvalidAudioNameError extends Error {
  readonly code = 'invalid_audio_name';
  constructor(filename: string) {
    super(`not a valid audio file name: ${JSON.stringify(filename.slice(0, 80))}`);
  }
}

/** Names the store accepts: a safe stem and a short extension, nothing else. */
export const audioNamePattern = /^[A-Za-z0-9_-]{8,128}\.(wav|mp3|opus|ogg|aac|flac|pcm)$/;

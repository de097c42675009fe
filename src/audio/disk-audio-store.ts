import { randomBytes } from 'node:crypto';
import { type FileHandle, mkdir, open, readFile, rename, stat, unlink, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { type AudioStore, InvalidAudioNameError, type PutOptions, type StoredAudio, audioNamePattern } from './audio-store.js';

/** `Content-Type` for each extension an audio name may have. */
export const contentTypeForExtension = {
  wav: 'audio/wav',
  mp3: 'audio/mpeg',
  opus: 'audio/ogg',
  ogg: 'audio/ogg',
  aac: 'audio/aac',
  flac: 'audio/flac',
  pcm: 'audio/pcm',
} as const satisfies Record<string, string>;

export type AudioExtension = keyof typeof contentTypeForExtension;

/**
 * A fresh, unguessable audio name: 128 random bits as 22 base64url
 * characters. Twilio fetches `<Play>` URLs without credentials, so the name
 * itself is what keeps a caller's audio private.
 */
export function newAudioName(extension: string): string {
  const filename = `${randomBytes(16).toString('base64url')}.${extension}`;
  if (!audioNamePattern.test(filename)) throw new InvalidAudioNameError(filename);
  return filename;
}

function extensionOf(filename: string): AudioExtension {
  return filename.slice(filename.lastIndexOf('.') + 1) as AudioExtension;
}

function isMissing(error: unknown): boolean {
  return (error as NodeJS.ErrnoException | undefined)?.code === 'ENOENT';
}

// The content type lives in a small file beside the audio. Its name ends in
// `.type`, which no valid audio name can, so the two never collide.
const typeSuffix = '.type';

/**
 * Keeps audio files in one directory, created on first write. Names are
 * checked against `audioNamePattern` before they touch the file system, so a
 * name can never point outside the directory.
 */
export class DiskAudioStore implements AudioStore {
  readonly directory: string;
  /** The directory, created once per store (again after a failure). */
  private created?: Promise<unknown>;

  constructor(directory: string) {
    this.directory = resolve(directory);
  }

  private pathOf(filename: string): string {
    if (typeof filename !== 'string' || !audioNamePattern.test(filename)) throw new InvalidAudioNameError(String(filename));
    return join(this.directory, filename);
  }

  /** Writes a temporary file in the same directory and renames it into place, which is atomic on one file system. */
  private async writeAtomically(path: string, bytes: Uint8Array | string): Promise<void> {
    // The leading dot and `.tmp` suffix keep temporary files outside the name pattern.
    const temporary = join(this.directory, `.${randomBytes(8).toString('hex')}.tmp`);
    try {
      await writeFile(temporary, bytes, { flag: 'wx' });
      await rename(temporary, path);
    } catch (error) {
      await unlink(temporary).catch(() => undefined);
      throw error;
    }
  }

  async put(filename: string, bytes: Uint8Array, contentType: string, options: PutOptions = {}): Promise<StoredAudio> {
    const path = this.pathOf(filename);
    this.created ??= mkdir(this.directory, { recursive: true }).catch((error: unknown) => {
      this.created = undefined;
      throw error;
    });
    await this.created;
    const impliedType = contentType === contentTypeForExtension[extensionOf(filename)];
    if (options.newName && impliedType) {
      // Nobody knows the name yet, and nothing was ever stored under it: one
      // write, not five file operations (type file, temporary, rename).
      try {
        await writeFile(path, bytes, { flag: 'wx' });
      } catch (error) {
        // A name already taken is the caller's mistake, and that file is not this write's to remove.
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') await unlink(path).catch(() => undefined);
        throw error;
      }
      return { filename, contentType, sizeBytes: bytes.length };
    }
    // Type first: a reader who can see the audio can also see its type. The
    // type its extension implies needs no file (the reader falls back to it),
    // only the removal of one an earlier file of this name may have left.
    if (impliedType) await this.unlinkIfPresent(path + typeSuffix);
    else await this.writeAtomically(path + typeSuffix, contentType);
    await this.writeAtomically(path, bytes);
    return { filename, contentType, sizeBytes: bytes.length };
  }

  async get(filename: string): Promise<{ info: StoredAudio; body: NodeJS.ReadableStream } | undefined> {
    const path = this.pathOf(filename);
    let handle: FileHandle;
    try {
      handle = await open(path, 'r');
    } catch (error) {
      if (isMissing(error)) return undefined;
      throw error;
    }
    try {
      // Size from the open handle, not the path: a concurrent put may rename
      // a new file over the path, but this handle keeps reading the old one.
      const { size } = await handle.stat();
      const contentType = await this.contentTypeOf(filename, path);
      return { info: { filename, contentType, sizeBytes: size }, body: handle.createReadStream() };
    } catch (error) {
      await handle.close();
      throw error;
    }
  }

  async has(filename: string): Promise<boolean> {
    const path = this.pathOf(filename);
    try {
      return (await stat(path)).isFile();
    } catch (error) {
      if (isMissing(error)) return false;
      throw error;
    }
  }

  async delete(filename: string): Promise<void> {
    const path = this.pathOf(filename);
    for (const target of [path, path + typeSuffix]) await this.unlinkIfPresent(target);
  }

  private async unlinkIfPresent(path: string): Promise<void> {
    try {
      await unlink(path);
    } catch (error) {
      if (!isMissing(error)) throw error;
    }
  }

  /** Falls back to the extension for audio placed in the directory by hand. */
  private async contentTypeOf(filename: string, path: string): Promise<string> {
    try {
      return await readFile(path + typeSuffix, 'utf8');
    } catch (error) {
      if (!isMissing(error)) throw error;
      return contentTypeForExtension[extensionOf(filename)];
    }
  }
}

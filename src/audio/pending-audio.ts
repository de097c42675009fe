import { randomBytes } from 'node:crypto';

const keepFailedMs = 60_000;

/** A reply audio name given out before its audio exists. */
export interface PendingReply {
  readonly filename: string;
  /** The whole file: downloads waiting on the name are answered with it. */
  ready(audio: Uint8Array): void;
  /** No audio will come under this name. */
  failed(): void;
  /** The file and its row are stored: requests find them the usual way from now on. */
  stored(): void;
}

/**
 * Reply audio this instance is still synthesizing, by the file name already
 * given to Twilio. A webhook may name a piece's `<Play>` URL as soon as the
 * piece's text is complete: Twilio's download then starts while the speech is
 * being synthesized, and is answered the moment the audio is whole, from
 * memory, before the file and its row are stored. The entry is dropped once
 * both are stored, so a later request finds them the usual way.
 */
export class PendingAudio {
  private readonly entries = new Map<string, Promise<Uint8Array | undefined>>();

  /** A new reply audio name, pending here until its audio is stored or fails. */
  reserve(): PendingReply {
    const filename = newReplyAudioName();
    let settle!: (audio: Uint8Array | undefined) => void;
    this.entries.set(filename, new Promise((resolve) => (settle = resolve)));
    return {
      filename,
      ready: (audio) => settle(audio),
      failed: () => {
        // Audio already made stays served; else downloads learn that nothing will come.
        settle(undefined);
        // Kept a while either way: this instance is the only one that knows the name's fate.
        setTimeout(() => this.entries.delete(filename), keepFailedMs).unref();
      },
      stored: () => this.entries.delete(filename),
    };
  }

  /** The file's bytes once whole (`undefined` if synthesis failed); `undefined` at once if the name is not pending here. */
  get(filename: string): Promise<Uint8Array | undefined> | undefined {
    return this.entries.get(filename);
  }

  get size(): number {
    return this.entries.size;
  }
}

/**
 * A new reply audio name, `<time><random>.wav`: 16 random bytes keep it
 * unguessable like every audio name, and the 6-byte time it was made at lets
 * another instance tell a name that may still be being synthesized (worth
 * waiting for) from one that will never exist.
 */
export function newReplyAudioName(now = Date.now()): string {
  const time = Buffer.alloc(6);
  time.writeUIntBE(now, 0, 6);
  return `${time.toString('base64url')}${randomBytes(16).toString('base64url')}.wav`;
}

/** When {@link newReplyAudioName} made `filename`, or `undefined` if it has no such time. */
export function replyAudioMintedAt(filename: string): number | undefined {
  if (!/^[A-Za-z0-9_-]{30}\.wav$/.test(filename)) return undefined;
  return Buffer.from(filename.slice(0, 8), 'base64url').readUIntBE(0, 6);
}

import type { SpeechFormat } from '../providers/speech-model.js';
import { encodeMulaw } from './mulaw.js';
import { createResampler } from './resample.js';

/** Sample encodings this module writes and reads. */
export type WavEncoding = 'pcm' | 'mulaw';

export interface WavFormat {
  sampleRate: number;
  channels: number;
  /** 8, 16, 24 or 32 for `pcm`; always 8 for `mulaw`. */
  bitsPerSample: number;
  format: WavEncoding;
}

/** A parsed WAV file; `data` is a view into the parsed bytes, not a copy. */
export interface ParsedWav extends WavFormat {
  data: Uint8Array;
  durationMs: number;
}

/** The bytes are not a WAV file this module can read. */
export class InvalidWavError extends Error {
  readonly code = 'invalid_wav';
}

const formatTags: Record<WavEncoding, number> = { pcm: 1, mulaw: 7 };
// WAVE_FORMAT_EXTENSIBLE keeps the real tag in the first two bytes of its sub-format GUID.
const extensibleTag = 0xfffe;

/** OpenAI's `pcm` speech format: 24 kHz, signed 16-bit little-endian, mono. */
const openAiPcmRate = 24000;
/** Twilio's native telephone audio: 8 kHz μ-law, which `<Play>` serves without transcoding. */
const telephoneRate = 8000;

function writeAscii(view: DataView, offset: number, text: string): void {
  for (let i = 0; i < text.length; i++) view.setUint8(offset + i, text.charCodeAt(i));
}

function readAscii(bytes: Uint8Array, offset: number): string {
  return String.fromCharCode(bytes[offset], bytes[offset + 1], bytes[offset + 2], bytes[offset + 3]);
}

function checkFormat({ sampleRate, channels, bitsPerSample, format }: WavFormat): void {
  if (!Number.isInteger(sampleRate) || sampleRate <= 0) throw new RangeError(`bad sample rate ${sampleRate}`);
  if (!Number.isInteger(channels) || channels < 1 || channels > 0xffff) throw new RangeError(`bad channel count ${channels}`);
  const allowed = format === 'mulaw' ? [8] : [8, 16, 24, 32];
  if (!allowed.includes(bitsPerSample)) throw new RangeError(`${format} WAV cannot have ${bitsPerSample} bits per sample`);
}

/**
 * Builds the header for a WAV file whose `data` chunk holds `dataBytes` bytes.
 * PCM gets the classic 44-byte header. μ-law gets the 58-byte form the RIFF
 * rules ask of non-PCM formats (an 18-byte `fmt ` with `cbSize` 0, then a
 * `fact` chunk with the sample count), which Twilio and common players read.
 * When `dataBytes` is odd the file must end in one pad byte after the data;
 * the RIFF size here counts it.
 */
export function wavHeader(options: WavFormat & { dataBytes: number }): Uint8Array {
  checkFormat(options);
  const { sampleRate, channels, bitsPerSample, format, dataBytes } = options;
  const isPcm = format === 'pcm';
  const fmtSize = isPcm ? 16 : 18;
  const factSize = isPcm ? 0 : 12;
  const headerSize = 12 + 8 + fmtSize + factSize + 8;
  const padded = dataBytes + (dataBytes % 2);
  if (!Number.isInteger(dataBytes) || dataBytes < 0 || headerSize - 8 + padded > 0xffffffff) {
    throw new RangeError(`bad WAV data size ${dataBytes}`);
  }
  const blockAlign = channels * (bitsPerSample / 8);

  const header = new Uint8Array(headerSize);
  const view = new DataView(header.buffer);
  writeAscii(view, 0, 'RIFF');
  view.setUint32(4, headerSize - 8 + padded, true);
  writeAscii(view, 8, 'WAVE');
  writeAscii(view, 12, 'fmt ');
  view.setUint32(16, fmtSize, true);
  view.setUint16(20, formatTags[format], true);
  view.setUint16(22, channels, true);
  view.setUint32(24, sampleRate, true);
  view.setUint32(28, sampleRate * blockAlign, true);
  view.setUint16(32, blockAlign, true);
  view.setUint16(34, bitsPerSample, true);
  let offset = 36;
  if (!isPcm) {
    view.setUint16(offset, 0, true);
    writeAscii(view, offset + 2, 'fact');
    view.setUint32(offset + 6, 4, true);
    view.setUint32(offset + 10, Math.floor(dataBytes / blockAlign), true);
    offset += 14;
  }
  writeAscii(view, offset, 'data');
  view.setUint32(offset + 4, dataBytes, true);
  return header;
}

/** Wraps sample bytes in a WAV file (header, data, pad byte if needed). */
export function encodeWav(options: WavFormat & { data: Uint8Array }): Uint8Array {
  const header = wavHeader({ ...options, dataBytes: options.data.length });
  const out = new Uint8Array(header.length + options.data.length + (options.data.length % 2));
  out.set(header);
  out.set(options.data, header.length);
  return out;
}

/**
 * Reads a PCM or μ-law WAV file, walking its chunks so that `LIST`, `fact`
 * and other extras anywhere are skipped. A `data` size larger than the file
 * (streaming writers put 0xFFFFFFFF there) is cut to the bytes present.
 */
export function parseWav(bytes: Uint8Array): ParsedWav {
  if (bytes.length < 12 || readAscii(bytes, 0) !== 'RIFF' || readAscii(bytes, 8) !== 'WAVE') {
    throw new InvalidWavError('not a RIFF/WAVE file');
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let format: WavFormat | undefined;
  let blockAlign = 0;
  let data: Uint8Array | undefined;
  let offset = 12;
  while (offset + 8 <= bytes.length && !(format && data)) {
    const id = readAscii(bytes, offset);
    const size = view.getUint32(offset + 4, true);
    const body = offset + 8;
    const end = Math.min(bytes.length, body + size);
    if (id === 'fmt ') {
      if (end - body < 16) throw new InvalidWavError('fmt chunk too short');
      let tag = view.getUint16(body, true);
      if (tag === extensibleTag && end - body >= 26) tag = view.getUint16(body + 24, true);
      const encoding = tag === formatTags.pcm ? 'pcm' : tag === formatTags.mulaw ? 'mulaw' : undefined;
      if (!encoding) throw new InvalidWavError(`unsupported WAV format tag ${tag}`);
      format = {
        format: encoding,
        channels: view.getUint16(body + 2, true),
        sampleRate: view.getUint32(body + 4, true),
        bitsPerSample: view.getUint16(body + 14, true),
      };
      blockAlign = view.getUint16(body + 12, true);
      if (format.channels === 0 || format.sampleRate === 0 || blockAlign === 0) {
        throw new InvalidWavError('fmt chunk has a zero channel count, sample rate or block size');
      }
    } else if (id === 'data') {
      data = bytes.subarray(body, end);
    }
    // Chunks start on even offsets: an odd-sized chunk is followed by a pad byte.
    offset = body + size + (size % 2);
  }
  if (!format) throw new InvalidWavError('no fmt chunk');
  if (!data) throw new InvalidWavError('no data chunk');
  const frames = Math.floor(data.length / blockAlign);
  return { ...format, data, durationMs: (frames * 1000) / format.sampleRate };
}

/** Whether this machine stores a 16-bit number low byte first, as the PCM does (x86 and ARM do). */
const littleEndian = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function readPcm16le(bytes: Uint8Array, start: number, count: number): Int16Array {
  if (littleEndian) {
    // The bytes already are the samples: one copy (into an aligned buffer of their own) instead of a loop.
    const copy = new Uint8Array(count * 2);
    copy.set(bytes.subarray(start, start + count * 2));
    return new Int16Array(copy.buffer);
  }
  const samples = new Int16Array(count);
  for (let i = 0; i < count; i++) {
    const low = bytes[start + 2 * i];
    const high = bytes[start + 2 * i + 1];
    samples[i] = ((high << 24) >> 16) | low;
  }
  return samples;
}

/** A streaming converter from one audio encoding to another. */
export interface AudioConverter {
  /** Converts the next chunk; chunk boundaries may fall anywhere, even inside a sample. */
  push(chunk: Uint8Array): Uint8Array;
  /** Ends the stream and returns the last bytes; the converter then starts over. */
  flush(): Uint8Array;
}

/**
 * Streams OpenAI's `pcm` speech (24 kHz s16le mono) to 8 kHz μ-law, the
 * encoding of Twilio Media Streams. Network chunks can split a 16-bit sample
 * in two; the odd byte waits for the next chunk.
 */
export function createPcm24kToMulaw8k(): AudioConverter {
  const resampler = createResampler(openAiPcmRate, telephoneRate);
  let carry: number | undefined;
  return {
    push(chunk) {
      let bytes = chunk;
      if (carry !== undefined && chunk.length > 0) {
        bytes = new Uint8Array(chunk.length + 1);
        bytes[0] = carry;
        bytes.set(chunk, 1);
        carry = undefined;
      }
      const count = bytes.length >> 1;
      if (bytes.length % 2 === 1) carry = bytes[bytes.length - 1];
      return encodeMulaw(resampler.push(readPcm16le(bytes, 0, count)));
    },
    flush() {
      // A lone trailing byte is half a sample: nothing to play.
      carry = undefined;
      return encodeMulaw(resampler.flush());
    },
  };
}

/** Converts OpenAI's `pcm` speech (24 kHz s16le mono) to an 8 kHz μ-law mono WAV for Twilio's `<Play>`. */
export function pcm24kToMulawWav(pcm: Uint8Array): Uint8Array {
  const converter = createPcm24kToMulaw8k();
  const head = converter.push(pcm);
  const tail = converter.flush();
  const data = new Uint8Array(head.length + tail.length);
  data.set(head);
  data.set(tail, head.length);
  return encodeWav({ sampleRate: telephoneRate, channels: 1, bitsPerSample: 8, format: 'mulaw', data });
}

/**
 * Playing time of a complete speech file, from its header (`wav`) or its size
 * (`pcm`, 24 kHz s16le mono). `undefined` for compressed formats, which would
 * need decoding to measure, and for WAV bytes that do not parse.
 */
export function audioDurationMs(bytes: Uint8Array, format: SpeechFormat): number | undefined {
  if (format === 'pcm') return (Math.floor(bytes.length / 2) * 1000) / openAiPcmRate;
  if (format !== 'wav') return undefined;
  try {
    return parseWav(bytes).durationMs;
  } catch (error) {
    if (error instanceof InvalidWavError) return undefined;
    throw error;
  }
}

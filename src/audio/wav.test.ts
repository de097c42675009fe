import { spawnSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { decodeMulaw } from './mulaw.js';
import {
  InvalidWavError,
  audioDurationMs,
  createPcm24kToMulaw8k,
  encodeWav,
  parseWav,
  pcm24kToMulawWav,
  wavHeader,
} from './wav.js';

function pcm24kSine(frequency: number, seconds: number, amplitude: number): Uint8Array {
  const count = Math.round(24000 * seconds);
  const bytes = new Uint8Array(count * 2);
  const view = new DataView(bytes.buffer);
  for (let i = 0; i < count; i++) {
    view.setInt16(2 * i, Math.round(amplitude * Math.sin((2 * Math.PI * frequency * i) / 24000)), true);
  }
  return bytes;
}

function ascii(bytes: Uint8Array, offset: number): string {
  return String.fromCharCode(...bytes.subarray(offset, offset + 4));
}

function chunk(id: string, body: Uint8Array): Uint8Array {
  const out = new Uint8Array(8 + body.length + (body.length % 2));
  const view = new DataView(out.buffer);
  for (let i = 0; i < 4; i++) out[i] = id.charCodeAt(i);
  view.setUint32(4, body.length, true);
  out.set(body, 8);
  return out;
}

function riff(chunks: Uint8Array[]): Uint8Array {
  const size = chunks.reduce((total, part) => total + part.length, 4);
  const out = new Uint8Array(8 + size);
  const view = new DataView(out.buffer);
  out.set([0x52, 0x49, 0x46, 0x46]);
  view.setUint32(4, size, true);
  out.set([0x57, 0x41, 0x56, 0x45], 8);
  let offset = 12;
  for (const part of chunks) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

function fmtBody(tag: number, channels: number, sampleRate: number, bitsPerSample: number): Uint8Array {
  const body = new Uint8Array(16);
  const view = new DataView(body.buffer);
  const blockAlign = (channels * bitsPerSample) / 8;
  view.setUint16(0, tag, true);
  view.setUint16(2, channels, true);
  view.setUint32(4, sampleRate, true);
  view.setUint32(8, sampleRate * blockAlign, true);
  view.setUint16(12, blockAlign, true);
  view.setUint16(14, bitsPerSample, true);
  return body;
}

const soxMissing = spawnSync('sox', ['--version']).error !== undefined;

describe('wavHeader', () => {
  it('writes the 44-byte PCM header', () => {
    const header = wavHeader({ sampleRate: 24000, channels: 1, bitsPerSample: 16, format: 'pcm', dataBytes: 4800 });
    const view = new DataView(header.buffer);
    expect(header.length).toBe(44);
    expect([ascii(header, 0), ascii(header, 8), ascii(header, 12), ascii(header, 36)]).toEqual(['RIFF', 'WAVE', 'fmt ', 'data']);
    expect(view.getUint32(4, true)).toBe(36 + 4800);
    expect(view.getUint32(16, true)).toBe(16);
    expect(view.getUint16(20, true)).toBe(1);
    expect(view.getUint32(28, true)).toBe(48000);
    expect(view.getUint16(32, true)).toBe(2);
    expect(view.getUint32(40, true)).toBe(4800);
  });

  it('writes the 58-byte μ-law header with cbSize and a fact chunk', () => {
    const header = wavHeader({ sampleRate: 8000, channels: 1, bitsPerSample: 8, format: 'mulaw', dataBytes: 8000 });
    const view = new DataView(header.buffer);
    expect(header.length).toBe(58);
    expect(view.getUint32(16, true)).toBe(18);
    expect(view.getUint16(20, true)).toBe(7);
    expect(view.getUint32(24, true)).toBe(8000);
    expect(view.getUint32(28, true)).toBe(8000);
    expect(view.getUint16(34, true)).toBe(8);
    expect(view.getUint16(36, true)).toBe(0);
    expect(ascii(header, 38)).toBe('fact');
    expect(view.getUint32(46, true)).toBe(8000);
    expect(ascii(header, 50)).toBe('data');
    expect(view.getUint32(54, true)).toBe(8000);
    expect(view.getUint32(4, true)).toBe(50 + 8000);
  });

  it('rejects formats it cannot describe', () => {
    expect(() => wavHeader({ sampleRate: 8000, channels: 1, bitsPerSample: 16, format: 'mulaw', dataBytes: 0 })).toThrow(RangeError);
    expect(() => wavHeader({ sampleRate: 0, channels: 1, bitsPerSample: 16, format: 'pcm', dataBytes: 0 })).toThrow(RangeError);
    expect(() => wavHeader({ sampleRate: 8000, channels: 1, bitsPerSample: 16, format: 'pcm', dataBytes: -1 })).toThrow(RangeError);
    expect(() => wavHeader({ sampleRate: 8000, channels: 1, bitsPerSample: 16, format: 'pcm', dataBytes: 2 ** 32 })).toThrow(RangeError);
  });
});

describe('encodeWav and parseWav', () => {
  it('round-trip PCM', () => {
    const data = Uint8Array.from({ length: 960 }, (_, i) => i % 256);
    const wav = encodeWav({ sampleRate: 24000, channels: 2, bitsPerSample: 16, format: 'pcm', data });
    const parsed = parseWav(wav);
    expect(parsed).toMatchObject({ format: 'pcm', sampleRate: 24000, channels: 2, bitsPerSample: 16, durationMs: 10 });
    expect(parsed.data).toEqual(data);
  });

  it('pads an odd-sized data chunk and counts the pad in the RIFF size', () => {
    const data = new Uint8Array(8001).fill(0xff);
    const wav = encodeWav({ sampleRate: 8000, channels: 1, bitsPerSample: 8, format: 'mulaw', data });
    expect(wav.length).toBe(58 + 8001 + 1);
    expect(new DataView(wav.buffer).getUint32(4, true)).toBe(wav.length - 8);
    const parsed = parseWav(wav);
    expect(parsed.format).toBe('mulaw');
    expect(parsed.data.length).toBe(8001);
    expect(parsed.durationMs).toBe(1000.125);
  });

  it('skips LIST and other chunks, odd-sized ones included', () => {
    const data = new Uint8Array(16000);
    const wav = riff([
      chunk('LIST', new Uint8Array(13).fill(0x41)),
      chunk('fmt ', fmtBody(1, 1, 16000, 16)),
      chunk('fact', new Uint8Array(4)),
      chunk('junk', new Uint8Array(3)),
      chunk('data', data),
      chunk('LIST', new Uint8Array(20)),
    ]);
    expect(parseWav(wav)).toMatchObject({ format: 'pcm', sampleRate: 16000, channels: 1, bitsPerSample: 16, durationMs: 500 });
  });

  it('reads WAVE_FORMAT_EXTENSIBLE by its sub-format', () => {
    const body = new Uint8Array(40);
    body.set(fmtBody(0xfffe, 1, 8000, 8));
    new DataView(body.buffer).setUint16(24, 7, true);
    const wav = riff([chunk('fmt ', body), chunk('data', new Uint8Array(800))]);
    expect(parseWav(wav)).toMatchObject({ format: 'mulaw', sampleRate: 8000, durationMs: 100 });
  });

  it('cuts an oversized data chunk (streamed WAV) to the bytes present', () => {
    const wav = riff([chunk('fmt ', fmtBody(1, 1, 24000, 16)), chunk('data', new Uint8Array(4800))]);
    const view = new DataView(wav.buffer);
    view.setUint32(4, 0xffffffff, true);
    view.setUint32(40, 0xffffffff, true);
    expect(parseWav(wav).durationMs).toBe(100);
  });

  it('parses a view into a larger buffer at an odd offset', () => {
    const wav = encodeWav({ sampleRate: 8000, channels: 1, bitsPerSample: 8, format: 'mulaw', data: new Uint8Array(80) });
    const padded = new Uint8Array(wav.length + 3);
    padded.set(wav, 1);
    expect(parseWav(padded.subarray(1, 1 + wav.length)).durationMs).toBe(10);
  });

  it.each([
    ['empty', new Uint8Array(0)],
    ['not RIFF', new TextEncoder().encode('ID3\u0004 this is an mp3, honest')],
    ['no fmt', riff([chunk('data', new Uint8Array(10))])],
    ['no data', riff([chunk('fmt ', fmtBody(1, 1, 8000, 16))])],
    ['float samples', riff([chunk('fmt ', fmtBody(3, 1, 8000, 32)), chunk('data', new Uint8Array(8))])],
    ['short fmt', riff([chunk('fmt ', new Uint8Array(8)), chunk('data', new Uint8Array(8))])],
    ['zero block size', riff([chunk('fmt ', fmtBody(1, 0, 8000, 16)), chunk('data', new Uint8Array(8))])],
  ])('rejects %s with InvalidWavError', (_, bytes) => {
    expect(() => parseWav(bytes)).toThrow(InvalidWavError);
  });
});

describe('pcm24kToMulawWav', () => {
  it('makes an 8 kHz μ-law mono WAV of the same length and tone', () => {
    const wav = pcm24kToMulawWav(pcm24kSine(440, 1, 12000));
    const parsed = parseWav(wav);
    expect(parsed).toMatchObject({ format: 'mulaw', sampleRate: 8000, channels: 1, bitsPerSample: 8, durationMs: 1000 });
    expect(wav.length).toBe(58 + 8000);
    const samples = decodeMulaw(parsed.data).subarray(400, 7600);
    let peak = 0;
    for (const sample of samples) peak = Math.max(peak, Math.abs(sample));
    expect(peak / 12000).toBeGreaterThan(0.96);
    expect(peak / 12000).toBeLessThan(1.04);
  });

  it('is about a sixth the size of the 24 kHz PCM it came from', () => {
    const pcm = pcm24kSine(440, 3, 12000);
    expect(pcm.length / pcm24kToMulawWav(pcm).length).toBeCloseTo(6, 1);
  });

  it('ignores a trailing half sample', () => {
    const pcm = pcm24kSine(440, 0.1, 12000);
    const odd = new Uint8Array(pcm.length + 1);
    odd.set(pcm);
    odd[pcm.length] = 0x7f;
    expect(pcm24kToMulawWav(odd)).toEqual(pcm24kToMulawWav(pcm));
  });

  it.skipIf(soxMissing)(`is read by sox as 8 kHz mono u-law${soxMissing ? ' (skipped: sox is not installed)' : ''}`, async () => {
    const directory = await mkdtemp(join(tmpdir(), 'callme-wav-'));
    try {
      const pcm = pcm24kSine(440, 2.5, 12000);
      const wav = pcm24kToMulawWav(pcm);
      const file = join(directory, 'speech.wav');
      await writeFile(file, wav);
      const info = spawnSync('sox', ['--i', file], { encoding: 'utf8' });
      expect(info.status).toBe(0);
      expect(info.stdout).toMatch(/Channels\s*:\s*1\n/);
      expect(info.stdout).toMatch(/Sample Rate\s*:\s*8000\n/);
      expect(info.stdout).toMatch(/Sample Encoding\s*:\s*8-bit u-law/);
      expect(info.stdout).toMatch(/Duration\s*:\s*00:00:02\.50 = 20000 samples/);
      // sox's own μ-law decoder agrees with ours sample for sample.
      const decoded = spawnSync('sox', [file, '-t', 'raw', '-e', 'signed', '-b', '16', '-L', '-'], { maxBuffer: 1 << 24 });
      expect(decoded.status).toBe(0);
      const soxSamples = new Int16Array(decoded.stdout.buffer, decoded.stdout.byteOffset, decoded.stdout.length / 2);
      expect(Array.from(soxSamples)).toEqual(Array.from(decodeMulaw(parseWav(wav).data)));
    } finally {
      await rm(directory, { recursive: true, force: true });
    }
  });
});

describe('createPcm24kToMulaw8k', () => {
  it('gives the same bytes whatever the chunk boundaries, odd ones included', () => {
    const pcm = pcm24kSine(440, 0.5, 12000);
    const whole = parseWav(pcm24kToMulawWav(pcm)).data;
    for (const sizes of [[1], [3], [7, 1, 1], [4801, 999]]) {
      const converter = createPcm24kToMulaw8k();
      const parts: number[] = [];
      let offset = 0;
      for (let i = 0; offset < pcm.length; i++) {
        const size = sizes[i % sizes.length];
        parts.push(...converter.push(pcm.subarray(offset, offset + size)));
        offset += size;
      }
      parts.push(...converter.flush());
      expect(Uint8Array.from(parts)).toEqual(whole);
    }
  });

  it('keeps the odd byte across an empty chunk', () => {
    const converter = createPcm24kToMulaw8k();
    const pcm = pcm24kSine(440, 0.01, 12000);
    const parts = [converter.push(pcm.subarray(0, 101)), converter.push(new Uint8Array(0)), converter.push(pcm.subarray(101)), converter.flush()];
    const joined = Uint8Array.from(parts.flatMap((part) => Array.from(part)));
    expect(joined).toEqual(parseWav(pcm24kToMulawWav(pcm)).data);
  });
});

describe('audioDurationMs', () => {
  it('measures raw 24 kHz PCM by its size', () => {
    expect(audioDurationMs(new Uint8Array(48000), 'pcm')).toBe(1000);
    expect(audioDurationMs(new Uint8Array(4801), 'pcm')).toBe(100);
  });

  it('measures WAV by its header', () => {
    expect(audioDurationMs(pcm24kToMulawWav(pcm24kSine(440, 1.5, 1000)), 'wav')).toBe(1500);
  });

  it('gives undefined for compressed formats and for WAV that does not parse', () => {
    for (const format of ['mp3', 'opus', 'aac', 'flac'] as const) expect(audioDurationMs(new Uint8Array(1000), format)).toBeUndefined();
    expect(audioDurationMs(new Uint8Array(1000), 'wav')).toBeUndefined();
  });
});

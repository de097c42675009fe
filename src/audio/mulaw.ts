// G.711 μ-law, the only codec Twilio Media Streams carry (8 kHz, one byte a sample).
// Linear samples are 16-bit; G.711 itself works on 14-bit magnitudes, so the
// bias and clip below are the 14-bit values (33, 8159) scaled by 4.

const bias = 0x84;
const clip = 32635;

/** Segment (exponent) of a biased magnitude, indexed by its bits 7–14. */
const exponentTable = buildExponentTable();
/** The 256 μ-law codes decoded once; decoding is then a lookup. */
const decodeTable = buildDecodeTable();

function buildExponentTable(): Uint8Array {
  const table = new Uint8Array(256);
  for (let i = 1; i < 256; i++) table[i] = 31 - Math.clz32(i);
  return table;
}

function buildDecodeTable(): Int16Array {
  const table = new Int16Array(256);
  for (let code = 0; code < 256; code++) {
    // Codes are sent inverted so that silence (0xFF) has many ones, which
    // kept old T1 lines in sync.
    const inverted = ~code & 0xff;
    const exponent = (inverted >> 4) & 0x07;
    const mantissa = inverted & 0x0f;
    const magnitude = (((mantissa << 3) + bias) << exponent) - bias;
    table[code] = inverted & 0x80 ? -magnitude : magnitude;
  }
  return table;
}

/** Encodes one 16-bit linear sample as a μ-law byte. */
export function encodeMulawSample(sample: number): number {
  const sign = sample < 0 ? 0x80 : 0;
  let magnitude = sign ? -sample : sample;
  if (magnitude > clip) magnitude = clip;
  magnitude += bias;
  const exponent = exponentTable[(magnitude >> 7) & 0xff];
  const mantissa = (magnitude >> (exponent + 3)) & 0x0f;
  return ~(sign | (exponent << 4) | mantissa) & 0xff;
}

/** Decodes one μ-law byte to a 16-bit linear sample. */
export function decodeMulawSample(code: number): number {
  return decodeTable[code & 0xff];
}

/** Encodes 16-bit linear PCM to μ-law, one byte per sample. */
export function encodeMulaw(pcm: Int16Array): Uint8Array {
  const out = new Uint8Array(pcm.length);
  for (let i = 0; i < pcm.length; i++) out[i] = encodeMulawSample(pcm[i]);
  return out;
}

/** Decodes μ-law bytes to 16-bit linear PCM. */
export function decodeMulaw(bytes: Uint8Array): Int16Array {
  const out = new Int16Array(bytes.length);
  for (let i = 0; i < bytes.length; i++) out[i] = decodeTable[bytes[i]];
  return out;
}

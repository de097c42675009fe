/** Dimensions of the fake's vectors when a request names none. */
export const ngramEmbeddingDimensions = 1024;

/**
 * A deterministic stand-in for an embedding model: each word (function words
 * and bare numbers left out, a plural "s" dropped) and each of its character trigrams is
 * hashed into one of `dimensions` buckets (with a hashed sign), and the
 * vector is scaled to length 1. Texts that share words,
 * or parts of words ("truffle" and "truffles"), get a high cosine similarity;
 * unrelated texts land near zero. It knows no synonyms and no languages,
 * which is enough to test ranking without a model.
 */
export function ngramEmbedding(text: string, dimensions = ngramEmbeddingDimensions): Float32Array {
  const vector = new Float32Array(dimensions);
  const words = (text.toLowerCase().normalize('NFC').match(/[\p{L}\p{N}]+/gu) ?? []).filter((word) => !functionWords.has(word) && !/^\d+$/.test(word)).map(stem);
  for (const word of words) {
    add(vector, `w:${word}`, 2);
    const padded = ` ${word} `;
    const grams = padded.length - 2;
    for (let index = 0; index < grams; index++) add(vector, `g:${padded.slice(index, index + 3)}`, 1 / Math.sqrt(grams));
  }
  let norm = 0;
  for (const value of vector) norm += value * value;
  norm = Math.sqrt(norm);
  if (norm > 0) for (let index = 0; index < dimensions; index++) vector[index] /= norm;
  return vector;
}

/**
 * Words that carry no topic: a real model gives them little weight, so "do
 * you have anything with truffles?" is about truffles, not about "with".
 */
const functionWords = new Set(
  'a an and any anything are as at be can could do does for from have has i if in is it me my of on or our please something the there this to we what when where which with would you your'.split(' '),
);

/** "truffles" and "truffle" as one word, as a model would see them. */
function stem(word: string): string {
  if (word.length > 4 && word.endsWith('es') && !word.endsWith('ses')) return word.slice(0, -1);
  if (word.length > 3 && word.endsWith('s') && !word.endsWith('ss')) return word.slice(0, -1);
  return word;
}

function add(vector: Float32Array, feature: string, weight: number): void {
  const hash = fnv1a(feature);
  vector[hash % vector.length] += hash & 0x80000000 ? -weight : weight;
}

/** FNV-1a over UTF-16 code units, then mixed: fast, stable, and spread well enough for bucketing. */
function fnv1a(text: string): number {
  let hash = 0x811c9dc5;
  for (let index = 0; index < text.length; index++) {
    hash ^= text.charCodeAt(index);
    hash = Math.imul(hash, 0x01000193);
  }
  // FNV's low bits are poorly mixed for short strings; murmur3's finalizer spreads them.
  hash ^= hash >>> 16;
  hash = Math.imul(hash, 0x85ebca6b);
  hash ^= hash >>> 13;
  hash = Math.imul(hash, 0xc2b2ae35);
  hash ^= hash >>> 16;
  return hash >>> 0;
}

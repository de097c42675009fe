import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import * as current from '../../src/audio/resample.js';

/**
 * Micro-benchmark of `src/audio/resample.ts` on the two conversions a stream
 * call runs all the time: 24 kHz → 8 kHz (every reply's speech, in 50 ms
 * slices as `OutboundAudio` feeds it) and 8 kHz → 16 kHz (the caller's words
 * while they talk, 20 ms Twilio frames, for transcription). It prints the
 * cost per second of audio and a SHA-256 of the output, so a change to the
 * resampler can be checked for speed and for bit-identical output.
 *
 *   npx tsx bench/stream/resample-bench.ts [--seconds 60] [--rounds 7] [--against HEAD]
 *
 * `--against REV` also runs `src/audio/resample.ts` as it is at that git
 * revision (loaded from a copy, with the WebAssembly kernel files it imports
 * where that revision has them), for a
 * before/after on the same machine in the same run.
 */

interface Case {
  name: string;
  fromRate: number;
  toRate: number;
  /** Input samples per `push`, as the server feeds it. */
  chunkSamples: number;
}

const cases: Case[] = [
  { name: '24k→8k, 50 ms chunks (reply speech)', fromRate: 24000, toRate: 8000, chunkSamples: 1200 },
  { name: '8k→16k, 20 ms chunks (caller utterance)', fromRate: 8000, toRate: 16000, chunkSamples: 160 },
];

/** Speech-like test signal: a few harmonics with a wandering pitch plus noise, seeded so every run hashes the same. */
function testSignal(rate: number, seconds: number): Int16Array {
  let state = 12345;
  const random = () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 2 ** 32 - 0.5;
  };
  const out = new Int16Array(Math.round(rate * seconds));
  let phase = 0;
  for (let i = 0; i < out.length; i++) {
    const pitch = 140 + 40 * Math.sin((2 * Math.PI * i) / (rate * 0.7));
    phase += (2 * Math.PI * pitch) / rate;
    let sample = 0;
    for (let harmonic = 1; harmonic <= 12; harmonic++) sample += Math.sin(harmonic * phase) / harmonic;
    out[i] = Math.max(-32768, Math.min(32767, Math.round(9000 * sample + 1500 * random())));
  }
  return out;
}

type ResampleModule = typeof current;

function run(module: ResampleModule, testCase: Case, input: Int16Array): { ms: number; hash: string; outputSamples: number } {
  const hash = createHash('sha256');
  let outputSamples = 0;
  const started = performance.now();
  const resampler = module.createResampler(testCase.fromRate, testCase.toRate);
  for (let offset = 0; offset < input.length; offset += testCase.chunkSamples) {
    const out = resampler.push(input.subarray(offset, offset + testCase.chunkSamples));
    outputSamples += out.length;
    hash.update(new Uint8Array(out.buffer, out.byteOffset, out.byteLength));
  }
  const tail = resampler.flush();
  outputSamples += tail.length;
  hash.update(new Uint8Array(tail.buffer, tail.byteOffset, tail.byteLength));
  return { ms: performance.now() - started, hash: hash.digest('hex').slice(0, 16), outputSamples };
}

function option(name: string, fallback: number): number {
  const index = process.argv.indexOf(name);
  return index === -1 ? fallback : Number(process.argv[index + 1]);
}

async function revision(rev: string): Promise<ResampleModule> {
  const directory = mkdtempSync(path.join(tmpdir(), 'callme-resample-'));
  const show = (name: string) => execFileSync('git', ['show', `${rev}:src/audio/${name}`], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  const source = show('resample.ts');
  writeFileSync(path.join(directory, 'resample.ts'), source);
  for (const name of ['fir-kernel.ts', 'fir-kernel-module.ts']) {
    if (source.includes("'./fir-kernel.js'")) writeFileSync(path.join(directory, name), show(name));
  }
  return (await import(pathToFileURL(path.join(directory, 'resample.ts')).href)) as ResampleModule;
}

/** Median round in ms per audio second, and the output's hash. */
function measure(module: ResampleModule, testCase: Case, input: Int16Array, rounds: number, seconds: number): { msPerSecond: number; nsPerSample: number; hash: string } {
  run(module, testCase, input);
  const times: number[] = [];
  let last = run(module, testCase, input);
  for (let round = 0; round < rounds; round++) {
    last = run(module, testCase, input);
    times.push(last.ms);
  }
  times.sort((a, b) => a - b);
  const median = times[Math.floor(times.length / 2)];
  return { msPerSecond: median / seconds, nsPerSample: (median * 1e6) / last.outputSamples, hash: last.hash };
}

const seconds = option('--seconds', 60);
const rounds = option('--rounds', 7);
const againstIndex = process.argv.indexOf('--against');
const against = againstIndex === -1 ? undefined : process.argv[againstIndex + 1];
const baseline = against ? await revision(against) : undefined;
console.log(`resampler: ${seconds} s of audio per round, ${rounds} rounds after a warm-up, median round; ms of CPU per second of audio`);
for (const testCase of cases) {
  const input = testSignal(testCase.fromRate, seconds);
  const now = measure(current, testCase, input, rounds, seconds);
  console.log(`  ${testCase.name}\n    working tree  ${now.msPerSecond.toFixed(3)} ms  (${now.nsPerSample.toFixed(0)} ns per output sample)  sha256 ${now.hash}`);
  if (!baseline) continue;
  const before = measure(baseline, testCase, input, rounds, seconds);
  console.log(
    `    ${against!.padEnd(12)}  ${before.msPerSecond.toFixed(3)} ms  (${before.nsPerSample.toFixed(0)} ns per output sample)  sha256 ${before.hash}\n` +
      `    ${(before.msPerSecond / now.msPerSecond).toFixed(2)}× faster; output ${before.hash === now.hash ? 'bit-identical' : 'DIFFERS'}`,
  );
}

import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addCosts, costOf, defaultPriceTable, loadPriceTable, PricingError, type Usage } from './pricing.js';

const usage: Usage = {
  chatModel: 'gpt-4o-mini',
  promptTokens: 1_000_000,
  completionTokens: 1_000_000,
  speechModel: 'tts-1',
  ttsCharacters: 1_000_000,
  transcriptionModel: 'gpt-4o-mini-transcribe',
  transcriptionSeconds: 600,
  billedMinutes: 10,
};

describe('costOf', () => {
  it('prices each part from the table and splits by provider', () => {
    const cost = costOf(usage, defaultPriceTable);
    expect(cost).toMatchObject({ llm: 0.75, speech: 15, transcription: 0.03, telephony: 0.085, unpriced: [] });
    expect(cost.openai).toBeCloseTo(15.78, 6);
    expect(cost.twilio).toBeCloseTo(0.085, 6);
    expect(cost.total).toBeCloseTo(15.865, 6);
  });

  it("bills Twilio's speech recognition to Twilio", () => {
    const cost = costOf({ ...usage, transcriptionModel: 'twilio-speech-recognition', transcriptionSeconds: 60 }, defaultPriceTable);
    expect(cost.transcription).toBe(0.08);
    expect(cost.twilio).toBeCloseTo(0.165, 6);
    expect(cost.openai).toBeCloseTo(15.75, 6);
  });

  it('uses gpt-4o prices for gpt-4o and HD prices for tts-1-hd', () => {
    const cost = costOf({ ...usage, chatModel: 'gpt-4o', speechModel: 'tts-1-hd', transcriptionSeconds: 0, billedMinutes: 0 }, defaultPriceTable);
    expect(cost.llm).toBe(12.5);
    expect(cost.speech).toBe(30);
  });

  it('names models it has no price for instead of guessing', () => {
    const cost = costOf({ ...usage, chatModel: 'llama3', speechModel: undefined }, defaultPriceTable);
    expect(cost.llm).toBeNull();
    expect(cost.speech).toBe(0);
    expect(cost.unpriced).toEqual(['chat model llama3']);
  });

  it('costs nothing for what was not used, even on an unknown model', () => {
    const cost = costOf({ ...usage, chatModel: 'unknown', promptTokens: 0, completionTokens: 0, ttsCharacters: 0, transcriptionSeconds: 0, billedMinutes: 0 }, defaultPriceTable);
    expect(cost).toMatchObject({ llm: 0, speech: 0, transcription: 0, telephony: 0, total: 0, unpriced: [] });
  });

  it('adds costs part by part', () => {
    const one = costOf({ ...usage, billedMinutes: 1 }, defaultPriceTable);
    const unpriced = costOf({ ...usage, chatModel: 'x' }, defaultPriceTable);
    const sum = addCosts([one, unpriced]);
    expect(sum.telephony).toBeCloseTo(0.0935, 6);
    expect(sum.llm).toBe(0.75);
    expect(sum.unpriced).toEqual(['chat model x']);
    expect(addCosts([]).total).toBe(0);
  });
});

describe('loadPriceTable', () => {
  let directory: string;
  beforeAll(async () => {
    directory = await mkdtemp(path.join(tmpdir(), 'callme-pricing-'));
  });
  afterAll(async () => {
    await rm(directory, { recursive: true, force: true });
  });

  it('is the built-in table without a file', async () => {
    expect(await loadPriceTable(undefined)).toBe(defaultPriceTable);
  });

  it('merges a file over the defaults, model by model', async () => {
    const file = path.join(directory, 'prices.json');
    await writeFile(file, JSON.stringify({ chat: { llama3: { inputPerMillionTokens: 0, outputPerMillionTokens: 0 } }, telephony: { perMinute: 0.013 } }));
    const table = await loadPriceTable(file);
    expect(table.chat.llama3).toEqual({ inputPerMillionTokens: 0, outputPerMillionTokens: 0 });
    expect(table.chat['gpt-4o-mini']).toEqual(defaultPriceTable.chat['gpt-4o-mini']);
    expect(table.telephony.perMinute).toBe(0.013);
  });

  it('refuses a file it cannot use, naming the field', async () => {
    const file = path.join(directory, 'bad.json');
    await writeFile(file, JSON.stringify({ chat: { 'gpt-4o': { inputPerMillionTokens: -1, outputPerMillionTokens: 1 } } }));
    await expect(loadPriceTable(file)).rejects.toThrow(/chat\.gpt-4o\.inputPerMillionTokens/);
    await expect(loadPriceTable(path.join(directory, 'missing.json'))).rejects.toBeInstanceOf(PricingError);
    await writeFile(file, '{ not json');
    await expect(loadPriceTable(file)).rejects.toThrow(/PRICING: cannot read/);
  });
});

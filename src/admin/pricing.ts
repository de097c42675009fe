import { readFile } from 'node:fs/promises';
import { z } from 'zod';

/**
 * What callme's providers charge, in US dollars. Every figure can be replaced
 * with a JSON file named by `PRICING` (see {@link loadPriceTable}); the
 * defaults are list prices, not what a given account negotiated.
 */
export interface PriceTable {
  currency: 'USD';
  /** Chat models, per million tokens. */
  chat: Record<string, { inputPerMillionTokens: number; outputPerMillionTokens: number }>;
  /** Speech synthesis, per million characters of text. */
  speech: Record<string, { perMillionCharacters: number }>;
  /** Speech recognition, per minute of caller audio. A name starting with `twilio` is billed by Twilio, the rest by OpenAI. */
  transcription: Record<string, { perMinute: number }>;
  /** The call itself, per started minute (Twilio rounds every call up to a whole minute). */
  telephony: { perMinute: number };
}

/**
 * Built-in prices (checked against the providers' published pricing pages in 2025):
 * - openai.com/api/pricing — gpt-4o-mini $0.15 in / $0.60 out per 1M tokens (since its July 2024
 *   launch); gpt-4o $2.50 / $10.00 (gpt-4o-2024-08-06 and later); tts-1 $15 and tts-1-hd $30 per 1M
 *   characters; gpt-4o-mini-transcribe $0.003/min, whisper-1 and gpt-4o-transcribe $0.006/min.
 * - gpt-4o-mini-tts is billed by tokens ($0.60/1M text in, $12/1M audio out), which OpenAI
 *   estimates at $0.015 per minute of speech. It is priced here per character like the other
 *   voices: at about 900 characters a minute (15 a second) that is $0.015 / 900 ≈ $16.67 per 1M.
 * - twilio.com/en-us/voice/pricing/us — an inbound call to a US local number, $0.0085 per minute,
 *   billed per started minute. `<Gather input="speech">` recognition is $0.02 per 15 seconds
 *   ($0.08 a minute); Twilio bills it per 15-second block, so the minute price is a floor.
 */
export const defaultPriceTable: PriceTable = {
  currency: 'USD',
  chat: {
    'gpt-4o-mini': { inputPerMillionTokens: 0.15, outputPerMillionTokens: 0.6 },
    'gpt-4o': { inputPerMillionTokens: 2.5, outputPerMillionTokens: 10 },
  },
  speech: {
    'tts-1': { perMillionCharacters: 15 },
    'tts-1-hd': { perMillionCharacters: 30 },
    'gpt-4o-mini-tts': { perMillionCharacters: 16.67 },
  },
  transcription: {
    'gpt-4o-mini-transcribe': { perMinute: 0.003 },
    'gpt-4o-transcribe': { perMinute: 0.006 },
    'whisper-1': { perMinute: 0.006 },
    'twilio-speech-recognition': { perMinute: 0.08 },
  },
  telephony: { perMinute: 0.0085 },
};

const price = z.number().min(0).max(1_000_000);
const priceFileSchema = z
  .object({
    currency: z.literal('USD').optional(),
    chat: z.record(z.string(), z.object({ inputPerMillionTokens: price, outputPerMillionTokens: price }).strict()).optional(),
    speech: z.record(z.string(), z.object({ perMillionCharacters: price }).strict()).optional(),
    transcription: z.record(z.string(), z.object({ perMinute: price }).strict()).optional(),
    telephony: z.object({ perMinute: price }).strict().optional(),
  })
  .strict();

/** A `PRICING` file that cannot be used; the message names the file and the field. */
export class PricingError extends Error {}

/**
 * The built-in table, with the entries of `file` (when given) replacing or
 * adding models one by one: `{"chat": {"llama3": {"inputPerMillionTokens": 0, "outputPerMillionTokens": 0}}}`.
 */
export async function loadPriceTable(file: string | undefined): Promise<PriceTable> {
  if (!file) return defaultPriceTable;
  let raw: unknown;
  try {
    raw = JSON.parse(await readFile(file, 'utf8'));
  } catch (error) {
    throw new PricingError(`PRICING: cannot read the price table ${file}: ${(error as Error).message}`);
  }
  const parsed = priceFileSchema.safeParse(raw);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => `${issue.path.join('.') || '(root)'}: ${issue.message}`);
    throw new PricingError(`PRICING: the price table ${file} is not valid:\n  - ${problems.join('\n  - ')}`);
  }
  return mergePriceTable(defaultPriceTable, parsed.data);
}

export function mergePriceTable(base: PriceTable, changes: Partial<Omit<PriceTable, 'currency'>>): PriceTable {
  return {
    currency: 'USD',
    chat: { ...base.chat, ...changes.chat },
    speech: { ...base.speech, ...changes.speech },
    transcription: { ...base.transcription, ...changes.transcription },
    telephony: changes.telephony ?? base.telephony,
  };
}

/** What a call (or a group of calls on the same models) used. */
export interface Usage {
  chatModel: string;
  promptTokens: number;
  completionTokens: number;
  /** Undefined when the assistant spoke with Twilio's voices. */
  speechModel?: string;
  ttsCharacters: number;
  /** Undefined when nothing was transcribed (speech-to-speech calls). */
  transcriptionModel?: string;
  transcriptionSeconds: number;
  /** Whole minutes, each started minute counted. */
  billedMinutes: number;
}

/** Dollars per part; a part whose model has no price is `null` and named in `unpriced`. */
export interface Cost {
  llm: number | null;
  speech: number | null;
  transcription: number | null;
  telephony: number;
  /** What OpenAI bills (chat, speech, OpenAI transcription). */
  openai: number;
  /** What Twilio bills (minutes, Twilio's speech recognition). */
  twilio: number;
  /** Everything that could be priced. */
  total: number;
  unpriced: string[];
}

export function costOf(usage: Usage, prices: PriceTable): Cost {
  const unpriced: string[] = [];
  const priced = <Entry>(used: boolean, model: string | undefined, table: Record<string, Entry>, what: string, compute: (entry: Entry) => number) => {
    if (!used || !model) return 0;
    const entry = table[model];
    if (entry) return compute(entry);
    unpriced.push(`${what} ${model}`);
    return null;
  };
  const llm = priced(usage.promptTokens > 0 || usage.completionTokens > 0, usage.chatModel, prices.chat, 'chat model', (entry) =>
    (usage.promptTokens * entry.inputPerMillionTokens + usage.completionTokens * entry.outputPerMillionTokens) / 1e6);
  const speech = priced(usage.ttsCharacters > 0, usage.speechModel, prices.speech, 'speech model', (entry) =>
    (usage.ttsCharacters * entry.perMillionCharacters) / 1e6);
  const transcription = priced(usage.transcriptionSeconds > 0, usage.transcriptionModel, prices.transcription, 'transcription model', (entry) =>
    (usage.transcriptionSeconds / 60) * entry.perMinute);
  const telephony = usage.billedMinutes * prices.telephony.perMinute;
  const transcriptionByTwilio = usage.transcriptionModel?.startsWith('twilio') ?? false;
  const openai = (llm ?? 0) + (speech ?? 0) + (transcriptionByTwilio ? 0 : transcription ?? 0);
  const twilio = telephony + (transcriptionByTwilio ? transcription ?? 0 : 0);
  return {
    llm: roundCost(llm),
    speech: roundCost(speech),
    transcription: roundCost(transcription),
    telephony: roundCost(telephony),
    openai: roundCost(openai),
    twilio: roundCost(twilio),
    total: roundCost(openai + twilio),
    unpriced,
  };
}

/** To a millionth of a dollar: finer than any bill, and free of floating-point noise. */
function roundCost<Value extends number | null>(value: Value): Value {
  return (value === null ? null : Math.round(value * 1e6) / 1e6) as Value;
}

/** Adds costs part by part (for totals); an unpriced part stays visible in `unpriced`. */
export function addCosts(costs: Cost[]): Cost {
  const sum = (pick: (cost: Cost) => number | null) => roundCost(costs.reduce((total, cost) => total + (pick(cost) ?? 0), 0));
  return {
    llm: sum((cost) => cost.llm),
    speech: sum((cost) => cost.speech),
    transcription: sum((cost) => cost.transcription),
    telephony: sum((cost) => cost.telephony),
    openai: sum((cost) => cost.openai),
    twilio: sum((cost) => cost.twilio),
    total: sum((cost) => cost.total),
    unpriced: [...new Set(costs.flatMap((cost) => cost.unpriced))],
  };
}

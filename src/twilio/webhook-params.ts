import { z } from 'zod';

/**
 * Twilio posts form fields; a repeated field arrives as an array. Each field
 * is read as its first value, capped in length, so no input shape can throw.
 */
const field = (max = 512) =>
  z.preprocess((value) => (Array.isArray(value) ? value[0] : value), z.string().max(max).optional().catch(undefined));

const callSid = z.preprocess(
  (value) => (Array.isArray(value) ? value[0] : value),
  z.string().regex(/^CA[0-9a-fA-F]{32}$/, 'CallSid must be CA followed by 32 hexadecimal characters'),
);

export const callParamsSchema = z.object({
  CallSid: callSid,
  AccountSid: field(64),
  From: field(64),
  To: field(64),
  CallStatus: field(32),
  Direction: field(32),
});

export const gatherParamsSchema = callParamsSchema.extend({
  SpeechResult: field(4000),
  Confidence: z.preprocess(
    (value) => (Array.isArray(value) ? value[0] : value),
    z.coerce.number().min(0).max(1).optional().catch(undefined),
  ),
  Digits: field(64),
});

export const statusParamsSchema = callParamsSchema.extend({
  CallDuration: z.preprocess(
    (value) => (Array.isArray(value) ? value[0] : value),
    z.coerce.number().int().min(0).optional().catch(undefined),
  ),
  SequenceNumber: z.preprocess(
    (value) => (Array.isArray(value) ? value[0] : value),
    z.coerce.number().int().min(0).optional().catch(undefined),
  ),
  Timestamp: field(64),
});

export type CallParams = z.infer<typeof callParamsSchema>;
export type GatherParams = z.infer<typeof gatherParamsSchema>;
export type StatusParams = z.infer<typeof statusParamsSchema>;

/** Turn numbers and piece numbers travel in our own callback URLs' query strings. */
export const turnQuerySchema = z.object({
  turn: z.coerce.number().int().min(0).max(100000).optional().catch(undefined),
});

export const continueQuerySchema = z.object({
  turn: z.coerce.number().int().min(1),
  from: z.coerce.number().int().min(0).max(10000),
});

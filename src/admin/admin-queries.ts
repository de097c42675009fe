import { z } from 'zod';
import { HttpError } from '../errors.js';
import type { CallFilter } from './admin-repository.js';
import { maxAnalyticsDays } from './analytics.js';

/** Twilio's call statuses. */
export const callStatuses = ['queued', 'ringing', 'in-progress', 'completed', 'busy', 'failed', 'no-answer', 'canceled'] as const;

const blankToUndefined = (value: unknown) => (typeof value === 'string' && value.trim() === '' ? undefined : value);
const day = z.preprocess(
  blankToUndefined,
  z
    .string()
    .regex(/^\d{4}-\d{2}-\d{2}$/, 'expected a date such as 2025-03-31')
    .refine((value) => !Number.isNaN(Date.parse(`${value}T00:00:00Z`)) && new Date(`${value}T00:00:00Z`).toISOString().startsWith(value), 'expected a real date')
    .optional(),
);
const text = (max: number) => z.preprocess(blankToUndefined, z.string().trim().max(max, `expected at most ${max} characters`).optional());

const callListSchema = z.object({
  from: day,
  to: day,
  status: z.preprocess(blankToUndefined, z.enum(callStatuses, { message: `expected one of ${callStatuses.join(', ')}` }).optional()),
  outcome: z.preprocess(blankToUndefined, z.string().regex(/^[a-z-]{1,32}$/, 'expected an outcome such as details-collected').optional()),
  number: text(32),
  q: text(200),
  profile: z.preprocess(blankToUndefined, z.string().regex(/^[a-z0-9][a-z0-9-]{0,63}$/, 'expected a profile id').optional()),
  page: z.preprocess(blankToUndefined, z.coerce.number({ message: 'expected a number' }).int('expected a whole number').min(1).max(100_000).default(1)),
  pageSize: z.preprocess(blankToUndefined, z.coerce.number({ message: 'expected a number' }).int('expected a whole number').min(1).max(100).default(25)),
});

const analyticsSchema = z.object({ from: day, to: day });

/** The calls list's query string: a filter and a page. */
export interface CallListQuery {
  filter: CallFilter;
  page: number;
  pageSize: number;
}

export function parseCallListQuery(query: unknown): CallListQuery {
  const parsed = parse(callListSchema, query);
  if (parsed.from && parsed.to && parsed.from > parsed.to) throw new HttpError('invalid_request', '"from" is after "to"', { field: 'from' });
  return {
    filter: { from: parsed.from, to: parsed.to, status: parsed.status, outcome: parsed.outcome, number: parsed.number, search: parsed.q, profileId: parsed.profile },
    page: parsed.page,
    pageSize: parsed.pageSize,
  };
}

/** The analytics range: the last 30 days (UTC, today included) unless given. */
export function parseAnalyticsQuery(query: unknown, now = new Date()): { from: string; to: string } {
  const parsed = parse(analyticsSchema, query);
  const to = parsed.to ?? now.toISOString().slice(0, 10);
  const from = parsed.from ?? new Date(Date.parse(`${to}T00:00:00Z`) - 29 * 86_400_000).toISOString().slice(0, 10);
  if (from > to) throw new HttpError('invalid_request', '"from" is after "to"', { field: 'from' });
  if ((Date.parse(to) - Date.parse(from)) / 86_400_000 + 1 > maxAnalyticsDays) {
    throw new HttpError('invalid_request', `a range covers at most ${maxAnalyticsDays} days`, { field: 'from' });
  }
  return { from, to };
}

/** A call SID as Twilio writes it (`CA` and 32 hexadecimal digits), or anything else short and plain the simulator may use. */
export const callSidPattern = /^[A-Za-z0-9_-]{1,64}$/;

function parse<Schema extends z.ZodType>(schema: Schema, query: unknown): z.infer<Schema> {
  const result = schema.safeParse(query ?? {});
  if (!result.success) {
    const issue = result.error.issues[0];
    const field = String(issue.path[0] ?? 'query');
    throw new HttpError('invalid_request', `${field}: ${issue.message}`, { field });
  }
  return result.data;
}

import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { AssistantProfile } from '../assistant/profile.js';
import { HttpError } from '../errors.js';
import { isCalendarDate, localNow, weekdayOf } from '../reservations/opening-hours.js';
import { ReservationBook, type BookingOrigin, type BookingRefusal, type Slot } from '../reservations/reservation-book.js';
import { describeDate, describeSlot } from '../reservations/reservation-text.js';
import { ReservationRepository, type ReservationRow } from '../storage/reservation-repository.js';
import type { AdminContext } from './admin-context.js';
import { maskPhoneNumber } from './phone-mask.js';

/** A reservation as the admin API and the dashboard show it. */
export interface ReservationView {
  id: number;
  profileId: string;
  profileName: string;
  name: string;
  phone: string | null;
  date: string;
  weekday: string;
  time: string;
  partySize: number;
  notes: string | null;
  status: 'confirmed' | 'cancelled';
  source: string;
  callSid: string | null;
  createdAt: string;
  updatedAt: string;
}

/** A page of reservations: soonest first, with how many match and how many guests are expected. */
export interface ReservationPage {
  reservations: ReservationView[];
  page: number;
  pageSize: number;
  total: number;
  /** Guests of the confirmed reservations that match. */
  guests: number;
}

const blank = (value: unknown) => (typeof value === 'string' && value.trim() === '' ? undefined : value);
const day = z.preprocess(
  blank,
  z
    .string()
    .regex(/^\d{4}-\d{2}-\d{2}$/, 'expected a date such as 2025-03-31')
    .refine((value) => isCalendarDate(value), 'expected a real date')
    .optional(),
);
const time = z.preprocess(blank, z.string().regex(/^([01]\d|2[0-3]):[0-5]\d$/, 'expected a time such as 19:30').optional());
const profileId = z.preprocess(blank, z.string().regex(/^[a-z0-9][a-z0-9-]{0,63}$/, 'expected a profile id').optional());
const text = (max: number) => z.preprocess(blank, z.string().trim().max(max, `expected at most ${max} characters`).optional());
const count = z.preprocess(blank, z.coerce.number({ message: 'expected a number' }).int('expected a whole number').min(1, 'expected at least 1').max(10_000).optional());
const flag = z.preprocess((value) => (value === 'on' || value === 'true' || value === true ? true : value === undefined || value === '' || value === 'false' ? false : value), z.boolean());

const listSchema = z.object({
  date: day,
  from: day,
  to: day,
  status: z.preprocess(blank, z.enum(['confirmed', 'cancelled'], { message: 'expected confirmed or cancelled' }).optional()),
  profile: profileId,
  phone: text(32),
  name: text(100),
  page: z.preprocess(blank, z.coerce.number({ message: 'expected a number' }).int().min(1).max(100_000).default(1)),
  pageSize: z.preprocess(blank, z.coerce.number({ message: 'expected a number' }).int().min(1).max(200).default(50)),
});
const changeSchema = z.object({ date: day, time, partySize: count, name: text(100), notes: z.preprocess((value) => (value === null ? '' : value), z.string().trim().max(500).optional()), override: flag });
const createSchema = z.object({ profile: profileId, name: z.string().trim().min(1, 'required').max(100), date: day.refine(Boolean, 'required'), time: time.refine(Boolean, 'required'), partySize: count.refine(Boolean, 'required'), phone: text(32), notes: text(500), override: flag });

export type ReservationListQuery = z.infer<typeof listSchema>;

/** The reservation book and repository for the admin side (stateless, so built per server). */
export function reservationServices(context: AdminContext): { book: ReservationBook; repository: ReservationRepository } {
  const repository = new ReservationRepository(context.services.database);
  return { book: new ReservationBook(repository), repository };
}

/** The profiles that take reservations. */
export function bookingProfiles(context: AdminContext): AssistantProfile[] {
  return context.services.profiles.all.filter((profile) => profile.reservations);
}

/** Today in the default booking profile's time zone: the day the dashboard opens on. */
export function bookingToday(context: AdminContext): string {
  const profile = bookingProfiles(context).find((candidate) => candidate === context.services.profiles.defaultProfile) ?? bookingProfiles(context)[0];
  return localNow(profile?.reservations?.timeZone ?? 'UTC').date;
}

export function parseReservationQuery(query: unknown): ReservationListQuery {
  const parsed = parse(listSchema, query);
  if (parsed.from && parsed.to && parsed.from > parsed.to) throw new HttpError('invalid_request', '"from" is after "to"', { field: 'from' });
  return parsed;
}

export async function loadReservationPage(context: AdminContext, repository: ReservationRepository, query: ReservationListQuery): Promise<ReservationPage> {
  const { rows, total, guests } = await repository.list(
    { date: query.date, from: query.from, to: query.to, status: query.status, profileId: query.profile, phone: query.phone, name: query.name },
    { limit: query.pageSize, offset: (query.page - 1) * query.pageSize },
  );
  return { reservations: rows.map((row) => reservationView(context, row)), page: query.page, pageSize: query.pageSize, total, guests };
}

export function reservationView(context: AdminContext, row: ReservationRow): ReservationView {
  const mask = context.services.config.admin.maskPhoneNumbers;
  return {
    id: row.reservation_id,
    profileId: row.profile_id,
    profileName: context.services.profiles.byId(row.profile_id)?.name ?? row.profile_id,
    name: row.name,
    phone: row.phone && mask ? maskPhoneNumber(row.phone) : row.phone,
    date: row.date,
    weekday: weekdayOf(row.date),
    time: row.time,
    partySize: row.party_size,
    notes: row.notes,
    status: row.status,
    source: row.source,
    callSid: row.call_id,
    createdAt: row.created_at.toISOString(),
    updatedAt: row.updated_at.toISOString(),
  };
}

/** Changes a reservation for staff; a refusal (full, closed…) is a 409 carrying the alternatives. */
export async function changeReservation(context: AdminContext, book: ReservationBook, id: unknown, body: unknown, source: BookingOrigin['source']): Promise<ReservationView> {
  const reservationId = parseId(id);
  const changes = parse(changeSchema, body ?? {});
  const profile = await profileOfReservation(context, book, reservationId);
  const result = await book.change(profile, reservationId, { date: changes.date, time: changes.time, partySize: changes.partySize, name: changes.name, notes: changes.notes }, { source, override: changes.override });
  if (result.kind === 'changed') return reservationView(context, result.reservation);
  if (result.kind === 'not-found') throw new HttpError('not_found', 'no such reservation');
  if (result.kind === 'already-cancelled') throw new HttpError('conflict', 'the reservation is cancelled');
  throw refused(result);
}

export async function cancelReservation(context: AdminContext, book: ReservationBook, id: unknown, source: BookingOrigin['source']): Promise<ReservationView> {
  const reservationId = parseId(id);
  const profile = await profileOfReservation(context, book, reservationId);
  const result = await book.cancel(profile, reservationId, { source });
  if (result.kind === 'not-found') throw new HttpError('not_found', 'no such reservation');
  // Cancelling twice is not an error: the reservation is cancelled either way.
  return reservationView(context, result.reservation);
}

/** The admin API's reservation routes: list (by day, status, profile, phone, name), read, create, change, cancel. */
export async function registerReservationApiRoutes(app: FastifyInstance, context: AdminContext): Promise<void> {
  const { book, repository } = reservationServices(context);
  const sourceOf = (request: Parameters<AdminContext['principal']>[0]) => (context.principal(request)?.via === 'session' ? 'dashboard' : 'api');

  app.get('/api/reservations', async (request) => loadReservationPage(context, repository, parseReservationQuery(request.query)));

  app.get<{ Params: { id: string } }>('/api/reservations/:id', async (request) => {
    const row = await repository.get(parseId(request.params.id));
    if (!row) throw new HttpError('not_found', 'no such reservation');
    return reservationView(context, row);
  });

  app.post('/api/reservations', async (request, reply) => {
    const input = parse(createSchema, request.body ?? {});
    const profiles = bookingProfiles(context);
    const profile = input.profile ? profiles.find((candidate) => candidate.id === input.profile) : profiles.length === 1 ? profiles[0] : undefined;
    if (!profile) {
      throw new HttpError('invalid_request', input.profile ? `the profile "${input.profile}" takes no reservations` : `name the profile: one of ${profiles.map((candidate) => candidate.id).join(', ') || '(none takes reservations)'}`, { field: 'profile' });
    }
    const result = await book.create(
      profile,
      { name: input.name, date: input.date, time: input.time, partySize: input.partySize, phone: input.phone, notes: input.notes },
      { source: sourceOf(request), override: input.override },
    );
    if (result.kind !== 'created') throw refused(result);
    return reply.code(201).send(reservationView(context, result.reservation));
  });

  app.patch<{ Params: { id: string } }>('/api/reservations/:id', async (request) => changeReservation(context, book, request.params.id, request.body, sourceOf(request)));

  app.post<{ Params: { id: string } }>('/api/reservations/:id/cancel', async (request) => cancelReservation(context, book, request.params.id, sourceOf(request)));
}

async function profileOfReservation(context: AdminContext, book: ReservationBook, reservationId: number): Promise<AssistantProfile> {
  const row = await book.get(reservationId);
  if (!row) throw new HttpError('not_found', 'no such reservation');
  const profile = context.services.profiles.byId(row.profile_id);
  if (!profile?.reservations) throw new HttpError('conflict', `the profile "${row.profile_id}" that took this reservation no longer takes reservations`);
  return profile;
}

function refused(refusal: BookingRefusal): HttpError {
  if (refusal.kind === 'missing') return new HttpError('invalid_request', `missing: ${refusal.fields.map(toApiField).join(', ')}`, { field: toApiField(refusal.fields[0]) });
  if (refusal.kind === 'invalid') return new HttpError('invalid_request', `${toApiField(refusal.field)}: ${refusal.message}`, { field: toApiField(refusal.field) });
  return new HttpError('conflict', staffRefusalText(refusal), { refusal });
}

/** Why staff could not book or move a reservation, and what is free nearby; `override` books it anyway. */
export function staffRefusalText(refusal: Extract<BookingRefusal, { kind: 'closed' | 'full' | 'too-large' }>): string {
  const nearby = (slots: Slot[]) => (slots.length ? ` Free nearby: ${slots.map(describeSlot).join('; ')}.` : '');
  switch (refusal.kind) {
    case 'too-large':
      return `Parties of more than ${refusal.maxPartySize} are not taken by phone; override to book it anyway.`;
    case 'closed':
      return `Not possible: ${refusal.reason} (${describeDate(refusal.date)}: ${refusal.hours}).${nearby(refusal.alternatives)}`;
    case 'full':
      return `${describeSlot(refusal)} is fully booked.${nearby(refusal.alternatives)}`;
  }
}

function toApiField(field: string): string {
  return field === 'party_size' ? 'partySize' : field;
}

function parseId(value: unknown): number {
  const id = typeof value === 'string' && /^\d{1,15}$/.test(value) ? Number(value) : Number.NaN;
  if (!Number.isSafeInteger(id)) throw new HttpError('not_found', 'no such reservation');
  return id;
}

function parse<Schema extends z.ZodType>(schema: Schema, input: unknown): z.infer<Schema> {
  const result = schema.safeParse(input ?? {});
  if (!result.success) {
    const issue = result.error.issues[0];
    const field = String(issue.path[0] ?? 'body');
    throw new HttpError('invalid_request', `${field}: ${issue.message}`, { field });
  }
  return result.data;
}

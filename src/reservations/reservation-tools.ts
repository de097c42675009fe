import { z } from 'zod';
import type { CallTool, CallToolContext, CallToolkit, CallToolResult } from '../assistant/call-tool.js';
import type { AssistantProfile } from '../assistant/profile.js';
import type { ReservationRow } from '../storage/reservation-repository.js';
import { describeWeek, weekdayOf } from './opening-hours.js';
import { timeOf } from './reservation-settings.js';
import type { ReservationBook } from './reservation-book.js';
import { describeReservation, refusalText } from './reservation-text.js';

const text = (max: number) => z.union([z.string(), z.number()]).transform((value) => String(value).trim().slice(0, max)).optional();
const partySize = z.union([z.number(), z.string()]).transform((value) => (typeof value === 'number' ? value : Number.parseInt(value, 10))).optional();
const reservationId = z.union([z.number().int(), z.string().regex(/^\s*#?\d+\s*$/)]).transform((value) => Number(String(value).replace(/\D/g, '')));

const createArguments = z.object({ name: text(100), date: text(40), time: text(40), party_size: partySize, notes: text(500), phone: text(32) });
const findArguments = z.object({ name: text(100) });
const changeArguments = z.object({ reservation_id: reservationId, date: text(40), time: text(40), party_size: partySize, name: text(100) });
const cancelArguments = z.object({ reservation_id: reservationId, name: text(100) });

const dateProperty = { type: 'string', description: 'The day, YYYY-MM-DD (the business’s local date).' };
const timeProperty = { type: 'string', description: 'The start time, HH:MM on the 24-hour clock (local time).' };
const partyProperty = { type: 'integer', description: 'How many guests, a whole number.' };

/**
 * The reservation tools (create, find, change, cancel) for profiles with a
 * `reservations` block, and the hours and local time in every turn's prompt.
 * Every rule (hours, capacity, alternatives) is the book's; the tools only
 * translate between the model's JSON and the book.
 */
export function reservationTools(book: ReservationBook): CallToolkit {
  const tools: CallTool[] = [
    {
      definition: {
        name: 'create_reservation',
        description:
          'Book a reservation once the caller has given the name, date, time and number of guests. Call it even when a detail is missing or unsure: the result says what to ask or which times to offer instead. Only say a booking is made when the result starts with "booked".',
        parameters: {
          type: 'object',
          properties: {
            name: { type: 'string', description: 'The name the reservation is under.' },
            date: dateProperty,
            time: timeProperty,
            party_size: partyProperty,
            notes: { type: 'string', description: 'Anything the caller asked for (a high chair, an allergy, the terrace).' },
            phone: { type: 'string', description: 'Only when the caller gives another number than the one calling.' },
          },
          additionalProperties: false,
        },
      },
      run: (args, context) =>
        withArguments(createArguments, args, async (input) => {
          const result = await book.create(
            context.profile,
            {
              name: input.name,
              date: input.date,
              time: input.time,
              // An appointment desk counts bookings, not guests: one person unless told otherwise.
              partySize: input.party_size ?? (context.profile.reservations?.capacityCounts === 'bookings' ? 1 : undefined),
              notes: input.notes,
              phone: input.phone || context.callerNumber,
            },
            { source: 'phone', callId: context.callId },
          );
          if (result.kind !== 'created') return { result: refusalText(result, 'booked') };
          const { reservation } = result;
          return {
            result: `booked: ${describeReservation(reservation)}. Read the day, time and number of guests back to the caller.`,
            saved: savedDetails(context.profile, reservation),
          };
        }),
    },
    {
      definition: {
        name: 'find_reservations',
        description: "Find the caller's upcoming reservations: by the number they call from, or else by the name they were made under.",
        parameters: {
          type: 'object',
          properties: { name: { type: 'string', description: 'The name the reservation was made under, when the caller gave it.' } },
          additionalProperties: false,
        },
      },
      run: (args, context) =>
        withArguments(findArguments, args, async (input) => {
          const found = await book.upcoming(context.profile, { phone: context.callerNumber, name: input.name });
          if (found.by === 'none') {
            return {
              result: input.name
                ? `no upcoming reservation for the calling number or under the name ${input.name}. Ask the caller to check the name or the day.`
                : 'no upcoming reservation for the calling number. Ask the caller for the name the reservation was made under, then call find_reservations with it.',
            };
          }
          const how = found.by === 'phone' ? 'for the calling number' : `under the name ${input.name}`;
          return { result: `found ${found.reservations.length} upcoming ${how}: ${found.reservations.map(describeReservation).join('; ')}.` };
        }),
    },
    {
      definition: {
        name: 'change_reservation',
        description: 'Move a reservation to another date or time, or change its number of guests. Find it first (find_reservations) for its id.',
        parameters: {
          type: 'object',
          properties: {
            reservation_id: { type: 'integer', description: 'From find_reservations.' },
            date: { ...dateProperty, description: 'The new day, YYYY-MM-DD; leave out to keep it.' },
            time: { ...timeProperty, description: 'The new time, HH:MM; leave out to keep it.' },
            party_size: { ...partyProperty, description: 'The new number of guests; leave out to keep it.' },
            name: { type: 'string', description: 'The name it was made under, when it was not made from the calling number.' },
          },
          required: ['reservation_id'],
          additionalProperties: false,
        },
      },
      run: (args, context) =>
        withArguments(changeArguments, args, async (input) => {
          if (input.date === undefined && input.time === undefined && input.party_size === undefined) {
            return { result: 'nothing changed: give the new date, time or number of guests.' };
          }
          const refused = await ownership(book, context, input.reservation_id, input.name);
          if (refused) return { result: refused };
          const result = await book.change(context.profile, input.reservation_id, { date: input.date, time: input.time, partySize: input.party_size }, { source: 'phone', callId: context.callId });
          if (result.kind === 'not-found') return { result: `no reservation ${input.reservation_id}. Use find_reservations.` };
          if (result.kind === 'already-cancelled') return { result: `reservation ${input.reservation_id} was cancelled; make a new one with create_reservation if the caller wants.` };
          if (result.kind !== 'changed') return { result: refusalText(result, 'changed') };
          return {
            result: `changed: ${describeReservation(result.reservation)} (was party of ${result.previous.party_size}, ${result.previous.date} at ${result.previous.time}). Confirm the new details to the caller.`,
            saved: savedDetails(context.profile, result.reservation),
          };
        }),
    },
    {
      definition: {
        name: 'cancel_reservation',
        description: 'Cancel a reservation once the caller confirmed which one. Find it first (find_reservations) for its id.',
        parameters: {
          type: 'object',
          properties: {
            reservation_id: { type: 'integer', description: 'From find_reservations.' },
            name: { type: 'string', description: 'The name it was made under, when it was not made from the calling number.' },
          },
          required: ['reservation_id'],
          additionalProperties: false,
        },
      },
      run: (args, context) =>
        withArguments(cancelArguments, args, async (input) => {
          const refused = await ownership(book, context, input.reservation_id, input.name);
          if (refused) return { result: refused };
          const result = await book.cancel(context.profile, input.reservation_id, { source: 'phone', callId: context.callId });
          if (result.kind === 'not-found') return { result: `no reservation ${input.reservation_id}. Use find_reservations.` };
          if (result.kind === 'already-cancelled') return { result: `reservation ${input.reservation_id} was already cancelled.` };
          return { result: `cancelled: ${describeReservation(result.reservation)}. Tell the caller it is cancelled.` };
        }),
    },
  ];

  return {
    tools: (profile) => (profile.reservations ? tools : []),
    async instructions(context) {
      const settings = context.profile.reservations;
      if (!settings) return undefined;
      const now = book.today(context.profile);
      return [
        `Reservations: book with create_reservation, look them up with find_reservations, move or resize with change_reservation, cancel with cancel_reservation. Never say a booking is made, changed or cancelled unless the tool's result says so; when a time is not available, offer the alternatives the result gives.`,
        `Local date and time now: ${now.date} (${weekdayOf(now.date)}) ${timeOf(now.minutes)}, ${settings.timeZone}. Pass dates as YYYY-MM-DD and times as HH:MM (24-hour).`,
        `Bookings are taken: ${describeWeek(settings)}; every ${settings.slotMinutes} minutes; up to ${settings.maxPartySize} guests.`,
      ].join('\n');
    },
  };
}

async function withArguments<Schema extends z.ZodType>(
  schema: Schema,
  args: unknown,
  run: (input: z.infer<Schema>) => Promise<CallToolResult>,
): Promise<CallToolResult> {
  const parsed = schema.safeParse(args ?? {});
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    return { result: `error: ${String(issue.path[0] ?? 'arguments')}: ${issue.message}` };
  }
  return run(parsed.data);
}

/**
 * A caller may change or cancel only what was booked from their number, or
 * under the name they give: a reservation id alone is not proof enough.
 */
async function ownership(book: ReservationBook, context: CallToolContext, reservationId: number, name: string | undefined): Promise<string | undefined> {
  const reservation = await book.get(reservationId);
  if (!reservation || reservation.profile_id !== context.profile.id) return `no reservation ${reservationId}. Use find_reservations.`;
  if (context.callerNumber && reservation.phone === context.callerNumber) return undefined;
  if (name && reservation.name.trim().toLowerCase() === name.trim().toLowerCase()) return undefined;
  return `not allowed: reservation ${reservationId} was not made from this number. Ask the caller for the name it was made under and pass it as name.`;
}

/** The booking as call details (the profile's own detail names where they match), so the call shows what was booked. */
function savedDetails(profile: AssistantProfile, reservation: ReservationRow): Record<string, unknown> {
  const values: Record<string, unknown> = { name: reservation.name, date: reservation.date, time: reservation.time, party_size: reservation.party_size };
  const saved: Record<string, unknown> = { reservation_id: reservation.reservation_id };
  for (const detail of profile.details) if (detail.name in values) saved[detail.name] = values[detail.name];
  return saved;
}

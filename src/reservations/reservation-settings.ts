import { z } from 'zod';

export const weekdays = ['sunday', 'monday', 'tuesday', 'wednesday', 'thursday', 'friday', 'saturday'] as const;
export type Weekday = (typeof weekdays)[number];

/** `"12:00-15:00"`: a stretch of a day the business takes bookings in, local time. */
const intervalSchema = z
  .string()
  .regex(/^([01]\d|2[0-3]):[0-5]\d-([01]\d|2[0-4]):[0-5]\d$/, 'expected opening hours such as "12:00-22:30"')
  .transform((value) => {
    const [open, close] = value.split('-').map(minutesOf);
    return { open, close };
  })
  .refine((interval) => interval.close > interval.open, 'closes before it opens');

const day = z.string().regex(/^\d{4}-\d{2}-\d{2}$/, 'expected a date such as 2025-12-25');

const openingHoursSchema = z.object(
  Object.fromEntries(weekdays.map((weekday) => [weekday, z.array(intervalSchema).default([])])) as Record<Weekday, z.ZodDefault<z.ZodArray<typeof intervalSchema>>>,
);

/**
 * A profile's bookings: when the business takes them and how many fit. A
 * profile with this block offers the reservation tools (create, find, change,
 * cancel) to its assistant, and its scripted assistant books what it collects.
 */
export const reservationSettingsSchema = z
  .object({
    /** IANA time zone the hours, dates and times are in, e.g. `Europe/London`. */
    timeZone: z
      .string()
      .default('UTC')
      .refine((zone) => {
        try {
          new Intl.DateTimeFormat('en-US', { timeZone: zone });
          return true;
        } catch {
          return false;
        }
      }, 'expected an IANA time zone such as Europe/London'),
    /** Per weekday, the stretches bookings may start in, e.g. `{ "tuesday": ["12:00-15:00", "18:00-22:30"] }`. Days left out are closed. */
    openingHours: openingHoursSchema,
    /** Days closed whatever the weekday (holidays). */
    closedDates: z.array(day).default([]),
    /** Bookings start on this grid from each opening time: 30 → 18:00, 18:30, 19:00… */
    slotMinutes: z.number().int().min(5).max(240).default(30),
    /** How long a booking holds its place (a table for a meal, an appointment). */
    durationMinutes: z.number().int().min(5).max(720).default(120),
    /** The last booking starts this long before closing (a kitchen closing, a last appointment). */
    lastStartBeforeCloseMinutes: z.number().int().min(0).max(720).default(0),
    /** How many fit at once: guests (a dining room) or bookings (a doctor's appointments). */
    capacity: z.number().int().min(1).max(100_000),
    capacityCounts: z.enum(['guests', 'bookings']).default('guests'),
    /** Larger parties are asked to get in touch another way. */
    maxPartySize: z.number().int().min(1).max(10_000).default(12),
    /** Bookings may be made this many days ahead. */
    bookAheadDays: z.number().int().min(1).max(730).default(90),
    /** What the scripted assistant says when it cannot book what it collected, in the profile's language. */
    phrases: z
      .object({
        /** `{when}`: the day and time asked for. */
        unavailable: z.string().min(1).default("I'm sorry, {when} is not available."),
        /** `{alternatives}`: the free times nearby, spoken in the profile's language. */
        alternatives: z.string().min(1).default('I could offer {alternatives}.'),
        /** `{max}`: the largest party booked by phone. */
        tooLarge: z.string().min(1).default('I am sorry, by phone we can book at most {max} guests.'),
      })
      .default({ unavailable: "I'm sorry, {when} is not available.", alternatives: 'I could offer {alternatives}.', tooLarge: 'I am sorry, by phone we can book at most {max} guests.' }),
  })
  .optional();

export type ReservationSettings = NonNullable<z.infer<typeof reservationSettingsSchema>>;

/** `"19:30"` → 1170. */
export function minutesOf(time: string): number {
  const [hours, minutes] = time.split(':').map(Number);
  return hours * 60 + minutes;
}

/** 1170 → `"19:30"`. */
export function timeOf(minutes: number): string {
  return `${String(Math.floor(minutes / 60)).padStart(2, '0')}:${String(minutes % 60).padStart(2, '0')}`;
}

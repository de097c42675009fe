import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ReservationRepository } from '../storage/reservation-repository.js';
import { availableDatabaseKinds, openTestDatabase, type TestDatabase } from '../testing/test-databases.js';
import { bistro } from '../testing/test-profiles.js';
import { ReservationBook } from './reservation-book.js';
import { describeWeek, slotsOn } from './opening-hours.js';
import { reservationSettingsSchema } from './reservation-settings.js';

// The clock reads Monday 2030-03-04, 10:00 in London (GMT in March).
const now = () => new Date('2030-03-04T10:00:00Z');
const monday = '2030-03-04';
const tuesday = '2030-03-05';
const friday = '2030-03-08';
const saturday = '2030-03-09';

describe('opening hours', () => {
  const settings = bistro.reservations!;
  it('offers slots on the grid from each opening, the last an hour before closing', () => {
    expect(slotsOn(settings, friday).map((minutes) => `${Math.floor(minutes / 60)}:${String(minutes % 60).padStart(2, '0')}`)).toEqual([
      '18:00', '18:30', '19:00', '19:30', '20:00', '20:30', '21:00', '21:30',
    ]);
    expect(slotsOn(settings, tuesday)).toHaveLength(5 + 8); // 12:00–14:00 and 18:00–21:30
    expect(slotsOn(settings, monday)).toEqual([]);
    expect(slotsOn(settings, '2030-03-06')).toEqual([]); // a closed date on an open weekday
  });

  it('describes the week for the model, Monday first', () => {
    expect(describeWeek(settings)).toMatch(/^Monday closed; Tuesday 12:00 to 15:00 and 18:00 to 22:30; Wednesday 18:00 to 22:30;/);
  });

  it('refuses settings that make no sense', () => {
    const base = { openingHours: {}, capacity: 4 };
    expect(reservationSettingsSchema.safeParse({ ...base, timeZone: 'Mars/Olympus' }).success).toBe(false);
    expect(reservationSettingsSchema.safeParse({ ...base, openingHours: { monday: ['22:00-18:00'] } }).success).toBe(false);
    expect(reservationSettingsSchema.safeParse({ ...base, openingHours: { monday: ['noon till late'] } }).success).toBe(false);
    expect(reservationSettingsSchema.safeParse({ openingHours: {} }).success).toBe(false); // capacity is required
  });
});

describe.each(await availableDatabaseKinds())('the reservation book, on %s', (kind) => {
  let database: TestDatabase;
  let book: ReservationBook;
  const phone = { source: 'phone' as const };

  beforeAll(async () => {
    database = await openTestDatabase(kind);
    book = new ReservationBook(new ReservationRepository(database.db), now);
  });
  afterAll(async () => {
    await database?.cleanup();
  });
  beforeEach(async () => {
    await database.db.query('DELETE FROM reservations');
  });

  it('books with spoken dates and times, reading "seven" as the evening when only the evening is open', async () => {
    const result = await book.create(bistro, { name: ' Anna ', date: 'Friday', time: 'seven', partySize: 4, phone: '+14155550132', notes: 'window' }, phone);
    expect(result).toMatchObject({
      kind: 'created',
      reservation: { name: 'Anna', date: friday, time: '19:00', party_size: 4, phone: '+14155550132', notes: 'window', status: 'confirmed', source: 'phone', profile_id: 'bistro' },
    });
  });

  it('says which details are missing, and which one it cannot read', async () => {
    expect(await book.create(bistro, { name: 'Anna', partySize: 2 }, phone)).toEqual({ kind: 'missing', fields: ['date', 'time'] });
    expect(await book.create(bistro, { name: 'Anna', date: 'someday', time: '19:00', partySize: 2 }, phone)).toMatchObject({ kind: 'invalid', field: 'date' });
    expect(await book.create(bistro, { name: 'Anna', date: friday, time: 'late-ish', partySize: 2 }, phone)).toMatchObject({ kind: 'invalid', field: 'time' });
  });

  it('offers the nearest free times when a slot is full, counting guests whose stay overlaps', async () => {
    await book.create(bistro, { name: 'A', date: friday, time: '18:30', partySize: 6 }, phone);
    await book.create(bistro, { name: 'B', date: friday, time: '19:30', partySize: 3 }, phone);
    // 19:00 for 2: 6 (18:30–20:30) + 3 (19:30–21:30) + 2 = 11 > 10.
    const full = await book.create(bistro, { name: 'C', date: friday, time: '19:00', partySize: 2 }, phone);
    expect(full).toMatchObject({ kind: 'full', date: friday, time: '19:00' });
    if (full.kind !== 'full') throw new Error('unreachable');
    // Every alternative offered can really be booked; the nearest is 20:30, when A's table is free again.
    for (const slot of full.alternatives) {
      const tried = await book.create(bistro, { name: `try ${slot.time}`, date: slot.date, time: slot.time, partySize: 2 }, { source: 'api' });
      expect(tried.kind, `${slot.date} ${slot.time}`).toBe('created');
      if (tried.kind === 'created') await book.cancel(bistro, tried.reservation.reservation_id, { source: 'api' });
    }
    expect(full.alternatives.length).toBe(3);
    expect(full.alternatives[0]).toEqual({ date: friday, time: '20:30' });
    // One guest fewer fits.
    expect(await book.create(bistro, { name: 'D', date: friday, time: '19:00', partySize: 1 }, phone)).toMatchObject({ kind: 'created' });
  });

  it('refuses closed days, times outside the hours, past times and times off the grid, with alternatives', async () => {
    const closedDay = await book.create(bistro, { name: 'A', date: monday, time: '19:00', partySize: 2 }, phone);
    expect(closedDay).toMatchObject({ kind: 'closed', reason: 'closed on Monday', hours: 'closed' });
    if (closedDay.kind === 'closed') expect(closedDay.alternatives[0]).toEqual({ date: tuesday, time: '19:00' });

    const holiday = await book.create(bistro, { name: 'A', date: '2030-03-06', time: '19:00', partySize: 2 }, phone);
    expect(holiday).toMatchObject({ kind: 'closed', reason: 'closed on 2030-03-06' });
    if (holiday.kind === 'closed') expect(holiday.alternatives[0]).toEqual({ date: '2030-03-07', time: '19:00' });

    const late = await book.create(bistro, { name: 'A', date: friday, time: '22:00', partySize: 2 }, phone);
    expect(late).toMatchObject({ kind: 'closed', reason: 'outside the hours bookings are taken', hours: '18:00 to 22:30' });
    if (late.kind === 'closed') expect(late.alternatives).toEqual([{ date: friday, time: '20:30' }, { date: friday, time: '21:00' }, { date: friday, time: '21:30' }]);

    expect(await book.create(bistro, { name: 'A', date: friday, time: '19:10', partySize: 2 }, phone)).toMatchObject({ kind: 'closed', reason: 'bookings start every 30 minutes' });
    expect(await book.create(bistro, { name: 'A', date: '2030-03-01', time: '19:00', partySize: 2 }, phone)).toMatchObject({ kind: 'closed', reason: 'that time has already passed' });
    expect(await book.create(bistro, { name: 'A', date: '2031-03-01', time: '19:00', partySize: 2 }, phone)).toMatchObject({ kind: 'closed', alternatives: [] });
    expect(await book.create(bistro, { name: 'A', date: friday, time: '19:00', partySize: 9 }, phone)).toEqual({ kind: 'too-large', maxPartySize: 8 });
  });

  it('lets staff override hours and capacity', async () => {
    expect(await book.create(bistro, { name: 'Party', date: monday, time: '20:00', partySize: 30 }, { source: 'dashboard', override: true })).toMatchObject({
      kind: 'created',
      reservation: { source: 'dashboard', party_size: 30 },
    });
  });

  it('changes time and party size against capacity, not counting the booking itself', async () => {
    const made = await book.create(bistro, { name: 'Anna', date: friday, time: '19:00', partySize: 8, phone: '+1555' }, phone);
    if (made.kind !== 'created') throw new Error(made.kind);
    const id = made.reservation.reservation_id;
    // Its own 8 guests do not block moving it by half an hour.
    expect(await book.change(bistro, id, { time: '19:30' }, phone)).toMatchObject({ kind: 'changed', reservation: { time: '19:30', party_size: 8 }, previous: { time: '19:00' } });
    await book.create(bistro, { name: 'Ben', date: friday, time: '19:30', partySize: 2 }, phone);
    expect(await book.change(bistro, id, { partySize: 9 }, phone)).toEqual({ kind: 'too-large', maxPartySize: 8 });
    const crowded = await book.change(bistro, id, { date: saturday }, phone);
    expect(crowded).toMatchObject({ kind: 'changed', reservation: { date: saturday, time: '19:30' } });
    await book.create(bistro, { name: 'Cleo', date: friday, time: '19:30', partySize: 8 }, phone);
    expect(await book.change(bistro, id, { date: friday }, phone)).toMatchObject({ kind: 'full' });
    expect(await book.change(bistro, 999_999, { time: '20:00' }, phone)).toEqual({ kind: 'not-found' });
  });

  it('cancels once, and a cancelled booking frees its seats and cannot be changed', async () => {
    const made = await book.create(bistro, { name: 'Anna', date: friday, time: '19:00', partySize: 8 }, phone);
    if (made.kind !== 'created') throw new Error(made.kind);
    expect(await book.create(bistro, { name: 'Ben', date: friday, time: '19:00', partySize: 4 }, phone)).toMatchObject({ kind: 'full' });
    expect(await book.cancel(bistro, made.reservation.reservation_id, phone)).toMatchObject({ kind: 'cancelled', reservation: { status: 'cancelled' } });
    expect(await book.cancel(bistro, made.reservation.reservation_id, phone)).toMatchObject({ kind: 'already-cancelled' });
    expect(await book.change(bistro, made.reservation.reservation_id, { time: '20:00' }, phone)).toMatchObject({ kind: 'already-cancelled' });
    expect(await book.create(bistro, { name: 'Ben', date: friday, time: '19:00', partySize: 4 }, phone)).toMatchObject({ kind: 'created' });
  });

  it('finds upcoming bookings by number first, then by name', async () => {
    await book.create(bistro, { name: 'Anna', date: saturday, time: '13:00', partySize: 2, phone: '+1555' }, phone);
    await book.create(bistro, { name: 'Anna', date: friday, time: '19:00', partySize: 2, phone: '+1555' }, phone);
    await book.create(bistro, { name: 'anna ', date: tuesday, time: '19:00', partySize: 2, phone: '+1666' }, phone);
    const byPhone = await book.upcoming(bistro, { phone: '+1555', name: 'Zed' });
    expect(byPhone.by).toBe('phone');
    expect(byPhone.reservations.map((reservation) => reservation.date)).toEqual([friday, saturday]);
    const byName = await book.upcoming(bistro, { phone: '+1777', name: 'ANNA' });
    expect(byName.by).toBe('name');
    expect(byName.reservations).toHaveLength(3);
    expect(await book.upcoming(bistro, { phone: '+1777' })).toEqual({ by: 'none', reservations: [] });
  });

  it('never lets two simultaneous bookings both take the last seats', async () => {
    await book.create(bistro, { name: 'A', date: friday, time: '19:00', partySize: 6 }, phone);
    const attempts = await Promise.all(
      ['B', 'C', 'D', 'E'].map((name) => book.create(bistro, { name, date: friday, time: '19:00', partySize: 4 }, phone)),
    );
    expect(attempts.filter((attempt) => attempt.kind === 'created')).toHaveLength(1);
    expect(attempts.filter((attempt) => attempt.kind === 'full')).toHaveLength(3);
  });

  it('books once when one call asks twice for the same booking', async () => {
    const { rows } = await database.db.query<{ call_id: string }>(
      `INSERT INTO calls (call_id, profile_id, language, status) VALUES ('CAtwice', 'bistro', 'en-US', 'in-progress') ON CONFLICT DO NOTHING RETURNING call_id`,
    );
    expect(rows.length).toBeLessThanOrEqual(1);
    const first = await book.create(bistro, { name: 'Anna', date: friday, time: '19:00', partySize: 2 }, { source: 'phone', callId: 'CAtwice' });
    const second = await book.create(bistro, { name: 'anna', date: friday, time: '7 pm', partySize: 2 }, { source: 'phone', callId: 'CAtwice' });
    expect(first.kind).toBe('created');
    expect(second).toEqual(first);
  });
});

import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { ReservationRepository } from '../storage/reservation-repository.js';
import { openTestDatabase, type TestDatabase } from '../testing/test-databases.js';
import { bistro } from '../testing/test-profiles.js';
import { CallerRecognition, rememberCallerMs } from './caller-recognition.js';
import { ReservationBook } from './reservation-book.js';

const phone = '+14155550132';

describe('caller recognition within a call', () => {
  let database: TestDatabase;
  let repository: ReservationRepository;
  let book: ReservationBook;
  let clock = 0;
  let recognition: CallerRecognition;

  beforeAll(async () => {
    database = await openTestDatabase('pglite');
    repository = new ReservationRepository(database.db);
    // Far enough ahead that the booking is always upcoming.
    book = new ReservationBook(repository, () => new Date('2099-03-02T10:00:00Z'));
    recognition = new CallerRecognition(repository, () => clock);
    await book.create(bistro, { name: 'Anna', date: '2099-03-06', time: '19:00', partySize: 2, phone }, { source: 'api' });
  });

  afterAll(async () => {
    await database?.cleanup();
  });

  it('asks the database once per call, not once per turn', async () => {
    const lookups = vi.spyOn(repository, 'upcomingByPhone');
    const first = await recognition.recognise(bistro, phone, 'CA1');
    expect(first?.name).toBe('Anna');
    expect(first?.reservations.map((row) => row.time)).toEqual(['19:00']);
    clock += rememberCallerMs - 1;
    expect(await recognition.recognise(bistro, phone, 'CA1')).toEqual(first);
    expect(lookups).toHaveBeenCalledTimes(1);
    // Another call from the same number asks for itself.
    await recognition.recognise(bistro, phone, 'CA2');
    expect(lookups).toHaveBeenCalledTimes(2);
    lookups.mockRestore();
  });

  it('asks again once a reservation is written, so the call sees its own booking', async () => {
    await recognition.recognise(bistro, phone, 'CA3');
    await book.create(bistro, { name: 'Anna', date: '2099-03-06', time: '20:00', partySize: 4, phone }, { source: 'phone' });
    const after = await recognition.recognise(bistro, phone, 'CA3');
    expect(after?.reservations.map((row) => row.time)).toEqual(['19:00', '20:00']);
    const cancelled = after!.reservations[1].reservation_id;
    await book.cancel(bistro, cancelled, { source: 'dashboard' });
    expect((await recognition.recognise(bistro, phone, 'CA3'))?.reservations.map((row) => row.time)).toEqual(['19:00']);
  });

  it('asks again after the time a call may keep it', async () => {
    const lookups = vi.spyOn(repository, 'knownName');
    await recognition.recognise(bistro, phone, 'CA4');
    clock += rememberCallerMs;
    await recognition.recognise(bistro, phone, 'CA4');
    expect(lookups).toHaveBeenCalledTimes(2);
    lookups.mockRestore();
  });

  it('does not remember a failed lookup', async () => {
    const lookups = vi.spyOn(repository, 'knownName').mockRejectedValueOnce(new Error('database unreachable'));
    await expect(recognition.recognise(bistro, phone, 'CA5')).rejects.toThrow('database unreachable');
    expect((await recognition.recognise(bistro, phone, 'CA5'))?.name).toBe('Anna');
    expect(lookups).toHaveBeenCalledTimes(2);
    lookups.mockRestore();
  });
});

import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addDays } from '../src/reservations/opening-hours.js';
import { startTestApp, type TestApp } from '../src/testing/test-app.js';
import { availableDatabaseKinds } from '../src/testing/test-databases.js';

/** The server runs on PostgreSQL when it is there; the reservation queries run on both in src/reservations and test/reservations.e2e. */
const databaseKind = (await availableDatabaseKinds()).includes('postgres') ? 'postgres' : 'pglite';
const adminToken = 'reservations-admin-token-0123456789';
const today = new Date().toISOString().slice(0, 10);
const day1 = addDays(today, 2);
const day2 = addDays(today, 3);

const phrases = { repeat: 'r', unclear: 'u', apology: 'a', noInputGoodbye: 'n', goodbye: 'g', confirm: 'c {details}' };
const everyDay = Object.fromEntries(['monday', 'tuesday', 'wednesday', 'thursday', 'friday', 'saturday', 'sunday'].map((day) => [day, ['18:00-23:00']]));
const adminTestProfiles = {
  bistro: {
    id: 'bistro',
    name: 'The Bistro',
    language: 'en-US',
    systemPrompt: 'Take reservations.',
    greeting: 'Hello',
    phrases,
    reservations: { timeZone: 'UTC', openingHours: everyDay, slotMinutes: 30, durationMinutes: 120, capacity: 10, maxPartySize: 8 },
  },
  questions: { id: 'questions', name: 'Questions only', language: 'en-US', systemPrompt: 'Answer.', greeting: 'Hi', phrases, phoneNumbers: ['+15550100009'] },
};

describe('reservations in the admin API', () => {
  let server: TestApp;
  let profilesDir: string;

  beforeAll(async () => {
    profilesDir = await mkdtemp(path.join(tmpdir(), 'callme-reservations-admin-'));
    for (const profile of Object.values(adminTestProfiles)) await writeFile(path.join(profilesDir, `${profile.id}.json`), JSON.stringify(profile));
    server = await startTestApp(databaseKind, { ADMIN_TOKEN: adminToken, PROFILES_DIR: profilesDir, ASSISTANT_PROFILE: 'bistro' });
  }, 60_000);
  afterAll(async () => {
    await server?.close();
    await rm(profilesDir, { recursive: true, force: true });
  });

  const api = async (method: string, url: string, body?: unknown, headers: Record<string, string> = { authorization: `Bearer ${adminToken}` }) => {
    const response = await fetch(`${server.baseUrl}${url}`, {
      method,
      headers: { ...headers, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: response.status, body: (await response.json()) as any };
  };
  const book = (name: string, date: string, time: string, partySize: number, extra: Record<string, unknown> = {}) =>
    api('POST', '/api/reservations', { name, date, time, partySize, ...extra });

  describe('happy paths', () => {
    it('books for staff, checked against capacity, and marks who made it', async () => {
      const created = await book('Anna', day1, '19:00', 4, { phone: '+14155550132', notes: 'birthday' });
      expect(created.status).toBe(201);
      expect(created.body).toMatchObject({ profileId: 'bistro', profileName: 'The Bistro', name: 'Anna', phone: '+14155550132', date: day1, time: '19:00', partySize: 4, notes: 'birthday', status: 'confirmed', source: 'api', callSid: null });
      expect((await book('Ben', day1, '19:30', 6)).status).toBe(201);
      expect((await book('Cleo', day1, '21:00', 2, { phone: '+14155550199' })).status).toBe(201);
      expect((await book('Dev', day2, '18:00', 3)).status).toBe(201);
    });

    it('lists one day by time with the guests expected, and filters by status, name and phone', async () => {
      const { status, body } = await api('GET', `/api/reservations?date=${day1}`);
      expect(status).toBe(200);
      expect(body).toMatchObject({ total: 3, guests: 12, page: 1, pageSize: 50 });
      expect(body.reservations.map((reservation: any) => `${reservation.time} ${reservation.name}`)).toEqual(['19:00 Anna', '19:30 Ben', '21:00 Cleo']);
      expect(body.reservations[0].weekday).toMatch(/day$/);
      expect((await api('GET', `/api/reservations?from=${day1}&to=${day2}`)).body.total).toBe(4);
      expect((await api('GET', '/api/reservations?name=cle')).body.reservations.map((reservation: any) => reservation.name)).toEqual(['Cleo']);
      expect((await api('GET', '/api/reservations?phone=5550132')).body.reservations.map((reservation: any) => reservation.name)).toEqual(['Anna']);
      expect((await api('GET', '/api/reservations?status=cancelled')).body.total).toBe(0);
    });

    it('changes the time and party size, and cancels', async () => {
      const { body: list } = await api('GET', `/api/reservations?date=${day1}&name=anna`);
      const anna = list.reservations[0];
      const changed = await api('PATCH', `/api/reservations/${anna.id}`, { time: '21:30', partySize: 5 });
      expect(changed.status).toBe(200);
      expect(changed.body).toMatchObject({ id: anna.id, time: '21:30', partySize: 5, date: day1, source: 'api' });
      expect((await api('GET', `/api/reservations/${anna.id}`)).body).toMatchObject({ time: '21:30', partySize: 5 });

      const cancelled = await api('POST', `/api/reservations/${anna.id}/cancel`);
      expect(cancelled).toMatchObject({ status: 200, body: { id: anna.id, status: 'cancelled' } });
      // Again: still cancelled, not an error.
      expect((await api('POST', `/api/reservations/${anna.id}/cancel`)).body.status).toBe('cancelled');
      const { body: after } = await api('GET', `/api/reservations?date=${day1}`);
      expect(after).toMatchObject({ total: 3, guests: 8 });
      expect((await api('GET', `/api/reservations?date=${day1}&status=confirmed`)).body.total).toBe(2);
    });
  });

  describe('refusals', () => {
    it('answers a full slot with 409 and the free times nearby; override books it anyway', async () => {
      // Ben's 6 at 19:30 and Cleo's 2 at 21:00: 3 more at 20:00 make 11.
      const full = await book('Eve', day1, '20:00', 3);
      expect(full.status).toBe(409);
      expect(full.body.error).toMatchObject({ code: 'conflict', refusal: { kind: 'full', date: day1, time: '20:00' } });
      expect(full.body.error.message).toMatch(/ at 20:00 is fully booked\. Free nearby: /);
      expect(full.body.error.refusal.alternatives.length).toBeGreaterThan(0);
      for (const slot of full.body.error.refusal.alternatives) expect(slot.date >= day1).toBe(true);
      expect((await book('Eve', day1, '20:00', 3, { override: true })).status).toBe(201);
    });

    it('refuses times outside the hours, a cancelled reservation and a party too large, and moves only within capacity', async () => {
      const closed = await book('Fay', day2, '12:00', 2);
      expect(closed.status).toBe(409);
      expect(closed.body.error.refusal).toMatchObject({ kind: 'closed', reason: 'outside the hours bookings are taken', hours: '18:00 to 23:00' });
      expect((await book('Gus', day2, '19:00', 9)).body.error.refusal).toEqual({ kind: 'too-large', maxPartySize: 8 });

      const { body } = await api('GET', `/api/reservations?date=${day1}`);
      const cancelled = body.reservations.find((reservation: any) => reservation.status === 'cancelled');
      expect((await api('PATCH', `/api/reservations/${cancelled.id}`, { time: '19:00' })).body.error).toMatchObject({ code: 'conflict', message: 'the reservation is cancelled' });
      const cleo = body.reservations.find((reservation: any) => reservation.name === 'Cleo');
      expect((await api('PATCH', `/api/reservations/${cleo.id}`, { time: '19:30', partySize: 5 })).status).toBe(409);
      expect((await api('GET', `/api/reservations/${cleo.id}`)).body).toMatchObject({ time: '21:00', partySize: 2 });
    });

    it.each([
      ['GET', '/api/reservations?date=tomorrow', 400, 'date', undefined],
      ['GET', '/api/reservations?status=maybe', 400, 'status', undefined],
      ['GET', `/api/reservations?from=${day2}&to=${day1}`, 400, 'from', undefined],
      ['POST', '/api/reservations', 400, 'time', { name: 'X', date: day1, time: '7pm', partySize: 2 }],
      ['POST', '/api/reservations', 400, 'partySize', { name: 'X', date: day1, time: '19:00' }],
      ['POST', '/api/reservations', 400, 'profile', { name: 'X', date: day1, time: '19:00', partySize: 2, profile: 'questions' }],
      ['PATCH', '/api/reservations/1', 400, 'partySize', { partySize: 0 }],
    ])('%s %s is a %i naming %s', async (method, url, status, field, body) => {
      const response = await api(method, url, body);
      expect(response.status).toBe(status);
      expect(response.body.error).toMatchObject({ code: 'invalid_request', field });
    });

    it('answers 404 for an unknown reservation', async () => {
      expect((await api('GET', '/api/reservations/999999')).status).toBe(404);
      expect((await api('GET', '/api/reservations/abc')).status).toBe(404);
      expect((await api('PATCH', '/api/reservations/999999', { time: '19:00' })).status).toBe(404);
      expect((await api('POST', '/api/reservations/999999/cancel')).status).toBe(404);
    });
  });

  describe('security', () => {
    it('needs the admin credentials to read or change anything', async () => {
      expect((await api('GET', '/api/reservations', undefined, {})).status).toBe(401);
      expect((await api('POST', '/api/reservations', { name: 'X', date: day1, time: '19:00', partySize: 2 }, { authorization: 'Bearer wrong' })).status).toBe(401);
      expect((await api('POST', '/api/reservations/1/cancel', undefined, { cookie: 'callme_session=forged' })).status).toBe(401);
    });

    it('is described in the OpenAPI document', async () => {
      const { body } = await api('GET', '/api/openapi.json');
      expect(Object.keys(body.paths)).toEqual(expect.arrayContaining(['/api/reservations', '/api/reservations/{id}', '/api/reservations/{id}/cancel']));
      expect(Object.keys(body.paths['/api/reservations/{id}'])).toEqual(['get', 'patch']);
      expect(body.components.schemas.Reservation.required).toContain('partySize');
    });
  });
});

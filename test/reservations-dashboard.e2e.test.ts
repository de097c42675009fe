import { mkdir, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { browserSkipReason, launchBrowser, signInWithToken, watchPageErrors } from '../src/dashboard/testing/headless-browser.js';
import { addDays } from '../src/reservations/opening-hours.js';
import { simulateCall } from '../src/simulator/twilio-simulator.js';
import { startFakeOpenAI, type FakeOpenAI } from '../src/testing/fake-openai-server.js';
import { startTestApp, type TestApp } from '../src/testing/test-app.js';
import { availableDatabaseKinds } from '../src/testing/test-databases.js';

/** The server runs on PostgreSQL when it is there; the reservation queries run on both in src/reservations and test/reservations.e2e. */
const databaseKind = (await availableDatabaseKinds()).includes('postgres') ? 'postgres' : 'pglite';
const adminToken = 'reservations-browser-token-0123456789';
/** `UPDATE_SCREENSHOTS=1` also writes docs/screenshots/reservations.png (as test/dashboard-screenshots.test.ts does for the other pages). */
const update = process.env.UPDATE_SCREENSHOTS === '1';
const skip = browserSkipReason();
if (skip) console.warn(`skipping the reservations browser tests: ${skip}`);

const today = new Date().toISOString().slice(0, 10);
const day = addDays(today, 2);
const phrases = { repeat: 'r', unclear: 'u', apology: 'a', noInputGoodbye: 'n', goodbye: 'Goodbye!', confirm: 'c {details}' };
const hours = Object.fromEntries(['monday', 'tuesday', 'wednesday', 'thursday', 'friday', 'saturday', 'sunday'].map((weekday) => [weekday, ['12:00-15:00', '18:00-23:00']]));
const bellaVista = {
  id: 'restaurant',
  name: 'Bella Vista reservations',
  language: 'en-US',
  systemPrompt: 'You take reservations for Bella Vista.',
  greeting: 'Hello, Bella Vista!',
  phrases,
  phoneNumbers: ['+14155550100'],
  reservations: { timeZone: 'UTC', openingHours: hours, slotMinutes: 30, durationMinutes: 120, lastStartBeforeCloseMinutes: 60, capacity: 16, maxPartySize: 12 },
};

describe.skipIf(skip)('the reservations page in a browser', { timeout: 30_000 }, () => {
  let openai: FakeOpenAI;
  let server: TestApp;
  let workDir: string;
  let browser: Browser;
  let page: Page;
  let problems: string[];
  let phoneCallSid: string;
  const url = (pathname: string) => `${server.baseUrl}${pathname}`;
  const rows = () => page.locator('table.reservations tbody tr');
  const rowOf = (name: string) => page.locator('table.reservations tbody tr', { hasText: name });
  const stored = async (name: string) =>
    (await server.db.query<Record<string, unknown>>(
      `SELECT to_char(reservation_time, 'HH24:MI') AS time, party_size, status, source FROM reservations WHERE name = $1`,
      [name],
    )).rows[0];

  beforeAll(async () => {
    workDir = await mkdtemp(path.join(tmpdir(), 'callme-reservations-page-'));
    await mkdir(path.join(workDir, 'profiles'));
    await writeFile(path.join(workDir, 'profiles', 'restaurant.json'), JSON.stringify(bellaVista));
    openai = await startFakeOpenAI();
    [server, browser] = await Promise.all([
      startTestApp(databaseKind, { OPENAI_API_KEY: 'sk-test', OPENAI_BASE_URL: openai.url, ADMIN_TOKEN: adminToken, PROFILES_DIR: path.join(workDir, 'profiles') }),
      launchBrowser(),
    ]);
    // One booking from the phone line, the way a caller makes it.
    openai.queueChatReplies(
      { toolCalls: [{ name: 'create_reservation', arguments: { name: 'Anna Schmidt', date: day, time: '19:00', party_size: 4, notes: 'window table, birthday' } }] },
      { text: 'Booked: four people at seven. Anything else?' },
    );
    const lines = [`A table for four on ${day} at seven, Anna Schmidt, by the window, it is a birthday`, 'bye'];
    const call = await simulateCall({
      baseUrl: server.baseUrl,
      publicUrl: server.publicUrl,
      authToken: server.authToken,
      from: '+14155550132',
      to: '+14155550100',
      caller: async () => lines.shift() ?? null,
    });
    phoneCallSid = call.callSid;
    // The rest of the day, as staff and the API entered it.
    const others: Array<[string, string, number, string | null, string | null, string]> = [
      ['Marco Rossi', '12:30', 2, '+393471234567', null, 'api'],
      ['Chen Wei', '13:00', 6, '+8613800138000', 'high chair', 'dashboard'],
      ['Olivia Brown', '19:30', 8, '+447700900461', 'gluten-free', 'phone'],
      ['Jonas Berg', '20:30', 3, '+4670123456', null, 'api'],
      ['Priya Patel', '21:00', 2, '+919812345678', 'terrace if warm', 'phone'],
    ];
    for (const [name, time, size, phone, notes, source] of others) {
      await server.db.query(
        `INSERT INTO reservations (profile_id, name, phone, reservation_date, reservation_time, party_size, notes, source) VALUES ('restaurant', $1, $2, $3::date, $4::time, $5, $6, $7)`,
        [name, phone, day, time, size, notes, source],
      );
    }
    await server.db.query(
      `INSERT INTO reservations (profile_id, name, phone, reservation_date, reservation_time, party_size, source) VALUES ('restaurant', 'Next Day Guest', '+15550001111', $1::date, '19:00', 2, 'phone')`,
      [addDays(day, 1)],
    );
    page = await browser.newPage({ viewport: { width: 1440, height: 900 } });
    problems = watchPageErrors(page);
    await signInWithToken(page, server.baseUrl, adminToken);
  }, 60_000);
  afterAll(async () => {
    await browser?.close();
    await server?.close();
    await openai?.close();
    await rm(workDir, { recursive: true, force: true });
  });

  it("opens on today's reservations from the navigation, and moves from day to day", async () => {
    await Promise.all([page.waitForURL(/\/dashboard\/reservations/), page.click('nav a:text("Reservations")')]);
    await expect(page.locator('nav a.active').textContent()).resolves.toBe('Reservations');
    await expect(page.locator('form.filters input[name="date"]').inputValue()).resolves.toBe(today);
    await expect(page.getByTestId('reservations-empty').textContent()).resolves.toMatch(/^No reservations on /);

    await page.fill('form.filters input[name="date"]', day);
    await Promise.all([page.waitForURL(new RegExp(`date=${day}`)), page.click('form.filters button[type="submit"]')]);
    await expect(page.getByTestId('reservations-summary').textContent()).resolves.toMatch(/· 6 reservations · 25 guests expected$/);
    const times = await rows().locator('td:nth-child(1)').allInnerTexts();
    expect(times).toEqual(['12:30', '13:00', '19:00', '19:30', '20:30', '21:00']);

    await Promise.all([page.waitForURL(new RegExp(`date=${addDays(day, 1)}`)), page.click('text=Next day →')]);
    expect(await rows().allInnerTexts()).toEqual([expect.stringContaining('Next Day Guest')]);
    await Promise.all([page.waitForURL(/\/dashboard\/reservations\?date=$/), page.click('text=Every day')]);
    await expect(page.locator('table.reservations thead th').first().textContent()).resolves.toBe('Day');
    await expect(rows().count()).resolves.toBe(7);
  });

  it('shows what the phone line booked, linked to its call', async () => {
    await page.goto(url(`/dashboard/reservations?date=${day}`));
    const anna = rowOf('Anna Schmidt');
    await expect(anna.innerText()).resolves.toMatch(/19:00\s+Anna Schmidt\s+4\s+\+14155550132\s+window table, birthday\s+Confirmed\s+Phone line/);
    await Promise.all([page.waitForURL(/\/dashboard\/calls\/CA/), anna.locator('a', { hasText: 'Phone line' }).click()]);
    expect(page.url()).toContain(phoneCallSid);
  });

  it('changes the time and party size of a reservation', async () => {
    await page.goto(url(`/dashboard/reservations?date=${day}`));
    const jonas = rowOf('Jonas Berg');
    await jonas.locator('summary', { hasText: 'Change' }).click();
    await jonas.locator('input[name="time"]').fill('21:30');
    await jonas.locator('input[name="partySize"]').fill('5');
    await Promise.all([page.waitForURL(/done=changed/), jonas.locator('button', { hasText: 'Save' }).click()]);
    await expect(page.getByTestId('notice').textContent()).resolves.toMatch(/^Reservation \d+ changed\.$/);
    await expect(rowOf('Jonas Berg').innerText()).resolves.toMatch(/^21:30\s+Jonas Berg\s+5/);
    expect(await stored('Jonas Berg')).toEqual({ time: '21:30', party_size: 5, status: 'confirmed', source: 'dashboard' });
    // The filters survive the round trip.
    await expect(page.locator('form.filters input[name="date"]').inputValue()).resolves.toBe(day);
  });

  it('refuses a change into a full slot, naming the free times, unless staff override the limits', async () => {
    await page.goto(url(`/dashboard/reservations?date=${day}`));
    // Anna's 4 and Olivia's 8 are in at 19:30; Priya's 2 more make 14, and 4 more than that do not fit in 16.
    const priya = rowOf('Priya Patel');
    await priya.locator('summary', { hasText: 'Change' }).click();
    await priya.locator('input[name="time"]').fill('19:30');
    await priya.locator('input[name="partySize"]').fill('6');
    await priya.locator('button', { hasText: 'Save' }).click();
    await page.getByTestId('error').waitFor();
    await expect(page.getByTestId('error').textContent()).resolves.toMatch(/^Reservation \d+ was not changed: \w+ \d{4}-\d{2}-\d{2} at 19:30 is fully booked\. Free nearby: /);
    expect(await stored('Priya Patel')).toMatchObject({ time: '21:00', party_size: 2 });

    const again = rowOf('Priya Patel');
    await again.locator('summary', { hasText: 'Change' }).click();
    await again.locator('input[name="time"]').fill('19:30');
    await again.locator('input[name="partySize"]').fill('6');
    await again.locator('input[name="override"]').check();
    await Promise.all([page.waitForURL(/done=changed/), again.locator('button', { hasText: 'Save' }).click()]);
    expect(await stored('Priya Patel')).toMatchObject({ time: '19:30', party_size: 6 });
  });

  it('cancels a reservation', async () => {
    await page.goto(url(`/dashboard/reservations?date=${day}`));
    await Promise.all([page.waitForURL(/done=cancelled/), rowOf('Marco Rossi').locator('button', { hasText: 'Cancel' }).click()]);
    await expect(page.getByTestId('notice').textContent()).resolves.toMatch(/^Reservation \d+ cancelled\.$/);
    const marco = rowOf('Marco Rossi');
    await expect(marco.locator('.badge').textContent()).resolves.toBe('Cancelled');
    await expect(marco.locator('form, details').count()).resolves.toBe(0);
    expect(await stored('Marco Rossi')).toMatchObject({ status: 'cancelled', source: 'dashboard' });
    await expect(page.getByTestId('reservations-summary').textContent()).resolves.toMatch(/· 6 reservations · 29 guests expected$/);
  });

  it('refuses a change posted without the CSRF token, even from the signed-in browser', async () => {
    const id = await rowOf('Chen Wei').getAttribute('data-reservation-id');
    const status = await page.evaluate(async (reservationId) => {
      const response = await fetch(`/dashboard/reservations/${reservationId}/cancel`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'back=%2Fdashboard%2Freservations' });
      return response.status;
    }, id);
    expect(status).toBe(403);
    expect(await stored('Chen Wei')).toMatchObject({ status: 'confirmed' });
  });

  it('renders without script errors or policy violations, and makes its screenshot', async () => {
    await page.goto(url(`/dashboard/reservations?date=${day}`));
    await rows().first().waitFor();
    // One change form open, to show it.
    await rowOf('Olivia Brown').locator('summary', { hasText: 'Change' }).click();
    const outDir = update ? path.resolve('docs/screenshots') : workDir;
    const file = path.join(outDir, 'reservations.png');
    await page.screenshot({ path: file, fullPage: true, animations: 'disabled' });
    expect((await stat(file)).size).toBeGreaterThan(20_000);
    // The refused change (409) and the forged post (403) are the only failed requests, and intended.
    expect(problems.filter((problem) => !/status of (409|403) /.test(problem))).toEqual([]);
  });
});

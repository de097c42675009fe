import { mkdir, mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { browserSkipReason, launchBrowser, signInWithToken, watchPageErrors } from '../src/dashboard/testing/headless-browser.js';
import { insertCallHistory, placeSampleCalls, seededNumbers, writeSeedProfiles, type SampleCalls } from '../src/dashboard/testing/seed-calls.js';
import { simulateCall } from '../src/simulator/twilio-simulator.js';
import { startFakeOpenAI, type FakeOpenAI } from '../src/testing/fake-openai-server.js';
import { startTestApp, type TestApp } from '../src/testing/test-app.js';
import { availableDatabaseKinds } from '../src/testing/test-databases.js';

/** The server runs on PostgreSQL when it is there (it starts in a tenth of PGlite's time); the queries are tested on both in src/admin. */
const databaseKind = (await availableDatabaseKinds()).includes('postgres') ? 'postgres' : 'pglite';

/**
 * The README's screenshots, from a seeded database: four calls placed through
 * the real server (simulated Twilio, fake OpenAI answering at a plausible
 * pace) on top of two weeks of inserted history. Every run checks the pages
 * render that data; `UPDATE_SCREENSHOTS=1` also writes docs/screenshots/*.png.
 */
const update = process.env.UPDATE_SCREENSHOTS === '1';
const adminToken = 'screenshot-admin-token-0123456789';
const skip = browserSkipReason();

describe.skipIf(skip)('dashboard screenshots from a seeded database', { timeout: 30_000 }, () => {
  let openai: FakeOpenAI;
  let server: TestApp;
  let workDir: string;
  let outDir: string;
  let calls: SampleCalls;
  let historyCalls: number;
  let browser: Browser;
  let page: Page;
  let problems: string[];
  const url = (pathname: string) => `${server.baseUrl}${pathname}`;
  const shoot = async (name: string) => {
    const file = path.join(outDir, `${name}.png`);
    await page.screenshot({ path: file, fullPage: true, animations: 'disabled' });
    expect((await stat(file)).size).toBeGreaterThan(20_000);
  };

  beforeAll(async () => {
    workDir = await mkdtemp(path.join(tmpdir(), 'callme-screens-'));
    outDir = update ? path.resolve('docs/screenshots') : workDir;
    await mkdir(outDir, { recursive: true });
    await writeSeedProfiles(path.join(workDir, 'profiles'));
    openai = await startFakeOpenAI({ profile: { chatFirstTokenMs: 220, chatTokensPerSecond: 160, ttsFirstByteMs: 140, ttsRealtimeFactor: 40, jitter: 0.25 }, seed: 11 });
    [server, browser] = await Promise.all([
      startTestApp(databaseKind, {
        OPENAI_API_KEY: 'sk-test',
        OPENAI_BASE_URL: openai.url,
        AUDIO_RETENTION: '30d',
        ADMIN_TOKEN: adminToken,
        PROFILES_DIR: path.join(workDir, 'profiles'),
        MASK_PHONE_NUMBERS: 'true',
      }),
      launchBrowser(),
    ]);
    calls = await placeSampleCalls(server, openai);
    historyCalls = await insertCallHistory(server.db, { days: 13, seed: 7 });
    page = await browser.newPage({ viewport: { width: 1440, height: 900 } });
    problems = watchPageErrors(page);
    await signInWithToken(page, server.baseUrl, adminToken);
  }, 90_000);
  afterAll(async () => {
    await browser?.close();
    await server?.close();
    await openai?.close();
    await rm(workDir, { recursive: true, force: true });
  });

  it('the calls list', async () => {
    await page.goto(url('/dashboard/calls'));
    await expect(page.getByTestId('calls-summary').textContent()).resolves.toMatch(new RegExp(`^${historyCalls + 4} calls`));
    await expect(page.locator('table.calls tbody tr').count()).resolves.toBe(25);
    // Masked: the screenshot shows no caller's full number.
    expect(await page.locator('table.calls').innerText()).toContain('+1415****132');
    await shoot('calls');
  });

  it('a call', async () => {
    await page.goto(url(`/dashboard/calls/${calls.reservation.callSid}`));
    await expect(page.locator('.line.caller').count()).resolves.toBe(3);
    await expect(page.locator('audio').count()).resolves.toBeGreaterThanOrEqual(5);
    await shoot('call');
  });

  it('analytics', async () => {
    const to = new Date().toISOString().slice(0, 10);
    const from = new Date(Date.now() - 13 * 86_400_000).toISOString().slice(0, 10);
    await page.goto(url(`/dashboard/analytics?from=${from}&to=${to}`));
    await expect(page.getByTestId('kpi-calls').locator('.kpi-value').textContent()).resolves.toBe(String(historyCalls + 4));
    const drawn = await page.evaluate(() => [...document.querySelectorAll('canvas')].filter((canvas) => (window as any).Chart.getChart(canvas)).length);
    expect(drawn).toBe(7);
    await shoot('analytics');
  });

  it('a call in progress', async () => {
    await page.goto(url('/dashboard/live'));
    let hangUp!: () => void;
    const holding = new Promise<void>((resolve) => (hangUp = resolve));
    const hold = (from: string, to: string, lines: string[]) =>
      simulateCall({
        baseUrl: server.baseUrl,
        publicUrl: server.publicUrl,
        authToken: server.authToken,
        from,
        to,
        caller: async (prompt) => {
          if (prompt.turn <= lines.length) return lines[prompt.turn - 1];
          await holding;
          return null;
        },
      });
    openai.queueChatReplies({ text: 'Of course. We have a table for two at eight on the terrace; shall I book it?' });
    const first = hold('+16465550147', seededNumbers.restaurant, ['Hi! Do you have a table for two tonight, on the terrace?']);
    await page.locator('.live-call .assistant-text', { hasText: 'shall I book it?' }).waitFor();
    openai.queueChatReplies({ text: 'Sigur. La ce specialitate și pentru ce zi?' });
    const second = hold('+40744555120', seededNumbers.clinic, ['Bună ziua, aș dori o programare, vă rog.']);
    await page.locator('.live-call .assistant-text', { hasText: 'La ce specialitate' }).waitFor();
    await shoot('live');
    hangUp();
    await Promise.all([first, second]);
    expect(problems).toEqual([]);
  });
});

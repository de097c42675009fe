import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { browserSkipReason, launchBrowser, signInWithToken, watchPageErrors } from '../src/dashboard/testing/headless-browser.js';
import { placeSampleCalls, writeSeedProfiles, type SampleCalls } from '../src/dashboard/testing/seed-calls.js';
import { simulateCall, type GatherPrompt } from '../src/simulator/twilio-simulator.js';
import { startFakeOpenAI, type FakeOpenAI } from '../src/testing/fake-openai-server.js';
import { startTestApp, type TestApp } from '../src/testing/test-app.js';
import { availableDatabaseKinds } from '../src/testing/test-databases.js';

/** The server runs on PostgreSQL when it is there (it starts in a tenth of PGlite's time); the queries are tested on both in src/admin. */
const databaseKind = (await availableDatabaseKinds()).includes('postgres') ? 'postgres' : 'pglite';

const adminToken = 'browser-admin-token-0123456789';
const skip = browserSkipReason();
if (skip) console.warn(`skipping the dashboard browser tests: ${skip}`);

describe.skipIf(skip)('the dashboard in a browser', { timeout: 30_000 }, () => {
  let openai: FakeOpenAI;
  let server: TestApp;
  let profilesDir: string;
  let calls: SampleCalls;
  let browser: Browser;
  let page: Page;
  let problems: string[];
  const url = (pathname: string) => `${server.baseUrl}${pathname}`;
  const rows = () => page.locator('table.calls tbody tr');

  beforeAll(async () => {
    profilesDir = await mkdtemp(path.join(tmpdir(), 'callme-profiles-'));
    await writeSeedProfiles(profilesDir);
    openai = await startFakeOpenAI();
    [server, browser] = await Promise.all([
      startTestApp(databaseKind, { OPENAI_API_KEY: 'sk-test', OPENAI_BASE_URL: openai.url, AUDIO_RETENTION: 'forever', ADMIN_TOKEN: adminToken, PROFILES_DIR: profilesDir }),
      launchBrowser(),
    ]);
    calls = await placeSampleCalls(server, openai);
    // The question was asked ten days ago: the date filter has something to leave out.
    await server.db.query(`UPDATE calls SET started_at = started_at - interval '10 days', ended_at = ended_at - interval '10 days' WHERE call_id = $1`, [calls.question.callSid]);
    await server.db.query(
      `UPDATE turns SET received_at = received_at - interval '10 days', llm_first_token_at = llm_first_token_at - interval '10 days',
              first_text_at = first_text_at - interval '10 days', first_audio_at = first_audio_at - interval '10 days', completed_at = completed_at - interval '10 days'
        WHERE call_id = $1`,
      [calls.question.callSid],
    );
    page = await browser.newPage({ viewport: { width: 1360, height: 900 } });
    problems = watchPageErrors(page);
  }, 60_000);
  afterAll(async () => {
    await browser?.close();
    await server?.close();
    await openai?.close();
    await rm(profilesDir, { recursive: true, force: true });
  });

  it('refuses a browser that has not signed in', async () => {
    const stranger = await browser.newContext();
    try {
      const strangerPage = await stranger.newPage();
      await strangerPage.goto(url(`/dashboard/calls/${calls.reservation.callSid}`));
      expect(new URL(strangerPage.url()).pathname).toBe('/dashboard/login');
      await expect(strangerPage.locator('h1').textContent()).resolves.toBe('Sign in to callme');
      expect(await strangerPage.content()).not.toContain('Anna');
      expect(await strangerPage.evaluate(async () => (await fetch('/api/calls')).status)).toBe(401);
      await strangerPage.fill('input[name="token"]', 'not-the-admin-token');
      await strangerPage.click('button[type="submit"]');
      await expect(strangerPage.locator('[role="alert"]').textContent()).resolves.toBe('Wrong token.');
      expect(new URL(strangerPage.url()).pathname).toBe('/dashboard/login');
      expect((await stranger.cookies()).some((cookie) => cookie.name.includes('callme_session'))).toBe(false);
    } finally {
      await stranger.close();
    }
  });

  it('signs in and lists the calls, newest first, with their outcome and cost', async () => {
    await signInWithToken(page, server.baseUrl, adminToken);
    await expect(page.getByTestId('calls-summary').textContent()).resolves.toMatch(/^4 calls · cost \$0\.\d{4}/);
    await expect(rows().count()).resolves.toBe(4);
    const first = await rows().nth(0).innerText();
    expect(first).toContain('+13055550199');
    expect(first).toContain('Caller hung up');
    expect(first).toContain('1 error');
    const all = await rows().allInnerTexts();
    expect(all.filter((row) => row.includes('Details collected'))).toHaveLength(2);
    for (const row of all) expect(row).toMatch(/\$0\.\d{4}$/);
    expect(all.at(-1)).toContain('+12125550178'); // ten days ago
  });

  it('narrows the list with filters and transcript search', async () => {
    const apply = async (fill: () => Promise<unknown>) => {
      await page.goto(url('/dashboard/calls'));
      await fill();
      await Promise.all([page.waitForURL(/\/dashboard\/calls\?/), page.click('form.filters button[type="submit"]')]);
    };
    await apply(() => page.fill('input[name="q"]', 'vegan'));
    expect(await rows().allInnerTexts()).toEqual([expect.stringContaining('+12125550178')]);
    await expect(page.locator('input[name="q"]').inputValue()).resolves.toBe('vegan');

    await apply(() => page.fill('input[name="number"]', '40721'));
    expect(await rows().allInnerTexts()).toEqual([expect.stringContaining('+40721555019')]);

    await apply(() => page.selectOption('select[name="outcome"]', 'details-collected'));
    await expect(rows().count()).resolves.toBe(2);

    const today = new Date().toISOString().slice(0, 10);
    await apply(() => page.fill('input[name="from"]', today));
    await expect(rows().count()).resolves.toBe(3);
    expect((await rows().allInnerTexts()).join('\n')).not.toContain('+12125550178');

    await apply(() => page.selectOption('select[name="status"]', 'busy'));
    await expect(page.locator('.card.empty').textContent()).resolves.toBe('No call matches these filters.');

    await Promise.all([page.waitForURL(/\/dashboard\/calls$/), page.click('text=Reset')]);
    await expect(rows().count()).resolves.toBe(4);
  });

  it("shows a call's transcript, details, latency waterfall and cost, and plays its audio", async () => {
    await page.goto(url('/dashboard/calls'));
    await Promise.all([page.waitForURL(/\/dashboard\/calls\/CA/), page.locator('tr', { hasText: '+14155550132' }).locator('td').nth(3).click()]);
    expect(page.url()).toContain(calls.reservation.callSid);
    const callerLines = await page.locator('.line.caller .bubble').allInnerTexts();
    expect(callerLines).toEqual(["Hi, I'd like to book a table for Friday evening", 'Seven o’clock, four people, under the name Anna', "No, that's all, thanks. Bye!"]);
    const assistantLines = await page.locator('.line.assistant .bubble').allInnerTexts();
    expect(assistantLines[0]).toMatch(/^Hello, thank you for calling Bella Vista!/);
    expect(assistantLines[2]).toBe('Lovely, Anna: a table for four on Friday at seven. Is there anything else?');
    await expect(page.locator('.line.caller .chip-ok').first().textContent()).resolves.toBe('0.92');
    const details = await page.getByTestId('details').innerText();
    expect(details).toMatch(/Name\s+Anna/);
    expect(details).toMatch(/Party size\s+4/);
    await expect(page.getByTestId('errors').innerText()).resolves.toContain('None.');
    await expect(page.locator('details.waterfall').count()).resolves.toBe(4);
    await expect(page.locator('details.waterfall').nth(2).locator('th').allInnerTexts()).resolves.toEqual(['Model: first token', 'First sentence written', 'First audio playable', 'Reply complete']);
    await expect(page.getByTestId('cost').innerText()).resolves.toMatch(/Total\s+\$0\.\d{4}/);
    await expect(page.locator('code.tool').first().textContent()).resolves.toContain('save_details');

    const audioCount = await page.locator('audio').count();
    expect(audioCount).toBeGreaterThanOrEqual(5);
    const played = await page.evaluate(async () => {
      const audio = document.querySelectorAll<HTMLAudioElement>('.line.assistant audio')[1];
      audio.muted = true;
      await audio.play();
      await new Promise<void>((resolve) => (audio.currentTime > 0 || audio.ended ? resolve() : audio.addEventListener('timeupdate', () => resolve(), { once: true })));
      const response = await fetch(audio.currentSrc);
      const bytes = new Uint8Array(await response.arrayBuffer());
      return {
        duration: audio.duration,
        playedFor: audio.currentTime,
        error: audio.error?.code ?? null,
        contentType: response.headers.get('content-type'),
        size: bytes.length,
        magic: String.fromCharCode(...bytes.slice(0, 4)),
      };
    });
    expect(played.error).toBeNull();
    expect(played.duration).toBeGreaterThan(0.3);
    expect(played.playedFor).toBeGreaterThan(0);
    expect(played).toMatchObject({ contentType: 'audio/wav', magic: 'RIFF' });
    expect(played.size).toBeGreaterThan(2000);
  });

  it("says so when a call's audio was deleted by retention", async () => {
    await server.db.query('UPDATE audio_files SET deleted_at = now() WHERE call_id = $1', [calls.question.callSid]);
    await server.db.query(`UPDATE calls SET audio_retention = 'delete', audio_deleted_at = now() WHERE call_id = $1`, [calls.question.callSid]);
    await page.goto(url(`/dashboard/calls/${calls.question.callSid}`));
    await expect(page.getByTestId('audio-deleted').innerText()).resolves.toMatch(/audio was deleted .* \(delete\)/);
    await expect(page.locator('.audio-gone').first().innerText()).resolves.toBe('Audio deleted: “Yes!”');
    // The greeting is a phrase every call shares: still there.
    await expect(page.locator('.line.assistant').first().locator('audio').count()).resolves.toBe(1);
  });

  it('draws the analytics charts with the right totals', async () => {
    const api = await (await page.request.get(url('/api/analytics'))).json();
    await page.goto(url('/dashboard/analytics'));
    await expect(page.getByTestId('kpi-calls').locator('.kpi-value').textContent()).resolves.toBe('4');
    await expect(page.getByTestId('kpi-minutes').locator('.kpi-value').textContent()).resolves.toBe('4 min');
    const charts = await page.evaluate(() => {
      const chart = (id: string) => (window as any).Chart.getChart(id);
      const sum = (values: Array<number | null>) => values.reduce<number>((total, value) => total + (value ?? 0), 0);
      const datasets = (id: string) => chart(id).data.datasets.map((set: { data: number[] }) => sum(set.data));
      return {
        ids: [...document.querySelectorAll('canvas')].map((canvas) => canvas.id),
        drawn: [...document.querySelectorAll('canvas')].every((canvas) => canvas.width > 100 && canvas.height > 100 && (window as any).Chart.getChart(canvas)),
        calls: datasets('chart-calls'),
        outcomes: datasets('chart-outcomes'),
        durations: datasets('chart-durations'),
        cost: datasets('chart-cost'),
        confidence: datasets('chart-confidence'),
        failures: chart('chart-failures').data.labels,
        latencyPoints: chart('chart-latency').data.datasets[0].data.filter((value: number | null) => value !== null).length,
      };
    });
    expect(charts.ids).toEqual(['chart-calls', 'chart-outcomes', 'chart-latency', 'chart-durations', 'chart-cost', 'chart-confidence', 'chart-failures']);
    expect(charts.drawn).toBe(true);
    expect(charts.calls).toEqual([4, 0]);
    expect(charts.outcomes).toEqual([4]);
    expect(charts.durations).toEqual([4]);
    expect(charts.cost[0] + charts.cost[1]).toBeCloseTo(api.totals.cost.total, 5);
    expect(charts.cost[1]).toBeCloseTo(api.totals.cost.twilio, 5);
    expect(charts.confidence).toEqual([api.confidenceDistribution.reduce((sum: number, bucket: { turns: number }) => sum + bucket.turns, 0)]);
    expect(charts.failures).toEqual(['provider_unavailable']);
    expect(charts.latencyPoints).toBe(2);
    await expect(page.getByTestId('kpi-cost').locator('.kpi-value').textContent()).resolves.toBe(`$${api.totals.cost.total.toFixed(4)}`);
    expect(problems).toEqual([]);
  });

  it('shows a call in progress on the live page, updating without a reload', async () => {
    await page.goto(url('/dashboard/live'));
    await expect(page.locator('[data-testid="live-connection"].open').textContent()).resolves.toContain('Live');
    await page.locator('#live-empty').waitFor({ state: 'visible' });
    await page.evaluate(() => ((window as any).loadedOnce = true));

    openai.queueChatReplies({ text: 'Yes, the terrace is open until ten tonight.' });
    let hangUp!: () => void;
    const holding = new Promise<void>((resolve) => (hangUp = resolve));
    let reached!: () => void;
    const onSecondTurn = new Promise<void>((resolve) => (reached = resolve));
    const running = simulateCall({
      baseUrl: server.baseUrl,
      publicUrl: server.publicUrl,
      authToken: server.authToken,
      from: '+16175550123',
      caller: async (prompt: GatherPrompt) => {
        if (prompt.turn === 1) return 'Is the terrace open today?';
        reached();
        await holding;
        return null;
      },
    });
    await onSecondTurn;
    // The card may first show the turn still in progress; it is updated in place when the reply is stored.
    const card = page.locator('.live-call', { hasText: '+16175550123' });
    await card.locator('.assistant-text', { hasText: 'Yes, the terrace is open until ten tonight.' }).waitFor();
    await expect(card.locator('.caller-text').textContent()).resolves.toBe('Is the terrace open today?');
    await expect(card.locator('.turn-status').textContent()).resolves.toBe('replied');
    await expect(card.locator('.turns').textContent()).resolves.toBe('1 caller turn');
    await expect(card.locator('.elapsed').textContent()).resolves.toMatch(/^0:\d\d$/);

    hangUp();
    await running;
    await card.waitFor({ state: 'detached' });
    await page.locator('#live-empty').waitFor({ state: 'visible' });
    expect(await page.evaluate(() => (window as any).loadedOnce)).toBe(true);
  });

  it('lists the assistants with the numbers they answer', async () => {
    await page.goto(url('/dashboard/assistants'));
    const restaurant = await page.getByTestId('assistant-restaurant').innerText();
    expect(restaurant).toContain('Bella Vista reservations');
    expect(restaurant).toContain('+14155550100');
    expect(restaurant).toContain('default');
    await expect(page.getByTestId('assistant-clinica-ro').innerText()).resolves.toContain('+40312345600');
  });

  it('signs out, and the session is gone', async () => {
    await page.goto(url('/dashboard/calls'));
    await Promise.all([page.waitForURL(/\/dashboard\/login$/), page.click('form.logout button')]);
    await page.goto(url('/dashboard/calls'));
    expect(new URL(page.url()).pathname).toBe('/dashboard/login');
    expect(await page.evaluate(async () => (await fetch('/api/calls')).status)).toBe(401);
    expect(problems.filter((problem) => !problem.includes('401'))).toEqual([]);
  });
});

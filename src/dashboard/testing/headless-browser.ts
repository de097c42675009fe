import { existsSync } from 'node:fs';
import { chromium, type Browser, type Page } from 'playwright-core';

/** Debian's chromium; the tests drive it with playwright-core (no downloaded browsers). */
export const chromiumPath = '/usr/bin/chromium';

const chromiumArgs = [
  '--no-sandbox',
  '--headless',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/**
 * Why browser tests should be skipped: Chromium is missing on a developer's
 * machine. In CI (`CI` set) they run, and fail, instead.
 */
export function browserSkipReason(): string | undefined {
  if (existsSync(chromiumPath) || process.env.CI) return undefined;
  return `${chromiumPath} is not installed (apt-get install chromium)`;
}

export async function launchBrowser(): Promise<Browser> {
  return chromium.launch({ executablePath: chromiumPath, args: chromiumArgs });
}

/** Signs in through the login form with the admin token, as a person would. */
export async function signInWithToken(page: Page, baseUrl: string, token: string): Promise<void> {
  await page.goto(`${baseUrl}/dashboard/login`);
  await page.fill('input[name="token"]', token);
  await Promise.all([page.waitForURL(/\/dashboard\/calls/), page.click('button[type="submit"]')]);
}

/**
 * Collects what would make a page wrong without failing a request: script
 * errors, console errors and Content-Security-Policy violations.
 */
export function watchPageErrors(page: Page): string[] {
  const problems: string[] = [];
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  page.on('console', (message) => {
    if (message.type() === 'error') problems.push(`console: ${message.text()}`);
  });
  return problems;
}

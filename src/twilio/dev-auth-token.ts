import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';

/**
 * Without `TWILIO_AUTH_TOKEN` the server still checks signatures, against a
 * random token kept in the data folder. Only programs on this machine that
 * can read that file (the simulator) can sign webhooks; real Twilio requests
 * are refused until the real token is configured.
 */
export function devAuthTokenPath(dataDir: string): string {
  return path.join(dataDir, 'dev-twilio-auth-token');
}

/** Reads the local token, creating it on first use. */
export async function ensureDevAuthToken(dataDir: string): Promise<string> {
  const existing = await readDevAuthToken(dataDir);
  if (existing) return existing;
  await mkdir(dataDir, { recursive: true });
  const token = randomBytes(16).toString('hex');
  await writeFile(devAuthTokenPath(dataDir), `${token}\n`, { mode: 0o600, flag: 'wx' }).catch(async (error) => {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  });
  return (await readDevAuthToken(dataDir)) ?? token;
}

export async function readDevAuthToken(dataDir: string): Promise<string | undefined> {
  try {
    const text = (await readFile(devAuthTokenPath(dataDir), 'utf8')).trim();
    return text || undefined;
  } catch {
    return undefined;
  }
}

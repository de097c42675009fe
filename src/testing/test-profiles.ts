import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';

/**
 * The shipped restaurant profile with `overrides` on top, without its
 * Markdown knowledge and extra languages (so a test server starts quickly).
 */
export async function restaurantProfileWith(overrides: Record<string, unknown>): Promise<Record<string, unknown>> {
  const shipped = JSON.parse(await readFile(path.resolve('profiles/restaurant.json'), 'utf8')) as Record<string, unknown>;
  const { knowledgeSources: _sources, languages: _languages, ...rest } = shipped;
  return { ...rest, ...overrides };
}

/** Writes profiles into a fresh folder, for `PROFILES_DIR`. */
export async function writeTestProfiles(profiles: Array<Record<string, unknown>>): Promise<{ directory: string; cleanup(): Promise<void> }> {
  const directory = await mkdtemp(path.join(tmpdir(), 'callme-profiles-'));
  for (const profile of profiles) await writeFile(path.join(directory, `${String(profile.id)}.json`), JSON.stringify(profile, null, 2));
  return { directory, cleanup: () => rm(directory, { recursive: true, force: true }) };
}

import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { profileSchema, type AssistantProfile } from '../assistant/profile.js';

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

/** A restaurant taking reservations in London, closed on Mondays and on 2030-03-06. */
export const bistro: AssistantProfile = profileSchema.parse({
  id: 'bistro',
  name: 'Bistro',
  language: 'en-US',
  greeting: 'Hello',
  systemPrompt: 'Be brief.',
  phrases: { repeat: 'r', unclear: 'u', apology: 'a', noInputGoodbye: 'n', goodbye: 'g', confirm: 'c {details}' },
  reservations: {
    timeZone: 'Europe/London',
    openingHours: {
      tuesday: ['12:00-15:00', '18:00-22:30'],
      wednesday: ['18:00-22:30'],
      thursday: ['18:00-22:30'],
      friday: ['18:00-22:30'],
      saturday: ['12:00-22:30'],
      sunday: ['12:00-16:00'],
    },
    closedDates: ['2030-03-06'],
    slotMinutes: 30,
    durationMinutes: 120,
    lastStartBeforeCloseMinutes: 60,
    capacity: 10,
    maxPartySize: 8,
  },
});

import type { AssistantProfile } from '../assistant/profile.js';
import { pollyVoices } from '../twilio/polly-voices.js';
import { baseLanguage, catalogPhrases } from './language-catalog.js';

/** The profile's own language first, then the others it allows, without repeats. */
export function allowedLanguages(profile: AssistantProfile): string[] {
  return [...new Set([profile.language, ...profile.languages.map((entry) => entry.language)])];
}

const localized = new WeakMap<AssistantProfile, Map<string, AssistantProfile>>();

/**
 * The profile as it speaks `language`: the `<Gather>` language, the voices
 * and the fixed phrases follow it. A language the profile does not allow
 * leaves it as it is. Built once per profile and language.
 */
export function profileInLanguage(profile: AssistantProfile, language: string): AssistantProfile {
  if (language === profile.language) return profile;
  const entry = profile.languages.find((candidate) => candidate.language === language);
  if (!entry) return profile;
  let byLanguage = localized.get(profile);
  if (!byLanguage) localized.set(profile, (byLanguage = new Map()));
  const cached = byLanguage.get(language);
  if (cached) return cached;
  const ownPhrases = Object.fromEntries(Object.entries(entry.phrases).filter(([, text]) => text !== undefined));
  const inLanguage: AssistantProfile = {
    ...profile,
    language,
    voice: entry.voice ?? profile.voice,
    // The language's usual Polly voice is left to polly-voices.ts, which knows the language that voice really speaks (Tatyana for Ukrainian speaks Russian).
    pollyVoice: entry.pollyVoice && entry.pollyVoice !== pollyVoices[language]?.voice ? entry.pollyVoice : undefined,
    phrases: { ...profile.phrases, ...catalogPhrases[baseLanguage(language)], ...ownPhrases },
    // The profile's own language becomes one to switch back to, as it was set.
    languages: [
      { language: profile.language, voice: profile.voice, pollyVoice: profile.pollyVoice, phrases: profile.phrases },
      ...profile.languages.filter((candidate) => candidate.language !== language),
    ],
  };
  byLanguage.set(language, inLanguage);
  return inLanguage;
}

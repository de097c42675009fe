import { z } from 'zod';
import { speechVoices } from '../providers/speech-model.js';

const languageTag = z.string().regex(/^[a-z]{2}-[A-Z]{2}$/, 'expected a tag such as ru-RU');
const phrase = z.string().min(1).optional();

/**
 * One more language a profile's calls may switch to. The tag is the
 * `<Gather language>` and the reply language; the voices are what the caller
 * hears in it (the profile's own voice, and the language's usual Polly
 * voice, when not named).
 */
const profileLanguageSchema = z
  .union([
    languageTag,
    z.object({
      language: languageTag,
      /** OpenAI voice for this language. */
      voice: z.enum(speechVoices).optional(),
      /** Polly voice for `<Say>` in this language, e.g. `Polly.Tatyana`. */
      pollyVoice: z.string().optional(),
      /** The profile's fixed phrases in this language (the generic ones are used for any left out). */
      phrases: z
        .object({ repeat: phrase, unclear: phrase, apology: phrase, noInputGoodbye: phrase, goodbye: phrase, confirm: phrase, tooManyCalls: phrase })
        .default({}),
    }),
  ])
  .transform((entry) => (typeof entry === 'string' ? { language: entry, phrases: {} } : entry));

/** The languages a profile's callers may speak besides the profile's own `language`; empty: no switching. */
export const profileLanguagesSchema = z.array(profileLanguageSchema).default([]);

export type ProfileLanguage = z.infer<typeof profileLanguageSchema>;

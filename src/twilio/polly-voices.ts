/**
 * Twilio's `<Say>` voices per language. Twilio has no Polly voice for some
 * languages; those borrow the closest one (as VoiceHunte did: Ukrainian speaks
 * with the Russian Tatyana, Slovak with the Polish Maja), and `sayLanguage` is
 * the language that voice actually speaks.
 */
export const pollyVoices: Record<string, { voice: string; sayLanguage: string }> = {
  'en-US': { voice: 'Polly.Joanna', sayLanguage: 'en-US' },
  'en-GB': { voice: 'Polly.Amy', sayLanguage: 'en-GB' },
  'ru-RU': { voice: 'Polly.Tatyana', sayLanguage: 'ru-RU' },
  'uk-UA': { voice: 'Polly.Tatyana', sayLanguage: 'ru-RU' },
  'sk-SK': { voice: 'Polly.Maja', sayLanguage: 'pl-PL' },
  'pl-PL': { voice: 'Polly.Maja', sayLanguage: 'pl-PL' },
  'ro-RO': { voice: 'Polly.Carmen', sayLanguage: 'ro-RO' },
  'de-DE': { voice: 'Polly.Vicki', sayLanguage: 'de-DE' },
  'fr-FR': { voice: 'Polly.Lea', sayLanguage: 'fr-FR' },
  'es-ES': { voice: 'Polly.Lucia', sayLanguage: 'es-ES' },
  'it-IT': { voice: 'Polly.Bianca', sayLanguage: 'it-IT' },
};

/** The Polly voice for a language, or for its base language, or English. */
export function pollyVoiceFor(language: string, override?: string): { voice: string; sayLanguage: string } {
  const entry =
    pollyVoices[language] ??
    Object.entries(pollyVoices).find(([tag]) => tag.slice(0, 2) === language.slice(0, 2))?.[1] ??
    pollyVoices['en-US'];
  return override ? { voice: override, sayLanguage: language } : entry;
}

import { describe, expect, it } from 'vitest';
import { profileSchema, type AssistantProfile } from '../assistant/profile.js';
import { languageTools } from './language-tools.js';
import { allowedLanguages, profileInLanguage } from './profile-in-language.js';

const base = {
  id: 'line',
  name: 'Line',
  language: 'en-US',
  voice: 'nova',
  systemPrompt: 'You answer the phone.',
  greeting: 'Hello!',
  phrases: { repeat: 'Again?', unclear: 'Pardon?', apology: 'Sorry.', noInputGoodbye: 'Bye, silent one.', goodbye: 'Goodbye from the line!', confirm: 'Noted: {details}.' },
};
const profile: AssistantProfile = profileSchema.parse({
  ...base,
  languages: ['uk-UA', { language: 'ru-RU', voice: 'shimmer', pollyVoice: 'Polly.Maxim', phrases: { goodbye: 'До свидания от линии!' } }, { language: 'sk-SK', pollyVoice: 'Polly.Maja' }],
});
const context = (language: string) => ({ profile, callId: 'CA1', language, details: {}, abortSignal: new AbortController().signal });

describe('profileInLanguage', () => {
  it('follows the language: Gather language, voices and fixed phrases (the profile’s own, then the generic ones)', () => {
    const russian = profileInLanguage(profile, 'ru-RU');
    expect(russian).toMatchObject({ language: 'ru-RU', voice: 'shimmer', pollyVoice: 'Polly.Maxim', greeting: 'Hello!' });
    expect(russian.phrases.goodbye).toBe('До свидания от линии!');
    expect(russian.phrases.repeat).toBe('Извините, я вас не слышу. Повторите, пожалуйста.');
    expect(profileInLanguage(profile, 'ru-RU')).toBe(russian);
    // English stays a language to switch back to, with its own voice and phrases.
    expect(allowedLanguages(russian).sort()).toEqual(allowedLanguages(profile).sort());
    expect(profileInLanguage(russian, 'en-US')).toMatchObject({ language: 'en-US', voice: 'nova', phrases: { goodbye: 'Goodbye from the line!' } });
  });

  it("keeps the language's usual Polly voice to the voice table, and the profile's voice when none is named", () => {
    expect(profileInLanguage(profile, 'sk-SK')).toMatchObject({ voice: 'nova', pollyVoice: undefined });
    expect(profileInLanguage(profile, 'uk-UA').phrases.goodbye).toBe('Дякуємо за дзвінок. До побачення!');
  });

  it('leaves the profile as it is in its own language or one it does not allow', () => {
    expect(profileInLanguage(profile, 'en-US')).toBe(profile);
    expect(profileInLanguage(profile, 'de-DE')).toBe(profile);
    expect(allowedLanguages(profile)).toEqual(['en-US', 'uk-UA', 'ru-RU', 'sk-SK']);
  });
});

describe('languageTools', () => {
  it('offers switch_language and a reply-language instruction only to profiles with several languages', async () => {
    const single = profileSchema.parse(base);
    expect(languageTools.tools(single)).toEqual([]);
    await expect(languageTools.instructions!({ ...context('en-US'), profile: single, callerText: 'hi' })).resolves.toBeUndefined();
    const [tool] = languageTools.tools(profile);
    expect(tool.definition.name).toBe('switch_language');
    expect(tool.definition.parameters).toMatchObject({ properties: { language: { enum: ['en-US', 'uk-UA', 'ru-RU', 'sk-SK'] } } });
    const text = await languageTools.instructions!({ ...context('ru-RU'), callerText: 'привет' });
    expect(text).toContain('The caller speaks Russian: reply in Russian.');
    expect(text).toContain('English, Ukrainian, Russian, Slovak');
  });

  it('switches by tag, code or name, and refuses a language the line does not speak', async () => {
    const [tool] = languageTools.tools(profile);
    await expect(tool.run({ language: 'sk-SK' }, context('en-US'))).resolves.toMatchObject({ action: { type: 'switch-language', language: 'sk-SK' } });
    await expect(tool.run({ language: 'uk' }, context('en-US'))).resolves.toMatchObject({ action: { type: 'switch-language', language: 'uk-UA' } });
    await expect(tool.run({ language: 'Russian' }, context('en-US'))).resolves.toMatchObject({ action: { type: 'switch-language', language: 'ru-RU' } });
    await expect(tool.run({ language: 'ru-RU' }, context('ru-RU'))).resolves.toEqual({ result: 'the call is already in Russian' });
    const refused = await tool.run({ language: 'de-DE' }, context('en-US'));
    expect(refused.action).toBeUndefined();
    expect(refused.result).toMatch(/^error: this line speaks only English, Ukrainian, Russian, Slovak/);
  });
});

import { describe, expect, it } from 'vitest';
import { detectLanguage, languageToFollow } from './detect-language.js';

describe('detectLanguage', () => {
  it.each([
    ['Здравствуйте, можно забронировать столик на завтра?', 'en-US', 'ru'],
    ['Добрый вечер, у вас есть вегетарианские блюда?', 'en-US', 'ru'],
    ['Добрий день, чи можна забронювати столик на п’ятницю?', 'en-US', 'uk'],
    ['Дякую, а можна українською?', 'ru-RU', 'uk'],
    ['так', 'uk-UA', 'uk'],
    ['так', 'en-US', 'ru'],
    ['Dobrý deň, chcel by som rezervovať stôl na piatok.', 'en-US', 'sk'],
    ['Ďakujem, to je všetko.', 'en-US', 'sk'],
    ['Bună ziua, aș dori o programare pentru mâine.', 'en-US', 'ro'],
    ['Mulţumesc, la revedere', 'en-US', 'ro'],
    ['Can we speak English, please?', 'ru-RU', 'en'],
    ['I would like a table for two', 'sk-SK', 'en'],
  ])('%s (call in %s) → %s', (text, current, expected) => {
    expect(detectLanguage(text, current)).toBe(expected);
  });

  it.each([
    ['', 'en-US'],
    ['ok', 'ru-RU'],
    ['Anna', 'ru-RU'],
    ['da, multumesc', 'ro-RO'],
    ['dobre, ano', 'sk-SK'],
    ['12345', 'en-US'],
  ])('%s (call in %s) says nothing', (text, current) => {
    expect(detectLanguage(text, current)).toBeUndefined();
  });
});

describe('languageToFollow', () => {
  const allowed = ['en-US', 'ru-RU', 'uk-UA', 'sk-SK', 'ro-RO'];

  it('switches to an allowed language other than the current one', () => {
    expect(languageToFollow('Здравствуйте, есть столик?', 'en-US', allowed)).toBe('ru-RU');
    expect(languageToFollow('Bună ziua', 'en-US', allowed)).toBe('ro-RO');
  });

  it('stays when the words are in the current language, unclear, or in a language the profile does not offer', () => {
    expect(languageToFollow('Здравствуйте, есть столик?', 'ru-RU', allowed)).toBeUndefined();
    expect(languageToFollow('Anna', 'ru-RU', allowed)).toBeUndefined();
    expect(languageToFollow('Здравствуйте, есть столик?', 'en-US', ['en-US', 'ro-RO'])).toBeUndefined();
  });
});

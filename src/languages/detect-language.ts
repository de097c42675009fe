import { baseLanguage } from './language-catalog.js';

/**
 * English words that Slovak and Romanian do not share (no "do", "to", "are",
 * "a", "no"): two of them in plain Latin text are good evidence of English.
 */
const englishWords = new Set(
  'the you your is am does can could would like please want what when where how have has speak english thank thanks hello yes table book and for with my we it this that there'.split(' '),
);

/** Common words written only in Ukrainian or only in Russian, for Cyrillic without the telling letters. */
const ukrainianWords = new Set('чи що це дякую будь ласка можна добрий доброго дуже мені як ні вибачте прошу хочу'.split(' '));
const russianWords = new Set('что это спасибо пожалуйста можно здравствуйте нет как хорошо мне очень хочу'.split(' '));

/**
 * The language a caller's words are in, from their script and letters, or
 * `undefined` when they do not say. Cyrillic with і, ї, є or ґ is Ukrainian;
 * with ы, э, ъ or ё Russian; other Cyrillic goes by common words of either,
 * then keeps a Cyrillic call's language (or is Russian). ľ ĺ ŕ ô ä ď ť ň are Slovak; ă â î ș ț Romanian.
 * Plain Latin with English words is English. `current` is the call's
 * language (BCP 47).
 */
export function detectLanguage(text: string, current: string): string | undefined {
  const lower = text.toLowerCase().normalize('NFC');
  const letters = lower.match(/\p{L}/gu) ?? [];
  if (letters.length < 2) return undefined;
  const cyrillic = letters.filter((letter) => /\p{Script=Cyrillic}/u.test(letter)).length;
  if (cyrillic * 2 >= letters.length) {
    if (/[іїєґ]/u.test(lower)) return 'uk';
    if (/[ыэъё]/u.test(lower)) return 'ru';
    const words = lower.match(/\p{L}+/gu) ?? [];
    const ukrainian = words.filter((word) => ukrainianWords.has(word)).length;
    const russian = words.filter((word) => russianWords.has(word)).length;
    if (ukrainian !== russian) return ukrainian > russian ? 'uk' : 'ru';
    const now = baseLanguage(current);
    return now === 'uk' || now === 'ru' ? now : 'ru';
  }
  const slovak = lower.match(/[ľĺŕôäďťň]/gu)?.length ?? 0;
  // Both the comma-below letters and the older cedilla forms, which some recognizers still write.
  const romanian = lower.match(/[ăâîșțşţ]/gu)?.length ?? 0;
  if (slovak || romanian) return slovak >= romanian ? 'sk' : 'ro';
  if (/^[\x00-\x7f]*$/.test(lower)) {
    const words = lower.match(/[a-z']+/g) ?? [];
    const hits = new Set(words.filter((word) => englishWords.has(word)));
    if (hits.size >= 2 || hits.has('english')) return 'en';
  }
  return undefined;
}

/**
 * The language a call should switch to after the caller said `text`: one of
 * `allowed` (BCP 47 tags) when the words are clearly in it and it is not the
 * call's language already; otherwise `undefined`.
 */
export function languageToFollow(text: string, current: string, allowed: string[]): string | undefined {
  const detected = detectLanguage(text, current);
  if (!detected || detected === baseLanguage(current)) return undefined;
  return allowed.find((tag) => baseLanguage(tag) === detected);
}

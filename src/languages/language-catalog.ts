/** The fixed phrases a profile speaks, by name (see `phrases` in profile.ts). */
export type PhraseSet = Record<'repeat' | 'unclear' | 'apology' | 'noInputGoodbye' | 'goodbye' | 'confirm' | 'tooManyCalls', string>;

/**
 * Generic fixed phrases per language (ISO 639-1), so a caller who switched
 * language hears reprompts and goodbyes in it even when the profile only
 * wrote them in its own language. A profile's `languages[].phrases` win.
 */
export const catalogPhrases: Record<string, PhraseSet> = {
  en: {
    repeat: "Sorry, I didn't hear anything. Could you say that again?",
    unclear: "Sorry, I didn't quite catch that. Could you repeat it, please?",
    apology: "I'm sorry, I'm having a little trouble right now. Could you say that once more?",
    noInputGoodbye: "I still can't hear you, so I'll hang up now. Please call again any time. Goodbye!",
    goodbye: 'Thank you for calling. Goodbye!',
    confirm: 'Thank you! I have noted: {details}. Goodbye!',
    tooManyCalls: 'We are receiving too many calls from your number right now. Please try again later. Goodbye!',
  },
  ru: {
    repeat: 'Извините, я вас не слышу. Повторите, пожалуйста.',
    unclear: 'Извините, я не совсем поняла. Повторите, пожалуйста.',
    apology: 'Извините, у меня небольшие технические трудности. Повторите, пожалуйста, ещё раз.',
    noInputGoodbye: 'Я всё ещё вас не слышу, поэтому завершаю звонок. Звоните в любое время. До свидания!',
    goodbye: 'Спасибо за звонок. До свидания!',
    confirm: 'Спасибо! Я записала: {details}. До свидания!',
    tooManyCalls: 'Сейчас с вашего номера поступает слишком много звонков. Пожалуйста, позвоните позже. До свидания!',
  },
  uk: {
    repeat: 'Вибачте, я вас не чую. Повторіть, будь ласка.',
    unclear: 'Вибачте, я не зовсім зрозуміла. Повторіть, будь ласка.',
    apology: 'Вибачте, у мене невеликі технічні труднощі. Повторіть, будь ласка, ще раз.',
    noInputGoodbye: 'Я досі вас не чую, тому завершую дзвінок. Телефонуйте будь-коли. До побачення!',
    goodbye: 'Дякуємо за дзвінок. До побачення!',
    confirm: 'Дякую! Я записала: {details}. До побачення!',
    tooManyCalls: 'Зараз з вашого номера надходить забагато дзвінків. Будь ласка, зателефонуйте пізніше. До побачення!',
  },
  sk: {
    repeat: 'Prepáčte, nepočula som vás. Môžete to zopakovať?',
    unclear: 'Prepáčte, celkom som vám nerozumela. Môžete to zopakovať, prosím?',
    apology: 'Prepáčte, mám malý technický problém. Môžete to povedať ešte raz?',
    noInputGoodbye: 'Stále vás nepočujem, preto hovor ukončím. Zavolajte kedykoľvek. Dovidenia!',
    goodbye: 'Ďakujeme za zavolanie. Dovidenia!',
    confirm: 'Ďakujem! Zapísala som: {details}. Dovidenia!',
    tooManyCalls: 'Z vášho čísla práve prichádza priveľa hovorov. Skúste to prosím neskôr. Dovidenia!',
  },
  ro: {
    repeat: 'Nu v-am auzit. Puteți repeta, vă rog?',
    unclear: 'Scuzați-mă, nu am înțeles bine. Puteți repeta, vă rog?',
    apology: 'Îmi pare rău, am o mică problemă tehnică. Puteți repeta, vă rog?',
    noInputGoodbye: 'Tot nu vă aud, așa că voi închide acum. Ne puteți suna oricând. La revedere!',
    goodbye: 'Vă mulțumim pentru apel. La revedere!',
    confirm: 'Mulțumesc! Am notat: {details}. La revedere!',
    tooManyCalls: 'Primim prea multe apeluri de la numărul dumneavoastră. Vă rugăm să reveniți mai târziu. La revedere!',
  },
};

const englishNames = new Intl.DisplayNames(['en'], { type: 'language' });

/** "Russian" for `ru-RU`: how a language is named to the model. */
export function languageName(tag: string): string {
  try {
    return englishNames.of(baseLanguage(tag)) ?? tag;
  } catch {
    return tag;
  }
}

/** `ru` for `ru-RU`. */
export function baseLanguage(tag: string): string {
  return tag.slice(0, 2).toLowerCase();
}

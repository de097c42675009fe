import { addDays, isCalendarDate, weekdayOf } from './opening-hours.js';
import { weekdays } from './reservation-settings.js';

/**
 * Dates and times as callers say them (and as speech recognition writes them):
 * "Friday", "tomorrow", "March 7th", "7.03", "2025-03-07"; "7 pm", "19:30",
 * "half past seven". English, with the common words of Romanian and Russian
 * (the shipped profiles' languages). What is not understood is `undefined`:
 * the caller is asked again.
 */

const weekdayWords: Record<string, number> = {
  sunday: 0, monday: 1, tuesday: 2, wednesday: 3, thursday: 4, friday: 5, saturday: 6,
  duminica: 0, luni: 1, marti: 2, miercuri: 3, joi: 4, vineri: 5, sambata: 6,
  воскресенье: 0, понедельник: 1, вторник: 2, среда: 3, среду: 3, четверг: 4, пятница: 5, пятницу: 5, суббота: 6, субботу: 6,
};
const relativeWords: Record<string, number> = {
  today: 0, tonight: 0, tomorrow: 1, azi: 0, astazi: 0, diseara: 0, maine: 1, poimaine: 2, сегодня: 0, завтра: 1, послезавтра: 2,
};
const monthWords: Record<string, number> = {
  january: 1, february: 2, march: 3, april: 4, may: 5, june: 6, july: 7, august: 8, september: 9, october: 10, november: 11, december: 12,
  jan: 1, feb: 2, mar: 3, apr: 4, jun: 6, jul: 7, aug: 8, sep: 9, sept: 9, oct: 10, nov: 11, dec: 12,
  ianuarie: 1, februarie: 2, martie: 3, aprilie: 4, mai: 5, iunie: 6, iulie: 7, septembrie: 9, octombrie: 10, noiembrie: 11, decembrie: 12,
  января: 1, февраля: 2, марта: 3, апреля: 4, мая: 5, июня: 6, июля: 7, августа: 8, сентября: 9, октября: 10, ноября: 11, декабря: 12,
};
const numberWords: Record<string, number> = {
  one: 1, two: 2, three: 3, four: 4, five: 5, six: 6, seven: 7, eight: 8, nine: 9, ten: 10, eleven: 11, twelve: 12,
  fifteen: 15, twenty: 20, thirty: 30, 'forty-five': 45, fortyfive: 45,
};

/** Lower case, accents removed (Romanian "mâine" → "maine"), Cyrillic kept. */
function normalize(text: string): string {
  return text.toLowerCase().normalize('NFD').replace(/[\u0300-\u036f]/g, '').replace(/[șş]/g, 's').replace(/[țţ]/g, 't');
}

/** The calendar day the caller means, on or after `today` (`YYYY-MM-DD`, the business's local date). */
export function parseSpokenDate(text: string, today: string): string | undefined {
  const said = normalize(text);
  const iso = /\b(\d{4})-(\d{2})-(\d{2})\b/.exec(said);
  if (iso) return isCalendarDate(iso[0]) ? iso[0] : undefined;
  const words = said.split(/[^\p{L}\p{N}]+/u).filter(Boolean);
  if (said.includes('day after tomorrow')) return addDays(today, 2);
  for (const word of words) if (word in relativeWords) return addDays(today, relativeWords[word]);

  const dotted = /\b(\d{1,2})[./](\d{1,2})(?:[./](\d{4}))?\b/.exec(said);
  if (dotted) return nextDate(today, Number(dotted[1]), Number(dotted[2]), dotted[3] ? Number(dotted[3]) : undefined);
  const month = words.find((word) => word in monthWords);
  if (month) {
    const dayNumber = /\b(\d{1,2})(?:st|nd|rd|th)?\b/.exec(said);
    const year = /\b(\d{4})\b/.exec(said);
    if (dayNumber) return nextDate(today, Number(dayNumber[1]), monthWords[month], year ? Number(year[1]) : undefined);
  }
  const weekday = words.find((word) => word in weekdayWords);
  if (weekday !== undefined) {
    const wanted = weekdayWords[weekday];
    const current = weekdays.indexOf(weekdayOf(today));
    return addDays(today, (wanted - current + 7) % 7);
  }
  return undefined;
}

/** Day and month, in `year` or else the next time they come round. */
function nextDate(today: string, dayNumber: number, monthNumber: number, year?: number): string | undefined {
  const build = (y: number) => `${y}-${String(monthNumber).padStart(2, '0')}-${String(dayNumber).padStart(2, '0')}`;
  const thisYear = Number(today.slice(0, 4));
  const candidate = build(year ?? thisYear);
  if (!isCalendarDate(candidate)) return undefined;
  if (year === undefined && candidate < today) return isCalendarDate(build(thisYear + 1)) ? build(thisYear + 1) : undefined;
  return candidate;
}

/** A time of day: minutes since midnight; `ambiguous` when no am/pm said and it could be either (the book decides). */
export interface SpokenTime {
  minutes: number;
  ambiguous: boolean;
}

export function parseSpokenTime(text: string): SpokenTime | undefined {
  const said = normalize(text).replace(/\bo'?clock\b/g, '').replace(/(\d)\s*h\b/g, '$1:00');
  if (/\b(noon|midday|amiaza)\b/.test(said)) return { minutes: 12 * 60, ambiguous: false };
  const pm = /\b(p\.?\s?m\.?|pm|evening|tonight|night|seara|вечера)\b/.test(said);
  const am = /\b(a\.?\s?m\.?|am|morning|dimineata|утра)\b/.test(said);

  let hour: number | undefined;
  let minute = 0;
  const clock = /\b(\d{1,2})(?:[:.](\d{2}))?\b/.exec(said);
  const relative = /\b(half|quarter)\s+(past|to)\s+(\w+)/.exec(said);
  if (relative) {
    const base = wordNumber(relative[3]);
    if (base === undefined || base > 12) return undefined;
    const offset = relative[1] === 'half' ? 30 : 15;
    hour = relative[2] === 'past' ? base : base - 1;
    minute = relative[2] === 'past' ? offset : 60 - offset;
  } else if (clock) {
    hour = Number(clock[1]);
    minute = clock[2] ? Number(clock[2]) : 0;
  } else {
    const words = said.split(/[^\p{L}-]+/u).filter(Boolean);
    const index = words.findIndex((word) => wordNumber(word) !== undefined && wordNumber(word)! <= 12);
    if (index < 0) return undefined;
    hour = wordNumber(words[index]);
    const next = words[index + 1] ? wordNumber(words[index + 1]) : undefined;
    if (next !== undefined && next >= 15 && next < 60) minute = next;
  }
  if (hour === undefined || hour > 24 || minute > 59) return undefined;
  if (hour === 24) hour = 0;
  if (pm && hour < 12) hour += 12;
  if (am && hour === 12) hour = 0;
  return { minutes: hour * 60 + minute, ambiguous: !pm && !am && hour >= 1 && hour <= 11 };
}

function wordNumber(word: string): number | undefined {
  if (/^\d{1,2}$/.test(word)) return Number(word);
  return numberWords[word];
}

import { describe, expect, it } from 'vitest';
import { parseSpokenDate, parseSpokenTime } from './spoken-date.js';

// 2030-03-04 is a Monday.
const today = '2030-03-04';

describe('parseSpokenDate', () => {
  it.each([
    ['2030-03-08', '2030-03-08'],
    ['today', '2030-03-04'],
    ['Tomorrow, please.', '2030-03-05'],
    ['the day after tomorrow', '2030-03-06'],
    ['Friday', '2030-03-08'],
    ['this Monday', '2030-03-04'],
    ['next Sunday evening', '2030-03-10'],
    ['March 7th', '2030-03-07'],
    ['the 2nd of March', '2031-03-02'],
    ['7 April 2030', '2030-04-07'],
    ['12.03', '2030-03-12'],
    ['mâine', '2030-03-05'],
    ['vineri', '2030-03-08'],
    ['15 martie', '2030-03-15'],
    ['в пятницу', '2030-03-08'],
    ['завтра', '2030-03-05'],
  ])('"%s" → %s', (said, expected) => {
    expect(parseSpokenDate(said, today)).toBe(expected);
  });

  it.each(['whenever', 'February 30', '2030-02-30', ''])('does not guess "%s"', (said) => {
    expect(parseSpokenDate(said, today)).toBeUndefined();
  });
});

describe('parseSpokenTime', () => {
  it.each([
    ['19:00', 19 * 60, false],
    ['7 pm', 19 * 60, false],
    ['7:30 p.m.', 19 * 60 + 30, false],
    ['at 8 in the evening', 20 * 60, false],
    ['10 am', 10 * 60, false],
    ['seven', 7 * 60, true],
    ['seven thirty', 7 * 60 + 30, true],
    ['half past seven', 7 * 60 + 30, true],
    ['quarter to eight', 7 * 60 + 45, true],
    ['noon', 12 * 60, false],
    ['19h', 19 * 60, false],
    ["8 o'clock", 8 * 60, true],
    ['ora 18.30', 18 * 60 + 30, false],
  ])('"%s" → %i minutes (ambiguous: %s)', (said, minutes, ambiguous) => {
    expect(parseSpokenTime(said)).toEqual({ minutes, ambiguous });
  });

  it.each(['soon', 'later today', '25:00'])('does not guess "%s"', (said) => {
    expect(parseSpokenTime(said)).toBeUndefined();
  });
});

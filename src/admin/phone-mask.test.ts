import { describe, expect, it } from 'vitest';
import { maskPhoneNumber } from './phone-mask.js';

describe('maskPhoneNumber', () => {
  it.each([
    ['+15551234567', '+1555****567'],
    ['+40721234567', '+4072****567'],
    ['+442071838750', '+4420*****750'],
    ['5551234', '55***34'],
    ['+1 (555) 123-4567', '+1555****567'],
  ])('%s → %s', (given, shown) => {
    expect(maskPhoneNumber(given)).toBe(shown);
  });

  it('leaves what is not a phone number alone', () => {
    expect(maskPhoneNumber('anonymous')).toBe('anonymous');
    expect(maskPhoneNumber('client:alice')).toBe('client:alice');
    expect(maskPhoneNumber('12345')).toBe('12345');
  });
});

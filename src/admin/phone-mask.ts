/**
 * `+15551234567` → `+1555****567`: enough to tell calls apart on a shared
 * screen, not enough to call anyone back. The country and area code stay, and
 * the last three digits; every digit between becomes `*`. Anything that is not
 * a phone number (`anonymous`, `client:alice`) is left as it is.
 */
export function maskPhoneNumber(value: string): string {
  const match = /^(\+?)(\d{6,15})$/.exec(value.replace(/[\s().-]/g, ''));
  if (!match) return value;
  const [, plus, digits] = match;
  const keepStart = digits.length >= 10 ? 4 : 2;
  const keepEnd = digits.length >= 10 ? 3 : 2;
  return `${plus}${digits.slice(0, keepStart)}${'*'.repeat(digits.length - keepStart - keepEnd)}${digits.slice(-keepEnd)}`;
}

/**
 * Pieces of a JSON line written as bytes straight into a buffer, for the decision line's in-place
 * path (decision-line.ts): a cached request's line is mostly short ASCII strings, and writing
 * their character codes costs less than JSON.stringify, joining them and encoding the result.
 * Each writer returns the position after what it wrote, or -1 when its string needs the string
 * path (a character JSON escapes, or one outside ASCII): the caller then writes nothing.
 */

/**
 * `value` as the inside of a JSON string, when that is the value itself: printable ASCII
 * without `"` or `\`. Anything else (control characters, non-ASCII, surrogates) is -1, so
 * JSON.stringify stays the one escaper of what a peer sent.
 */
export function writePlain(buffer: Uint8Array, at: number, value: string): number {
  for (let i = 0; i < value.length; i++) {
    const code = value.charCodeAt(i);
    if (code < 0x20 || code > 0x7e || code === 0x22 || code === 0x5c) return -1;
    buffer[at++] = code;
  }
  return at;
}

/** Above this many thousandths, String() writes the number (the digits below stay exact far past it). */
const MAX_THOUSANDTHS = 1e15;

/**
 * `String(Math.round(ms * 1000) / 1000)`, as digits: k / 1000 for a whole k below 2^53 prints as
 * k's digits with a point before the last three and trailing zeros dropped (the shortest decimal
 * that reads back as the same double). Anything else goes through String().
 */
export function writeMilliseconds(buffer: Uint8Array, at: number, ms: number): number {
  const thousandths = Math.round(ms * 1000);
  if (!(thousandths >= 0 && thousandths < MAX_THOUSANDTHS)) {
    const text = String(thousandths / 1000);
    for (let i = 0; i < text.length; i++) buffer[at++] = text.charCodeAt(i);
    return at;
  }
  const fraction = thousandths % 1000;
  const whole = (thousandths - fraction) / 1000;
  let digits = 1;
  for (let power = 10; power <= whole; power *= 10) digits++;
  for (let i = digits - 1, rest = whole; i >= 0; i--, rest = Math.floor(rest / 10)) buffer[at + i] = 0x30 + (rest % 10);
  at += digits;
  if (fraction === 0) return at;
  buffer[at++] = 0x2e;
  buffer[at++] = 0x30 + Math.floor(fraction / 100);
  if (fraction % 100 === 0) return at;
  buffer[at++] = 0x30 + (Math.floor(fraction / 10) % 10);
  if (fraction % 10 === 0) return at;
  buffer[at++] = 0x30 + (fraction % 10);
  return at;
}

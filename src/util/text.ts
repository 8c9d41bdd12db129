/**
 * Strings cut from a peer's request that are kept after the request is answered.
 */

/**
 * A copy of `value` that shares no memory with the text it was cut from. The codec slices
 * attribute values out of the text of a whole read (up to 64 KiB), and V8 keeps that text
 * alive as long as any slice of it (or a concatenation holding one) lives, so a 20-byte key
 * kept in a cache could pin a whole read.
 *
 * Slicing a concatenation makes V8 flatten it first: the characters are copied into a new
 * string of value.length + 1, and the result is a slice of that (or, under 13 characters, a
 * copy) — it holds nothing of the read. Three times cheaper than a JSON round trip, and the
 * same characters, lone surrogates included. test/util/text.test.ts holds it to "nothing pinned".
 */
export function detachedCopy(value: string): string {
  return ` ${value}`.slice(1);
}

/**
 * A detachedCopy that is one flat string, for strings kept to be compared with later requests'
 * (map keys, a client's HELO name): a slice would make each comparison read two objects, and
 * cold memory is what a cached request mostly waits on. JSON's round trip always builds a new
 * flat string with the same characters (lone surrogates included, ES2019); it costs three
 * times detachedCopy, and is only paid when something new is kept.
 */
export function flatCopy(value: string): string {
  return JSON.parse(JSON.stringify(value)) as string;
}

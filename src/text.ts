/**
 * Strings cut from a peer's request that are kept after the request is answered.
 */

/**
 * A copy of `value` that shares no memory with the text it was cut from. The codec slices
 * attribute values out of the text of a whole read (up to 64 KiB), and V8 keeps that text
 * alive as long as any slice of it (or a concatenation holding one) lives, so a 20-byte key
 * kept in a cache could pin a whole read. JSON's round trip always builds a new flat string,
 * and gives back exactly the same characters (lone surrogates included, ES2019).
 */
export function detachedCopy(value: string): string {
  return JSON.parse(JSON.stringify(value)) as string;
}

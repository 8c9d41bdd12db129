/**
 * xorshift32, for tests that draw many random inputs reproducibly: every bit of it varies (the
 * low bits of a power-of-two LCG repeat in short cycles). Returns unsigned 32-bit integers.
 */
export function xorshift32(seed = 2463534242): () => number {
  let state = seed >>> 0 || 1;
  return () => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return state >>> 0;
  };
}

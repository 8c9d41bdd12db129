/** GCRA parameters for a rate, a period and a burst, for tests: a refused combination throws. */
import { gcraParams, type GcraParams } from '../../src/judge/throttle.js';

export function params(rate: number, periodMs: number, burst: number): GcraParams {
  const made = gcraParams(rate, periodMs, burst);
  if (typeof made === 'string') throw new Error(made);
  return made;
}

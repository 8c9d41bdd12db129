/**
 * The shared store's one step, as a Redis server-side Lua script (issue 27): read the network's
 * TAT, decide, write the new TAT, all atomic — Redis runs a script to its end before any other
 * command ("Atomicity of scripts", redis.io/docs/latest/develop/programmability/eval-intro), so
 * two daemons on two MX hosts spend one budget. The same arithmetic as gcraTake
 * (src/judge/throttle.ts); the client rebuilds budget and retry-after from the answer with
 * gcraOutcome, so both stores report alike. Run by its SHA1 (EVALSHA), loaded with SCRIPT LOAD.
 */
import { createHash } from 'node:crypto';
import { gcraOutcome, type GcraDecision, type GcraParams } from '../judge/throttle.js';

/**
 * KEYS[1] the network's key; ARGV now (ms), emission interval T (ms), burst. Returns
 * {allowed 0|1, TAT after}. Lua numbers are doubles and every value here an integer below 2^53;
 * Redis turns a returned Lua number into an integer reply by truncating it, so none is fractional.
 * A value that is not a number (someone else's key) reads as "never seen" and is overwritten.
 * The key expires when its TAT passes (SET PX), when it says no more than a missing key.
 */
export const THROTTLE_SCRIPT = `local now = tonumber(ARGV[1])
local t = tonumber(ARGV[2])
local burst = tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1]))
if tat == nil or tat < now then tat = now end
local after = tat + t
if now < after - burst * t then return {0, tat} end
redis.call('SET', KEYS[1], string.format('%d', after), 'PX', after - now)
return {1, after}
`;

/** The script's SHA1, as EVALSHA and SCRIPT LOAD name it. */
export const THROTTLE_SCRIPT_SHA = createHash('sha1').update(THROTTLE_SCRIPT).digest('hex');

/** The EVALSHA arguments of one step. */
export function scriptArguments(params: GcraParams, now: number): string[] {
  return [String(Math.floor(now)), String(params.emissionMs), String(params.burst)];
}

/**
 * The decision in a script's reply, or undefined for anything the script cannot have answered
 * (a proxy in the way, another script under our SHA, a bit flip): garbage is a failed step, not a verdict.
 */
export function decisionFromReply(params: GcraParams, reply: unknown, now: number): GcraDecision | undefined {
  if (!Array.isArray(reply) || reply.length !== 2) return undefined;
  const [allowed, tat] = reply as unknown[];
  if ((allowed !== 0 && allowed !== 1) || typeof tat !== 'number' || !Number.isSafeInteger(tat)) return undefined;
  const at = Math.floor(now);
  // An allowed step moved the TAT past now by T; a refused one found it beyond now + (burst − 1)·T.
  // (No upper bound: another host's clock ahead of ours is skew, not garbage.)
  if (allowed === 1 ? tat < at + params.emissionMs : tat <= at + (params.burst - 1) * params.emissionMs) return undefined;
  return gcraOutcome(params, allowed === 1, tat, at);
}

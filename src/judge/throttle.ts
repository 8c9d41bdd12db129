/**
 * Throttling arithmetic for issue 27: the Generic Cell Rate Algorithm (GCRA, ITU-T I.371's
 * "virtual scheduling" form) over one number per key, the theoretical arrival time (TAT). A key
 * whose TAT lies in the past is the same as a key never seen, so a store may drop it; there are
 * no windows and so no window edges (a fixed window lets 2 × rate through across its boundary).
 *
 * Pure: time comes in as a number of milliseconds, the stored TAT comes in and goes out. The same
 * arithmetic runs as a Lua script in Redis (src/daemon/throttle-script.ts); both stay integers.
 */
import ipaddr from 'ipaddr.js';
import type { ClientIp } from '../util/ip.js';

/** The limiter's settings: `rate` events per `periodMs`, `burst` of them at once from rest. */
export interface GcraParams {
  /**
   * Milliseconds between two events at the sustained rate, rounded up to a whole millisecond:
   * TATs stay integers (Redis turns a Lua number into an integer reply by truncating it), and
   * rounding up only ever lets fewer through (20/hour is exact: 180,000 ms; 7/hour loses 0.3 ms).
   */
  readonly emissionMs: number;
  /** Events that pass at once from a key at rest (≥ 1): the "burst tolerance" τ is (burst − 1) × emissionMs. */
  readonly burst: number;
}

/** What one event did to its key. */
export interface GcraDecision {
  /** The event passes (it spent budget); false: the key is throttled and its TAT did not move. */
  readonly allowed: boolean;
  /** The key's TAT after the event, to store (a limited event leaves the stored one). */
  readonly tat: number;
  /** Events that would pass now after this one: the budget left (0 when limited). */
  readonly remaining: number;
  /** Milliseconds until the next event would pass (0 when one would pass now). */
  readonly retryAfterMs: number;
}

/** The most events per period accepted (one per millisecond); more is not a mail rate. */
export const GCRA_MAX_EMISSIONS_PER_MS = 1;

/**
 * Settings for `rate` events per `periodMs` with `burst`, or a problem in words. Whole numbers
 * only, and an emission interval of at least 1 ms, so every TAT is an integer number of ms.
 */
export function gcraParams(rate: number, periodMs: number, burst: number): GcraParams | string {
  if (!Number.isSafeInteger(rate) || rate < 1) return 'the rate must be a whole number of events, at least 1';
  if (!Number.isSafeInteger(periodMs) || periodMs < 1) return 'the period must be a whole number of milliseconds, at least 1';
  if (!Number.isSafeInteger(burst) || burst < 1) return 'the burst must be a whole number, at least 1';
  if (rate > periodMs * GCRA_MAX_EMISSIONS_PER_MS) return 'the rate is over one event per millisecond';
  const emissionMs = Math.ceil(periodMs / rate);
  // A TAT is at most now + burst × emissionMs; keep it exact in a double and in Lua.
  if (!Number.isSafeInteger(emissionMs * burst * 4)) return 'burst × period is too long';
  return { emissionMs, burst };
}

/**
 * A configuration's throttle settings (throttle_rate, throttle_burst), for the daemon and replay
 * alike. The key table's ranges (src/config/keys.ts) admit only values gcraParams accepts, so a
 * problem here is a bug, thrown.
 */
export function throttleParamsOf(settings: { readonly throttleRate: { readonly rate: number; readonly periodMs: number }; readonly throttleBurst: number }): GcraParams {
  const params = gcraParams(settings.throttleRate.rate, settings.throttleRate.periodMs, settings.throttleBurst);
  if (typeof params === 'string') throw new Error(`throttle_rate / throttle_burst: ${params}`);
  return params;
}

/**
 * One event of a key at `now` (ms) against its stored TAT (undefined: never seen or dropped).
 * Allowed iff now ≥ TAT + T − burst·T with TAT = max(stored, now); then TAT += T. Over any span
 * of E ms, so at most burst + E / T events pass (test/judge/throttle.test.ts checks it for arbitrary
 * arrivals). A clock stepping back only makes a stored TAT look further ahead: stricter, never laxer.
 */
export function gcraTake(params: GcraParams, stored: number | undefined, now: number): GcraDecision {
  const at = Math.floor(now);
  const { emissionMs, burst } = params;
  const tat = stored === undefined || stored < at ? at : stored;
  const next = tat + emissionMs;
  if (at < next - burst * emissionMs) return gcraOutcome(params, false, tat, at);
  return gcraOutcome(params, true, next, at);
}

/**
 * The decision for a key whose TAT is now `tat` (after the event), from whether the event passed:
 * what the Redis script answers is rebuilt here, so both stores report budget and retry alike.
 */
export function gcraOutcome(params: GcraParams, allowed: boolean, tat: number, now: number): GcraDecision {
  // The next event passes once now ≥ tat + T − burst·T.
  const nextAt = tat - (params.burst - 1) * params.emissionMs;
  return { allowed, tat, remaining: remainingAt(params, tat, now), retryAfterMs: nextAt <= now ? 0 : nextAt - now };
}

/** Events that would pass at `now` against TAT `tat`: ⌊(now + burst·T − tat) / T⌋, never below 0. */
export function remainingAt(params: GcraParams, tat: number, now: number): number {
  const room = now + params.burst * params.emissionMs - Math.max(tat, now);
  return room <= 0 ? 0 : Math.floor(room / params.emissionMs);
}

/** When a stored TAT no longer says anything (it equals "never seen"), the store may forget the key. */
export function gcraExpired(tat: number, now: number): boolean {
  return tat <= now;
}

/** Prefix lengths of the network a client is throttled as (issue 27: /24 and /64 by default). */
export interface ThrottlePrefixes {
  readonly ipv4: number;
  readonly ipv6: number;
}

export const DEFAULT_THROTTLE_PREFIXES: ThrottlePrefixes = { ipv4: 24, ipv6: 64 };

/**
 * The throttle key of a client: its network in CIDR text (`198.51.100.0/24`, `2001:db8:1:2::/64`,
 * RFC 5952 form), so one budget covers a sender that spreads over its neighbours' addresses.
 * Prefixes outside 0–32 / 0–128 are clamped (the config layer refuses them first).
 */
export function throttleKey(ip: ClientIp, prefixes: ThrottlePrefixes = DEFAULT_THROTTLE_PREFIXES): string {
  // A client record is reused while its sender keeps sending (src/daemon/known-clients.ts): its
  // key is built once, not per message (RFC 5952 text of an IPv6 network is the step's dearest part).
  const known = keysByClient.get(ip);
  if (known !== undefined && known.ipv4 === prefixes.ipv4 && known.ipv6 === prefixes.ipv6) return known.key;
  const key = networkKey(ip, prefixes);
  keysByClient.set(ip, { ipv4: prefixes.ipv4, ipv6: prefixes.ipv6, key });
  return key;
}

const keysByClient = new WeakMap<ClientIp, { readonly ipv4: number; readonly ipv6: number; readonly key: string }>();

function networkKey(ip: ClientIp, prefixes: ThrottlePrefixes): string {
  const bytes = ip.parsed.toByteArray();
  const bits = clamp(ip.family === 4 ? prefixes.ipv4 : prefixes.ipv6, 0, bytes.length * 8);
  for (let i = 0; i < bytes.length; i++) {
    const keep = Math.min(8, Math.max(0, bits - i * 8));
    bytes[i] = (bytes[i] ?? 0) & ((0xff << (8 - keep)) & 0xff);
  }
  const network = ipaddr.fromByteArray(bytes);
  return `${network.kind() === 'ipv4' ? network.toString() : (network as ipaddr.IPv6).toRFC5952String()}/${bits}`;
}

function clamp(value: number, low: number, high: number): number {
  return Number.isInteger(value) ? Math.min(high, Math.max(low, value)) : high;
}

/**
 * One client IP → one RFC 8601 §3 "iprev" result: PTR lookup, then a forward lookup in the
 * client's own address family for each PTR name, then an exact address match. Never throws.
 */
import type { AddressOutcome, IprevDns, PtrOutcome } from './resolver.js';
import { canonicalAddress, parseClientIp, reverseName, type ClientIp } from '../util/ip.js';
import { LIMITS } from '../config/limits.js';

/** SPEC "What is checked" classes. */
export type IprevClass = 'pass' | 'no_ptr' | 'no_forward' | 'mismatch' | 'temperror';

export interface ForwardCheck {
  /** The PTR name, lower-case without the trailing dot. */
  readonly name: string;
  /** `answer` with the addresses, `not_found`, or `temporary` with the error code. */
  readonly outcome: AddressOutcome['kind'];
  readonly code?: string;
  /** Addresses of the client's family the name resolved to (canonical text). */
  readonly addresses: readonly string[];
  /** Addresses of the answer not kept (over LIMITS.maxAddressesKept). */
  readonly omitted?: number;
  readonly matched: boolean;
}

export type { IgnoredReason } from './resolver.js';
import type { IgnoredReason } from './resolver.js';
export { hostnameProblem, normaliseName } from '../util/hostname.js';
import { hostnameProblem, normaliseName } from '../util/hostname.js';

export interface IgnoredName {
  readonly name: string;
  readonly reason: IgnoredReason;
}

export interface IprevResult {
  readonly result: IprevClass;
  /** Where a temperror came from: the PTR lookup itself, or only forward lookups. */
  readonly temperrorStage?: 'ptr' | 'forward';
  readonly reverseName: string;
  readonly ptr: {
    readonly outcome: AddressOutcome['kind'];
    readonly code?: string;
    /** Valid names examined, in answer order. */
    readonly names: readonly string[];
    /** At most LIMITS.maxIgnoredExamples unusable names, as examples. */
    readonly ignored: readonly IgnoredName[];
    /** Every unusable name of the answer, examples included, by reason (absent when none). */
    readonly ignoredCounts?: Readonly<Partial<Record<IgnoredReason, number>>>;
  };
  readonly forward: readonly ForwardCheck[];
  /** Names that resolve forward to the client IP (forward-confirmed). */
  readonly confirmedNames: readonly string[];
}

export type PtrStep = { done: IprevResult } | { names: readonly string[]; ptrSummary: IprevResult['ptr'] };

/** The PTR step: the answer's usable names, or the result when there is nothing to look up forward. */
export function fromPtr(
  arpa: string,
  ptr: PtrOutcome,
  maxPtrNames: number,
): PtrStep {
  if (ptr.kind === 'temporary') {
    return {
      done: {
        result: 'temperror',
        temperrorStage: 'ptr',
        reverseName: arpa,
        ptr: { outcome: 'temporary', code: ptr.code, names: [], ignored: [] },
        forward: [],
        confirmedNames: [],
      },
    };
  }
  const names: string[] = [];
  const ignored: IgnoredName[] = [];
  // Counts by reason, made only when the answer has something to ignore (the common answer has not).
  let counts: Partial<Record<IgnoredReason, number>> | undefined = ptr.kind === 'answer' && ptr.dropped ? { ...ptr.dropped } : undefined;
  const ignore = (name: string, reason: IgnoredReason): void => {
    counts ??= {};
    counts[reason] = (counts[reason] ?? 0) + 1;
    if (ignored.length < LIMITS.maxIgnoredExamples) ignored.push({ name: name.slice(0, LIMITS.maxLogFieldChars), reason });
  };
  for (const raw of ptr.kind === 'answer' ? ptr.records : []) {
    const name = normaliseName(raw);
    const problem = hostnameProblem(name);
    if (problem) ignore(raw, problem);
    else if (names.includes(name)) ignore(name, 'duplicate');
    else if (names.length >= maxPtrNames) ignore(name, 'over max_ptr_names');
    else names.push(name);
  }
  const ptrSummary = ptrSummaryOf(ptr, names, ignored, counts);
  if (names.length === 0) {
    return { done: { result: 'no_ptr', reverseName: arpa, ptr: ptrSummary, forward: [], confirmedNames: [] } };
  }
  return { names, ptrSummary };
}

/**
 * The PTR step's summary, its optional members present only when set. One literal per shape, not
 * spreads of `{}`: those were three objects more per new client (BENCHMARKS.md "Session 10").
 */
function ptrSummaryOf(
  ptr: PtrOutcome,
  names: readonly string[],
  ignored: readonly IgnoredName[],
  counts: IprevResult['ptr']['ignoredCounts'],
): IprevResult['ptr'] {
  const outcome = ptr.kind;
  if (ptr.kind === 'not_found') {
    const { code } = ptr;
    return counts ? { outcome, code, names, ignored, ignoredCounts: counts } : { outcome, code, names, ignored };
  }
  return counts ? { outcome, names, ignored, ignoredCounts: counts } : { outcome, names, ignored };
}

/** One name's forward answer, compared exactly with the client address. */
export function forwardCheck(name: string, outcome: AddressOutcome, ip: ClientIp): ForwardCheck {
  if (outcome.kind !== 'answer') {
    return { name, outcome: outcome.kind, code: outcome.code, addresses: [], matched: false };
  }
  const addresses: string[] = [];
  for (const address of outcome.records) {
    // The client's own address needs no parsing to be recognised as canonical.
    const canonical = address === ip.text ? address : canonicalAddress(address);
    if (canonical !== undefined && !addresses.includes(canonical)) addresses.push(canonical);
  }
  const matched = addresses.includes(ip.text);
  const { omitted } = outcome;
  return omitted ? { name, outcome: 'answer', addresses, omitted, matched } : { name, outcome: 'answer', addresses, matched };
}

/** The result once every name's forward check is known. */
export function fromForward(arpa: string, ptrSummary: IprevResult['ptr'], forward: ForwardCheck[]): IprevResult {
  const confirmedNames = forward.filter((check) => check.matched).map((check) => check.name);
  const result = classifyForward(forward);
  return result === 'temperror'
    ? { result, temperrorStage: 'forward', reverseName: arpa, ptr: ptrSummary, forward, confirmedNames }
    : { result, reverseName: arpa, ptr: ptrSummary, forward, confirmedNames };
}

/**
 * Whether `queries` forward lookups may be sent now: undefined, or the code of the temporary
 * failure that stands for them (the daemon is short of heap, or has too many queries in flight).
 */
export type FanOutCheck = (queries: number) => string | undefined;

/**
 * Look up one client IP and classify it. `maxPtrNames` bounds the forward queries per IP, and
 * `mayFanOut` is asked before they are sent: a refusal makes each a temporary failure (RFC 8601
 * §2.7.3 temperror: the check could not be completed), never a permanent one.
 */
export async function lookupIprev(ip: ClientIp, dns: IprevDns, maxPtrNames: number, mayFanOut?: FanOutCheck): Promise<IprevResult> {
  const arpa = reverseName(ip);
  const step = fromPtr(arpa, await dns.lookupPtr(arpa), maxPtrNames);
  if ('done' in step) return step.done;
  const refused = mayFanOut?.(step.names.length);
  if (refused !== undefined) return refusedForward(arpa, step, refused);
  // Forward lookups only in the client's family, as Postfix's reject_unknown_client_hostname
  // does (POSTFIX-FACTS 10); all names at once, since one confirmed name is enough.
  const forward = await Promise.all(
    step.names.map(async (name) => forwardCheck(name, await dns.lookupAddresses(name, ip.family), ip)),
  );
  return fromForward(arpa, step.ptrSummary, forward);
}

/** The result when the forward lookups may not be sent: each a temporary failure with that code. */
export function refusedForward(arpa: string, step: { names: readonly string[]; ptrSummary: IprevResult['ptr'] }, code: string): IprevResult {
  const forward = step.names.map((name): ForwardCheck => ({ name, outcome: 'temporary', code, addresses: [], matched: false }));
  return fromForward(arpa, step.ptrSummary, forward);
}

/** Synchronous access to answers already known (the cache), or undefined. */
export interface KnownAnswers {
  ptr(reverseName: string): PtrOutcome | undefined;
  addresses(name: string, family: 4 | 6): AddressOutcome | undefined;
}

/**
 * The same classification from answers already in the cache, without waiting: undefined when
 * any answer it needs is not there (then lookupIprev asks DNS). Most mail comes from clients seen
 * recently, so this keeps promises and timers off the common path.
 */
export function knownIprev(ip: ClientIp, known: KnownAnswers, maxPtrNames: number): IprevResult | undefined {
  const arpa = reverseName(ip);
  const ptr = known.ptr(arpa);
  if (ptr === undefined) return undefined;
  const step = fromPtr(arpa, ptr, maxPtrNames);
  if ('done' in step) return step.done;
  const forward: ForwardCheck[] = [];
  for (const name of step.names) {
    const outcome = known.addresses(name, ip.family);
    if (outcome === undefined) return undefined;
    forward.push(forwardCheck(name, outcome, ip));
  }
  return fromForward(arpa, step.ptrSummary, forward);
}

/**
 * A confirmed name wins even if another name's lookup failed; temperror only when nothing
 * matched and a lookup that could have matched failed temporarily (RFC 8601 §3).
 */
function classifyForward(forward: readonly ForwardCheck[]): IprevClass {
  if (forward.some((check) => check.matched)) return 'pass';
  if (forward.some((check) => check.outcome === 'temporary')) return 'temperror';
  if (forward.some((check) => check.addresses.length > 0)) return 'mismatch';
  return 'no_forward';
}

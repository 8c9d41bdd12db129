/**
 * One client IP → one RFC 8601 §3 "iprev" result: PTR lookup, then a forward lookup in the
 * client's own address family for each PTR name, then an exact address match. Never throws.
 */
import type { AddressOutcome, IprevDns, PtrOutcome } from './dns.js';
import { canonicalAddress, parseClientIp, reverseName, type ClientIp } from './ip.js';
import { LIMITS } from './limits.js';

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
  readonly matched: boolean;
}

export interface IgnoredName {
  readonly name: string;
  readonly reason: 'invalid hostname' | 'numeric name' | 'over max_ptr_names' | 'duplicate';
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
    readonly ignored: readonly IgnoredName[];
  };
  readonly forward: readonly ForwardCheck[];
  /** Names that resolve forward to the client IP (forward-confirmed). */
  readonly confirmedNames: readonly string[];
}

/**
 * Why a PTR target is not a usable hostname, or undefined when it is. Mirrors Postfix's
 * valid_hostname() and smtpd_peer.c: letters, digits, hyphens and underscores (underscores are
 * accepted), no label starting or ending with a hyphen, labels ≤ 63 and the name ≤ 255 octets
 * (RFC 1035 §2.3.4), and an all-numeric name or an IP address is not a name (POSTFIX-FACTS 13).
 */
export function hostnameProblem(name: string): IgnoredName['reason'] | undefined {
  if (name.length === 0 || name.length > LIMITS.maxHostnameLength) return 'invalid hostname';
  if (parseClientIp(name) !== undefined) return 'numeric name';
  const labels = name.split('.');
  for (const label of labels) {
    if (label.length === 0 || label.length > LIMITS.maxLabelLength) return 'invalid hostname';
    if (!/^[a-z0-9_-]+$/.test(label)) return 'invalid hostname';
    if (label.startsWith('-') || label.endsWith('-')) return 'invalid hostname';
  }
  if (/^[0-9.]+$/.test(name)) return 'numeric name';
  return undefined;
}

/** Lower-case, without the root dot: names compare case-insensitively (RFC 4343). */
export function normaliseName(name: string): string {
  const lower = name.toLowerCase();
  return lower.endsWith('.') ? lower.slice(0, -1) : lower;
}

type PtrStep = { done: IprevResult } | { names: readonly string[]; ptrSummary: IprevResult['ptr'] };

/** The PTR step: the answer's usable names, or the result when there is nothing to look up forward. */
function fromPtr(
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
  for (const raw of ptr.kind === 'answer' ? ptr.records : []) {
    const name = normaliseName(raw);
    const problem = hostnameProblem(name);
    if (problem) ignored.push({ name: raw, reason: problem });
    else if (names.includes(name)) ignored.push({ name, reason: 'duplicate' });
    else if (names.length >= maxPtrNames) ignored.push({ name, reason: 'over max_ptr_names' });
    else names.push(name);
  }
  const ptrSummary = {
    outcome: ptr.kind,
    ...(ptr.kind === 'not_found' ? { code: ptr.code } : {}),
    names,
    ignored,
  };
  if (names.length === 0) {
    return { done: { result: 'no_ptr', reverseName: arpa, ptr: ptrSummary, forward: [], confirmedNames: [] } };
  }
  return { names, ptrSummary };
}

/** One name's forward answer, compared exactly with the client address. */
function forwardCheck(name: string, outcome: AddressOutcome, ip: ClientIp): ForwardCheck {
  if (outcome.kind !== 'answer') {
    return { name, outcome: outcome.kind, code: outcome.code, addresses: [], matched: false };
  }
  const addresses: string[] = [];
  for (const address of outcome.records) {
    // The client's own address needs no parsing to be recognised as canonical.
    const canonical = address === ip.text ? address : canonicalAddress(address);
    if (canonical !== undefined && !addresses.includes(canonical)) addresses.push(canonical);
  }
  return { name, outcome: 'answer', addresses, matched: addresses.includes(ip.text) };
}

function fromForward(arpa: string, ptrSummary: IprevResult['ptr'], forward: ForwardCheck[]): IprevResult {
  const confirmedNames = forward.filter((check) => check.matched).map((check) => check.name);
  const result = classifyForward(forward);
  return {
    result,
    ...(result === 'temperror' ? { temperrorStage: 'forward' as const } : {}),
    reverseName: arpa,
    ptr: ptrSummary,
    forward,
    confirmedNames,
  };
}

/** Look up one client IP and classify it. `maxPtrNames` bounds the forward queries per IP. */
export async function lookupIprev(ip: ClientIp, dns: IprevDns, maxPtrNames: number): Promise<IprevResult> {
  const arpa = reverseName(ip);
  const step = fromPtr(arpa, await dns.lookupPtr(arpa), maxPtrNames);
  if ('done' in step) return step.done;
  // Forward lookups only in the client's family, as Postfix's reject_unknown_client_hostname
  // does (POSTFIX-FACTS 10); all names at once, since one confirmed name is enough.
  const forward = await Promise.all(
    step.names.map(async (name) => forwardCheck(name, await dns.lookupAddresses(name, ip.family), ip)),
  );
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

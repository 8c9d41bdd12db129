/**
 * The `check` command's analysis: for an IP, or for a host name and every address it has, run
 * the same iprev lookup and decision as the daemon, then turn the results into findings an
 * operator can act on, in the order they should act. Both sides of a 5.7.25 use it: the
 * receiving admin explaining a rejection, and the sender fixing their DNS.
 */
import type { Config } from '../config/config.js';
import { addressInName, genericSignal } from '../judge/generic.js';
import { heloWithoutLookup } from '../judge/helo.js';
import type { AddressOutcome, IprevDns } from '../dns/resolver.js';
import { parseClientIp, type ClientIp } from '../util/ip.js';
import { hostnameProblem, lookupIprev, normaliseName, type IprevResult } from '../dns/iprev.js';
import { LIMITS } from '../config/limits.js';
import { decide, findExemption, type Action, type Exemption } from '../judge/policy.js';

export interface AddressReport {
  readonly ip: ClientIp;
  /** How this address was found: `A`/`AAAA` of the host, or given directly. */
  readonly source: 'A' | 'AAAA' | 'argument';
  readonly iprev: IprevResult;
  readonly action: Action;
  readonly reply: string;
  readonly skipped?: Exemption;
}

/** One address lookup of a host: the addresses checked, and how many more it had (`omitted`). */
export interface HostAddresses {
  readonly outcome: AddressOutcome['kind'];
  readonly addresses: readonly string[];
  readonly omitted?: number;
  readonly code?: string;
}

export interface HostLookup {
  readonly name: string;
  readonly a: HostAddresses;
  readonly aaaa: HostAddresses;
}

export type FindingCode =
  | 'unknown_host'
  | 'host_lookup_failed'
  | 'no_ptr'
  | 'ipv6_no_ptr'
  | 'no_forward'
  | 'mismatch'
  | 'provider_default_name'
  | 'partial_ptr'
  | 'generic_name'
  | 'helo_mismatch'
  | 'temperror';

export interface Finding {
  readonly code: FindingCode;
  /** `permanent` failures are what a strict receiver rejects; `warning` is advice; `temporary` is DNS trouble. */
  readonly severity: 'permanent' | 'temporary' | 'warning';
  readonly address?: string;
  readonly message: string;
  readonly fix: string;
}

export interface TargetReport {
  readonly target: string;
  readonly kind: 'ip' | 'host';
  readonly host?: HostLookup;
  readonly addresses: readonly AddressReport[];
  /** A host's addresses left unchecked past LIMITS.maxCheckHostAddresses. */
  readonly addressesOmitted?: number;
  readonly findings: readonly Finding[];
}

export type CheckStatus = 'pass' | 'permanent' | 'temporary';

/** Order in which an operator should act (SPEC issue: no PTR first, temporary trouble last). */
const PRIORITY: Record<FindingCode, number> = {
  unknown_host: 0,
  host_lookup_failed: 1,
  no_ptr: 2,
  ipv6_no_ptr: 3,
  no_forward: 4,
  mismatch: 5,
  provider_default_name: 6,
  partial_ptr: 7,
  generic_name: 8,
  helo_mismatch: 9,
  temperror: 10,
};

/** Check one IP against the current config, as the daemon would. */
export async function checkAddress(ip: ClientIp, source: AddressReport['source'], dns: IprevDns, config: Config): Promise<AddressReport> {
  const iprev = await lookupIprev(ip, dns, config.maxPtrNames);
  const verdict = decide(iprev, ip, { check: config.check, mode: config.mode, overrides: config.overrides, replyHint: config.replyHint });
  const skipped = findExemption({ client: ip, recipient: '', saslUsername: '' }, config);
  return skipped
    ? { ip, source, iprev, action: 'dunno', reply: 'DUNNO', skipped }
    : { ip, source, iprev, action: verdict.action, reply: verdict.reply };
}

/** Check an IP or a host name (every A and AAAA address of it). */
export async function checkTarget(target: string, dns: IprevDns, config: Config): Promise<TargetReport> {
  const ip = parseClientIp(target);
  if (ip) {
    const report = await checkAddress(ip, 'argument', dns, config);
    return { target: ip.text, kind: 'ip', addresses: [report], findings: findingsFor(undefined, [report], config) };
  }
  const name = normaliseName(target);
  const [a, aaaa] = await Promise.all([dns.lookupAddresses(name, 4), dns.lookupAddresses(name, 6)]);
  const all = (outcome: AddressOutcome) => (outcome.kind === 'answer' ? outcome.records.flatMap((text) => parseClientIp(text)?.text ?? []) : []);
  const found = { a: all(a), aaaa: all(aaaa) };
  const counts = checkedCounts(found.a.length, found.aaaa.length);
  const summary = (outcome: AddressOutcome, addresses: string[], checked: number): HostAddresses => ({
    outcome: outcome.kind,
    addresses: addresses.slice(0, checked),
    ...(addresses.length > checked ? { omitted: addresses.length - checked } : {}),
    ...(outcome.kind === 'answer' ? {} : { code: outcome.code }),
  });
  const host: HostLookup = { name, a: summary(a, found.a, counts.a), aaaa: summary(aaaa, found.aaaa, counts.aaaa) };
  const reports = await Promise.all([
    ...host.a.addresses.map((address) => checkAddress(parseClientIp(address)!, 'A', dns, config)),
    ...host.aaaa.addresses.map((address) => checkAddress(parseClientIp(address)!, 'AAAA', dns, config)),
  ]);
  const omitted = (host.a.omitted ?? 0) + (host.aaaa.omitted ?? 0);
  return { target: name, kind: 'host', host, addresses: reports, ...(omitted > 0 ? { addressesOmitted: omitted } : {}), findings: findingsFor(host, reports, config) };
}

/**
 * How many of a host's A and AAAA addresses to check: at most LIMITS.maxCheckHostAddresses in
 * all, half for each family, what one family does not use going to the other. A round-robin
 * name of a thousand addresses, each with fifty PTR names, would otherwise cost fifty thousand
 * queries and as many lines; a mail host has a handful.
 */
export function checkedCounts(a: number, aaaa: number, max: number = LIMITS.maxCheckHostAddresses): { a: number; aaaa: number } {
  const checkedA = Math.min(a, Math.max(Math.floor(max / 2), max - aaaa));
  return { a: checkedA, aaaa: Math.min(aaaa, max - checkedA) };
}

export interface CheckReport {
  readonly targets: readonly TargetReport[];
  /** Every target's findings and the HELO finding, in the order to act on them. */
  readonly findings: readonly Finding[];
  readonly status: CheckStatus;
}

/** Check every target; the HELO name is judged once, against all of their addresses. */
export async function checkTargets(targets: readonly string[], dns: IprevDns, config: Config, helo?: string): Promise<CheckReport> {
  const reports = await Promise.all(targets.map((target) => checkTarget(target, dns, config)));
  const findings = [...reports.flatMap((report) => report.findings)];
  const heloFinding = helo === undefined ? undefined : heloFindingFor(helo, reports);
  if (heloFinding) findings.push(heloFinding);
  findings.sort((a, b) => PRIORITY[a.code] - PRIORITY[b.code]);
  return { targets: reports, findings, status: statusOf(findings) };
}

/**
 * True when a PTR name looks like the address owner's automatic name: the generic-name signal
 * (src/judge/generic.ts) finds the client's address in it.
 */
export function looksLikeProviderDefault(name: string, ip: ClientIp): boolean {
  return addressInName(name, ip, 'conservative') !== undefined;
}

/** What a finding about one address knows besides that address's own check. */
interface FindingContext {
  readonly host: HostLookup | undefined;
  readonly config: Config;
  /** The name the address's PTR should be: the host checked, or the MTA's own name. */
  readonly wanted: string;
  /** Some IPv4 address of the target passes (an IPv6 address without a PTR is then the trouble). */
  readonly ipv4Passes: boolean;
}

/** One finding about one address, or undefined when it does not apply. */
type AddressFinding = (report: AddressReport, context: FindingContext) => Finding | undefined;

/** What `check` can find about each address, in the order found (then sorted by PRIORITY). */
const ADDRESS_FINDINGS: readonly AddressFinding[] = [genericName, partialPtr, ipv6NoPtr, noPtr, providerDefaultName, noForward, mismatch, temperror];

function findingsFor(host: HostLookup | undefined, reports: readonly AddressReport[], config: Config): Finding[] {
  const findings: Finding[] = host ? hostFindings(host) : [];
  const context: FindingContext = {
    host,
    config,
    wanted: host?.name ?? 'your mail server\'s name (Postfix: myhostname)',
    ipv4Passes: reports.some((report) => report.ip.family === 4 && report.iprev.result === 'pass'),
  };
  for (const report of reports) {
    for (const finding of ADDRESS_FINDINGS) {
      const found = finding(report, context);
      if (found) findings.push(found);
    }
  }
  return findings.sort((a, b) => PRIORITY[a.code] - PRIORITY[b.code]);
}

/** The fix for a missing or wrong PTR: only the address's owner can set it. */
function ownerFix(ip: ClientIp, name: string): string {
  return (
    `Ask whoever owns ${ip.text} - your hosting provider or ISP, not your domain's DNS host - to set its PTR record ` +
    `to ${name}, and make sure ${name} has an ${ip.family === 4 ? 'A' : 'AAAA'} record of ${ip.text}.`
  );
}

/** What the host name's own lookups show: no such host, or a lookup that failed for now. */
function hostFindings(host: HostLookup): Finding[] {
  const found = [unknownHost(host), hostLookupFailed(host, 'A', host.a), hostLookupFailed(host, 'AAAA', host.aaaa)];
  return found.filter((finding): finding is Finding => finding !== undefined);
}

/** unknown_host: neither an A nor an AAAA record. */
function unknownHost(host: HostLookup): Finding | undefined {
  if (host.a.outcome !== 'not_found' || host.aaaa.outcome !== 'not_found') return undefined;
  return {
    code: 'unknown_host',
    severity: 'permanent',
    message: `${host.name} has no A or AAAA record (${host.a.code ?? ''}).`,
    fix: `Check the spelling, or add an A (and AAAA) record for ${host.name} at the DNS host of its domain.`,
  };
}

/** host_lookup_failed: the host's A or AAAA lookup failed temporarily. */
function hostLookupFailed(host: HostLookup, type: 'A' | 'AAAA', lookup: HostAddresses): Finding | undefined {
  if (lookup.outcome !== 'temporary') return undefined;
  return {
    code: 'host_lookup_failed',
    severity: 'temporary',
    message: `The ${type} lookup of ${host.name} failed temporarily (${lookup.code ?? 'error'}).`,
    fix: 'Retry later; if it persists, check the authoritative servers of the domain and this resolver.',
  };
}

/** generic_name: the address passes, but every confirmed name looks like a dynamic or pool name. */
function genericName({ ip, iprev }: AddressReport, context: FindingContext): Finding | undefined {
  if (iprev.result !== 'pass') return undefined;
  const signals = iprev.confirmedNames.map((name) => genericSignal(name, ip, context.config.genericLevel));
  const first = signals[0];
  if (!first || !signals.every((signal) => signal !== undefined)) return undefined;
  return {
    code: 'generic_name',
    severity: 'warning',
    address: ip.text,
    message:
      `${ip.text} is forward-confirmed, but its name ${iprev.confirmedNames.join(', ')} looks like a dynamic or pool address ` +
      `(rule ${first.rule}: ${first.detail}); many receivers distrust such names.`,
    fix: ownerFix(ip, context.wanted),
  };
}

/** partial_ptr: the address passes, but some of its PTR names do not resolve back. */
function partialPtr({ ip, iprev }: AddressReport): Finding | undefined {
  if (iprev.result !== 'pass' || iprev.ptr.names.length <= iprev.confirmedNames.length) return undefined;
  const unconfirmed = iprev.ptr.names.filter((name) => !iprev.confirmedNames.includes(name));
  return {
    code: 'partial_ptr',
    severity: 'warning',
    address: ip.text,
    message: `${ip.text} has ${iprev.ptr.names.length} PTR names; only ${iprev.confirmedNames.join(', ')} resolves back. ${unconfirmed.join(', ')} do not.`,
    fix: `Remove the stale PTR names (${unconfirmed.join(', ')}): Postfix's own check reads only the first PTR name and may reject.`,
  };
}

/** ipv6_no_ptr: an IPv6 address without a PTR while IPv4 passes. */
function ipv6NoPtr({ ip, iprev }: AddressReport, context: FindingContext): Finding | undefined {
  if (iprev.result !== 'no_ptr' || !(ip.family === 6 && context.ipv4Passes)) return undefined;
  return {
    code: 'ipv6_no_ptr',
    severity: 'permanent',
    address: ip.text,
    message: `IPv6 address ${ip.text} has no PTR record, while IPv4 is fine. Receivers that reach you over IPv6 (Gmail prefers it) see no hostname.`,
    fix: `${ownerFix(ip, context.wanted)} Or stop sending over IPv6 (Postfix: inet_protocols = ipv4) until it is set.`,
  };
}

/** no_ptr: no PTR record, or only unusable names (IPv6 beside a passing IPv4 is ipv6_no_ptr). */
function noPtr({ ip, iprev }: AddressReport, context: FindingContext): Finding | undefined {
  if (iprev.result !== 'no_ptr' || (ip.family === 6 && context.ipv4Passes)) return undefined;
  return {
    code: 'no_ptr',
    severity: 'permanent',
    address: ip.text,
    message:
      iprev.ptr.ignored.length > 0
        ? `${ip.text} has only unusable PTR names: ${iprev.ptr.ignored.map((item) => `${JSON.stringify(item.name)} (${item.reason})`).join(', ')}.`
        : `${ip.text} has no PTR record (${iprev.reverseName}: ${iprev.ptr.code ?? 'no answer'}).`,
    fix: ownerFix(ip, context.wanted),
  };
}

/** A PTR name of an address that does not resolve back which looks like its provider's automatic name. */
function providerDefault({ ip, iprev }: AddressReport, host: HostLookup | undefined): string | undefined {
  if (iprev.result !== 'no_forward' && iprev.result !== 'mismatch') return undefined;
  return iprev.ptr.names.find((name) => looksLikeProviderDefault(name, ip) && name !== host?.name);
}

/** provider_default_name: the PTR does not resolve back and is the provider's automatic name. */
function providerDefaultName(report: AddressReport, context: FindingContext): Finding | undefined {
  const provider = providerDefault(report, context.host);
  if (!provider) return undefined;
  const { ip } = report;
  return {
    code: 'provider_default_name',
    severity: 'permanent',
    address: ip.text,
    message: `The PTR of ${ip.text} is ${provider}, which looks like the provider's automatic name, and it does not resolve back to ${ip.text}.`,
    fix: ownerFix(ip, context.wanted),
  };
}

/** no_forward: the PTR name has no A/AAAA record (unless it is the provider's automatic name). */
function noForward(report: AddressReport, context: FindingContext): Finding | undefined {
  if (report.iprev.result !== 'no_forward' || providerDefault(report, context.host)) return undefined;
  return forwardFinding(report, 'no_forward', (recordType, seen) => `The PTR name of ${report.ip.text} has no ${recordType} record: ${seen}.`);
}

/** mismatch: the PTR name resolves to other addresses (unless it is the provider's automatic name). */
function mismatch(report: AddressReport, context: FindingContext): Finding | undefined {
  if (report.iprev.result !== 'mismatch' || providerDefault(report, context.host)) return undefined;
  return forwardFinding(report, 'mismatch', (_recordType, seen) => `The PTR name of ${report.ip.text} resolves elsewhere: ${seen}.`);
}

/** A PTR name that does not resolve back: what each forward lookup saw, and the record to add. */
function forwardFinding({ ip, iprev }: AddressReport, code: 'no_forward' | 'mismatch', message: (recordType: string, seen: string) => string): Finding {
  const recordType = ip.family === 4 ? 'A' : 'AAAA';
  const seen = iprev.forward.map((check) => `${check.name} -> ${check.addresses.join(', ') || `no ${recordType} record`}`).join('; ');
  return {
    code,
    severity: 'permanent',
    address: ip.text,
    message: message(recordType, seen),
    fix: `At the DNS host of ${iprev.ptr.names[0] ?? 'that name'}'s domain, add an ${recordType} record ${iprev.ptr.names[0] ?? ''} -> ${ip.text}` +
      ` (or have the IP's owner point the PTR at a name that already resolves to ${ip.text}).`,
  };
}

/** temperror: the PTR lookup or a forward lookup failed temporarily. */
function temperror({ ip, iprev }: AddressReport): Finding | undefined {
  if (iprev.result !== 'temperror') return undefined;
  return {
    code: 'temperror',
    severity: 'temporary',
    address: ip.text,
    message:
      iprev.temperrorStage === 'ptr'
        ? `The PTR lookup of ${ip.text} failed temporarily (${iprev.ptr.code ?? 'error'}).`
        : `Forward lookups for ${ip.text} failed temporarily: ${iprev.forward
            .filter((check) => check.outcome === 'temporary')
            .map((check) => `${check.name} (${check.code ?? 'error'})`)
            .join(', ')}.`,
    fix: 'Receivers answer 450 and retry. If it persists, check the authoritative servers of the zone, and this resolver.',
  };
}

/**
 * Whether the HELO name is a forward-confirmed PTR name of one of the addresses, as receivers
 * that compare HELO with the client's name expect; an address literal is allowed by RFC 5321
 * §4.1.3 but scored as a bad sign by many receivers.
 */
function heloFindingFor(helo: string, targets: readonly TargetReport[]): Finding | undefined {
  const reports = targets.flatMap((target) => target.addresses);
  const host = targets.find((target) => target.host)?.host;
  // The daemon's own HELO rules (src/judge/helo.ts), asked of each address of the target.
  const statuses = reports.map((report) => heloWithoutLookup(helo, report.ip, report.iprev.confirmedNames));
  if (statuses.includes('confirmed')) return undefined;
  const confirmed = [...new Set(reports.flatMap((report) => report.iprev.confirmedNames))];
  const name = normaliseName(helo);
  return {
    code: 'helo_mismatch',
    severity: 'warning',
    message: statuses.includes('literal')
      ? `The HELO name ${helo} is an address literal (RFC 5321 §4.1.3 allows it, but many receivers score it as a bad sign).`
      : statuses.includes('invalid') || hostnameProblem(name) !== undefined
        ? `The HELO name ${JSON.stringify(helo)} is not a valid hostname.`
        : `The HELO name ${name} is not a forward-confirmed PTR name of ${reports.map((report) => report.ip.text).join(', ') || 'the host'}.`,
    fix: `Set the MTA's hostname (Postfix: myhostname = ${confirmed[0] ?? host?.name ?? 'mail.example.com'}) to a name whose PTR and A/AAAA records match.`,
  };
}

/** Exit status of a whole check: permanent failures beat temporary ones; warnings do not fail. */
function statusOf(findings: readonly Finding[]): CheckStatus {
  if (findings.some((finding) => finding.severity === 'permanent')) return 'permanent';
  if (findings.some((finding) => finding.severity === 'temporary')) return 'temporary';
  return 'pass';
}

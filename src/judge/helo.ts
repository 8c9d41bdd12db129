/**
 * HELO/EHLO versus the client: is the greeting name one of the client's forward-confirmed PTR
 * names, or at least a name that resolves to the client, or an address literal of it?
 */
import type { AddressOutcome, IprevDns } from '../dns/resolver.js';
import { canonicalAddress, parseClientIp, type ClientIp } from '../util/ip.js';
import { hostnameProblem, normaliseName } from '../dns/iprev.js';
import type { HeloStatus, PolicySettings } from './policy.js';

/**
 * Whether the HELO name's forward lookup can change an action: only when helo_mismatch_action
 * is not `dunno`. Otherwise no query is sent for it (a hostile HELO name cannot slow a reply that
 * does not use it), and what is known without DNS is logged, or `unchecked`.
 */
export function heloLookupUsed(policy: Pick<PolicySettings, 'heloMismatchAction'>): boolean {
  return (policy.heloMismatchAction ?? 'dunno') !== 'dunno';
}

/**
 * What can be said of a HELO name without DNS, or the name whose forward lookup decides.
 * RFC 5321 §4.1.3: an address literal is `[a.b.c.d]` or `[IPv6:…]`; a bare address is not a
 * valid HELO argument.
 */
export function heloWithoutLookup(helo: string, ip: ClientIp, confirmedNames: readonly string[]): HeloStatus | { lookup: string } {
  if (helo === '') return 'missing';
  const literal = /^\[(?:ipv6:)?([0-9a-f:.]+)\]$/i.exec(helo);
  if (literal) {
    const address = parseClientIp(literal[1] ?? '');
    if (!address) return 'invalid';
    return address.text === ip.text ? 'literal' : 'literal_mismatch';
  }
  const name = normaliseName(helo);
  if (hostnameProblem(name) !== undefined) return 'invalid';
  if (confirmedNames.includes(name)) return 'confirmed';
  return { lookup: name };
}

/**
 * The status of a HELO name that heloWithoutLookup left to look up, once the client's
 * forward-confirmed names are known: confirmed when it is one of them, unchecked when
 * helo_mismatch_action asks no lookup (`lookupUsed`), else what its own lookup's `outcome` says —
 * undefined while that lookup is still out. The cache's path (src/daemon/pipeline.ts) and the
 * cold path (src/daemon/cold-path.ts) both end here.
 */
export function heloOfName(
  name: string,
  confirmedNames: readonly string[],
  lookupUsed: boolean,
  outcome: AddressOutcome | undefined,
  ip: ClientIp,
): HeloStatus | undefined {
  if (confirmedNames.includes(name)) return 'confirmed';
  if (!lookupUsed) return 'unchecked';
  return outcome === undefined ? undefined : heloFromLookup(outcome, ip);
}

/** The HELO name's forward answer (client's family) decides between resolves and mismatch. */
export function heloFromLookup(outcome: AddressOutcome, ip: ClientIp): HeloStatus {
  if (outcome.kind === 'temporary') return 'temperror';
  if (outcome.kind === 'answer' && outcome.records.some((address) => canonicalAddress(address) === ip.text)) return 'resolves';
  return 'mismatch';
}

/**
 * Assess a HELO name. The forward lookup is asked only when the name is not already a
 * confirmed PTR name, in the client's address family, through the same cache.
 */
export async function assessHelo(helo: string, ip: ClientIp, confirmedNames: readonly string[], dns: IprevDns): Promise<HeloStatus> {
  const known = heloWithoutLookup(helo, ip, confirmedNames);
  if (typeof known === 'string') return known;
  return heloFromLookup(await dns.lookupAddresses(known.lookup, ip.family), ip);
}

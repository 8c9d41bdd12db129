/**
 * Host-name syntax as Postfix reads PTR names (its valid_hostname() and smtpd_peer.c), used by
 * the PTR answer handling, the HELO check and the config's name lists. Pure: no DNS.
 */
import { parseClientIp } from './ip.js';

/** RFC 1035 §2.3.4: names are at most 255 octets (253 characters in text), labels at most 63. */
export const MAX_HOSTNAME_LENGTH = 253;
export const MAX_LABEL_LENGTH = 63;

/** Why a name is not a host name. */
export type NameProblem = 'invalid hostname' | 'numeric name';

/**
 * Why a PTR target is not a usable hostname, or undefined when it is. Mirrors Postfix's
 * valid_hostname() and smtpd_peer.c: letters, digits, hyphens and underscores (underscores are
 * accepted), no label starting or ending with a hyphen, labels ≤ 63 and the name ≤ 255 octets
 * (RFC 1035 §2.3.4), and an all-numeric name or an IP address is not a name (POSTFIX-FACTS 13).
 */
export function hostnameProblem(name: string): NameProblem | undefined {
  if (name.length === 0 || name.length > MAX_HOSTNAME_LENGTH) return 'invalid hostname';
  if (parseClientIp(name) !== undefined) return 'numeric name';
  const labels = name.split('.');
  for (const label of labels) {
    if (label.length === 0 || label.length > MAX_LABEL_LENGTH) return 'invalid hostname';
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
